"""Mermaid diagrams: rendered to SVG at build time where Chromium is at hand (see portal.diagrams), else drawn
in the browser by our pinned copy of mermaid, never by the one Material would fetch from unpkg.com."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

from mkdocs.exceptions import PluginError

from portal import diagrams
from portal.paths import ROOT

MERMAID = ROOT / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
MERMAID_DEST = "assets/javascripts/mermaid.min.js"
_MERMAID_BLOCK = re.compile(r'<pre class="mermaid"><code>(.*?)</code></pre>', re.S)


def inline_diagrams(content: str, where: str) -> str:
    """Replace mermaid sources with SVG rendered at build time; unchanged where no browser can render.

    `where` names the page in the error.
    """
    sources = [html.unescape(m) for m in _MERMAID_BLOCK.findall(content)]
    if not sources or not diagrams.can_render():
        return content
    try:
        svgs = diagrams.render(sources)
    except Exception as error:  # noqa: BLE001 - any browser failure: say which page, keep building
        raise PluginError(f"{where}: could not render its mermaid diagrams: {error}") from None
    return _MERMAID_BLOCK.sub(
        lambda m: f'<div class="lma-diagram">{svgs[html.unescape(m.group(1))]}</div>', content
    )


def needs_script(output: str) -> bool:
    """True when a diagram is left for the browser to draw."""
    return 'class="mermaid"' in output


def script_for(where: str, to_root: str) -> str:
    """The URL of our copy of mermaid from a page (`to_root` leads to the site root): the bundle loads
    unpkg's unless `mermaid` is defined, so this runs before it."""
    if not MERMAID.exists():
        raise PluginError(f"{where}: has a mermaid diagram but {MERMAID} is missing: run `make env`")
    return to_root + MERMAID_DEST


def copy_script(site: Path) -> None:
    """Our copy of mermaid into the site, for the pages that need it."""
    if MERMAID.exists():
        target = site / MERMAID_DEST
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MERMAID, target)
