"""Fixtures of the browser test: the built site on a loopback HTTP server and one headless Chromium.

The site directory is `portal.paths.SITE` (what `make build` writes); `LMA_SITE_DIR` overrides it.
Every request the pages make is recorded, anything not addressed to 127.0.0.1 is aborted before it
leaves the machine, and each test fails if its pages even tried to reach another host.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Request,
    Response,
    Route,
    sync_playwright,
)

from portal.paths import REPORTS, SITE
from rtclab.chromium import launch

LOOPBACK = "127.0.0.1"
# Always under the repository's build/, even when LMA_SITE_DIR points elsewhere: CI keeps these.
SCREENSHOTS = REPORTS / "screenshots"


def is_allowed(url: str) -> bool:
    """Only the loopback server, plus URLs that never touch the network."""
    if url.startswith(("data:", "blob:")):
        return True
    return urlsplit(url).hostname == LOOPBACK


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the browser drops connections it no longer needs (navigation, closed pages)


@pytest.fixture(scope="session")
def site_dir() -> Path:
    site = Path(os.environ.get("LMA_SITE_DIR") or SITE)
    if not (site / "index.html").is_file():
        pytest.fail("build the site first: make build", pytrace=False)
    return site


@pytest.fixture(scope="session")
def base_url(site_dir: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site_dir))
    server = _QuietServer((LOOPBACK, 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="site-server", daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = launch(pw.chromium)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Recorder:
    """What the pages of one test did: every request URL, console errors, uncaught exceptions."""

    requests: list[str] = field(default_factory=list)
    responses: list[tuple[str, int]] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def offending(self) -> list[str]:
        return [url for url in self.requests if not is_allowed(url)]


@pytest.fixture(scope="session")
def session_recorder() -> Recorder:
    """Every request of the whole session, for the final summary test."""
    return Recorder()


@pytest.fixture()
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture()
def context(
    browser: Browser, base_url: str, recorder: Recorder, session_recorder: Recorder
) -> Iterator[BrowserContext]:
    ctx = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900}, locale="en-US")

    def on_request(request: Request) -> None:
        recorder.requests.append(request.url)
        session_recorder.requests.append(request.url)

    def on_response(response: Response) -> None:
        recorder.responses.append((response.url, response.status))

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            recorder.console_errors.append(f"{message.text} ({message.location.get('url', '')})")

    def on_page(page: Page) -> None:
        page.on("console", on_console)
        page.on("pageerror", lambda error: recorder.page_errors.append(str(error)))

    def guard(route: Route) -> None:
        if is_allowed(route.request.url):
            route.continue_()
        else:
            route.abort()

    ctx.on("request", on_request)
    ctx.on("response", on_response)
    ctx.on("page", on_page)
    ctx.route("**/*", guard)
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()
    offending = recorder.offending()
    if offending:
        pytest.fail(
            "pages requested something other than 127.0.0.1 (aborted):\n  "
            + "\n  ".join(sorted(set(offending))),
            pytrace=False,
        )


@pytest.fixture()
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
