"""Notebook pages are rendered HTML in both languages, never raw notebook JSON (see FACTS: i18n trap)."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.notebooks import find_notebooks
from portal.paths import DOCS, LANGUAGES
from portal.translations import status

NOTEBOOKS = find_notebooks()


def page_of(site: Path, rel: Path, lang: str) -> Path:
    prefix = site if lang == "en" else site / lang
    return prefix / rel.with_suffix("") / "index.html"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: str(nb.rel))
def test_notebook_page_has_rendered_cells(site: Path, notebook, lang):
    page = page_of(site, notebook.rel, lang)
    assert page.exists(), f"{notebook.display}: no page at {page.relative_to(site)}"
    html = page.read_text(encoding="utf-8")
    assert len(html) > 5_000, f"{page.relative_to(site)}: only {len(html)} bytes: not a rendered notebook"
    assert '"cell_type"' not in html, f"{page.relative_to(site)}: contains raw notebook JSON"
    assert html.count('class="jp-Cell ') >= 2, f"{page.relative_to(site)}: no rendered notebook cells"
    assert "lma-badge" in html, f"{page.relative_to(site)}: no execution badge"
    assert f'href="{notebook.source.name}" download' in html, f"{page.relative_to(site)}: no download link"
    assert (page.parent / notebook.source.name).exists(), (
        f"{page.relative_to(site)}: .ipynb not copied beside it"
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda nb: str(nb.rel))
def test_translated_notebook_shows_the_translation(site: Path, notebook):
    if not notebook.translation("zh").exists():
        pytest.skip("no Chinese translation yet: the page shows English with a notice")
    html = page_of(site, notebook.rel, "zh").read_text(encoding="utf-8")
    assert "lma-untranslated" not in html
    assert any("\u4e00" <= ch <= "\u9fff" for ch in html.split("jupyter-wrapper", 1)[-1][:20_000])


def test_untranslated_page_shows_notice_and_english(site: Path):
    missing = [s for s in status("zh") if s.state == "missing" and s.english.suffix == ".md"]
    if not missing:
        pytest.skip("every Markdown page is translated")
    docs_rel = missing[0].english.relative_to(DOCS).with_suffix("")
    url = docs_rel.parent if docs_rel.name == "index" else docs_rel
    html = (site / "zh" / url / "index.html").read_text(encoding="utf-8")
    assert "lma-untranslated" in html, f"zh/{url}/: untranslated page without the notice"
