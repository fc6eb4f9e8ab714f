"""MkDocs hooks of the portal (mkdocs.yml `hooks:`): each event of the build wired to the module of
portal.site_hooks that does the job. Nothing else lives here.

Executed notebooks from build/executed/ become pages in both languages (never run here), beside the
generated pages; front matter is checked; notebook HTML is made light; pages paint before any request;
and no page asks another host for anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import Files
from mkdocs.structure.pages import Page

from portal.execute import recorded_execution
from portal.site_hooks import (
    badge,
    figures,
    first_paint,
    heading_ids,
    indentation,
    languages,
    mermaid,
    notebook_html,
    page_files,
    page_sources,
    search_index,
    untranslated,
)

# MkDocs loads this file afresh with each configuration (every rebuild of `mkdocs serve`): so are these.
_first_paint = first_paint.FirstPaint()
_pages_with_mermaid: set[str] = set()  # pages whose diagrams the browser must draw


@event_priority(-200)  # after mkdocs-static-i18n (-100) has rebuilt the file list for this language
def on_files(files: Files, config: MkDocsConfig) -> Files:
    return page_files.add_files(files, languages.current_language(config), config)


@event_priority(-100)  # after mkdocs-jupyter (0) has taken the page over
def on_pre_page(page: Page, config: MkDocsConfig, files: Files) -> Page:
    page_sources.point_at_committed_notebook(page)
    return page


@event_priority(-100)  # after git-revision-date-localized (0) has read the source's git history
def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    page_sources.check_and_point_at_executed(page)
    return markdown


def _notebook_content(content: str, page: Page, lang: str) -> str:
    content = notebook_html.strip_notebook_assets(content)
    content = heading_ids.fix_heading_ids(content)
    heading_ids.fix_toc_ids(page.toc)
    content = notebook_html.focusable_blocks(content)
    rel = Path(page.file.src_uri)
    source = Path(page.file.abs_src_path)
    translated = source.name.endswith(f".{lang}.ipynb")
    where = f"notebooks/{rel.with_suffix(f'.{lang}.ipynb') if translated else rel}"
    alts = figures.figure_alts(source, where)
    content = figures.extract_figures(content, alts, Path(page.file.abs_dest_path).parent, rel.stem)
    content = notebook_html.outputs_out_of_search(content)
    return badge.badge(recorded_execution(source), rel.name, lang) + content


def on_page_content(content: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    lang = languages.current_language(config)
    if page_sources.is_notebook(page):
        content = _notebook_content(content, page, lang)
    content = search_index.exclude_code(content)
    if page.file.src_uri.startswith("reference/rtclab"):
        content = search_index.exclude_all_but_headings(content)
    if languages.is_fallback(page, lang):
        content = untranslated.add_notice(content, lang, page.url, config.use_directory_urls)
    return content


def on_page_context(context: dict[str, Any], page: Page, config: MkDocsConfig, nav: Any) -> dict[str, Any]:
    page.edit_url = page_sources.edit_url(page, languages.current_language(config), config.repo_url)
    return context


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    output = mermaid.inline_diagrams(output, page.file.src_uri)
    output = _first_paint.head(output)
    output = languages.drop_alternate_links(output)
    to_root = "../" * page.url.count("/")
    before_bundle = [to_root + search_index.LAZY_SCRIPT_DEST]
    if mermaid.needs_script(output):
        before_bundle.append(mermaid.script_for(page.file.src_uri, to_root))
        _pages_with_mermaid.add(page.file.src_uri)
    return indentation.squeeze_indentation(_first_paint.scripts(output, before_bundle))


@event_priority(-200)  # after mkdocs-static-i18n (-100) has built every language and written the search index
def on_post_build(config: MkDocsConfig) -> None:
    site = Path(config.site_dir)
    index = site / "search" / "search_index.json"
    if index.exists():
        data = search_index.read(index)
        if config.use_directory_urls:
            search_index.write_split_index(site, data)
        else:
            search_index.write_offline_index(site, data)
    if not config.use_directory_urls:
        search_index.copy_worker_shim(site)
    if _pages_with_mermaid:
        mermaid.copy_script(site)
