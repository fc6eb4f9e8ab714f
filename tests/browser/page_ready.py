"""Wait for a page to be fully styled and scripted before a test clicks or measures it."""

from __future__ import annotations

from playwright.sync_api import Page

# The stylesheets and Material's bundle load after the first paint (portal.site_hooks): a test that
# clicks or measures styles waits until both are in.
READY = "!document.documentElement.classList.contains('lma-loading') && window.document$ !== undefined"


def wait_until_ready(page: Page) -> None:
    """Wait until a loaded page has its stylesheets and Material's script running."""
    page.wait_for_function(READY, timeout=30_000)
