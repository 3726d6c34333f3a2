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
    "bahdanau2015neural",
    "luong2015effective",
    "vaswani2017attention",
    "mnih2014recurrent",
    "ba2015multiple",
    "xu2015show",
    "gregor2015draw",
    "jaderberg2015spatial",
    "almahairi2016dynamic",
    "hu2018squeeze",
    "li2019selective",
    "wang2020eca",
    "woo2018cbam",
    "park2018bam",
    "wang2017residual",
    "wang2018nonlocal",
    "dosovitskiy2021image",
    "abnar2020quantifying",
    "dao2022flashattention",
    "rabe2021selfattention",
    "lee2016recursive",
    "li2019expectation",
    "hassanin2024visual",
    "nadaraya1964estimating",
    "watson1964smooth",
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
                f"{chapter.name}, code cell {i}: a widget without static fallback (dead in the book): "
                "use dev.py execute"
            )
        if any("image/png" in out.get("data", {}) and "text/html" not in out["data"] for out in cell["outputs"]):
            alt = cell["metadata"].get("mystnb", {}).get("image", {}).get("alt", "")
            assert len(alt) > 20, f"{chapter.name}, code cell {i}: a figure needs alt text (metadata mystnb.image.alt)"


# ----------------------------------------------------------------------------- the page a reader sees
# Markdown is read the way MyST reads it (the same parser, the book's extensions), not grepped:
# a ``` fence inside a ``` admonition closes the admonition early, leaks the answer onto the
# page and swallows the next heading into a code block, while the raw text still "contains"
# every heading.  Admonition bodies are parsed again, as Sphinx does when it renders them.
DIRECTIVE = re.compile(r"^\{(admonition|note|tip|hint|important|warning|caution|attention|seealso|dropdown)\}")
ROLE_TEXT = re.compile(r"\{[a-z]+(?::[a-z]+)?\}`")  # a role that was not parsed as one
HEADING_LINE = re.compile(r"^#{1,6} \S", re.M)


def _md_parser():
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig
    from myst_parser.parsers.mdit import create_md_parser

    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    extensions = set(config["parse"]["myst_enable_extensions"])
    return create_md_parser(MdParserConfig(enable_extensions=extensions), RendererHTML)


MD = _md_parser()


def _directive_body(content: str) -> str:
    """A directive's content without its leading ``:option: value`` lines."""
    lines = content.splitlines()
    while lines and re.match(r"^:[\w-]+:", lines[0]):
        lines.pop(0)
    return "\n".join(lines)


def rendered_tokens(markdown: str, depth: int = 0):
    """``(depth, token)`` for every block token a reader meets, admonition bodies included."""
    for token in MD.parse(markdown):
        yield depth, token
        if token.type in ("fence", "colon_fence") and DIRECTIVE.match(token.info.strip()):
            yield from rendered_tokens(_directive_body(token.content), depth + 1)


def page(chapter: Path) -> list[tuple[int, object]]:
    """The tokens of every markdown cell, each cell parsed on its own as MyST-NB does."""
    return [item for c in cells(chapter) if c["cell_type"] == "markdown" for item in rendered_tokens(text(c))]


def headings(tokens) -> list[tuple[int, str]]:
    """``(level, text)`` of the page's own headings (not those inside admonitions)."""
    out = []
    for i, (depth, token) in enumerate(tokens):
        if token.type == "heading_open" and depth == 0:
            out.append((int(token.tag[1]), tokens[i + 1][1].content.strip()))
    return out


def check_anatomy(notebook: Path) -> None:
    tokens = page(notebook)
    heads = headings(tokens)
    name = notebook.name
    assert heads and heads[0][0] == 1, f"{name}: a chapter starts with its title (# ...)"
    h2 = [t for level, t in heads if level == 2]
    assert "Exercises" in h2 and "Summary" in h2, f"{name}: the reader sees no '## Exercises' or '## Summary' ({h2})"
    assert h2[-1] == "Summary" and h2.index("Exercises") < h2.index("Summary"), f"{name}: Summary comes last"
    directives = [t for _, t in tokens if t.type in ("fence", "colon_fence") and DIRECTIVE.match(t.info.strip())]
    assert any("What you will learn" in t.info for t in directives), f"{name}: no 'What you will learn' admonition"
    dropdowns = [t for t in directives if ":class: dropdown" in t.content]
    assert dropdowns, f"{name}: exercise solutions go in dropdown admonitions"
    lines = [line for _, t in tokens if t.type == "inline" for line in t.content.splitlines()]
    for label in ("**Prerequisites:**", "**Run time:**"):
        assert any(line.startswith(label) for line in lines), f"{name}: no {label} line"
    for _, token in tokens:
        if token.type in ("fence", "colon_fence") and not DIRECTIVE.match(token.info.strip()):
            if token.info.strip() in ("", "md", "markdown", "text"):
                assert not HEADING_LINE.search(token.content), (
                    f"{name}: a heading swallowed by a code block (a fence closed early?):\n{token.content[:300]}"
                )
        if token.type == "inline":
            leaked = [c.content for c in token.children or [] if c.type == "text" and ROLE_TEXT.search(c.content)]
            assert not leaked, f"{name}: a role shown as text, not rendered: {leaked[0][:120]}"
            assert "```" not in "".join(c.content for c in token.children or [] if c.type == "text"), (
                f"{name}: a stray ``` on the page: {token.content[:120]}"
            )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_anatomy(chapter):
    check_anatomy(chapter)
    cs = cells(chapter)
    markdown = "\n".join(text(c) for c in cs if c["cell_type"] == "markdown")
    paragraph = next(t.content for _, t in page(chapter) if t.type == "inline" and "**Run time:**" in t.content)
    run_time = paragraph.split("**Run time:**", 1)[1].split("\n**", 1)[0]  # up to the next bold label
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


def test_the_chapter_template_passes_the_anatomy_it_teaches():
    for template in (ROOT / "templates").glob("*.ipynb"):
        check_anatomy(template)


def test_the_anatomy_check_sees_a_fence_that_closes_an_admonition_early(tmp_path):
    """The mistake that once swallowed a Summary: the check must fail on it."""
    good = json.loads((ROOT / "templates" / "chapter.ipynb").read_text(encoding="utf-8"))
    broken = json.loads((ROOT / "templates" / "chapter.ipynb").read_text(encoding="utf-8"))
    leaky = "```{admonition} Solution 9\n:class: dropdown\n```python\nx = 1\n```\nThe answer.\n```\n\n"
    summary = next(c for c in broken["cells"] if c["cell_type"] == "markdown" and "## Summary" in text(c))
    summary["source"] = leaky + text(summary)
    for nb, should_pass in ((good, True), (broken, False)):
        path = tmp_path / f"{should_pass}.ipynb"
        path.write_text(json.dumps(nb), encoding="utf-8")
        if should_pass:
            check_anatomy(path)
        else:
            with pytest.raises(AssertionError):
                check_anatomy(path)


CHAPTER_MENTION = re.compile(
    r"\b(next|previous|following|preceding|earlier|later|last) (two |three )?chapters?\b", re.I
)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_a_chapter_named_by_position_is_linked(chapter):
    """Chapters move: "the next chapter" must come with a {doc} link to the chapter meant."""
    for _, token in page(chapter):
        if token.type != "inline" or not CHAPTER_MENTION.search(token.content):
            continue
        roles = [c for c in token.children or [] if c.type == "myst_role" and c.meta.get("name") == "doc"]
        assert roles, (
            f"{chapter.name}: {CHAPTER_MENTION.search(token.content).group(0)!r} without a {{doc}} link: "
            f"{token.content[:160]}"
        )


# ----------------------------------------------------------------------------- promises
def _readme_rows() -> list[tuple[str, str, str]]:
    """``(chapter cell, linked notebook or "", status)`` of the README's contents table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Contents", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in table.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) != 3 or cols[2] in ("status", "---") or set(cols[2]) <= {"-"}:
            continue
        link = re.search(r"\]\((book/[^)]+\.ipynb)\)", cols[1])
        rows.append((cols[1], link.group(1) if link else "", cols[2]))
    return rows


def test_readme_contents_table_lists_exactly_the_chapters_of_the_book():
    rows = _readme_rows()
    done = {link for _, link, status in rows if status == "✓" and link}
    chapters = {str(p.relative_to(ROOT)) for p in CHAPTERS}
    assert done == chapters, (
        f"README marks {sorted(done - chapters)} done but they are not chapters; "
        f"chapters missing from README: {sorted(chapters - done)}"
    )
    for cell, link, status in rows:
        assert status in ("✓", "planned"), f"README row {cell!r}: status must be ✓ or planned"
        assert (status == "planned") == (not link and "book/" not in cell and cell != ""), (
            f"README row {cell!r}: a planned row has no chapter file, a done one links its notebook"
        )


def test_intro_promises_match_the_table_of_contents():
    """The introduction links every chapter, and names what is not written yet only as planned."""
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    linked = {m for m in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`", intro)}
    for chapter in CHAPTERS:
        target = str(chapter.relative_to(ROOT / "book").with_suffix(""))
        assert target in linked, f"the introduction does not link {target}"
    learn = intro.split("## What you will learn", 1)[1].split("\n## ", 1)[0]
    for cell, _, status in _readme_rows():
        if status != "planned":
            continue
        title = re.sub(r"^\d+\.\s*", "", cell).split(":")[0].strip()
        for line in learn.splitlines():
            if title.lower() in line.lower():
                assert "planned" in line.lower(), f"the introduction promises {title!r}, which is planned: say so"


# ----------------------------------------------------------------------------- Colab
# What a fresh Colab runtime already has (its preinstalled packages; import names).  Anything
# else a chapter's code imports, directly or through attnlib (lazy imports included), must be
# installed by the chapter's setup cell: attnlib's dependencies plus the extra it names.
COLAB_SHIPS = {
    "torch",
    "numpy",
    "matplotlib",
    "ipywidgets",
    "tqdm",
    "IPython",
    "scipy",
    "sklearn",
    "pandas",
    "PIL",
    "yaml",
    "requests",
}
IMPORT_NAME = {
    "pyyaml": "yaml",
    "scikit-learn": "sklearn",
    "pillow": "PIL",
}  # distribution -> module, where they differ


def _imports(source: str) -> set[str]:
    """Top-level names of every absolute import in ``source``, however deep in a function."""
    import ast

    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _requirement_modules(requirements: list[str]) -> set[str]:
    out = set()
    for req in requirements:
        name = re.split(r"[\s\[<>=!~;@]", req.strip(), maxsplit=1)[0].lower()
        out.add(IMPORT_NAME.get(name, name.replace("-", "_")))
    return out


def test_setup_cell_installs_every_package_a_chapter_imports_beyond_colab():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    spec = bootstrap.install_spec()
    extras = re.search(r"attnlib\[([^\]]+)\]", spec)
    installed = _requirement_modules(project["dependencies"])
    for extra in extras.group(1).split(",") if extras else []:
        installed |= _requirement_modules(project["optional-dependencies"][extra.strip()])
    library = set().union(*(_imports(p.read_text(encoding="utf-8")) for p in (ROOT / "attnlib").rglob("*.py")))
    stdlib = set(sys.stdlib_module_names)
    for chapter in CHAPTERS:
        code = [text(c) for c in cells(chapter) if c["cell_type"] == "code"][1:]  # after the setup cell
        needed = set().union(
            *(
                _imports("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("!", "%"))))
                for src in code
            )
        )
        if "attnlib" in needed:
            needed |= library
        missing = sorted(needed - stdlib - {"attnlib"} - COLAB_SHIPS - installed)
        assert not missing, (
            f"{chapter.name} needs {missing} in Colab, which its setup cell ({spec}) does not install: "
            f"add them to the extra in pyproject.toml"
        )


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
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["torch"] == "2.13.0"
    assert all(v.strip() for v in pins.values())


def test_wheel_contains_every_module(tmp_path):
    """`pip install attnlib @ git+...` builds this wheel: no subpackage may be left behind."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--quiet",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
    )
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
