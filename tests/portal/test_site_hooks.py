"""portal.site_hooks: the MkDocs hooks' transforms, string in and string out (no build, no browser)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
from mkdocs.exceptions import PluginError
from PIL import Image

from portal.paths import DEFAULT_LANGUAGE, DOCS, ROOT
from portal.site_hooks import (
    badge,
    figures,
    first_paint,
    heading_ids,
    indentation,
    languages,
    notebook_html,
    search_index,
    untranslated,
)


def toc_item(title: str, *children: SimpleNamespace) -> SimpleNamespace:
    return SimpleNamespace(title=title, id="_1", children=list(children))


# --- heading ids ---------------------------------------------------------------------------------------------


def test_a_chinese_heading_keeps_its_characters_in_its_id_and_anchor_link() -> None:
    html = '<h2 id="">抖动缓冲：固定与自适应<a class="anchor-link" href="#">¶</a></h2>'
    assert heading_ids.fix_heading_ids(html) == (
        '<h2 id="抖动缓冲固定与自适应">抖动缓冲：固定与自适应'
        '<a class="anchor-link" href="#抖动缓冲固定与自适应">¶</a></h2>'
    )


def test_repeated_headings_are_numbered_and_empty_ones_get_a_name() -> None:
    html = '<h2 id="a">Why &amp; how?</h2><h3 id="">Why &amp; how?</h3><h4 id="">¶</h4>'
    ids = re.findall(r'id="([^"]*)"', heading_ids.fix_heading_ids(html))
    assert ids == ["why--how", "why--how_1", "section"]


def test_the_table_of_contents_links_to_the_ids_the_headings_get() -> None:
    html = '<h1 id="">测量</h1><h2 id="">测量</h2><h2 id="">Loss <code>x</code></h2>'
    toc = [toc_item("测量", toc_item("测量"), toc_item("Loss <code>x</code>"))]
    heading_ids.fix_toc_ids(toc)
    assert [toc[0].id, *(child.id for child in toc[0].children)] == re.findall(
        r'id="([^"]*)"', heading_ids.fix_heading_ids(html)
    )
    assert toc[0].children[1].id == "loss-x"


# --- notebook HTML -------------------------------------------------------------------------------------------

CELL = (
    '<div class="jp-Cell-inputWrapper" tabindex="0">'
    '<div class="jp-Collapser jp-InputCollapser jp-Cell-inputCollapser"></div>'
    '<div class="jp-InputPrompt jp-InputArea-prompt">In [1]:</div>'
    '<div class="highlight-ipynb hl-python"><pre><span></span>'
    '<span class="kn">from</span><span class="w"> </span><span class="nn">rtclab</span>'
    '<span class="w"> </span><span class="kn">import</span><span class="w"> </span><span class="n">jitter</span>\n'
    '<span class="s2">&quot;a&quot;</span><span class="s2">&quot;b&quot;</span></pre></div>'
    '<div class="zeroclipboard-container"><clipboard-copy for="c1"><svg></svg></clipboard-copy></div>'
    '<div class="clipboard-copy-txt" id="c1">from rtclab import jitter</div></div>'
)


def test_code_cells_lose_copy_machinery_and_prompts_and_keep_only_coloured_spans() -> None:
    assert notebook_html.compact_code_cells(CELL) == (
        '<div class="jp-Cell-inputWrapper">'
        '<div class="highlight-ipynb hl-python"><pre><code>'
        '<span class="k">from</span> <span class="nn">rtclab</span> <span class="k">import</span> jitter\n'
        '<span class="s">&quot;a&quot;&quot;b&quot;</span></code></pre></div></div>'
    )


def test_notebook_assets_from_other_hosts_go_and_local_scripts_stay() -> None:
    html = (
        "<style>.jp-Cell{}</style><p>text</p>"
        '<script src="https://cdn.example/require.js"></script>'
        '<script type="module">import("https://unpkg.com/mermaid").then(m => m)</script>'
        "<!-- Load mathjax --><script>MathJax = {}</script><!-- End of mathjax configuration -->"
        '<script type="application/vnd.jupyter.widget-state+json">{}</script>'
    )
    assert notebook_html.strip_notebook_assets(html) == (
        '<p>text</p><script type="application/vnd.jupyter.widget-state+json">{}</script>'
    )


def test_blocks_that_scroll_can_be_focused_and_outputs_stay_out_of_search() -> None:
    html = '<div class="jp-OutputArea jp-Cell-outputArea"><pre>1 2 3</pre></div>'
    assert notebook_html.outputs_out_of_search(notebook_html.focusable_blocks(html)) == (
        '<div class="jp-OutputArea jp-Cell-outputArea" data-search-exclude><pre tabindex="0">1 2 3</pre></div>'
    )


# --- figures -------------------------------------------------------------------------------------------------


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_inline_figures_become_files_beside_the_page_with_alt_text_and_size(tmp_path: Path) -> None:
    data = base64.b64encode(png(40, 30)).decode()
    html = (
        f'<p>a</p><img alt="No description has been provided for this image" class="jp-img"\n'
        f'src="data:image/png;base64,{data}"><img alt="" class="x" src="data:image/png;base64,{data}">'
    )
    out = figures.extract_figures(html, ['loss "before" & after', "丢包"], tmp_path / "page", "loss")
    assert out == (
        '<p>a</p><img src="loss-figure-1.png" alt="loss &quot;before&quot; &amp; after" width="40" height="30" '
        'loading="lazy" decoding="async"><img src="loss-figure-2.png" alt="丢包" width="40" height="30" '
        'loading="lazy" decoding="async">'
    )
    with Image.open(tmp_path / "page" / "loss-figure-2.png") as image:
        assert image.size == (40, 30)


def write_notebook(path: Path, cells: list[dict]) -> Path:
    path.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    return path


def figure_cell(alt: object = None, tags: tuple[str, ...] = (), images: int = 1) -> dict:
    metadata: dict = {"tags": list(tags)}
    if alt is not None:
        metadata["portal"] = {"alt": alt}
    outputs = [{"data": {"image/png": "..."}}] * images + [{"data": {"text/plain": "x"}}]
    return {"cell_type": "code", "metadata": metadata, "outputs": outputs}


def test_alt_texts_come_from_cell_metadata_in_page_order(tmp_path: Path) -> None:
    notebook = write_notebook(
        tmp_path / "nb.ipynb",
        [
            {"cell_type": "markdown", "metadata": {}, "source": "# t"},
            figure_cell("one"),
            figure_cell(tags=("remove-cell",)),  # not on the page: needs none
            figure_cell(["two", "three"], images=2),
        ],
    )
    assert figures.figure_alts(notebook, "notebooks/nb.ipynb") == ["one", "two", "three"]


@pytest.mark.parametrize("alt", [None, " ", ["only one"]])
def test_a_figure_without_alt_text_stops_the_build_naming_the_cell(tmp_path: Path, alt: object) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", [figure_cell("fine"), figure_cell(alt, images=2)])
    with pytest.raises(PluginError, match=r"notebooks/x\.zh\.ipynb: cell 2: metadata portal\.alt: 2 figure"):
        figures.figure_alts(notebook, "notebooks/x.zh.ipynb")


# --- search index --------------------------------------------------------------------------------------------

INDEX = {
    "config": {"lang": ["en", "zh"], "separator": "[\\s]+"},
    "docs": [
        {"location": "", "title": "Home", "text": "x"},
        {"location": "sdk/video/#bitrate", "title": "Bitrate", "text": "x"},
        {"location": "zh/", "title": "首页", "text": "x"},
        {"location": "zh/sdk/video/#码率", "title": "码率", "text": "x"},
        {"location": "zhuyin/", "title": "not Chinese: a page whose name starts with zh", "text": "x"},
    ],
}


def test_the_search_index_splits_by_the_language_in_each_location() -> None:
    split = search_index.split_by_language(INDEX)
    assert {lang: [d["title"] for d in index["docs"]] for lang, index in split.items()} == {
        "en": ["Home", "Bitrate", "not Chinese: a page whose name starts with zh"],
        "zh": ["首页", "码率"],
    }
    assert split["zh"]["config"] == INDEX["config"]


def test_each_language_index_is_written_in_utf8_where_material_asks_for_it(tmp_path: Path) -> None:
    search_index.write_split_index(tmp_path, INDEX)
    zh = (tmp_path / "zh" / "search" / "search_index.json").read_text(encoding="utf-8")
    assert "码率" in zh and "\\u" not in zh and ", " not in zh
    assert len(json.loads((tmp_path / "search" / "search_index.json").read_text())["docs"]) == 3


def test_the_offline_index_is_also_a_script(tmp_path: Path) -> None:
    (tmp_path / "search").mkdir()
    search_index.write_offline_index(tmp_path, INDEX)
    script = (tmp_path / "search" / "search_index.js").read_text(encoding="utf-8")
    assert script.startswith("var __index = {") and json.loads(script[len("var __index = ") :]) == INDEX


def test_code_blocks_and_reference_prose_stay_out_of_the_index() -> None:
    html = '<div class="language-python highlight"><pre>x</pre></div><div class="highlighted">y</div>'
    assert search_index.exclude_code(html) == (
        '<div class="language-python highlight" data-search-exclude><pre>x</pre></div>'
        '<div class="highlighted">y</div>'
    )
    reference = '<h2 id="rtclab.jitter">jitter</h2><p>Doc</p><table class="t"><pre>x</pre><pre></pre>'
    assert search_index.exclude_all_but_headings(reference) == (
        '<h2 id="rtclab.jitter">jitter</h2><p data-search-exclude>Doc</p>'
        '<table data-search-exclude class="t"><pre>x</pre><pre></pre>'
    )


def test_the_lazy_index_script_knows_the_default_language() -> None:
    script = (DOCS / search_index.LAZY_SCRIPT_DEST).read_text(encoding="utf-8")
    assert f'const DEFAULT_LANGUAGE = "{DEFAULT_LANGUAGE}";' in script


# --- first paint ---------------------------------------------------------------------------------------------

HEAD = (
    '<head><meta charset="utf-8"><link rel="stylesheet" href="assets/stylesheets/main.css">\n'
    '<link rel="stylesheet" href="assets/stylesheets/site.css"><title>t</title></head>'
)


def test_critical_css_applies_only_while_the_page_is_loading() -> None:
    css = "/* why */\nhtml{color:red}\nbody, .md-header{margin:0}\n@media (max-width:10px){p{x:y}}"
    assert first_paint.scope_to_loading(css) == (
        "html.lma-loading{color:red}html.lma-loading body,html.lma-loading .md-header{margin:0}"
        "@media (max-width:10px){html.lma-loading p{x:y}}"
    )


def test_stylesheets_are_held_for_the_loader_behind_inline_critical_css() -> None:
    loading = first_paint.script_source(first_paint.LOADING_SCRIPT)
    out = first_paint.critical_head(HEAD, "CSS", loading)
    assert out == (
        '<head><meta charset="utf-8"><script>'
        + loading.replace("STYLESHEET_COUNT", "2")
        + "</script><style>CSS</style>"
        '<link rel="stylesheet" data-lma-href="assets/stylesheets/main.css" media="print">'
        '<link rel="stylesheet" data-lma-href="assets/stylesheets/site.css" media="print">'
        '<noscript><link rel="stylesheet" href="assets/stylesheets/main.css">'
        '<link rel="stylesheet" href="assets/stylesheets/site.css"></noscript>\n<title>t</title></head>'
    )
    assert "var lmaPending=2;" in out and "STYLESHEET_COUNT" not in out
    assert first_paint.critical_head("<head></head>", "CSS", loading) == "<head></head>"


def test_the_bundle_tag_becomes_the_loader_with_its_scripts_in_order() -> None:
    page = '<p>x</p><script src="../assets/javascripts/bundle.a5f9d56c.min.js"></script></body>'
    out = first_paint.deferred_scripts(page, ["../a.js", "../b.js"], "LOADER")
    assert out == (
        '<p>x</p><script type="application/json" id="lma-scripts">'
        '["../a.js", "../b.js", "../assets/javascripts/bundle.a5f9d56c.min.js"]</script>'
        "<script>LOADER</script></body>"
    )
    assert first_paint.deferred_scripts("<p>no bundle</p>", ["a.js"], "LOADER") == "<p>no bundle</p>"


def test_inlined_scripts_go_in_without_their_header_comment() -> None:
    loader = first_paint.script_source(first_paint.LOADER_SCRIPT)
    assert loader.startswith("(()=>{let started=false;") and loader.endswith("{once:true})})()")
    assert "/*" not in loader and "</script" not in loader
    # The page's other scripts and tests/browser/page_ready.py wait on these names.
    loading = first_paint.script_source(first_paint.LOADING_SCRIPT)
    assert 'classList.add("lma-loading")' in loading and "function lmaStyled()" in loading
    assert "lmaStyled" in loader and 'getElementById("lma-scripts")' in loader


# --- the rest of a page --------------------------------------------------------------------------------------


def test_indentation_between_tags_goes_and_preformatted_text_stays() -> None:
    html = "<ul>\n    <li>a</li>\n\n    <li>b</li>\n</ul>\n  <pre>  x\n    <b>y</b>\n</pre>\n  <script>\n  f()\n</script>"
    # (the indentation just before a verbatim block stays: it is not between two tags of the same text)
    assert indentation.squeeze_indentation(html) == (
        "<ul>\n<li>a</li>\n<li>b</li>\n</ul>\n  <pre>  x\n    <b>y</b>\n</pre>\n  <script>\n  f()\n</script>"
    )


@pytest.mark.parametrize(
    ("rel", "lang", "directory_urls", "url"),
    [
        ("index.md", "en", True, ""),
        ("index.md", "zh", True, "zh/"),
        ("tuning/jitter-buffer.ipynb", "zh", True, "zh/tuning/jitter-buffer/"),
        ("sdk/index.md", "en", False, "sdk/index.html"),
        ("sdk/video.md", "zh", False, "zh/sdk/video.html"),
    ],
)
def test_page_urls_in_each_language(rel: str, lang: str, directory_urls: bool, url: str) -> None:
    assert languages.page_url(rel, lang, directory_urls) == url


def test_page_destinations_are_files() -> None:
    assert languages.page_dest("sdk/video.md", "zh", True) == "zh/sdk/video/index.html"
    assert languages.page_dest("sdk/video.md", "zh", False) == "zh/sdk/video.html"


def test_alternate_links_go_so_material_never_fetches_the_sitemap() -> None:
    html = '<link rel="alternate" href="/zh/" hreflang="zh"><link rel="alternate" type="application/rss+xml">'
    assert languages.drop_alternate_links(html) == '<link rel="alternate" type="application/rss+xml">'


def test_the_untranslated_notice_links_the_contributor_guide_relatively() -> None:
    out = untranslated.add_notice("<p>English</p>", "zh", "zh/sdk/video/")
    assert out.startswith('<div class="admonition warning lma-untranslated">')
    assert 'href="../../../zh/contribute/"' in out and out.endswith("<p>English</p>")
    offline = untranslated.add_notice("<p>x</p>", "zh", "zh/sdk/video.html", directory_urls=False)
    assert 'href="../../zh/contribute/index.html"' in offline
    assert untranslated.add_notice("<p>x</p>", "en", "sdk/") == "<p>x</p>"


RECORD = {
    "status": "passed",
    "date": "2026-12-07",
    "seconds": 42,
    "mode": "quick",
    "versions": {"python": "3.12.3", "aiortc": "1.16.0", "av": "14.0.1"},
}


def test_the_badge_says_when_and_how_a_notebook_last_ran() -> None:
    assert badge.badge(RECORD, "jitter-buffer.zh.ipynb", "zh") == (
        '<div class="lma-badge" role="note"><span>✔ 最近验证 2026-12-07</span><span>运行时间 42 s (快速模式)</span>'
        "<span>Python 3.12.3 · aiortc 1.16.0 · av 14.0.1</span>"
        '<a href="jitter-buffer.zh.ipynb" download>⬇ 下载 notebook</a></div>'
    )
    assert "full mode" in badge.badge({**RECORD, "mode": "full"}, "nb.ipynb", "en")


@pytest.mark.parametrize("record", [None, {**RECORD, "status": "failed"}])
def test_no_badge_without_a_passed_run(record: dict | None) -> None:
    assert badge.badge(record, "nb.ipynb", "en") == ""


def test_mkdocs_loads_the_one_hook_entry_file() -> None:
    hooks = re.search(r"^hooks:\n((?:  - .*\n)+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8"), re.M)
    assert hooks and "  - src/portal/site_hooks/events.py\n" in hooks.group(1)
