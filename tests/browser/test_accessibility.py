"""Every page passes axe-core's WCAG 2 A/AA rules in both the light and the dark palette.

Lighthouse (the budget test) audits three pages in the light palette; this covers every page in both,
contrast included. axe-core is the engine Lighthouse uses, pinned in package.json.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from page_ready import wait_until_ready
from playwright.sync_api import Browser

from portal.lighthouse import serve
from portal.paths import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
PALETTES = ("default", "slate")  # Material's light and dark schemes


def pages(site: Path) -> list[str]:
    return sorted(
        str(p.parent.relative_to(site)).replace(".", "") + "/" if p.parent != site else ""
        for p in site.rglob("index.html")
        if "assets" not in p.parts
    )


@pytest.mark.timeout(600)
def test_every_page_passes_axe_in_both_palettes(browser: Browser, site_dir: Path):
    assert AXE.exists(), f"{AXE} is missing: run make env"
    failures = []
    with serve(site_dir) as base:
        context = browser.new_context()
        # Nothing leaves 127.0.0.1 here either.
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
        page = context.new_page()
        for path in pages(site_dir):
            page.goto(base + path, wait_until="load")
            wait_until_ready(page)
            page.wait_for_timeout(500)  # Material animates the tabs in; measure colours once they settle
            page.add_script_tag(path=str(AXE))
            # Colours are checked as they end up: on a long page the palette's colour transitions can still be
            # running when axe reads them.
            page.add_style_tag(
                content="*,*::before,*::after{transition:none!important;animation:none!important}"
            )
            for palette in PALETTES:
                page.evaluate(f"document.body.setAttribute('data-md-color-scheme', '{palette}')")
                page.wait_for_timeout(300)  # colour transitions
                violations = page.evaluate(
                    """async () => (await axe.run(document, {runOnly: ['wcag2a', 'wcag2aa']})).violations
                        .map(v => `${v.id}: ${v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}`)"""
                )
                failures += [f"/{path} ({palette}): {v}" for v in violations]
        context.close()
    assert not failures, f"{len(failures)} accessibility violation(s):\n" + "\n".join(failures)
