"""The page budgets (issue: "Fast on a 3G phone") and the pages they are audited on.

Used by `make bench-site` (all budgets, timings as the median of runs) and by the budget test in
`make test` (the deterministic ones: bytes and accessibility).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from portal.notebooks import find_notebooks
from portal.paths import LANGUAGES, SITE

TRANSFER_KB = 150  # every audited page, first visit, gzip
NOTEBOOK_HTML_KB = 150  # uncompressed HTML of a notebook page
SEARCH_INDEX_KB = 1024
ACCESSIBILITY = 100
LCP_SLOW_3G_MS = {"home": 2500, "tutorial": 2500, "notebook": 3500}
TUTORIAL = "get-started/first-call/"


@dataclass(frozen=True)
class AuditedPage:
    kind: str  # home, tutorial, notebook
    lang: str
    path: str  # URL path below the site root, e.g. "zh/get-started/first-call/"

    @property
    def lcp_budget_ms(self) -> int:
        return LCP_SLOW_3G_MS[self.kind]


def heaviest_notebook_page(site: Path = SITE) -> str:
    """URL path (English) of the notebook page with the largest HTML."""
    paths = [nb.rel.with_suffix("").as_posix() + "/" for nb in find_notebooks()]
    if not paths:
        raise ValueError("no notebooks: nothing to audit")
    return max(paths, key=lambda p: (site / p / "index.html").stat().st_size)


def audited_pages(site: Path = SITE) -> list[AuditedPage]:
    """Home, the first tutorial and the heaviest notebook page, in every language."""
    pages = []
    notebook = heaviest_notebook_page(site)
    for lang in LANGUAGES:
        prefix = "" if lang == LANGUAGES[0] else f"{lang}/"
        pages += [
            AuditedPage("home", lang, prefix),
            AuditedPage("tutorial", lang, prefix + TUTORIAL),
            AuditedPage("notebook", lang, prefix + notebook),
        ]
    return pages


def notebook_html_sizes(site: Path = SITE) -> dict[str, int]:
    """Uncompressed HTML bytes of every notebook page in every language."""
    sizes = {}
    for nb in find_notebooks():
        for lang in LANGUAGES:
            prefix = "" if lang == LANGUAGES[0] else f"{lang}/"
            path = prefix + nb.rel.with_suffix("").as_posix() + "/"
            sizes[path] = (site / path / "index.html").stat().st_size
    return sizes


def search_index_sizes(site: Path = SITE) -> dict[str, int]:
    return {str(p.relative_to(site)): p.stat().st_size for p in sorted(site.rglob("search_index.json"))}
