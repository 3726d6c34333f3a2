"""Results of the full-size runs in ``experiments/``, shipped with the package.

A chapter runs a quick version of an experiment on the reader's CPU and shows, beside it,
what the full-size run produced.  The full-size numbers come from a script in
``experiments/`` that anyone can rerun; it writes a small JSON file into this folder with
:func:`save_result`, and the chapter reads it with :func:`load_result`.  Because the
files travel inside the package, a chapter opened alone in Colab finds them too.

Every file records how it was produced: the script and command, the device, the software
versions, the git commit and whether the working tree was clean (``git_dirty``), and the
date, next to the numbers.  A result made from a tree with uncommitted changes cannot be
traced to code anyone can check out: :func:`save_result` marks it ``"git_dirty": true``
and warns, the experiment scripts refuse to start from such a tree
(:func:`require_clean_tree`), and the test suite refuses to ship such a file.  The result
files themselves (``attnlib/results/*.json``) do not count as changes.
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
import warnings
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import torch

__all__ = ["RESULTS_DIR", "load_result", "save_result", "provenance", "git_state", "require_clean_tree"]

RESULTS_DIR = Path(__file__).resolve().parent


def _git(*args: str) -> Optional[str]:
    """``git args`` run in this package's folder; ``None`` outside a git checkout."""
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=RESULTS_DIR, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_state() -> dict[str, Any]:
    """The checkout's ``HEAD`` commit (short hash), whether tracked files differ from it
    (``git_dirty``), and which (``dirty_files``; the result files themselves excluded).
    All ``None`` outside a git checkout (attnlib installed from a wheel)."""
    commit = _git("rev-parse", "--short", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no")
    if commit is None or status is None:
        return {"git_commit": None, "git_dirty": None, "dirty_files": None}
    changed = [line[3:] for line in status.splitlines() if line[3:] and not _is_result_file(line[3:])]
    return {"git_commit": commit.strip(), "git_dirty": bool(changed), "dirty_files": changed}


def _is_result_file(path: str) -> bool:
    return path.startswith("attnlib/results/") and path.endswith(".json")


def _script() -> Optional[str]:
    """The running script's path relative to the checkout's root (``experiments/ram.py``)."""
    root = _git("rev-parse", "--show-toplevel")
    if root is None or not sys.argv or not sys.argv[0]:
        return None
    try:
        return Path(sys.argv[0]).resolve().relative_to(Path(root.strip()).resolve()).as_posix()
    except ValueError:  # not a file of this checkout (an interactive session, pytest, ...)
        return None


def require_clean_tree(allow_dirty: bool = False) -> None:
    """Stop an experiment before it starts when tracked files have uncommitted changes: its
    result would name a commit that does not hold the code that made it.  Commit first, or
    pass ``allow_dirty=True`` (the result is then marked ``"git_dirty": true``)."""
    state = git_state()
    if state["git_dirty"] and not allow_dirty:
        files = ", ".join(state["dirty_files"][:8])
        raise SystemExit(
            f"uncommitted changes in {files}: commit them first so that the result names a commit that "
            f"contains the code that produced it (or pass --allow-dirty to mark the result as untraceable)"
        )


def provenance(device: Optional[torch.device] = None) -> dict[str, Any]:
    """How a result was produced: script, command line, device, versions, commit, whether
    the tree was clean, and date."""
    device = device or torch.device("cpu")
    state = git_state()
    record: dict[str, Any] = {
        "script": _script(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": state["git_commit"],
        "git_dirty": state["git_dirty"],
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if state["git_dirty"]:
        record["dirty_files"] = state["dirty_files"]
    return record


def save_result(name: str, data: dict[str, Any], device: Optional[torch.device] = None) -> Path:
    """Write ``data`` (JSON-serialisable) with its provenance to ``attnlib/results/<name>.json``.

    A run from a tree with uncommitted changes is saved (hours of training are not thrown
    away) but marked ``"git_dirty": true`` with the changed files, and a warning says so;
    such a file must not be committed (``tests/test_results.py`` fails on it).
    """
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must be letters, digits, '-' or '_'; got {name!r}")
    record = provenance(device)
    if record["git_dirty"]:
        warnings.warn(
            f"result {name!r} was produced from a tree with uncommitted changes ({', '.join(record['dirty_files'])}): "
            f"it is marked git_dirty and must not be shipped; commit and rerun",
            stacklevel=2,
        )
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"provenance": record, **data}, indent=1) + "\n", encoding="utf-8")
    return path


def load_result(name: str) -> Optional[dict[str, Any]]:
    """The stored result ``name``, or ``None`` when that experiment has not been run yet."""
    file = resources.files(__package__).joinpath(f"{name}.json")
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))
