"""About / Rules / Updates: Markdown files under ``settings.dashboard.site_dir``, rendered at
request time, so a new or edited file shows without rebuilding the front end."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from cryptoarena.dashboard import schemas as s
from markdown_it import MarkdownIt

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# Raw HTML in the Markdown is shown as text: the pages are repository files, but a page that
# could run script would be a hole in the one place that takes the kill token.
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def _title(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return name.replace("-", " ").replace("_", " ").capitalize()


def _order(path: Path) -> tuple[int, str]:
    # about, rules, updates first (in that order), then the rest by name.
    known = {"about": 0, "rules": 1, "updates": 2}
    return (known.get(path.stem, 9), path.stem)


def list_pages(site_dir: Path) -> list[s.SitePage]:
    if not site_dir.is_dir():
        return []
    files = sorted((p for p in site_dir.glob("*.md") if _NAME.match(p.stem)), key=_order)
    return [
        s.SitePage(name=p.stem, title=_title(p.read_text(errors="replace"), p.stem)) for p in files
    ]


def render_page(site_dir: Path, name: str) -> s.SitePageBody | None:
    if not _NAME.match(name):
        return None
    path = site_dir / f"{name}.md"
    if not path.is_file():
        return None
    text = path.read_text(errors="replace")
    return s.SitePageBody(name=name, title=_title(text, name), html=_MD.render(text))
