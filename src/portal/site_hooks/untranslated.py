"""The "not yet translated" notice on a page that shows the English text in another language."""

from __future__ import annotations

import html

from portal.site_hooks.languages import page_url

NOTICE = {
    "zh": (
        '<div class="admonition warning lma-untranslated"><p class="admonition-title">本页尚未翻译</p>'
        '<p>以下是英文原文。欢迎参与翻译：见<a href="{contribute}">贡献指南</a>。</p></div>'
    ),
}


def add_notice(content: str, lang: str, url: str, directory_urls: bool = True) -> str:
    """`content` of the page at `url` with the notice in `lang` above it (unchanged for a language
    without a notice)."""
    if lang not in NOTICE:
        return content
    # Relative, so the link also works in the offline bundle opened from file://.
    contribute = "../" * url.count("/") + page_url("contribute/index.md", lang, directory_urls)
    return NOTICE[lang].format(contribute=html.escape(contribute)) + content
