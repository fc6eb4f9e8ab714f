"""Notebook headings with ids that keep CJK text, and a table of contents that links to them.

mkdocs-jupyter slugs a Chinese heading to id="" (and its TOC to "_1"), so the anchors go nowhere. Both are
rebuilt here from the heading text with the same unicode-aware slug the Markdown pages use (mkdocs.yml).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from typing import Any

from pymdownx.slugs import slugify as _make_slugify

slugify = _make_slugify(case="lower")
_HEADING = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', re.S)


def _unique_ids() -> Callable[[str], str]:
    """A function from heading text (HTML) to its id; a repeated heading gets `_1`, `_2` ... as MkDocs does."""
    seen: dict[str, int] = {}

    def unique(text: str) -> str:
        base = slugify(re.sub(r"<[^>]+>|¶", "", html.unescape(text)).strip(), "-") or "section"
        seen[base] = seen.get(base, 0) + 1
        return base if seen[base] == 1 else f"{base}_{seen[base] - 1}"

    return unique


def fix_heading_ids(content: str) -> str:
    """Every <h1>–<h6 id="..."> in `content` with its id (and its anchor link) made from its text."""
    unique = _unique_ids()

    def heading(match: re.Match[str]) -> str:
        level, body = match.group(1), match.group(3)
        anchor = unique(body)
        body = re.sub(r'class="anchor-link" href="#[^"]*"', f'class="anchor-link" href="#{anchor}"', body)
        return f'<h{level} id="{anchor}">{body}</h{level}>'

    return _HEADING.sub(heading, content)


def fix_toc_ids(toc: Iterable[Any]) -> None:
    """Give each table-of-contents item (with `.title`, `.id`, `.children`) the id its heading gets."""
    unique = _unique_ids()

    def relink(items: Iterable[Any]) -> None:
        for item in items:
            item.id = unique(item.title)
            relink(item.children)

    relink(toc)
