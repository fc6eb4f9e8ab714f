"""The page budgets that do not vary between runs: bytes on a first visit, and Lighthouse accessibility.

Timing budgets (LCP at Slow 3G) are measured by `make bench-site`, which reports and never fails.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portal import budgets
from portal.lighthouse import audit, serve


@pytest.fixture(scope="module")
def audits(site_dir: Path):
    pages = budgets.audited_pages(site_dir)
    with serve(site_dir) as base, ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda page: audit(base + page.path), pages))
    return dict(zip((page.path for page in pages), results, strict=True))


@pytest.mark.timeout(600)
def test_every_audited_page_is_accessible_and_light(audits):
    problems = []
    for path, result in audits.items():
        kb = result.transferred_bytes / 1024
        if kb > budgets.TRANSFER_KB:
            problems.append(
                f"/{path}: {kb:.0f} KB transferred on a first visit (budget {budgets.TRANSFER_KB} KB)"
            )
        if result.accessibility < budgets.ACCESSIBILITY:
            problems.append(
                f"/{path}: Lighthouse accessibility {result.accessibility} (budget {budgets.ACCESSIBILITY}); "
                f"failing audits: {', '.join(result.failed_accessibility)}"
            )
    assert not problems, "\n".join(problems)


def test_notebook_html_is_small(site_dir: Path):
    over = {
        p: s for p, s in budgets.notebook_html_sizes(site_dir).items() if s > budgets.NOTEBOOK_HTML_KB * 1024
    }
    assert not over, f"notebook pages over {budgets.NOTEBOOK_HTML_KB} KB of HTML: {over}"


def test_search_index_is_small(site_dir: Path):
    over = {
        p: s for p, s in budgets.search_index_sizes(site_dir).items() if s > budgets.SEARCH_INDEX_KB * 1024
    }
    assert not over, f"search index over {budgets.SEARCH_INDEX_KB} KB: {over}"


IMG = re.compile(r"<img\b[^>]*>")


def test_every_image_says_what_it_shows(site_dir: Path):
    missing = []
    for page in sorted(site_dir.rglob("*.html")):
        for tag in IMG.findall(page.read_text(encoding="utf-8")):
            alt = re.search(r'\balt="([^"]*)"', tag)
            if not alt or not alt.group(1).strip() or "No description has been provided" in alt.group(1):
                missing.append(f"{page.relative_to(site_dir)}: {tag[:100]}")
    assert not missing, "images without alt text:\n" + "\n".join(missing)
