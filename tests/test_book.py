"""The book as a whole: table of contents, chapter anatomy, setup cell, citations, packaging."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import bootstrap  # noqa: E402

CHAPTERS = bootstrap.chapters()
# Every paper the syllabus names must be in the one bibliography.
SYLLABUS_KEYS = [
    "bahdanau2015neural", "luong2015effective", "vaswani2017attention", "mnih2014recurrent", "ba2015multiple",
    "xu2015show", "gregor2015draw", "jaderberg2015spatial", "almahairi2016dynamic", "hu2018squeeze",
    "li2019selective", "wang2020eca", "woo2018cbam", "park2018bam", "wang2017residual", "wang2018nonlocal",
    "dosovitskiy2021image", "abnar2020quantifying", "dao2022flashattention", "rabe2021selfattention",
    "lee2016recursive", "li2019expectation", "hassanin2024visual", "nadaraya1964estimating", "watson1964smooth",
]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc.get("parts", []):
        files += [chapter["file"] for chapter in part["chapters"]]
        files += [s["file"] for chapter in part["chapters"] for s in chapter.get("sections", [])]
    return files


def source_of(toc_entry: str) -> Path:
    matches = [p for p in (ROOT / f"{toc_entry}.ipynb", ROOT / f"{toc_entry}.md") if p.exists()]
    assert len(matches) == 1, f"{toc_entry}: expected exactly one of .ipynb/.md, found {matches}"
    return matches[0]


def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def test_toc_and_chapters_agree():
    listed = [source_of(entry) for entry in toc_files()]
    assert len(set(listed)) == len(listed), "a file is listed twice in _toc.yml"
    orphans = set(CHAPTERS) - set(listed)
    assert not orphans, f"notebooks missing from _toc.yml: {sorted(str(p) for p in orphans)}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_setup_cell_is_first_and_current(chapter):
    nb = json.loads(chapter.read_text(encoding="utf-8"))
    first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
    assert text(first_code) == bootstrap.cell_source(), (
        f"{chapter.name}: the setup cell is missing or stale; run `.venv/bin/python tools/bootstrap.py`"
    )
    assert nb["metadata"]["kernelspec"]["name"] == "python3"


def test_template_setup_cell_is_current():
    for template in (ROOT / "templates").glob("*.ipynb"):
        assert bootstrap.sync(template, check=True), f"{template.name}: run tools/bootstrap.py"


def test_setup_cell_installs_from_the_configured_repository():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    url, branch = config["repository"]["url"], config["repository"]["branch"]
    assert f'"attnlib[{bootstrap.EXTRA}] @ git+{url}@{branch}"' in bootstrap.cell_source()
    for chapter in CHAPTERS:
        link = bootstrap.colab_url(chapter)
        assert link.startswith("https://colab.research.google.com/github/") and link.endswith(".ipynb")
        assert (ROOT / link.split(f"/blob/{branch}/", 1)[1]).exists(), link


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_stored_executed_in_order_without_errors(chapter):
    code = [c for c in cells(chapter) if c["cell_type"] == "code" and text(c).strip()]
    counts = [c["execution_count"] for c in code]
    assert counts == list(range(1, len(code) + 1)), f"{chapter.name}: run it top to bottom (python3 dev.py execute)"
    for i, cell in enumerate(code, 1):
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"{chapter.name}, code cell {i}: stored error {out.get('ename')}"
            if out.get("name") == "stderr":
                assert "Traceback" not in "".join(out["text"]), f"{chapter.name}, code cell {i}: traceback on stderr"
    assert chapter.stat().st_size < 3_000_000, f"{chapter.name} is over 3 MB: lower dpi or store fewer frames"
    nb = json.loads(chapter.read_text())
    assert "widgets" not in nb["metadata"], "widget state is stored: use dev.py execute"
    for i, cell in enumerate(code, 1):
        for out in cell["outputs"]:
            data = out.get("data", {})
            assert not ("application/vnd.jupyter.widget-view+json" in data and "text/html" not in data), (
                f"{chapter.name}, code cell {i}: a widget without static fallback (dead in the book): use dev.py execute"
            )
        if any("image/png" in out.get("data", {}) and "text/html" not in out["data"] for out in cell["outputs"]):
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 20, f"{chapter.name}, code cell {i}: a figure needs alt text (metadata mystnb.image.alt)"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_anatomy(chapter):
    cs = cells(chapter)
    markdown = "\n".join(text(c) for c in cs if c["cell_type"] == "markdown")
    assert cs[0]["cell_type"] == "markdown" and text(cs[0]).startswith("# "), "a chapter starts with its title"
    for required in ("What you will learn", "**Prerequisites:**", "**Run time:**", "## Exercises", ":class: dropdown", "## Summary"):
        assert required in markdown, f"{chapter.name} lacks {required!r}"
    run_time = markdown.split("**Run time:**", 1)[1].split("\n", 1)[0]
    assert "CPU" in run_time and "GPU" in run_time, f"{chapter.name}: state the run time on CPU and on GPU"
    assert "{cite" in markdown, f"{chapter.name} cites no paper"
    code = [c for c in cs if c["cell_type"] == "code"]
    figures = sum("image/png" in o.get("data", {}) for c in code for o in c["outputs"])
    assert figures >= 3, f"{chapter.name} shows only {figures} figures"
    interactive = [c for c in code if re.search(r"^interactive_figure\(", text(c), re.M)]
    assert interactive, f"{chapter.name} has no interactive figure"
    for cell in interactive:
        bundle = [o["data"] for o in cell["outputs"] if "text/html" in o.get("data", {})]
        assert bundle and "application/vnd.jupyter.widget-view+json" in bundle[0], "interactive figure without fallback"
        assert "nbval-ignore-output" in cell["metadata"].get("tags", []), "interactive output differs per run"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_reads_no_file_of_the_checkout(chapter):
    """Opened alone in Colab, a chapter has only attnlib and its loaders."""
    for cell in cells(chapter):
        if cell["cell_type"] == "code":
            src = text(cell)
            assert not re.search(r"""(open|read_csv|loadtxt|load|imread)\(\s*['"]""", src), src[:200]
            assert "../" not in src and "book/" not in src, src[:200]


def test_every_citation_resolves_and_every_syllabus_paper_is_listed():
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = re.findall(r"^@\w+\{([^,]+),", bib, flags=re.M)
    assert len(keys) == len(set(keys)), "duplicate bibliography keys"
    missing = [k for k in SYLLABUS_KEYS if k not in keys]
    assert not missing, f"syllabus papers missing from references.bib: {missing}"
    sources = list(CHAPTERS) + sorted((ROOT / "book").rglob("*.md"))
    for path in sources:
        body = path.read_text(encoding="utf-8")
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", body):
            for key in group.split(","):
                assert key.strip() in keys, f"{path.name} cites unknown key {key.strip()!r}"


def test_readme_commands_are_what_ci_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in ("python3 dev.py book", "python3 dev.py test"):
        assert command in readme and command in ci, command


def test_requirements_pin_cpu_torch():
    pins = dict(line.split("==", 1) for line in (ROOT / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    assert pins["torch"] == "2.13.0"
    assert all(v.strip() for v in pins.values())


def test_wheel_contains_every_module(tmp_path):
    """`pip install attnlib @ git+...` builds this wheel: no subpackage may be left behind."""
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path), str(ROOT)], check=True)
    (wheel,) = tmp_path.glob("attnlib-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "attnlib").rglob("*.py")}
    assert expected <= names, f"missing from the wheel: {sorted(expected - names)}"
    assert "attnlib/py.typed" in names


def test_readme_example_runs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (example,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    namespace: dict = {}
    exec(compile(example, "README.md", "exec"), namespace)
    assert tuple(namespace["maps"][""][0].shape) == (2, 10, 12)
    assert namespace["out"].shape == (2, 4, 10, 16)


def test_github_workflows_run_what_ci_runs():
    for name in ("tests.yml", "book.yml"):
        workflow = yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text(encoding="utf-8"))
        steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
        assert any(step.get("run", "").strip() == "./.ci/run" for step in steps), name
    book = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text(encoding="utf-8"))
    uses = [step.get("uses", "") for job in book["jobs"].values() for step in job.get("steps", [])]
    assert any(u.startswith("actions/upload-pages-artifact") for u in uses)
    assert any(u.startswith("actions/deploy-pages") for u in uses)
    # `on:` parses as True in YAML 1.1
    assert book[True]["push"]["branches"] == ["main"]
