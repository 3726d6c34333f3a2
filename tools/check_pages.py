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
- an interactive figure with a control that does not change the picture (each control,
  slider, select, radio group or checkbox, is moved with the keyboard or its option list
  until the frame changes), a frame that does not load or keeps its alt text, a play button
  that does not play, or a widget area with nothing in it;
- a Colab button that does not point at the chapter's notebook on the configured branch.

The search page must also find a word every chapter uses.  A full-page screenshot of each
page, and of each interactive figure before and after its controls were moved, is written to
``_build/screenshots/``; the exit status is 1 when anything failed.
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
SHOT_MAX_HEIGHT = 30_000  # pixels of a page's screenshot
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


# Each control of an interactive figure, as the page holds it: its kind, label, values and position.
CONTROLS_JS = """fig => {
  const out = [];
  for (const el of fig.querySelectorAll('[data-control]')) {
    if (el.tagName === 'OUTPUT') continue;
    const c = +el.getAttribute('data-control');
    if (out[c]) { out[c].count += 1; continue; }
    const kind = el.tagName === 'SELECT' ? 'select' : el.type;
    const label = (el.closest('[role=radiogroup]')?.querySelector('span') || el.closest('label')?.querySelector('span'))
      ?.innerText.trim();
    const count = kind === 'range' ? +el.max + 1 : kind === 'select' ? el.options.length : 1;
    out[c] = {kind, label, count, disabled: el.disabled};
  }
  return out;
}"""


def frame_state(page, image) -> tuple[str, str, bool]:
    """(src, alt, loaded) of a figure's frame image."""
    return tuple(
        page.evaluate("img => [img.getAttribute('src'), img.alt, img.complete && img.naturalWidth > 0]", image)
    )


def change_control(page, figure, c: int, control: dict) -> None:
    """Move control ``c`` one step, as a reader would: the keyboard for a slider, a radio group and a
    checkbox (proving they are keyboard usable), the option list for a select."""
    sel = f'[data-control="{c}"]'
    if control["kind"] == "select":
        element = figure.query_selector(f"select{sel}")
        current = int(element.input_value())
        element.select_option(str((current + 1) % control["count"]))
    elif control["kind"] == "radio":
        figure.query_selector(f"input{sel}:checked").focus()
        page.keyboard.press("ArrowRight")
    elif control["kind"] == "checkbox":
        figure.query_selector(f"input{sel}").focus()
        page.keyboard.press("Space")
    else:
        element = figure.query_selector(f"input{sel}")
        element.focus()
        at_end = int(element.input_value()) == control["count"] - 1
        page.keyboard.press("Home" if at_end else "ArrowRight")
    page.wait_for_timeout(30)


def check_interactive(page, report: PageReport, expected: int | None, stem: str) -> None:
    """Every control of every interactive figure changes the picture, and the play button plays.

    Each control is moved one step at a time (wrapping round) until the frame changes; a control
    whose every value leaves the picture as it was fails.  Screenshots of each figure before and
    after go to ``_build/screenshots/<page>__figure<i>__{before,after}.png``."""
    figures = page.query_selector_all(".attnlib-interactive")
    report.facts["interactive figures"] = len(figures)
    if expected is not None and len(figures) != expected:
        report.problems.append(f"{len(figures)} interactive figures shown, the notebook holds {expected}")
    driven = 0
    for i, figure in enumerate(figures):
        name = f"interactive figure {i + 1}"
        image = figure.query_selector("img.attnlib-frame")
        controls = page.evaluate(CONTROLS_JS, figure)
        if not image or not controls:
            report.problems.append(f"{name}: no frame image or no controls")
            continue
        figure.scroll_into_view_if_needed()
        figure.screenshot(path=str(SHOTS / f"{stem}__figure{i + 1}__before.png"))
        for c, control in enumerate(controls):
            what = f"{name}, control {control['label']!r}"
            if control["disabled"] or (control["kind"] != "checkbox" and control["count"] < 2):
                report.problems.append(f"{what}: offers a single value")
                continue
            src, alt, _ = frame_state(page, image)
            for _ in range(control["count"] if control["kind"] != "checkbox" else 1):
                change_control(page, figure, c, control)
                new_src, new_alt, loaded = frame_state(page, image)
                if new_src != src:
                    break
            if not loaded:
                report.problems.append(f"{what}: the frame image does not load")
            if new_src == src:
                report.problems.append(f"{what}: no value of it changes the picture")
            elif new_alt == alt:
                report.problems.append(f"{what}: the picture changed but its alt text did not")
            driven += 1
        play = figure.query_selector("button.attnlib-play")
        if play:
            src = frame_state(page, image)[0]
            play.click()
            page.wait_for_timeout(2000)
            if frame_state(page, image)[0] == src:
                report.problems.append(f"{name}: the play button does not change the frame")
            if "pause" in play.inner_text():
                play.click()  # stop it before the screenshot
        figure.screenshot(path=str(SHOTS / f"{stem}__figure{i + 1}__after.png"))
    report.facts["controls driven"] = driven
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
    stem = path.replace("/", "__").removesuffix(".html")
    SHOTS.mkdir(parents=True, exist_ok=True)
    check_interactive(page, report, notebook_interactive_count(source) if is_chapter else None, stem)
    check_links(page, base, report)
    if is_chapter:
        check_chapter_links(page, source, report)
    page.evaluate("() => window.scrollTo(0, 0)")
    # the whole page, up to SHOT_MAX_HEIGHT pixels (the API reference is some 300,000 pixels tall,
    # and Chromium takes about 30 s to capture it all)
    height = min(page.evaluate("() => document.documentElement.scrollHeight"), SHOT_MAX_HEIGHT)
    page.screenshot(
        path=str(SHOTS / f"{stem}.png"), full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height}
    )
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
