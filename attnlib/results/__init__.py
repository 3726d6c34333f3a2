"""Results of the full-size runs in ``experiments/``, shipped with the package.

A chapter runs a quick version of an experiment on the reader's CPU and shows, beside it,
what the full-size run produced.  The full-size numbers come from a script in
``experiments/`` that anyone can rerun; it writes a small JSON file into this folder with
:func:`save_result`, and the chapter reads it with :func:`load_result`.  Because the
files travel inside the package, a chapter opened alone in Colab finds them too.

Every file records how it was produced: the command, the device, the software versions,
the git commit and the date, next to the numbers.
"""
from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any, Optional

import torch

__all__ = ["RESULTS_DIR", "load_result", "save_result", "provenance"]

RESULTS_DIR = Path(__file__).resolve().parent


def _git_commit() -> Optional[str]:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=RESULTS_DIR, timeout=5, check=True)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: Optional[torch.device] = None) -> dict[str, Any]:
    """How a result was produced: command line, device, versions, commit and date."""
    device = device or torch.device("cpu")
    return {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def save_result(name: str, data: dict[str, Any], device: Optional[torch.device] = None) -> Path:
    """Write ``data`` (JSON-serialisable) with its provenance to ``attnlib/results/<name>.json``."""
    if not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must be letters, digits, '-' or '_'; got {name!r}")
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps({"provenance": provenance(device), **data}, indent=1) + "\n", encoding="utf-8")
    return path


def load_result(name: str) -> Optional[dict[str, Any]]:
    """The stored result ``name``, or ``None`` when that experiment has not been run yet."""
    file = resources.files(__package__).joinpath(f"{name}.json")
    if not file.is_file():
        return None
    return json.loads(file.read_text(encoding="utf-8"))
