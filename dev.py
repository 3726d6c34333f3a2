#!/usr/bin/env python3
"""One entry point for building and testing the course.  Standard library only.

    python3 dev.py book      build the book into _build/html (warnings are errors)
    python3 dev.py test      attnlib's unit tests, then nbval over every chapter
    python3 dev.py lint      ruff (lint and format check) over the Python files, mypy over attnlib
    python3 dev.py execute   re-run chapter notebooks top to bottom and store their outputs
    python3 dev.py check-pages   open every built page in headless Chromium (CI runs it)

Every command first makes sure the virtual environment `.venv` exists and holds the
pinned toolchain of requirements.txt plus attnlib itself (editable).  It is created on
first use and reinstalled only when requirements.txt or pyproject.toml change.

`ATTNLIB_DATA` (the folder attnlib's loaders look in before downloading) is passed
through unchanged; CI points it at the shared offline copies of the data sets.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed-from"
BOOK = ROOT / "book"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"
REPORT = ROOT / "_build" / "test-report.xml"  # JUnit XML of the last `test` run
# Per-cell limit for nbval and for `execute`: a chapter is meant to run in a minute or two.
CELL_TIMEOUT_S = 600


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def run(cmd: list[str | os.PathLike], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def ensure_env() -> Path:
    """Create .venv and install the pinned toolchain when it is missing or stale."""
    if sys.version_info[:2] < (3, 9):
        sys.exit(f"Python >= 3.9 is needed (3.11 is what the book is tested with); this is {sys.version.split()[0]}")
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    wanted = digest.hexdigest()
    python = venv_python()
    if python.exists() and STAMP.exists() and STAMP.read_text().strip() == wanted:
        return python
    if not python.exists():
        print(f"creating the virtual environment {VENV.relative_to(ROOT)}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    start = time.perf_counter()
    run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
    run([python, "-m", "pip", "install", "--quiet", "-r", "requirements.txt"])
    run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", "."])
    STAMP.write_text(wanted)
    print(f"environment ready in {time.perf_counter() - start:.0f} s", flush=True)
    return python


def chapter_notebooks() -> list[Path]:
    return sorted(p for p in BOOK.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts and "_build" not in p.parts)


def cmd_book(args: argparse.Namespace) -> None:
    python = ensure_env()
    start = time.perf_counter()
    # Notebooks are rendered from their stored outputs (execute_notebooks: off in _config.yml);
    # `dev.py test` has just re-executed and compared every one of them with nbval.
    jupyter_book = python.parent / ("jupyter-book.exe" if os.name == "nt" else "jupyter-book")
    # --all: re-read every page, so that warnings of unchanged pages are reported again
    run([jupyter_book, "build", ".", "--all", "--builder", "html", "-W", "-n", "--keep-going"])
    print(f"book built in {time.perf_counter() - start:.1f} s: {ROOT / '_build' / 'html' / 'index.html'}")


def cmd_lint(args: argparse.Namespace) -> None:
    """ruff's lint and format check over every Python file, then mypy over the package.
    ``--fix`` applies ruff's fixes and formatting instead of only checking."""
    python = ensure_env()
    ruff = python.parent / ("ruff.exe" if os.name == "nt" else "ruff")
    start = time.perf_counter()
    if args.fix:
        run([ruff, "check", "--fix", "."])
        run([ruff, "format", "."])
    else:
        run([ruff, "check", "."])
        run([ruff, "format", "--check", "."])
    run([python, "-m", "mypy"])  # files and settings: [tool.mypy] in pyproject.toml
    print(f"lint and type check passed in {time.perf_counter() - start:.1f} s")


def cmd_check_pages(args: argparse.Namespace) -> None:
    python = ensure_env()
    start = time.perf_counter()
    run([python, "tools/check_pages.py"])
    print(f"pages checked in {time.perf_counter() - start:.1f} s")


def cmd_test(args: argparse.Namespace) -> None:
    python = ensure_env()
    start = time.perf_counter()
    run(
        [
            python,
            "-m",
            "pytest",
            "tests",
            *[str(p.relative_to(ROOT)) for p in chapter_notebooks()],
            "--nbval",
            "--nbval-current-env",
            f"--nbval-sanitize-with={SANITIZE.relative_to(ROOT)}",
            f"--nbval-cell-timeout={CELL_TIMEOUT_S}",
            "--durations=15",
            f"--junitxml={REPORT.relative_to(ROOT)}",
            *args.pytest_args,
        ]
    )
    print(f"all tests passed in {time.perf_counter() - start:.1f} s")
    print_chapter_times(REPORT)


def print_chapter_times(report: Path) -> None:
    """Each chapter's nbval time (the sum of its cells), read from pytest's JUnit report."""
    import xml.etree.ElementTree as ET

    totals: dict[str, float] = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("classname", "")
        if name.startswith("book."):
            totals[name] = totals.get(name, 0.0) + float(case.get("time", 0.0))
    print("chapter execution times under nbval:")
    for name, seconds in sorted(totals.items()):
        print(f"  {name.removesuffix('.ipynb').replace('.', '/')}: {seconds:6.1f} s")


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def clean_outputs(path: Path) -> None:
    """Drop what a saved notebook cannot bring back to life, and execution timestamps.

    - the saved ipywidgets state: the book shows each interactive figure's static fallback
      instead, so pages need no widget JavaScript, and notebook diffs stay readable;
    - outputs that are a bare widget with no fallback (a tqdm progress bar): without a
      kernel they would be an empty box in the book.  attnlib's interactive figures carry a
      ``text/html`` fallback and are kept;
    - each cell's execution timestamps, which change on every run.
    """
    nb = json.loads(path.read_text(encoding="utf-8"))
    nb.get("metadata", {}).pop("widgets", None)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell.get("metadata", {}).pop("execution", None)
            cell["outputs"] = [
                out
                for out in cell["outputs"]
                if not (WIDGET_MIME in out.get("data", {}) and "text/html" not in out["data"])
            ]
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def cmd_execute(args: argparse.Namespace) -> None:
    python = ensure_env()
    targets = [Path(p).resolve() for p in args.notebooks] or chapter_notebooks()
    for path in targets:
        start = time.perf_counter()
        run(
            [
                python,
                "-m",
                "jupyter",
                "execute",
                "--inplace",
                f"--timeout={CELL_TIMEOUT_S}",
                "--kernel_name=python3",
                path,
            ]
        )
        clean_outputs(path)
        print(f"executed {path.relative_to(ROOT)} in {time.perf_counter() - start:.1f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("book", help="build the book into _build/html").set_defaults(func=cmd_book)
    test = sub.add_parser("test", help="unit tests and nbval over every chapter")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra arguments for pytest")
    test.set_defaults(func=cmd_test)
    sub.add_parser("check-pages", help="open every built page in headless Chromium").set_defaults(func=cmd_check_pages)
    lint = sub.add_parser("lint", help="ruff lint + format check, mypy over attnlib")
    lint.add_argument("--fix", action="store_true", help="apply ruff's fixes and formatting")
    lint.set_defaults(func=cmd_lint)
    execute = sub.add_parser("execute", help="re-execute chapter notebooks in place")
    execute.add_argument("notebooks", nargs="*", help="notebooks to run (default: every chapter)")
    execute.set_defaults(func=cmd_execute)
    args = parser.parse_args()
    try:
        args.func(args)
    except subprocess.CalledProcessError as exc:
        sys.exit(exc.returncode)


if __name__ == "__main__":
    main()
