"""Render mermaid diagrams to inline SVG when the site is built, so no page downloads mermaid (3.5 MB).

Rendering drives Debian's Chromium through Playwright with the mermaid copy pinned in package-lock.json.
Each SVG is cached in build/cache/diagrams/ under a hash of the diagram, mermaid's version and the
settings below, so a diagram is rendered once. Where Chromium is missing (a contributor's laptop),
pages keep the diagram source and the browser renders it with the local mermaid copy instead.
"""

from __future__ import annotations

import functools
import hashlib
import json

from portal.paths import BUILD, ROOT
from rtclab.chromium import ChromiumMissingError, chromium_path, launch

MERMAID = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
CACHE = BUILD / "cache" / "diagrams"
SETTINGS = {
    "startOnLoad": False,
    "theme": "neutral",
    "securityLevel": "strict",
    "fontFamily": 'system-ui, "Segoe UI", Roboto, Arial, "PingFang SC", "Microsoft YaHei", "Noto Sans CJK SC", sans-serif',
    "sequence": {"useMaxWidth": True},
    "flowchart": {"useMaxWidth": True},
}


def can_render() -> bool:
    """True when this machine can pre-render diagrams (Chromium and the pinned mermaid are present)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    try:
        chromium_path()
    except ChromiumMissingError:
        return False
    return MERMAID.exists()


@functools.cache
def _version() -> str:
    package = MERMAID.parents[1] / "package.json"
    return json.loads(package.read_text(encoding="utf-8"))["version"]


def diagram_id(source: str) -> str:
    digest = hashlib.sha256(f"{_version()}\n{json.dumps(SETTINGS, sort_keys=True)}\n{source}".encode())
    return f"lma-diagram-{digest.hexdigest()[:12]}"


def render(sources: list[str]) -> dict[str, str]:
    """SVG markup for each mermaid source, from the cache or rendered now in one browser session."""
    svgs: dict[str, str] = {}
    missing = []
    for source in sources:
        cached = CACHE / f"{diagram_id(source)}.svg"
        if cached.exists():
            svgs[source] = cached.read_text(encoding="utf-8")
        else:
            missing.append(source)
    if missing:
        from playwright.sync_api import sync_playwright

        CACHE.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = launch(playwright.chromium)
            page = browser.new_page()
            # No network at all: the page is blank and mermaid comes from node_modules.
            page.route("**/*", lambda route: route.abort())
            page.set_content("<!doctype html><html><body></body></html>")
            page.add_script_tag(path=str(MERMAID))
            page.evaluate("settings => mermaid.initialize(settings)", SETTINGS)
            for source in missing:
                svg = page.evaluate(
                    "async ([id, text]) => (await mermaid.render(id, text)).svg", [diagram_id(source), source]
                )
                (CACHE / f"{diagram_id(source)}.svg").write_text(svg, encoding="utf-8")
                svgs[source] = svg
            browser.close()
    return svgs
