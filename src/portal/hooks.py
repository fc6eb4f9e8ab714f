"""MkDocs hooks: executed notebooks as pages in both languages, generated pages, front matter checks,
the "not yet translated" notice, the notebook badge, and no third-party requests.

Loaded by mkdocs.yml (`hooks:`). It reads executed notebooks from build/executed/ and never runs them.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import re
import shutil
import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page
from pymdownx.slugs import slugify as _make_slugify

from portal import diagrams, frontmatter, reports
from portal.execute import recorded_execution
from portal.notebooks import Notebook, find_notebooks
from portal.paths import DEFAULT_LANGUAGE, EXECUTED, LANGUAGES, ROOT
from portal.translations import GENERATED_PAGES

NOTICE = {
    "zh": (
        '<div class="admonition warning lma-untranslated"><p class="admonition-title">本页尚未翻译</p>'
        '<p>以下是英文原文。欢迎参与翻译：见<a href="{contribute}">贡献指南</a>。</p></div>'
    ),
}
BADGE_TEXT = {
    "en": ("Last verified", "run time", "Download the notebook", "quick mode", "full mode"),
    "zh": ("最近验证", "运行时间", "下载 notebook", "快速模式", "完整模式"),
}
slugify = _make_slugify(case="lower")
EXECUTION_REPORT, TRANSLATION_STATUS = GENERATED_PAGES
MERMAID = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
IFRAME_WORKER_SHIM = ROOT / "node_modules" / "iframe-worker" / "shim" / "index.js"
MERMAID_DEST = "assets/javascripts/mermaid.min.js"


class NotebookPageFile(File):
    """An executed notebook from build/executed/ that MkDocs treats as a page (mkdocs-jupyter renders it)."""

    def is_documentation_page(self) -> bool:
        return True


def _language(config: MkDocsConfig) -> str:
    i18n = config.plugins.get("i18n")
    return getattr(i18n, "current_language", DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE


def _prefix(lang: str) -> str:
    return "" if lang == DEFAULT_LANGUAGE else f"{lang}/"


def _page_url(rel: str, lang: str, directory_urls: bool = True) -> str:
    """URL of a page `a/b.md` or `a/b.ipynb` in a language: `zh/a/b/`, or `zh/a/b.html` (offline bundle)."""
    stem = rel.rsplit(".", 1)[0]
    if not directory_urls:
        return _prefix(lang) + stem + ".html"
    stem = stem[: -len("index")] if stem.endswith("index") else stem + "/"
    return _prefix(lang) + stem


def _page_dest(rel: str, lang: str, directory_urls: bool) -> str:
    url = _page_url(rel, lang, directory_urls)
    return url + "index.html" if directory_urls else url


def _add_i18n_attributes(file: File, rel: str, lang: str, localized: bool) -> None:
    """What mkdocs-static-i18n expects on a file, so the language switcher links the other language."""
    urls = file.use_directory_urls
    file.alternates = {code: SimpleNamespace(url=_page_url(rel, code, urls), page=None) for code in LANGUAGES}
    file.locale = lang if localized else DEFAULT_LANGUAGE
    file.locale_alternate_of = lang
    file.localization = lang if localized and lang != DEFAULT_LANGUAGE else None
    file.norm_src_uri = rel


def _notebook_page(notebook: Notebook, lang: str, config: MkDocsConfig) -> File:
    executed = notebook.executed(lang)
    localized = executed.exists()
    if not localized:
        executed = notebook.executed()
    if not executed.exists():
        raise PluginError(
            f"{notebook.display}: not executed yet: run `make execute` before building the site"
        )
    rel = notebook.rel.as_posix()
    dest = _page_dest(rel, lang, config.use_directory_urls)
    file = NotebookPageFile(rel, str(EXECUTED), config.site_dir, config.use_directory_urls, dest_uri=dest)
    file.abs_src_path = str(executed)
    file.executed_path = str(executed)
    file.notebook_source = str(notebook.translation(lang) if localized else notebook.source)
    file.url = _page_url(rel, lang, config.use_directory_urls)
    _add_i18n_attributes(file, rel, lang, localized)
    return file


def _download_file(notebook: Notebook, lang: str, config: MkDocsConfig) -> File:
    """The source notebook (no outputs) next to its page, for readers to run themselves."""
    source = notebook.translation(lang) if notebook.translation(lang).exists() else notebook.source
    rel = notebook.rel.as_posix()
    page_dest = _page_dest(rel, lang, config.use_directory_urls)
    dest = page_dest.rsplit("/", 1)[0] + "/" + notebook.source.name
    file = File(
        f"_downloads/{lang}/{rel}",
        str(source.parent),
        config.site_dir,
        config.use_directory_urls,
        dest_uri=dest,
    )
    file.abs_src_path = str(source)
    return file


def _generated_page(rel: str, content: str, lang: str, config: MkDocsConfig) -> File:
    file = File.generated(config, rel, content=content)
    file.dest_uri = _page_dest(rel, lang, config.use_directory_urls)
    file.url = _page_url(rel, lang, config.use_directory_urls)
    file.abs_dest_path = str(Path(config.site_dir) / file.dest_uri)
    _add_i18n_attributes(file, rel, lang, localized=True)
    return file


@event_priority(-200)  # after mkdocs-static-i18n (-100) has rebuilt the file list for this language
def on_files(files: Files, config: MkDocsConfig) -> Files:
    lang = _language(config)
    today = dt.date.today().isoformat()
    notebooks = find_notebooks()
    pages = [_notebook_page(notebook, lang, config) for notebook in notebooks]
    pages.append(_generated_page(EXECUTION_REPORT, reports.execution_report(lang, today), lang, config))
    pages.append(_generated_page(TRANSLATION_STATUS, reports.translation_status(lang, today), lang, config))
    for file in [*pages, *(_download_file(notebook, lang, config) for notebook in notebooks)]:
        files.append(file)
    # The i18n plugin lists each language's pages for sitemap.xml (with their hreflang alternates)
    # before this hook adds these.
    i18n = config.plugins.get("i18n")
    if i18n is not None:
        i18n.i18n_files_per_language[lang] = [*i18n.i18n_files_per_language[lang], *pages]
    return files


def _source_of(page: Page) -> Path | None:
    path = page.file.abs_src_path
    return Path(path) if path else None


def _is_notebook(page: Page) -> bool:
    return page.file.src_uri.endswith(".ipynb")


def _is_fallback(page: Page, lang: str) -> bool:
    """True when a non-default language shows the English page because no translation exists."""
    return lang != DEFAULT_LANGUAGE and getattr(page.file, "locale", lang) != lang


@event_priority(-100)  # after mkdocs-jupyter (0) has taken the page over
def on_pre_page(page: Page, config: MkDocsConfig, files: Files) -> Page:
    # While plugins read the page's source (git dates), point them at the committed notebook,
    # not the executed copy in build/ that git knows nothing of. on_page_markdown points it back.
    if hasattr(page.file, "notebook_source"):
        page.file.abs_src_path = page.file.notebook_source
    return page


@event_priority(-100)  # after git-revision-date-localized (0) has read the source's git history
def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    source = _source_of(page)
    if source is None:  # a page this build generated itself
        return markdown
    found = frontmatter.check_file(source)
    if found:
        raise PluginError("front matter problems:\n" + "\n".join(found))
    if hasattr(page.file, "executed_path"):
        # Titles, descriptions and the rest of a notebook's front matter live in its metadata.
        page.meta = {**frontmatter.read_notebook(source), **page.meta}
        page.file.abs_src_path = page.file.executed_path  # what mkdocs-jupyter renders
    return markdown


# Notebook HTML from mkdocs-jupyter inlines ~600 KB of JupyterLab CSS per page and points at MathJax
# and mermaid on CDNs: drop both; assets/stylesheets/notebook.css styles cells once for every page.
_INLINE_STYLE = re.compile(r"<style[^>]*>.*?</style>", re.S)
_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script>", re.S)
_MATHJAX_CONFIG = re.compile(r"<!-- Load mathjax -->.*?<!-- End of mathjax configuration -->", re.S)


def _drop_third_party_script(match: re.Match[str]) -> str:
    """Remove a <script> that loads code from another host (a src URL or a dynamic import of one)."""
    attributes, body = match.group(1), match.group(2)
    if re.search(r"src=[\"']https?://", attributes) or re.search(r"import\(\s*[\"']https?://", body):
        return ""
    return match.group(0)


_HEADING = re.compile(r'<h([1-6]) id="([^"]*)">(.*?)</h\1>', re.S)


def _fix_heading_ids(content: str, page: Page) -> str:
    """Give notebook headings ids that keep CJK text, and make the table of contents link to them.

    mkdocs-jupyter slugs a Chinese heading to id="" (and its TOC to "_1"), so the anchors go nowhere.
    Both are rebuilt here from the heading text with the same unicode-aware slug.
    """
    seen: dict[str, int] = {}

    def unique(text: str) -> str:
        base = slugify(re.sub(r"<[^>]+>|¶", "", html.unescape(text)).strip(), "-") or "section"
        seen[base] = seen.get(base, 0) + 1
        return base if seen[base] == 1 else f"{base}_{seen[base] - 1}"

    def heading(match: re.Match[str]) -> str:
        level, body = match.group(1), match.group(3)
        anchor = unique(body)
        body = re.sub(r'class="anchor-link" href="#[^"]*"', f'class="anchor-link" href="#{anchor}"', body)
        return f'<h{level} id="{anchor}">{body}</h{level}>'

    content = _HEADING.sub(heading, content)
    seen.clear()

    def relink(items: Any) -> None:
        for item in items:
            item.id = unique(item.title)
            relink(item.children)

    relink(page.toc)
    return content


_DATA_IMAGE = re.compile(
    r'<img alt="[^"]*"\s+class="[^"]*"\s*src="data:image/png;base64,([^"]+)"[^>]*>', re.S
)


def _figure_alts(notebook: Path, where: str) -> list[str]:
    """The alt text of every figure a notebook shows, in page order, from its cells' `portal.alt`.

    A code cell whose outputs hold a figure carries `"portal": {"alt": "what the figure shows"}` in its
    metadata (a list when it draws several). Chinese notebooks carry Chinese alt text in the same place.
    """
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    alts: list[str] = []
    for index, cell in enumerate(nb["cells"]):
        images = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        if not images or "remove-cell" in cell["metadata"].get("tags", []):
            continue
        given = cell["metadata"].get("portal", {}).get("alt")
        given = [given] if isinstance(given, str) else list(given or [])
        if len(given) != images or not all(isinstance(a, str) and a.strip() for a in given):
            raise PluginError(
                f"{where}: cell {index + 1}: metadata portal.alt: {images} figure(s) need {images} alt "
                f"text(s) saying what each shows; found {len(given)}"
            )
        alts += given
    return alts


def _extract_figures(content: str, page: Page, lang: str) -> str:
    """Move inline base64 figures into PNG files beside the page, with alt text, size and lazy loading.

    Inline figures made a notebook page several hundred KB that no browser could cache.
    """
    rel = Path(page.file.src_uri)
    source = Path(page.file.abs_src_path)
    where = (
        f"notebooks/{rel.with_suffix(f'.{lang}.ipynb') if source.name.endswith(f'.{lang}.ipynb') else rel}"
    )
    alts = iter(_figure_alts(source, where))
    folder = Path(page.file.abs_dest_path).parent
    count = 0

    def figure(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        data = base64.b64decode(match.group(1))
        width, height = struct.unpack(">II", data[16:24])  # the PNG header's IHDR chunk
        name = f"{Path(page.file.src_uri).stem}-figure-{count}.png"  # pages may share a folder offline
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(_compress_png(data))
        alt = html.escape(next(alts), quote=True)
        return f'<img src="{name}" alt="{alt}" width="{width}" height="{height}" loading="lazy" decoding="async">'

    return _DATA_IMAGE.sub(figure, content)


def _compress_png(data: bytes) -> bytes:
    """Plots use few colours: a 256-colour palette keeps them sharp at a third of the bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        quantized = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        quantized.save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data


def _badge(page: Page, lang: str) -> str:
    source = _source_of(page)
    record = recorded_execution(source) if source else None
    if not record or record.get("status") != "passed":
        return ""  # `make serve` shows a notebook that is still running without outputs, and without a badge
    labels = BADGE_TEXT.get(lang, BADGE_TEXT[DEFAULT_LANGUAGE])
    v = record["versions"]
    mode = labels[3] if record.get("mode") == "quick" else labels[4]
    name = Path(page.file.src_uri).name
    return (
        '<div class="lma-badge" role="note">'
        f"<span>✔ {labels[0]} {html.escape(record['date'])}</span>"
        f"<span>{labels[1]} {record['seconds']} s ({mode})</span>"
        f"<span>Python {v['python']} · aiortc {v['aiortc']} · av {v['av']}</span>"
        f'<a href="{html.escape(name)}" download>⬇ {labels[2]}</a>'
        "</div>"
    )


_CODE_BLOCK = re.compile(r'(<div class="(?:[^"]*\s)?(?:highlight|highlight-ipynb)(?:\s[^"]*)?")>')


# Pygments classes by the colour notebook.css gives them (one class per colour); every other token span
# draws in the text colour anyway.
_TOKEN_COLOUR = {
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


def _compact_code_cells(content: str) -> str:
    """Lighter notebook code cells, which are most of a lab page's bytes.

    mkdocs-jupyter gives each cell a copy button whose script it never loads, plus a hidden plain-text copy
    of the source for it: both go, and the source is wrapped in <code> so Material's own copy button (the
    one every other code block has) works on it. Token spans that carry no colour are unwrapped.
    """
    content = _COPY_BUTTON.sub("", content)
    content = _COPY_TEXT.sub("", content)
    content = _HIDDEN_PARTS.sub("", content)
    # One tab stop per scrollable block is enough: the <pre> inside has its own (see on_page_content).
    content = content.replace(
        '<div class="jp-Cell-inputWrapper" tabindex="0">', '<div class="jp-Cell-inputWrapper">'
    )
    content = content.replace('data-mime-type="text/plain" tabindex="0">', 'data-mime-type="text/plain">')

    def recolour(match: re.Match[str]) -> str:
        colour = _TOKEN_COLOUR.get(match.group(1))
        return f'<span class="{colour}">{match.group(2)}</span>' if colour else match.group(2)

    def wrap(match: re.Match[str]) -> str:
        source = _TOKEN_SPAN.sub(recolour, match.group(2).replace("<span></span>", ""))
        merged = None
        while merged != source:  # neighbours of one colour become one span
            merged, source = source, _ADJACENT_SAME.sub(r'<span class="\1">\2\3</span>', source)
        return f"{match.group(1)}<code>{source}</code>{match.group(3)}"

    return _CELL_SOURCE.sub(wrap, content)


def on_page_content(content: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    lang = _language(config)
    if _is_notebook(page):
        content = _INLINE_STYLE.sub("", content)
        content = _compact_code_cells(content)
        content = _MATHJAX_CONFIG.sub("", content)
        content = _SCRIPT.sub(_drop_third_party_script, content)
        content = _fix_heading_ids(content, page)
        # Wide code and output scroll sideways; keyboard users can scroll them only if they can focus them.
        content = content.replace("<pre>", '<pre tabindex="0">')
        content = _extract_figures(content, page, lang)
        # Outputs are numbers and plots of one run: not worth a place in the search index.
        content = content.replace(
            '<div class="jp-OutputArea jp-Cell-outputArea">',
            '<div class="jp-OutputArea jp-Cell-outputArea" data-search-exclude>',
        )
        content = _badge(page, lang) + content
    # Every page downloads the search index on a first visit; code blocks were a fifth of it and match
    # searches poorly. Prose and inline code stay indexed.
    content = _CODE_BLOCK.sub(r"\1 data-search-exclude>", content)
    if page.file.src_uri.startswith("reference/rtclab"):
        # The API reference's docstrings were a sixth of the whole search index, which every reader downloads
        # to search: objects stay findable by their names (the headings), and the page itself has the rest.
        # (Material's search parser ends an exclusion at the first closing tag of the same name, so the
        # attribute goes on leaf blocks, not on the nested divs around them.)
        content = re.sub(r"<(p|table|ul|ol|dl)(?=[\s>])", r"<\1 data-search-exclude", content)
    if _is_fallback(page, lang) and lang in NOTICE:
        # Relative, so the link also works in the offline bundle opened from file://.
        contribute = "../" * page.url.count("/") + _page_url(
            "contribute/index.md", lang, config.use_directory_urls
        )
        content = NOTICE[lang].format(contribute=html.escape(contribute)) + content
    return content


def on_page_context(context: dict[str, Any], page: Page, config: MkDocsConfig, nav: Any) -> dict[str, Any]:
    if _is_notebook(page) and config.repo_url:
        lang = _language(config)
        src = Path("notebooks") / page.file.src_uri
        if lang != DEFAULT_LANGUAGE and Path(page.file.abs_src_path).name.endswith(f".{lang}.ipynb"):
            src = src.with_suffix(f".{lang}.ipynb")
        page.edit_url = f"{config.repo_url.rstrip('/')}/edit/main/{src.as_posix()}"
    if page.meta.get("generated"):
        page.edit_url = None
    return context


_ALTERNATE = re.compile(r'<link rel="alternate" href="[^"]*" hreflang="([a-z]+)">')


_needs_mermaid_script: set[str] = set()  # pages whose diagrams the browser must render
_MERMAID_BLOCK = re.compile(r'<pre class="mermaid"><code>(.*?)</code></pre>', re.S)


def _inline_diagrams(content: str, page: Page) -> str:
    """Replace mermaid sources with SVG rendered at build time (see portal.diagrams)."""
    sources = [html.unescape(m) for m in _MERMAID_BLOCK.findall(content)]
    if not sources or not diagrams.can_render():
        return content
    try:
        svgs = diagrams.render(sources)
    except Exception as error:  # noqa: BLE001 - any browser failure: say which page, keep building
        raise PluginError(f"{page.file.src_uri}: could not render its mermaid diagrams: {error}") from None
    return _MERMAID_BLOCK.sub(
        lambda m: f'<div class="lma-diagram">{svgs[html.unescape(m.group(1))]}</div>', content
    )


def _scope_to_loading(css: str) -> str:
    """Make every rule apply only while <html> has the class lma-loading, i.e. until the stylesheets load.

    Once Material's CSS is in, the critical rules must vanish: some hide parts Material never sets a
    display for (the search box), others would size every SVG like an icon.
    """
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)

    def scope(match: re.Match[str]) -> str:
        selectors = []
        for selector in match.group(1).split(","):
            selector = selector.strip()
            if selector == "html":
                selectors.append("html.lma-loading")
            else:
                selectors.append(f"html.lma-loading {selector}")
        return ",".join(selectors) + "{" + match.group(2) + "}"

    return re.sub(r"([^{}@]+)\{([^{}]*)\}", scope, css).replace("\n", "")


CRITICAL_CSS = _scope_to_loading((Path(__file__).parent / "critical.css").read_text(encoding="utf-8"))
_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+\.css)">')

# Material requests the search index (every page's largest download) with XMLHttpRequest as soon as a
# page loads. Hold that one request until the reader reaches for search: a focus in the search box, a
# click on its icon, or the "/", "s", "f" shortcuts. Pages in another language than the default fetch their
# own language's index (see _split_search_index).
_LAZY_SEARCH_INDEX = """<script>(()=>{let go;const ready=new Promise(r=>go=r),X=XMLHttpRequest.prototype,open=X.open,send=X.send;
const on=(t,f)=>addEventListener(t,f,true),near=(e,s)=>e.target.closest&&e.target.closest(s);
on("focusin",e=>near(e,".md-search")&&go());on("click",e=>near(e,"label[for=__search]")&&go());
on("keydown",e=>["/","s","f","S","F"].includes(e.key)&&go());
X.open=function(m,u,...a){this.lmaLazy=String(u).includes("search/search_index.json");
if(this.lmaLazy&&document.documentElement.lang!=="DEFAULT_LANGUAGE")u=String(u).replace("search/search_index.json",document.documentElement.lang+"/search/search_index.json");
return open.call(this,m,u,...a)};
X.send=function(...a){if(!this.lmaLazy)return send.apply(this,a);ready.then(()=>send.apply(this,a))}})()</script>""".replace(
    "DEFAULT_LANGUAGE", DEFAULT_LANGUAGE
)


# Everything the first paint does not need (Material's stylesheets and its script bundle) is requested only
# once the browser reports the page's first (largest) contentful paint, or 3 s after "load" where it cannot
# (a hidden tab paints nothing; browsers without paint timing start at "load"). On a slow link those downloads would otherwise share the
# bandwidth with the page itself, and Lighthouse's simulated Slow 3G counts every request that starts
# before the largest paint as holding it up, blocking or not. Stylesheets keep their place in <head> (the
# cascade is unchanged): each waits as a <link> without href until the loader gives it one. Material's
# bundle starts on DOMContentLoaded and sizes its sidebars on window "load", both long past by then, so
# the loader replays them once the bundle has run.
_LOADER = """<script>(()=>{let started=false;const go=()=>{if(started)return;started=true;
for(const l of document.querySelectorAll("link[data-lma-href]")){l.onload=()=>{l.media="all";lmaStyled()};l.onerror=lmaStyled;l.href=l.dataset.lmaHref}
const scripts=JSON.parse(document.getElementById("lma-scripts").textContent);scripts.forEach((src,i)=>{const s=document.createElement("script");
s.src=src;s.async=false;if(i===scripts.length-1)s.onload=()=>{document.dispatchEvent(new Event("DOMContentLoaded"));dispatchEvent(new Event("load"))};
document.body.appendChild(s)})};
const types=PerformanceObserver.supportedEntryTypes||[],type=["largest-contentful-paint","paint"].find(t=>types.includes(t));
if(type)new PerformanceObserver(()=>setTimeout(go,50)).observe({type,buffered:true});
addEventListener("load",()=>setTimeout(go,type?3000:0),{once:true})})()</script>"""


def _critical_head(output: str) -> str:
    """Inline the critical CSS, hold the stylesheets for the loader, lazy search index."""
    links = _STYLESHEET.findall(output)
    if not links:
        return output
    # media "print" until loaded, so that a stylesheet arriving early never blocks rendering either.
    held = "".join(f'<link rel="stylesheet" data-lma-href="{href}" media="print">' for href in links)
    loading = (
        '<script>document.documentElement.classList.add("lma-loading");'
        f"var lmaPending={len(links)};function lmaStyled(){{--lmaPending||"
        'document.documentElement.classList.remove("lma-loading")}</script>'
    )
    fallback = "<noscript>" + "".join(f'<link rel="stylesheet" href="{h}">' for h in links) + "</noscript>"
    at = _STYLESHEET.search(output).start()
    output = output[:at] + "\0" + _STYLESHEET.sub("", output[at:])
    head = f"{loading}<style>{CRITICAL_CSS}</style>{held}{fallback}{_LAZY_SEARCH_INDEX}"
    return output.replace("\0", head, 1)


_BUNDLE = re.compile(r'<script src="([^"]*assets/javascripts/bundle\.[0-9a-f]+\.min\.js)"></script>')


def _deferred_scripts(output: str, before_bundle: list[str]) -> str:
    """Replace Material's bundle tag with the loader, which runs `before_bundle`, then the bundle."""
    bundle = _BUNDLE.search(output)
    if not bundle:
        return output
    scripts = json.dumps([*before_bundle, bundle.group(1)])
    tag = f'<script type="application/json" id="lma-scripts">{scripts}</script>{_LOADER}'
    return output[: bundle.start()] + tag + output[bundle.end() :]


# Where whitespace is content: left exactly as it is.
_VERBATIM = re.compile(r"(<(pre|textarea|script|style)\b.*?</\2>)", re.S | re.I)


def _squeeze_indentation(output: str) -> str:
    """Drop the template indentation between tags (about 10 % of a page), keeping one newline so that
    inline elements keep the space between them; <pre>, <textarea>, <script> and <style> are untouched."""
    parts = _VERBATIM.split(output)
    # split() returns [text, verbatim, tag name, text, verbatim, tag name, ...]
    for i in range(0, len(parts), 3):
        parts[i] = re.sub(r">[ \t]*\n\s*<", ">\n<", parts[i])
    return "".join(part for i, part in enumerate(parts) if i % 3 != 2)


def on_post_page(output: str, page: Page, config: MkDocsConfig) -> str:
    output = _inline_diagrams(output, page)
    output = _critical_head(output)
    # Material fetches <alternate href>/sitemap.xml on every page and, on a click of the language
    # switcher, looks the page up in it; its lookup keeps the sitemap's port (site_url's), so wherever the
    # site is served on another port it sends readers to the other language's home page. The i18n plugin
    # already points the switcher's links at the same page in the other language, so drop the tags:
    # no sitemap requests, no lookup. Search engines get hreflang alternates from sitemap.xml.
    output = _ALTERNATE.sub("", output)
    before_bundle = []
    # A diagram left unrendered (no Chromium here): Material would fetch mermaid from unpkg.com, so load
    # our pinned copy instead (before the bundle, which loads unpkg's unless `mermaid` is defined), and
    # only on pages that have one.
    if 'class="mermaid"' in output:
        if not MERMAID.exists():
            raise PluginError(
                f"{page.file.src_uri}: has a mermaid diagram but {MERMAID} is missing: run `make env`"
            )
        before_bundle.append("../" * page.url.count("/") + MERMAID_DEST)
        _needs_mermaid_script.add(page.file.src_uri)
    return _squeeze_indentation(_deferred_scripts(output, before_bundle))


def _split_search_index(site: Path, data: dict[str, object]) -> None:
    """One search index per language: search/ for English, zh/search/ for Chinese.

    mkdocs-static-i18n merges both languages into one index, and a reader downloads all of it on their
    first search: half of it in a language they did not search in, and results from both. Material asks
    for `<base>/search/search_index.json`; the page script in _LAZY_SEARCH_INDEX points Chinese pages at
    their own file. Entries keep their locations (relative to the site root, where `base` points).
    """
    docs = data.get("docs", [])
    assert isinstance(docs, list)

    def language(location: str) -> str:
        first = location.split("/", 1)[0]
        return first if first in LANGUAGES else DEFAULT_LANGUAGE

    for lang in LANGUAGES:
        own = [doc for doc in docs if language(doc["location"]) == lang]
        target = site / ("" if lang == DEFAULT_LANGUAGE else lang) / "search" / "search_index.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({**data, "docs": own}, ensure_ascii=False, separators=(",", ":"))
        target.write_text(text, encoding="utf-8")


@event_priority(-200)  # after mkdocs-static-i18n (-100) has built every language and written the search index
def on_post_build(config: MkDocsConfig) -> None:
    # The search plugin escapes every CJK character as \\uXXXX (6 bytes); UTF-8 needs 3. Every page
    # loads this index on a first visit, so its size counts against each page's budget.
    index = Path(config.site_dir) / "search" / "search_index.json"
    if index.exists():
        data = json.loads(index.read_text(encoding="utf-8"))
        if config.use_directory_urls:
            _split_search_index(Path(config.site_dir), data)
        else:
            # The offline bundle: opened from file://, Material loads the index as a script, not JSON, from
            # the site root on every page, so both languages share it there.
            text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
            index.write_text(text, encoding="utf-8")
            index.with_suffix(".js").write_text(f"var __index = {text}", encoding="utf-8")
    if not config.use_directory_urls:
        shim = Path(config.site_dir) / "assets" / "javascripts" / "iframe-worker-shim.js"
        shutil.copyfile(IFRAME_WORKER_SHIM, shim)
    if _needs_mermaid_script and MERMAID.exists():
        target = Path(config.site_dir) / MERMAID_DEST
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MERMAID, target)
