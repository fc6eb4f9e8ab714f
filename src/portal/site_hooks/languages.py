"""Pages in both languages: the language being built, page URLs in each, and what mkdocs-static-i18n
expects on a file this build adds."""

from __future__ import annotations

import re
from types import SimpleNamespace

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File
from mkdocs.structure.pages import Page

from portal.paths import DEFAULT_LANGUAGE, LANGUAGES


def current_language(config: MkDocsConfig) -> str:
    i18n = config.plugins.get("i18n")
    return getattr(i18n, "current_language", DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE


def _prefix(lang: str) -> str:
    return "" if lang == DEFAULT_LANGUAGE else f"{lang}/"


def page_url(rel: str, lang: str, directory_urls: bool = True) -> str:
    """URL of a page `a/b.md` or `a/b.ipynb` in a language: `zh/a/b/`, or `zh/a/b.html` (offline bundle)."""
    stem = rel.rsplit(".", 1)[0]
    if not directory_urls:
        return _prefix(lang) + stem + ".html"
    stem = stem[: -len("index")] if stem.endswith("index") else stem + "/"
    return _prefix(lang) + stem


def page_dest(rel: str, lang: str, directory_urls: bool) -> str:
    url = page_url(rel, lang, directory_urls)
    return url + "index.html" if directory_urls else url


def add_i18n_attributes(file: File, rel: str, lang: str, localized: bool) -> None:
    """What mkdocs-static-i18n expects on a file, so the language switcher links the other language."""
    urls = file.use_directory_urls
    file.alternates = {code: SimpleNamespace(url=page_url(rel, code, urls), page=None) for code in LANGUAGES}
    file.locale = lang if localized else DEFAULT_LANGUAGE
    file.locale_alternate_of = lang
    file.localization = lang if localized and lang != DEFAULT_LANGUAGE else None
    file.norm_src_uri = rel


def is_fallback(page: Page, lang: str) -> bool:
    """True when a non-default language shows the English page because no translation exists."""
    return lang != DEFAULT_LANGUAGE and getattr(page.file, "locale", lang) != lang


_ALTERNATE = re.compile(r'<link rel="alternate" href="[^"]*" hreflang="([a-z]+)">')


def drop_alternate_links(output: str) -> str:
    """Remove the <link rel="alternate" hreflang> tags from a page.

    Material fetches <alternate href>/sitemap.xml on every page and, on a click of the language switcher,
    looks the page up in it; its lookup keeps the sitemap's port (site_url's), so wherever the site is
    served on another port it sends readers to the other language's home page. The i18n plugin already
    points the switcher's links at the same page in the other language, so drop the tags: no sitemap
    requests, no lookup. Search engines get hreflang alternates from sitemap.xml.
    """
    return _ALTERNATE.sub("", output)
