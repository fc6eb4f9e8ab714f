"""A smaller search index: code kept out of it, one index per language, and the offline bundle's copy
as a script (with the shim that runs Material's search worker from file://).

The index is requested only when a reader reaches for search: see
docs/assets/javascripts/lazy-search-index.js, which the first-paint loader runs before Material's bundle.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from portal.paths import DEFAULT_LANGUAGE, LANGUAGES, ROOT

IFRAME_WORKER_SHIM = ROOT / "node_modules" / "iframe-worker" / "shim" / "index.js"
SHIM_DEST = "assets/javascripts/iframe-worker-shim.js"
LAZY_SCRIPT_DEST = "assets/javascripts/lazy-search-index.js"  # from docs/

_CODE_BLOCK = re.compile(r'(<div class="(?:[^"]*\s)?(?:highlight|highlight-ipynb)(?:\s[^"]*)?")>')
_LEAF_BLOCK = re.compile(r"<(p|table|ul|ol|dl)(?=[\s>])")


def exclude_code(content: str) -> str:
    """Every page downloads the search index on a first visit; code blocks were a fifth of it and match
    searches poorly. Prose and inline code stay indexed."""
    return _CODE_BLOCK.sub(r"\1 data-search-exclude>", content)


def exclude_all_but_headings(content: str) -> str:
    """For the API reference, whose docstrings were a sixth of the whole index: objects stay findable by
    their names (the headings), and the page itself has the rest.

    Material's search parser ends an exclusion at the first closing tag of the same name, so the
    attribute goes on leaf blocks, not on the nested divs around them.
    """
    return _LEAF_BLOCK.sub(r"<\1 data-search-exclude", content)


def _language(location: str) -> str:
    first = location.split("/", 1)[0]
    return first if first in LANGUAGES else DEFAULT_LANGUAGE


def split_by_language(data: dict[str, object]) -> dict[str, dict[str, object]]:
    """One index per language, from the one mkdocs-static-i18n merges: `{lang: index}`.

    A reader would otherwise download all of it on their first search: half of it in a language they did
    not search in, and results from both. Entries keep their locations (relative to the site root).
    """
    docs = data.get("docs", [])
    assert isinstance(docs, list)
    return {
        lang: {**data, "docs": [d for d in docs if _language(d["location"]) == lang]} for lang in LANGUAGES
    }


def read(index: Path) -> dict[str, object]:
    return json.loads(index.read_text(encoding="utf-8"))


def _dump(data: dict[str, object]) -> str:
    # The search plugin escapes every CJK character as \uXXXX (6 bytes); UTF-8 needs 3. Every page
    # loads this index on a first visit, so its size counts against each page's budget.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def write_split_index(site: Path, data: dict[str, object]) -> None:
    """search/ for English, zh/search/ for Chinese. Material asks for `<base>/search/search_index.json`;
    lazy-search-index.js points Chinese pages at their own file."""
    for lang, index in split_by_language(data).items():
        target = site / ("" if lang == DEFAULT_LANGUAGE else lang) / "search" / "search_index.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_dump(index), encoding="utf-8")


def write_offline_index(site: Path, data: dict[str, object]) -> None:
    """The offline bundle: opened from file://, Material loads the index as a script, not JSON, from the
    site root on every page, so both languages share it there. Browsers refuse web workers from file://:
    the shim (npm package iframe-worker, pinned) runs Material's search worker in an iframe."""
    index = site / "search" / "search_index.json"
    text = _dump(data)
    index.write_text(text, encoding="utf-8")
    index.with_suffix(".js").write_text(f"var __index = {text}", encoding="utf-8")


def copy_worker_shim(site: Path) -> None:
    shutil.copyfile(IFRAME_WORKER_SHIM, site / SHIM_DEST)
