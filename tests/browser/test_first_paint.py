"""The first screen looks the same before and after Material's stylesheets arrive.

Pages paint first with the inlined critical CSS (src/portal/critical.css) and get Material's stylesheets
later (portal.site_hooks). If a rule differs on the first screen, text moves when they land and, worse for
a reader on Slow 3G, Chrome counts that text as a new, later "largest contentful paint": a `display` change
rebuilds the boxes below it, and a re-wrapped line is painted again. That happened with lists
(`display: flow-root` in Material) and inline code (its padding) and cost the tutorial 3 s of LCP on Slow 3G.
This compares, on a phone-sized screen, every text block in view while the stylesheets are held back
with the same blocks once everything has loaded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import is_allowed
from playwright.sync_api import Browser, Route

from portal import budgets

PHONE = {"width": 412, "height": 823}  # Lighthouse's mobile screen
TOLERANCE_PX = 2
BLOCKS = "article h1, article h2, article h3, article p, article li, article pre, article table, article .admonition"
GEOMETRY = """([selector, height]) => [...document.querySelectorAll(selector)].flatMap(el => {
  const r = el.getBoundingClientRect();
  if (r.top >= height || r.bottom <= 0 || r.width === 0) return [];
  return [{what: el.tagName.toLowerCase() + ': ' + el.textContent.trim().slice(0, 40),
           display: getComputedStyle(el).display, top: Math.round(r.top), height: Math.round(r.height)}];
})"""


def first_screen(browser: Browser, url: str, *, hold_stylesheets: bool) -> list[dict[str, object]]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=1.75, is_mobile=True)
    held: list[Route] = []

    def route(request_route: Route) -> None:
        request = request_route.request
        if not is_allowed(request.url):
            request_route.abort()
        elif hold_stylesheets and request.resource_type in ("stylesheet", "script") and request.url != url:
            held.append(request_route)  # never answered: the page stays in its critical-CSS state
        else:
            request_route.continue_()

    context.route("**/*", route)
    try:
        page = context.new_page()
        page.goto(url, wait_until="load")
        if hold_stylesheets:
            page.wait_for_timeout(500)
            assert "lma-loading" in page.evaluate("document.documentElement.className"), (
                f"{url}: the page left its loading state with the stylesheets held back"
            )
        else:
            page.wait_for_function("!document.documentElement.classList.contains('lma-loading')")
            page.wait_for_load_state("networkidle")
        return page.evaluate(GEOMETRY, [BLOCKS, PHONE["height"]])
    finally:
        for pending in held:
            pending.abort()
        context.close()


@pytest.mark.parametrize("kind", ["home", "tutorial", "notebook"])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_first_screen_does_not_move_when_the_stylesheets_land(
    browser: Browser, base_url: str, site_dir: Path, kind: str, lang: str
) -> None:
    page = next(p for p in budgets.audited_pages(site_dir) if p.kind == kind and p.lang == lang)
    url = f"{base_url}/{page.path}"
    before = first_screen(browser, url, hold_stylesheets=True)
    after = {block["what"]: block for block in first_screen(browser, url, hold_stylesheets=False)}
    assert before, f"/{page.path}: no text on the first screen"
    moved = []
    for block in before:
        final = after.get(block["what"])
        if final is None:
            continue  # below the fold once styled: it cannot be the largest paint there
        if block["display"] != final["display"]:
            moved.append(f"{block['what']!r}: display {block['display']} -> {final['display']}")
        elif any(abs(block[k] - final[k]) > TOLERANCE_PX for k in ("top", "height")):
            moved.append(
                f"{block['what']!r}: top {block['top']} -> {final['top']}, height {block['height']} -> {final['height']}"
            )
    assert not moved, (
        f"/{page.path}: the first screen changes when Material's CSS arrives (fix src/portal/critical.css):\n  "
        + "\n  ".join(moved)
    )
