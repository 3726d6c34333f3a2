#!/usr/bin/env python3
"""Write the setup cell that opens every chapter, from the repository address in _config.yml.

The first code cell of each chapter installs attnlib when it is missing (in Colab, or on a
fresh machine) and picks the device.  The repository's URL and branch are configured once,
in ``_config.yml`` (``repository.url`` and ``repository.branch``); this script copies them
into every chapter::

    .venv/bin/python tools/bootstrap.py           # rewrite the cell in every chapter
    .venv/bin/python tools/bootstrap.py --check   # exit 1 if a chapter is out of date

The cell is recognised by its first line; a notebook without it gets it inserted as its
first code cell.  The chapter template (``templates/``) is kept current too.
``tests/test_book.py`` runs the check.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MARKER = "# Setup: install attnlib when it is missing (Colab, a fresh machine), then choose a device."
# hide-input: the rendered page shows the cell collapsed; it still runs first in Colab.
TAGS = ["hide-input"]


def repository() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    repo = config["repository"]
    return repo["url"].rstrip("/"), repo.get("branch", "main")


# The extra that holds every package a chapter imports beyond attnlib's core dependencies
# (sacrebleu for the chapters that compute BLEU): pyproject.toml's [project.optional-dependencies].
EXTRA = "course"


def install_spec() -> str:
    """The pip requirement that installs attnlib, with the course's extra, from the repository."""
    url, branch = repository()
    return f"attnlib[{EXTRA}] @ git+{url}@{branch}"


def cell_source() -> str:
    return "\n".join(
        [
            MARKER,
            "# Written by tools/bootstrap.py from _config.yml: edit it there, not here.",
            "import importlib.util",
            "import subprocess",
            "import sys",
            "",
            'if importlib.util.find_spec("attnlib") is None:',
            f'    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "{install_spec()}"], check=True)',
            "    importlib.invalidate_caches()",
            "",
            "import attnlib",
            "",
            "DEVICE = attnlib.default_device()  # CUDA when the runtime has a GPU (Colab: Runtime > Change runtime type)",  # noqa: E501
        ]
    )


def colab_url(notebook: Path) -> str:
    """The Colab address of a chapter, as the book's launch button builds it."""
    url, branch = repository()
    owner_repo = url.removeprefix("https://github.com/")
    return (
        f"https://colab.research.google.com/github/{owner_repo}/blob/{branch}/{notebook.relative_to(ROOT).as_posix()}"
    )


def chapters() -> list[Path]:
    return sorted(p for p in (ROOT / "book").rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def notebooks() -> list[Path]:
    """Every notebook whose setup cell this script maintains: the chapters and the template."""
    return chapters() + sorted((ROOT / "templates").glob("*.ipynb"))


def bootstrap_index(nb: dict) -> int | None:
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code" and "".join(cell["source"]).startswith(MARKER):
            return i
    return None


def sync(path: Path, check: bool) -> bool:
    """Bring one chapter's setup cell up to date; return True when it already was."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    wanted = cell_source()
    index = bootstrap_index(nb)
    if (
        index is not None
        and "".join(nb["cells"][index]["source"]) == wanted
        and nb["cells"][index].get("metadata", {}).get("tags") == TAGS
    ):
        return True
    if check:
        return False
    lines = wanted.splitlines(keepends=True)
    if index is None:
        first_code = next((i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"), len(nb["cells"]))
        nb["cells"].insert(
            first_code,
            {
                "cell_type": "code",
                "execution_count": None,
                "id": "bootstrap",
                "metadata": {"tags": TAGS},
                "outputs": [],
                "source": lines,
            },
        )
    else:
        nb["cells"][index]["source"] = lines
        nb["cells"][index].setdefault("metadata", {})["tags"] = TAGS
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="only report chapters that are out of date")
    args = parser.parse_args()
    stale = [p for p in notebooks() if not sync(p, args.check)]
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path.relative_to(ROOT)}")
    if stale and not args.check:
        print("re-execute the updated chapters: python3 dev.py execute")
    return 1 if (stale and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
