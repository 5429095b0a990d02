"""The gallery page: one HTML file with its style and script inline.

Inline so that an export's index.html works opened from disk (file:// pages cannot load
scripts from beside them in every browser) and the server has one page to send. The data the
script starts from is a JSON block in the page: the token in the served gallery, every job in
an export.
"""

from __future__ import annotations

import json
from functools import lru_cache
from html import escape
from importlib.resources import files
from typing import Any


@lru_cache(maxsize=1)
def _template() -> str:
    return files("tui.web").joinpath("page.html").read_text(encoding="utf-8")


def json_for_script(data: Any) -> str:
    """JSON safe inside <script>: no `</script>` or `<!--` can end the block early (a
    prompt is user text)."""
    return (json.dumps(data, separators=(",", ":"))
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def render(*, title: str, data: dict[str, Any]) -> str:
    """The page, live (`data["mode"] == "live"`, reads /api) or static (an export)."""
    return (_template()
            .replace("__TITLE__", escape(title))
            .replace("__MODE__", escape(str(data["mode"])))
            .replace("__DATA__", json_for_script(data)))
