"""The offline bundle works from file:// in Chromium: pages, search in both languages, links, no network."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from page_ready import wait_until_ready
from playwright.sync_api import Browser, Page

from portal.offline import ARCHIVE

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not ARCHIVE.exists():
        pytest.fail(f"{ARCHIVE} is missing: run make offline first", pytrace=False)
    target = tmp_path_factory.mktemp("offline")
    with zipfile.ZipFile(ARCHIVE) as archive:
        archive.extractall(target)  # anywhere on disk, as a trainer would unzip it
    return target / "last-mile-academy"


@pytest.fixture()
def offline_page(browser: Browser):
    context = browser.new_context()
    page = context.new_page()
    page.requests, page.errors = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    # Nothing but the unzipped files may be read: any other request is refused and reported.
    context.route(
        "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
    )
    yield page
    context.close()
    outside = [url for url in page.requests if not url.startswith(("file:", "data:", "blob:"))]
    assert not outside, f"the offline bundle made requests outside file://: {outside}"
    assert not page.errors, f"errors in the offline bundle: {page.errors}"


def search(page: Page, query: str) -> int:
    page.locator("body").click(position={"x": 5, "y": 400})
    page.keyboard.press("/")
    page.keyboard.type(query, delay=30)
    page.keyboard.press("End")  # Material reads the query on key release
    results = page.locator(".md-search-result__item")
    try:
        results.first.wait_for(state="attached", timeout=15_000)
    except Exception:  # noqa: BLE001 - reported as "no result" below
        return 0
    return results.count()


def test_start_page_leads_to_the_site(offline_page: Page, bundle: Path):
    offline_page.goto((bundle / "index.html").as_uri())
    offline_page.wait_for_url("**/site/index.html")
    assert "Last Mile Academy" in offline_page.title()


@pytest.mark.parametrize(("start", "query"), [("site/index.html", "jitter"), ("site/zh/index.html", "缓冲")])
def test_search_works_from_file(offline_page: Page, bundle: Path, start: str, query: str):
    offline_page.goto((bundle / start).as_uri())
    wait_until_ready(offline_page)
    assert search(offline_page, query) >= 1, f"searching {query!r} from file://{start} found nothing"


def test_links_lead_to_rendered_pages(offline_page: Page, bundle: Path):
    offline_page.goto((bundle / "site/get-started/first-call.html").as_uri())
    wait_until_ready(offline_page)
    offline_page.locator("a[href='measure-first-call.html']").first.click()
    offline_page.wait_for_url("**/get-started/measure-first-call.html")
    assert offline_page.locator(".jp-Cell").count() > 5, "the notebook page has no rendered cells"
    wait_until_ready(offline_page)
    offline_page.locator(".md-select a[hreflang=zh]").first.dispatch_event("click")
    offline_page.wait_for_url("**/zh/get-started/measure-first-call.html")
    assert (bundle / "notebooks/get-started/measure-first-call.ipynb").exists()
