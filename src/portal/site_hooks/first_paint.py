"""A first paint that waits for no request: critical CSS inlined, Material's stylesheets and script bundle
held until the browser has painted, then loaded by a small inline script.

Everything the first paint does not need is requested only once the browser reports the page's first
(largest) contentful paint, or 3 s after "load" where it cannot (a hidden tab paints nothing; browsers
without paint timing start at "load"). On a slow link those downloads would otherwise share the bandwidth
with the page itself, and Lighthouse's simulated Slow 3G counts every request that starts before the
largest paint as holding it up, blocking or not. Stylesheets keep their place in <head> (the cascade is
unchanged): each waits as a <link> without href until the loader gives it one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from portal.paths import DOCS

CRITICAL_CSS = Path(__file__).parents[1] / "critical.css"
# The two scripts are inlined, not served: one runs before the stylesheets, the other is what loads them
# (and the bundle), so a request for either would hold up the first paint. Their sources are files all
# the same, read here at build time.
INLINE_SCRIPTS = DOCS / "assets" / "javascripts" / "inline"
LOADING_SCRIPT = INLINE_SCRIPTS / "loading.js"
LOADER_SCRIPT = INLINE_SCRIPTS / "loader.js"

_STYLESHEET = re.compile(r'<link rel="stylesheet" href="([^"]+\.css)">')
_BUNDLE = re.compile(r'<script src="([^"]*assets/javascripts/bundle\.[0-9a-f]+\.min\.js)"></script>')
_LEADING_COMMENT = re.compile(r"\A\s*/\*.*?\*/\s*", re.S)


def script_source(path: Path) -> str:
    """A script file as it goes into a page: without its leading /* comment */ and final newline."""
    return _LEADING_COMMENT.sub("", path.read_text(encoding="utf-8"), count=1).rstrip("\n")


def scope_to_loading(css: str) -> str:
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


def critical_head(output: str, critical_css: str, loading_script: str) -> str:
    """Inline the critical CSS (already scoped) and hold the stylesheets for the loader.

    `loading_script` (loading.js) sets lma-loading on <html> until every held stylesheet has loaded;
    it counts them from `STYLESHEET_COUNT`, which is replaced by their number.
    """
    links = _STYLESHEET.findall(output)
    if not links:
        return output
    # media "print" until loaded, so that a stylesheet arriving early never blocks rendering either.
    held = "".join(f'<link rel="stylesheet" data-lma-href="{href}" media="print">' for href in links)
    loading = "<script>" + loading_script.replace("STYLESHEET_COUNT", str(len(links))) + "</script>"
    fallback = "<noscript>" + "".join(f'<link rel="stylesheet" href="{h}">' for h in links) + "</noscript>"
    at = _STYLESHEET.search(output).start()
    output = output[:at] + "\0" + _STYLESHEET.sub("", output[at:])
    head = f"{loading}<style>{critical_css}</style>{held}{fallback}"
    return output.replace("\0", head, 1)


def deferred_scripts(output: str, before_bundle: list[str], loader_script: str) -> str:
    """Replace Material's bundle tag with the loader (loader.js), which runs `before_bundle`, then the
    bundle, in that order, after the first paint."""
    bundle = _BUNDLE.search(output)
    if not bundle:
        return output
    scripts = json.dumps([*before_bundle, bundle.group(1)])
    tag = (
        f'<script type="application/json" id="lma-scripts">{scripts}</script><script>{loader_script}</script>'
    )
    return output[: bundle.start()] + tag + output[bundle.end() :]


class FirstPaint:
    """The critical CSS and the two inline scripts, read once per build."""

    def __init__(self) -> None:
        self.css = scope_to_loading(CRITICAL_CSS.read_text(encoding="utf-8"))
        self.loading = script_source(LOADING_SCRIPT)
        self.loader = script_source(LOADER_SCRIPT)

    def head(self, output: str) -> str:
        return critical_head(output, self.css, self.loading)

    def scripts(self, output: str, before_bundle: list[str]) -> str:
        return deferred_scripts(output, before_bundle, self.loader)
