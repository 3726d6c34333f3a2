#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium and fail on what a reader would see.

    python3 dev.py check-pages        (after python3 dev.py book)

The book in ``_build/html`` is served on 127.0.0.1 and each page of ``_toc.yml`` is opened
in Debian's ``chromium`` (driven by Playwright, which downloads no browser here).  Any
request that leaves 127.0.0.1 is blocked and counts as a failure, so the check also proves
that the book works offline.  A page fails when it has

- a JavaScript error (an uncaught exception or a console error) or a failed request;
- raw TeX: a formula MathJax did not typeset, or ``\\(``, ``\\[`` or ``$$`` left in the text;
- a broken internal link (missing page or missing ``#anchor``) or a broken image;
- a figure missing from a chapter (fewer output images than the notebook holds), an
  output image without a real alt text, or no link into the API reference;
- an interactive figure whose static recording does not step to another frame, or a
  widget area with nothing in it;
- a Colab button that does not point at the chapter's notebook on the configured branch.

The search page must also find a word every chapter uses.  A full-page screenshot of each
page is written to ``_build/screenshots/``; the exit status is 1 when anything failed.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import shutil
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bootstrap  # noqa: E402

HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@dataclass
class PageReport:
    path: str
    problems: list[str] = field(default_factory=list)
    facts: dict[str, int] = field(default_factory=dict)


def toc_pages() -> list[tuple[str, Path]]:
    """(html path relative to the site, source file) for every page of the table of contents."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]] + [c["file"] for part in toc.get("parts", []) for c in part["chapters"]]
    pages = []
    for entry in entries:
        source = next(p for p in (ROOT / f"{entry}.ipynb", ROOT / f"{entry}.md") if p.exists())
        pages.append((f"{entry}.html", source))
    return pages


def notebook_image_count(path: Path) -> int:
    """Static figures a chapter holds (interactive figures are counted separately)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    return sum(
        1
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell["outputs"]
        if "image/png" in out.get("data", {}) and "text/html" not in out["data"]
    )


def notebook_interactive_count(path: Path) -> int:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return sum(
        1
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for out in cell["outputs"]
        if WIDGET_MIME in out.get("data", {}) and "text/html" in out["data"]
    )


def find_chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("no Chromium found: install Debian's package (apt-get install -y chromium)")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)  # a browser that stops reading is no error


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@functools.lru_cache(maxsize=None)
def fetch(url: str) -> tuple[int, str]:
    """(status, body) of a URL on the local server; the body only for HTML."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            kind = response.headers.get("Content-Type", "")
            body = response.read().decode("utf-8", "replace") if "html" in kind else ""
            return response.status, body
    except urllib.error.HTTPError as error:
        return error.code, ""
    except OSError:
        return 0, ""


def check_links(page, base: str, report: PageReport) -> None:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
    internal = sorted({h for h in hrefs if h.startswith(base)})
    report.facts["internal links"] = len(internal)
    for href in internal:
        url, _, fragment = href.partition("#")
        status, body = fetch(url)
        if status != 200:
            report.problems.append(f"broken link {href} (HTTP {status})")
        elif fragment and body and not re.search(rf'\b(id|name)="{re.escape(urllib.parse.unquote(fragment))}"', body):
            report.problems.append(f"broken anchor {href}")


def check_images(page, base: str, report: PageReport, expected_figures: int | None) -> None:
    images = page.eval_on_selector_all(
        "img",
        "els => els.map(e => ({src: e.src, alt: e.getAttribute('alt') || '', "
        "output: !!e.closest('.cell_output'), interactive: !!e.closest('.attnlib-interactive')}))",
    )
    for image in images:
        if image["src"].startswith(base) and fetch(image["src"])[0] != 200:
            report.problems.append(f"broken image {image['src']}")
    outputs = [i for i in images if i["output"] and not i["interactive"]]
    report.facts["figures"] = len(outputs)
    for image in outputs + [i for i in images if i["interactive"]]:
        if not image["alt"].strip() or re.search(r"\.(png|jpe?g|svg)$", image["alt"]):
            report.problems.append(f"figure without alt text: {image['src'][:80]}")
    if expected_figures is not None and len(outputs) < expected_figures:
        report.problems.append(f"{len(outputs)} figures shown, the notebook holds {expected_figures}")


def check_math(page, report: PageReport) -> None:
    page.wait_for_function(
        "() => !document.querySelector('.math') || (window.MathJax && MathJax.startup && MathJax.startup.promise)",
        timeout=20000,
    )
    page.evaluate("() => window.MathJax && MathJax.startup ? MathJax.startup.promise : null")
    counts = page.evaluate(
        "() => ({math: document.querySelectorAll('.math').length,"
        " raw: [...document.querySelectorAll('.math')].filter(e => !e.querySelector('mjx-container')).length})"
    )
    report.facts["formulas"] = counts["math"]
    if counts["raw"]:
        report.problems.append(f"{counts['raw']} of {counts['math']} formulas not typeset by MathJax")
    text = page.inner_text("main") if page.query_selector("main") else page.inner_text("body")
    for marker in ("\\(", "\\[", "$$"):
        if marker in text:
            at = text.index(marker)
            report.problems.append(f"raw TeX {marker!r} in the page text: ...{text[max(0, at - 40) : at + 40]!r}")


def check_interactive(page, report: PageReport, expected: int | None) -> None:
    players = page.query_selector_all(".attnlib-interactive")
    report.facts["interactive figures"] = len(players)
    if expected is not None and len(players) != expected:
        report.problems.append(f"{len(players)} interactive figures shown, the notebook holds {expected}")
    for i, player in enumerate(players):
        image = player.query_selector("img")
        before = image.get_attribute("src") if image else None
        button = player.query_selector("button[title='Next frame']")
        if not image or not button:
            report.problems.append(f"interactive figure {i + 1}: no frame image or no step button")
            continue
        button.click()
        page.wait_for_timeout(100)
        if image.get_attribute("src") == before:
            report.problems.append(f"interactive figure {i + 1}: 'next frame' did not change the frame")
        if not page.evaluate("img => img.complete && img.naturalWidth > 0", image):
            report.problems.append(f"interactive figure {i + 1}: the frame image does not load")
    dead = page.evaluate(
        f"""() => [...document.querySelectorAll('script[type="{WIDGET_MIME}"], .jupyter-widgets, .widget-area')]
               .filter(e => e.tagName === 'SCRIPT'
                            || !(e.innerText.trim() || e.querySelector('img, canvas, svg'))).length"""
    )
    if dead:
        report.problems.append(f"{dead} widget area(s) with nothing in them (a widget without a static fallback)")


def check_chapter_links(page, source: Path, report: PageReport) -> None:
    hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.getAttribute('href'))")
    wanted = bootstrap.colab_url(source)
    if wanted not in hrefs:
        colab = [h for h in hrefs if "colab.research.google.com" in h]
        report.problems.append(f"Colab button points at {colab or 'nothing'}, expected {wanted}")
    if not any(f"reference/api.html#{anchor}attnlib" in h for h in hrefs for anchor in ("", "module-")):
        report.problems.append("no link from the text into the API reference")


def check_page(browser, base: str, path: str, source: Path) -> PageReport:
    report = PageReport(path)
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    def block_external(route) -> None:
        if route.request.url.startswith(base) or route.request.url.startswith("data:"):
            route.continue_()
        else:
            report.problems.append(f"request leaves the book: {route.request.url}")
            route.abort()

    page.route("**/*", block_external)
    page.on("pageerror", lambda error: report.problems.append(f"JavaScript error: {error}"))
    page.on(
        "console", lambda msg: report.problems.append(f"console error: {msg.text}") if msg.type == "error" else None
    )
    page.on(
        "requestfailed",
        lambda req: (
            report.problems.append(f"request failed: {req.url} ({req.failure})") if req.url.startswith(base) else None
        ),
    )
    response = page.goto(base + path, wait_until="load", timeout=30000)
    if response is None or response.status != 200:
        report.problems.append(f"page not served (HTTP {response.status if response else '?'})")
        return report
    is_chapter = source.suffix == ".ipynb"
    check_math(page, report)
    check_images(page, base, report, notebook_image_count(source) if is_chapter else None)
    check_interactive(page, report, notebook_interactive_count(source) if is_chapter else None)
    check_links(page, base, report)
    if is_chapter:
        check_chapter_links(page, source, report)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / (path.replace("/", "__").removesuffix(".html") + ".png")), full_page=True)
    page.close()
    return report


def check_search(browser, base: str) -> PageReport:
    report = PageReport("search.html?q=softmax")
    page = browser.new_page()
    page.on("pageerror", lambda error: report.problems.append(f"JavaScript error: {error}"))
    page.goto(base + "search.html?q=softmax", wait_until="load", timeout=30000)
    try:
        page.wait_for_selector("#search-results li", timeout=20000)
    except Exception:  # noqa: BLE001 - a timeout is the failure being tested
        report.problems.append("the search found nothing for 'softmax'")
    report.facts["results"] = len(page.query_selector_all("#search-results li"))
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)
    page.close()
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chromium", help="browser executable (default: chromium on PATH)")
    args = parser.parse_args()
    if not (HTML / "index.html").exists():
        sys.exit(f"{HTML} holds no built book: run python3 dev.py book first")
    from playwright.sync_api import sync_playwright

    server, base = serve(HTML)
    reports = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium or find_chromium(), args=CHROMIUM_FLAGS)
            for path, source in toc_pages():
                reports.append(check_page(browser, base, path, source))
            reports.append(check_search(browser, base))
            browser.close()
    finally:
        server.shutdown()
    failed = [r for r in reports if r.problems]
    for report in reports:
        facts = ", ".join(f"{v} {k}" for k, v in report.facts.items())
        print(f"{'FAIL' if report.problems else 'ok  '} {report.path}: {facts}")
        for problem in report.problems:
            print(f"       {problem}")
    print(f"{len(reports)} pages checked, {len(failed)} with problems; screenshots in {SHOTS.relative_to(ROOT)}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
