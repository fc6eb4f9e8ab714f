"""Lighter notebook HTML from mkdocs-jupyter: no inlined JupyterLab CSS, no CDN scripts, compact code
cells, scrollable blocks a keyboard can reach, and outputs kept out of the search index."""

from __future__ import annotations

import re

# Notebook HTML from mkdocs-jupyter inlines ~600 KB of JupyterLab CSS per page and points at MathJax
# and mermaid on CDNs: drop both; assets/stylesheets/notebook.css styles cells once for every page.
_INLINE_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.S)
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)

# Pygments classes by the colour notebook.css gives them (one class per colour); every other token span
# draws in the text colour anyway.
TOKEN_COLOUR = {
    **dict.fromkeys(["k", "kn", "kd", "kc", "ow"], "k"),
    **dict.fromkeys(["s", "s1", "s2", "sa", "sd", "si"], "s"),
    **dict.fromkeys(["m", "mi", "mf"], "m"),
    **dict.fromkeys(["c", "c1", "cm"], "c"),
    **dict.fromkeys(["nf", "fm"], "nf"),
    **dict.fromkeys(["nb", "bp"], "nb"),
    **dict.fromkeys(["nn", "nc"], "nn"),
}
_ADJACENT_SAME = re.compile(r'<span class="([a-z]+)">([^<]*)</span><span class="\1">([^<]*)</span>')
_TOKEN_SPAN = re.compile(r'<span class="([\w-]+)">([^<]*)</span>')
_COPY_BUTTON = re.compile(r'<div class="zeroclipboard-container">.*?</clipboard-copy>\s*</div>', re.S)
# Parts of JupyterLab's cell markup that notebook.css hides: prompts, collapsers, the tag toolbar.
_HIDDEN_PARTS = re.compile(
    r'<div class="(?:jp-Collapser [^"]*|jp-(?:Input|Output)Prompt [^"]*)">[^<]*</div>'
    r'|<div class="celltoolbar">\s*<div class="button_container tags_button_container">.*?</div>\s*</div>',
    re.S,
)
_COPY_TEXT = re.compile(r'<div class="clipboard-copy-txt" id="[^"]*">[^<]*</div>')
_CELL_SOURCE = re.compile(r'(<div class="highlight-ipynb[^"]*">\s*<pre>)(.*?)(</pre>)', re.S)


def _drop_third_party_script(match: re.Match[str]) -> str:
    """Remove a <script> that loads code from another host (a src URL or a dynamic import of one)."""
    attributes, body = match.group(1), match.group(2)
    if re.search(r"src=[\"']https?://", attributes) or re.search(r"import\(\s*[\"']https?://", body):
        return ""
    return match.group(0)


def compact_code_cells(content: str) -> str:
    """Lighter notebook code cells, which are most of a lab page's bytes.

    mkdocs-jupyter gives each cell a copy button whose script it never loads, plus a hidden plain-text copy
    of the source for it: both go, and the source is wrapped in <code> so Material's own copy button (the
    one every other code block has) works on it. Token spans that carry no colour are unwrapped.
    """
    content = _COPY_BUTTON.sub("", content)
    content = _COPY_TEXT.sub("", content)
    content = _HIDDEN_PARTS.sub("", content)
    # One tab stop per scrollable block is enough: the <pre> inside has its own (see focusable_blocks).
    content = content.replace(
        '<div class="jp-Cell-inputWrapper" tabindex="0">', '<div class="jp-Cell-inputWrapper">'
    )
    content = content.replace('data-mime-type="text/plain" tabindex="0">', 'data-mime-type="text/plain">')

    def recolour(match: re.Match[str]) -> str:
        colour = TOKEN_COLOUR.get(match.group(1))
        return f'<span class="{colour}">{match.group(2)}</span>' if colour else match.group(2)

    def wrap(match: re.Match[str]) -> str:
        source = _TOKEN_SPAN.sub(recolour, match.group(2).replace("<span></span>", ""))
        merged = None
        while merged != source:  # neighbours of one colour become one span
            merged, source = source, _ADJACENT_SAME.sub(r'<span class="\1">\2\3</span>', source)
        return f"{match.group(1)}<code>{source}</code>{match.group(3)}"

    return _CELL_SOURCE.sub(wrap, content)


def strip_notebook_assets(content: str) -> str:
    """Drop the inlined JupyterLab CSS, MathJax's configuration and every script from another host."""
    content = _INLINE_STYLE.sub("", content)
    content = compact_code_cells(content)
    content = _MATHJAX_CONFIG.sub("", content)
    return _SCRIPT.sub(_drop_third_party_script, content)


def focusable_blocks(content: str) -> str:
    """Wide code and output scroll sideways; keyboard users can scroll them only if they can focus them."""
    return content.replace("<pre>", '<pre tabindex="0">')


def outputs_out_of_search(content: str) -> str:
    """Outputs are numbers and plots of one run: not worth a place in the search index."""
    return content.replace(
        '<div class="jp-OutputArea jp-Cell-outputArea">',
        '<div class="jp-OutputArea jp-Cell-outputArea" data-search-exclude>',
    )
