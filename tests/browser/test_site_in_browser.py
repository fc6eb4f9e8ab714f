"""The built site in headless Chromium: both homes, a notebook page in both languages, search in
English and in Chinese (a query from the middle of a word), the keyboard, and the language switcher.

Run with `make browser` after `make build`; `LMA_SITE_DIR=<dir>` points it at another built site.
Screenshots of every visited page go to build/reports/screenshots/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
from page_ready import wait_until_ready
from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

if TYPE_CHECKING:
    from conftest import Recorder

# One worker runs this whole file, so its last test sees every request the others made.
pytestmark = [pytest.mark.timeout(120), pytest.mark.xdist_group("site_in_browser")]

SEARCH_INPUT = "input[data-md-component=search-query]"
SEARCH_RESULT = ".md-search-result__item"
SEARCH_WAIT_MS = 15_000
ENGLISH_QUERY = "jitter"
PREFERRED_CHINESE_QUERIES = ("缓冲", "延迟")
NOTEBOOK_PAGE = "get-started/measure-first-call/"
SWITCH_PAGE = "get-started/first-call/"

Screenshot = Callable[[Page, str], Path]
HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]{4,}")
TAG = re.compile(r"<[^>]+>")


# --- helpers ---------------------------------------------------------------------------------------


def visit(page: Page, path: str, shot: Screenshot | None = None, name: str = "") -> None:
    """Open a page, check it has both language links, and screenshot it (unless already taken)."""
    response = page.goto(path)
    assert response is not None and response.ok, (
        f"GET {path}: {response.status if response else 'no response'}"
    )
    page.wait_for_load_state("load")
    wait_until_ready(page)
    check_language_links(page)
    if shot is not None:
        shot(page, name)


def check_language_links(page: Page) -> None:
    for lang in ("en", "zh"):
        links = page.locator(f".md-select a[hreflang={lang}]")
        assert links.count() >= 1, f"{page.url}: no language switcher link a[hreflang={lang}] in .md-select"


def is_sitemap_lookup(console_error: str) -> bool:
    """Material's failed fetch of `<alternate link>/sitemap.xml`: test_language_sitemaps_resolve reports it."""
    return console_error.rstrip(")").endswith("/sitemap.xml")


def assert_no_errors(recorder: Recorder) -> None:
    console = [e for e in recorder.console_errors if not is_sitemap_lookup(e)]
    problems = [f"console: {e}" for e in console] + [f"page error: {e}" for e in recorder.page_errors]
    assert not problems, "errors in the browser:\n  " + "\n  ".join(problems)


def path_of(page: Page) -> str:
    return urlsplit(page.url).path


def is_search_focused(page: Page) -> bool:
    return page.evaluate(
        f"() => !!document.activeElement && document.activeElement.matches('{SEARCH_INPUT}')"
    )


def open_search_with_keyboard(page: Page, key: str = "/") -> None:
    page.locator("body").click(position={"x": 5, "y": 400})  # the page, not the browser chrome, has focus
    page.keyboard.press(key)
    page.wait_for_function(
        f"() => !!document.activeElement && document.activeElement.matches('{SEARCH_INPUT}')", timeout=5_000
    )


def search(page: Page, query: str) -> int:
    """Type a query into Material's search and return how many results it lists (0 after 15 s)."""
    open_search_with_keyboard(page)
    page.keyboard.type(query, delay=40)
    # Material reads the query on keyup. Playwright inserts characters that no key produces (Chinese) as
    # text without key events, so end with a key press, as an input method's commit key would.
    page.keyboard.press("End")
    try:
        page.locator(SEARCH_RESULT).first.wait_for(state="attached", timeout=SEARCH_WAIT_MS)
    except PlaywrightTimeout:  # no result; the caller reports what the index holds
        return 0
    return page.locator(SEARCH_RESULT).count()


def search_meta(page: Page) -> str:
    meta = page.locator(".md-search-result__meta")
    return meta.first.inner_text() if meta.count() else "(no .md-search-result__meta)"


def load_index(site: Path, lang: str) -> tuple[Path, dict]:
    own = site / lang / "search" / "search_index.json"
    path = own if lang != "en" and own.is_file() else site / "search" / "search_index.json"
    if not path.is_file():
        pytest.fail(f"no search index at {path}: is the search plugin enabled?", pytrace=False)
    return path, json.loads(path.read_text(encoding="utf-8"))


def zh_docs(index_path: Path, index: dict) -> list[dict]:
    docs = index.get("docs", [])
    if index_path.parent.parent.name == "zh":  # a per-language index: every entry is Chinese
        return docs
    return [d for d in docs if d.get("location", "").startswith("zh/")]


def plain(doc: dict) -> str:
    return TAG.sub(" ", f"{doc.get('title', '')} {doc.get('text', '')}")


def pick_chinese_query(docs: list[dict]) -> tuple[str, str]:
    """A two-character query from the middle of a Chinese term of >= 4 Han characters; (query, term)."""
    texts = [plain(d).replace("\u200b", "") for d in docs]
    for preferred in PREFERRED_CHINESE_QUERIES:
        for text in texts:
            for term in HAN_RUN.findall(text):
                if preferred in term[1:-1]:  # strictly inside the term, not at its start or end
                    return preferred, term
    for preferred in PREFERRED_CHINESE_QUERIES:
        for text in texts:
            for term in HAN_RUN.findall(text):
                if preferred in term:
                    return preferred, term
    for text in texts:
        for term in HAN_RUN.findall(text):
            middle = len(term) // 2
            return term[middle - 1 : middle + 1], term
    return "", ""


def describe_zh_index(index_path: Path, index: dict, docs: list[dict], query: str) -> str:
    """What the index holds for Chinese, for a failure message."""
    separator = index.get("config", {}).get("separator", "")
    has_zwsp = "\\u200b" in separator or "\u200b" in separator
    segmented = sum("\u200b" in plain(d) for d in docs)
    tokens: set[str] = set()
    for doc in docs:
        for token in re.split(r"[\s\u200b]+", plain(doc)):
            if query and any(ch in token for ch in query):
                tokens.add(token)
    sample = [f"{d.get('location')!r}: {plain(d)[:120]!r}" for d in docs[:5]]
    return (
        f"index {index_path}: config.lang={index.get('config', {}).get('lang')}, separator={separator!r} "
        f"({'includes' if has_zwsp else 'LACKS'} \\u200b); "
        f"{len(docs)} zh entries, {segmented} of them segmented with \\u200b (jieba ran at build time: "
        f"{'yes' if segmented else 'NO'}); index tokens sharing a character with {query!r}: {sorted(tokens)[:30]}; "
        f"first entries: {sample}"
    )


# --- tests -----------------------------------------------------------------------------------------


def test_english_home(page: Page, recorder: Recorder, screenshot: Screenshot) -> None:
    visit(page, "/", screenshot, "en-home")
    assert "Last Mile Academy" in page.title()
    assert page.locator("html").get_attribute("lang") == "en"
    page.wait_for_load_state("networkidle")
    assert_no_errors(recorder)


def test_chinese_home(page: Page, recorder: Recorder, screenshot: Screenshot) -> None:
    visit(page, "/zh/", screenshot, "zh-home")
    assert page.locator("html").get_attribute("lang") == "zh"
    header = page.locator("header.md-header").inner_text()
    assert "最后一公里学院" in header, f"the Chinese header does not show the site name: {header!r}"
    assert "最后一公里学院" in page.title()
    page.wait_for_load_state("networkidle")
    assert_no_errors(recorder)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_notebook_page_renders_cells(
    page: Page, recorder: Recorder, screenshot: Screenshot, lang: str
) -> None:
    path = "/" + ("zh/" if lang == "zh" else "") + NOTEBOOK_PAGE
    visit(page, path, screenshot, f"{lang}-measure-first-call")
    body = page.locator("body").inner_text()
    assert not body.lstrip().startswith("{") and '"cell_type"' not in body, (
        f"{path} is raw notebook JSON, not a rendered page: {body[:200]!r}"
    )
    cells = page.locator(".jp-Cell").count()
    assert cells >= 1, f"{path}: no rendered notebook cells (.jp-Cell)"
    highlighted = page.locator(
        ".jp-CodeCell :is(.highlight-ipynb, .highlight) pre span[class]:not([class=''])"
    ).count()
    assert highlighted >= 1, f"{path}: {cells} cells but no code cell with highlighted source"
    assert_no_errors(recorder)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_notebook_source_shown_once(page: Page, lang: str) -> None:
    """mkdocs-jupyter puts a plain copy of each cell's source next to the highlighted one, for the copy
    button; the notebook CSS must hide it or every cell's code appears twice."""
    path = "/" + ("zh/" if lang == "zh" else "") + NOTEBOOK_PAGE
    visit(page, path)
    copies = page.locator(".jp-CodeCell .clipboard-copy-txt")
    shown = [copies.nth(i).inner_text()[:60] for i in range(copies.count()) if copies.nth(i).is_visible()]
    assert not shown, f"{path}: code cells show their source twice (.clipboard-copy-txt is visible): {shown}"


def test_search_english(page: Page, recorder: Recorder, screenshot: Screenshot, site_dir: Path) -> None:
    index_path, index = load_index(site_dir, "en")
    chinese = [d["location"] for d in index["docs"] if d["location"].startswith("zh/")]
    assert not chinese, f"{index_path} holds Chinese pages (each language has its own index): {chinese[:3]}"
    assert ENGLISH_QUERY in index_path.read_text(encoding="utf-8").lower(), (
        f"{ENGLISH_QUERY!r} does not occur in {index_path}: pick a word the site contains"
    )
    visit(page, "/")
    found = search(page, ENGLISH_QUERY)
    screenshot(page, "en-search")
    assert found >= 1, (
        f"searching {ENGLISH_QUERY!r} on / listed no result ({search_meta(page)!r}) although the index "
        f"{index_path} contains the word"
    )
    assert_no_errors(recorder)


def test_search_chinese_middle_of_word(
    page: Page, recorder: Recorder, screenshot: Screenshot, site_dir: Path
) -> None:
    index_path, index = load_index(site_dir, "zh")
    docs = zh_docs(index_path, index)
    query, term = pick_chinese_query(docs)
    assert query, "no Chinese term of 4 or more Han characters in the zh search index: " + describe_zh_index(
        index_path, index, docs, query
    )
    visit(page, "/zh/")
    found = search(page, query)
    screenshot(page, "zh-search")
    assert found >= 1, (
        f"searching {query!r} (from the middle of {term!r}) on /zh/ listed no result "
        f"({search_meta(page)!r}). " + describe_zh_index(index_path, index, docs, query)
    )
    hrefs = page.eval_on_selector_all(f"{SEARCH_RESULT} a", "links => links.map(a => a.href)")
    assert any(urlsplit(h).path.startswith("/zh/") for h in hrefs), (
        f"searching {query!r} on /zh/ found only non-Chinese pages: {hrefs}"
    )
    assert_no_errors(recorder)


@pytest.mark.parametrize("key", ["/", "s"])
def test_keyboard_opens_search(page: Page, recorder: Recorder, screenshot: Screenshot, key: str) -> None:
    visit(page, "/" + SWITCH_PAGE, screenshot, "en-first-call")
    assert not is_search_focused(page)
    open_search_with_keyboard(page, key)
    assert is_search_focused(page), f"pressing {key!r} did not focus the search input"
    assert_no_errors(recorder)


def tab_to(page: Page, selector: str, limit: int = 80) -> None:
    """Press Tab until the focused element matches the selector, as a keyboard user would."""
    page.locator("body").click(position={"x": 5, "y": 400})
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement && document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{page.url}: {selector} not reached after {limit} presses of Tab", pytrace=False)


def test_language_switcher_keeps_the_page(page: Page, recorder: Recorder, screenshot: Screenshot) -> None:
    visit(page, "/" + SWITCH_PAGE, screenshot, "en-first-call")
    tab_to(page, ".md-select a[hreflang=zh]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path_of(page) == "/zh/" + SWITCH_PAGE, f"the zh link led to {page.url}"
    assert page.locator("html").get_attribute("lang") == "zh"
    check_language_links(page)
    screenshot(page, "zh-first-call")

    tab_to(page, ".md-select a[hreflang=en]")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert path_of(page) == "/" + SWITCH_PAGE, f"the en link led back to {page.url}"
    assert page.locator("html").get_attribute("lang") == "en"
    screenshot(page, "en-first-call-back")
    assert_no_errors(recorder)


def test_language_sitemaps_resolve(page: Page, recorder: Recorder) -> None:
    """No page asks for a sitemap.xml that is not there (a console error on every page).

    Material fetches `sitemap.xml` under each `<link rel=alternate>`; the build drops those tags (its
    lookup ignores the port and sent readers to the other language's home), so none should be asked for.
    """
    for path in ("/", "/zh/", "/" + SWITCH_PAGE, "/zh/" + SWITCH_PAGE):
        visit(page, path)
        page.wait_for_load_state("networkidle")
    lookups = [
        (url, status) for url, status in recorder.responses if urlsplit(url).path.endswith("/sitemap.xml")
    ]
    missing = sorted({url for url, status in lookups if status != 200})
    assert not missing, (
        "Material's language switcher fetched sitemap.xml next to each <link rel=alternate> and got "
        "errors for:\n  " + "\n  ".join(missing) + "\nportal.site_hooks.languages removes the "
        "<link rel=alternate> tags that make Material fetch them (see squidfunk/mkdocs-material#6582)."
    )


def test_no_request_left_loopback(session_recorder: Recorder) -> None:
    """Across every test above (each test's own pages are also checked when its context closes)."""
    if not session_recorder.requests:
        pytest.skip("run together with the other browser tests")
    offending = sorted(set(session_recorder.offending()))
    assert not offending, "requests to hosts other than 127.0.0.1:\n  " + "\n  ".join(offending)
