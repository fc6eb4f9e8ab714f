"""Every page passes axe-core's WCAG 2 A/AA rules in both the light and the dark palette.

Lighthouse (the budget test) audits three pages in the light palette; this covers every page in both,
contrast included. axe-core is the engine Lighthouse uses, pinned in package.json.

The palettes differ only in colours (Material's `data-md-color-scheme` swaps CSS custom properties), so every
rule runs in the light one and the rules that read colours run again in the dark one.
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
# What the dark palette can change: the colours of text against its background, and of links against the text
# around them. Every other WCAG 2 A/AA rule reads the same DOM in both palettes.
COLOUR_RULES = ("color-contrast", "link-in-text-block")
# Two frames: the style change is applied and painted before axe reads the colours.
NEXT_PAINT = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def pages(site: Path) -> list[str]:
    return sorted(
        str(p.parent.relative_to(site)).replace(".", "") + "/" if p.parent != site else ""
        for p in site.rglob("index.html")
        if "assets" not in p.parts
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("language", ["en", "zh"])  # two halves, so `make browser`'s two workers share them
def test_every_page_passes_axe_in_both_palettes(browser: Browser, site_dir: Path, language: str):
    assert AXE.exists(), f"{AXE} is missing: run make env"
    half = [path for path in pages(site_dir) if path.startswith("zh/") == (language == "zh")]
    assert len(half) > 10, f"only {len(half)} {language} pages in {site_dir}"
    failures = []
    with serve(site_dir) as base:
        context = browser.new_context()
        # Nothing leaves 127.0.0.1 here either.
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) else r.abort())
        page = context.new_page()
        for path in half:
            page.goto(base + path, wait_until="load")
            wait_until_ready(page)
            # Colours are checked as they end up: Material animates the tabs in, and on a long page the palette's
            # colour transitions can still be running when axe reads them.
            page.add_style_tag(
                content="*,*::before,*::after{transition:none!important;animation:none!important}"
            )
            page.add_script_tag(path=str(AXE))
            for palette in PALETTES:
                page.evaluate(f"document.body.setAttribute('data-md-color-scheme', '{palette}')")
                page.evaluate(NEXT_PAINT)
                only = (
                    "{type: 'tag', values: ['wcag2a', 'wcag2aa']}"
                    if palette == PALETTES[0]
                    else f"{{type: 'rule', values: {list(COLOUR_RULES)}}}"
                )
                violations = page.evaluate(
                    f"""async () => (await axe.run(document, {{runOnly: {only}}})).violations
                        .map(v => `${{v.id}}: ${{v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | ')}}`)"""
                )
                failures += [f"/{path} ({palette}): {v}" for v in violations]
        context.close()
    assert not failures, f"{len(failures)} accessibility violation(s):\n" + "\n".join(failures)
