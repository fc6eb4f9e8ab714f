"""Write samples/support/dumps/README.md: one row per fixture file, read back from the files themselves (user
agent, size, date), with the scenario's description from scenarios.py. capture_dumps.py calls it last.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

CHROME = re.compile(r"(?:Headless)?Chrome/[\d.]+")
WAYS = {
    ".legacy.webrtc-internals.json": "legacy webrtc-internals layout (pre-M90), **converted, not captured**",
    ".webrtc-internals.json": "chrome://webrtc-internals → Create a WebRTC-Internals dump (uncompressed)",
    ".rtcstats": "@jitsi/rtcstats 9.7.1 in the page → samples/support/rtcstats_collector.py",
}
INTRO = """# Support desk dump fixtures

Real stats dumps for `rtclab diagnose`: headless {browser} calls an aiortc peer on 127.0.0.1, inside
a network namespace with only `lo`, while the aiortc side impairs the path with `rtclab.impair` (what it sends
toward the browser, and what it receives from it). Each call is saved two ways at once: the webrtc-internals
dump download (tab opened before the call, dump taken while the call is up) and the rtcstats trace the page
sent to the collector (a metadata object line with the user agent, then one JSON array per entry,
`[method, pcId, payload, timestamp, seq]`; `getstats` payloads are delta-compressed and candidate addresses
obfuscated by rtcstats). Connected calls carry
about {seconds:g} s of audio and video both ways. Regenerate with `make dumps`
(`samples/support/harness/capture_dumps.py`). The user agent's version is reduced by Chromium (`156.0.0.0`).

| File | Scenario | How it was made (direction: the browser user's) | Capture way | Chromium (user agent) | Made | Size |
|---|---|---|---|---|---|---|
"""


def user_agent(path: Path) -> str:
    if path.suffix == ".rtcstats":
        return json.loads(path.read_text(encoding="utf-8").splitlines()[0])["userAgent"]
    return json.loads(path.read_text(encoding="utf-8"))["UserAgent"]


def write_readme(folder: Path, how: dict[str, str], browser: str, seconds: float) -> Path:
    """Rewrite ``folder/README.md`` from the fixtures present; ``how`` maps a scenario to its description."""
    rows = []
    for path in sorted(folder.iterdir()):
        way = next((w for suffix, w in WAYS.items() if path.name.endswith(suffix)), None)
        if way is None:
            continue
        scenario = path.name.split(".")[0]
        made = dt.date.fromtimestamp(path.stat().st_mtime).isoformat()
        description = how.get(scenario, "")
        if ".legacy." in path.name:
            description = f"`{scenario}.webrtc-internals.json` rewritten by `harness/to_legacy_dump.py`"
        found = CHROME.search(user_agent(path))
        rows.append(
            f"| `{path.name}` | {scenario} | {description} | {way} | {found.group(0) if found else '?'} "
            f"| {made} | {path.stat().st_size / 1000:.0f} kB |"
        )
    readme = folder / "README.md"
    readme.write_text(
        INTRO.format(browser=browser, seconds=seconds) + "\n".join(rows) + "\n", encoding="utf-8"
    )
    return readme
