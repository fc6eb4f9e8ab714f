"""The files this build adds to each language: executed notebooks as pages, their source notebooks to
download, and the generated report pages. Notebooks are read from build/executed/, never run here."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

from portal import reports
from portal.notebooks import Notebook, find_notebooks
from portal.paths import EXECUTED
from portal.site_hooks.languages import add_i18n_attributes, page_dest, page_url
from portal.translations import GENERATED_PAGES

EXECUTION_REPORT, TRANSLATION_STATUS = GENERATED_PAGES


class NotebookPageFile(File):
    """An executed notebook from build/executed/ that MkDocs treats as a page (mkdocs-jupyter renders it)."""

    def is_documentation_page(self) -> bool:
        return True


def notebook_page(notebook: Notebook, lang: str, config: MkDocsConfig) -> File:
    executed = notebook.executed(lang)
    localized = executed.exists()
    if not localized:
        executed = notebook.executed()
    if not executed.exists():
        raise PluginError(
            f"{notebook.display}: not executed yet: run `make execute` before building the site"
        )
    rel = notebook.rel.as_posix()
    dest = page_dest(rel, lang, config.use_directory_urls)
    file = NotebookPageFile(rel, str(EXECUTED), config.site_dir, config.use_directory_urls, dest_uri=dest)
    file.abs_src_path = str(executed)
    file.executed_path = str(executed)
    file.notebook_source = str(notebook.translation(lang) if localized else notebook.source)
    file.url = page_url(rel, lang, config.use_directory_urls)
    add_i18n_attributes(file, rel, lang, localized)
    return file


def download_file(notebook: Notebook, lang: str, config: MkDocsConfig) -> File:
    """The source notebook (no outputs) next to its page, for readers to run themselves."""
    source = notebook.translation(lang) if notebook.translation(lang).exists() else notebook.source
    rel = notebook.rel.as_posix()
    dest = page_dest(rel, lang, config.use_directory_urls).rsplit("/", 1)[0] + "/" + notebook.source.name
    file = File(
        f"_downloads/{lang}/{rel}",
        str(source.parent),
        config.site_dir,
        config.use_directory_urls,
        dest_uri=dest,
    )
    file.abs_src_path = str(source)
    return file


def generated_page(rel: str, content: str, lang: str, config: MkDocsConfig) -> File:
    file = File.generated(config, rel, content=content)
    file.dest_uri = page_dest(rel, lang, config.use_directory_urls)
    file.url = page_url(rel, lang, config.use_directory_urls)
    file.abs_dest_path = str(Path(config.site_dir) / file.dest_uri)
    add_i18n_attributes(file, rel, lang, localized=True)
    return file


def add_files(files: Files, lang: str, config: MkDocsConfig) -> Files:
    """Add the notebook pages, their downloads and the generated pages of `lang` to `files`."""
    today = dt.date.today().isoformat()
    notebooks = find_notebooks()
    pages = [notebook_page(notebook, lang, config) for notebook in notebooks]
    pages.append(generated_page(EXECUTION_REPORT, reports.execution_report(lang, today), lang, config))
    pages.append(generated_page(TRANSLATION_STATUS, reports.translation_status(lang, today), lang, config))
    for file in [*pages, *(download_file(notebook, lang, config) for notebook in notebooks)]:
        files.append(file)
    # The i18n plugin lists each language's pages for sitemap.xml (with their hreflang alternates)
    # before this hook adds these.
    i18n = config.plugins.get("i18n")
    if i18n is not None:
        i18n.i18n_files_per_language[lang] = [*i18n.i18n_files_per_language[lang], *pages]
    return files
