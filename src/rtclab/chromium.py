"""Start headless Chromium so that it talks to loopback only: the one place this project launches it.

Browser tests, Lighthouse, diagram rendering and the browser-interop samples all start Chromium here, with
the flags below. Debian's Chromium looks up Google's hosts on every start even with background networking
off; the host-resolver rule answers every name but loopback with "not found" before a DNS query is sent.

    from playwright.async_api import async_playwright
    from rtclab.chromium import launch

    async with async_playwright() as pw:
        browser = await launch(pw.chromium, "--use-fake-ui-for-media-stream")

(The sync API works the same way, without the await.) A test `tests/rtclab/test_chromium.py` fails when
Chromium is started anywhere else, and `make test` runs the samples and browser tests under strace to
prove no packet goes past 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

INSTALL_HINT = "Chromium is not installed: run `apt-get install chromium` (Debian package chromium)"

# --8<-- [start:flags]
LOOPBACK_ONLY_FLAGS = [
    # Resolve nothing but loopback: without this, Debian's Chromium sends DNS queries for
    # accounts.google.com, clients2.google.com and update.googleapis.com on every start.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--disable-background-networking",  # no safe-browsing, translation or field-trial fetches
    "--disable-component-update",  # no component (CRLSet, Widevine) downloads
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",  # no first-run page, no default-browser check
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",  # these machines have none
]
# --8<-- [end:flags]


class ChromiumMissingError(RuntimeError):
    """No Chromium executable where we looked; the message says how to install it."""


def chromium_path(path: str | None = None) -> str:
    """The Chromium executable: ``path``, else $CHROME_PATH, else /usr/bin/chromium (or `chromium` on PATH).

    Raises:
        ChromiumMissingError: none of them is an executable file.
    """
    chosen = path or os.environ.get("CHROME_PATH")
    wanted = chosen or "/usr/bin/chromium"
    if os.path.isfile(wanted) and os.access(wanted, os.X_OK):
        return wanted
    # A path someone chose must exist; only the default may fall back to `chromium` on PATH.
    found = shutil.which(wanted) or (None if chosen else shutil.which("chromium"))
    if found is None:
        raise ChromiumMissingError(f"{INSTALL_HINT} (looked for {wanted})")
    return found


def flags(*extra: str) -> list[str]:
    """The loopback-only flags, then ``extra`` (a sample's own switches, such as fake media devices)."""
    return [*LOOPBACK_ONLY_FLAGS, *extra]


def launch(browser_type: Any, *extra: str, path: str | None = None, **options: Any) -> Any:
    """``browser_type.launch(...)`` headless with the loopback-only flags; Playwright's sync or async API.

    ``browser_type`` is ``playwright.chromium``; with the async API, await the result.
    """
    return browser_type.launch(
        executable_path=chromium_path(path), headless=True, args=flags(*extra), **options
    )


def lighthouse_flags(*extra: str) -> str:
    """The same flags as one ``--chrome-flags`` value for Lighthouse (values with spaces quoted)."""
    quoted = [
        f'{flag.split("=", 1)[0]}="{flag.split("=", 1)[1]}"' if " " in flag else flag
        for flag in ["--headless", *flags(*extra)]
    ]
    return " ".join(quoted)
