"""Small fixes to the HTML that Jupyter Book 1 writes, so that every page loads cleanly offline.

- sphinx-thebe's inline configuration script is added to each page twice; the second copy
  redeclares ``const THEBE_JS_URL`` and throws a SyntaxError in the browser.  Duplicate
  script entries are dropped here (the course does not use thebe).
- pydata-sphinx-theme writes ``<body data-default-mode="{{ default_mode }}">``, a template
  variable that sphinx-book-theme never sets; its JavaScript then logs "Got invalid theme
  mode" on every page.  It is set to ``auto`` (follow the reader's system) here.

Loaded through ``sphinx.local_extensions`` in ``_config.yml``; checked by
``tools/check_pages.py`` (no JavaScript error on any page).
"""

from __future__ import annotations

from typing import Any


def _fix_page_context(app: Any, pagename: str, templatename: str, context: dict, doctree: Any) -> None:
    if not context.get("default_mode"):
        context["default_mode"] = "auto"
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # the same file (or inline body: filename None or "") with the same attributes
        key = (
            str(getattr(script, "filename", script) or ""),
            tuple(sorted((k, str(v)) for k, v in getattr(script, "attributes", {}).items())),
        )
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Any) -> dict:
    app.connect("html-page-context", _fix_page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
