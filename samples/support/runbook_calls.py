"""One loopback call under a network, its stats timeline diagnosed with the rules a player's dump gets.

`samples/support/reproduce.py` runs two of these per runbook, the problem and the fix. A call here is an
`rtclab.call.LoopbackCall` (127.0.0.1 candidates only, no STUN server); its timeline is written with
`rtclab.dumps.timeline_json`, read back with `rtclab.dumps.parse_dump` and judged by `rtclab.diagnose.diagnose`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rtclab.call import LoopbackCall
from rtclab.diagnose import diagnose
from rtclab.dumps import parse_dump, timeline_json
from rtclab.freezes import freezes


@dataclass(frozen=True)
class DiagnosedCall:
    """A call's diagnosis: the report `rtclab.diagnose.diagnose` returns for its stats timeline."""

    report: dict[str, Any]

    def has(self, finding: str) -> bool:
        return any(f["id"] == finding for f in self.report["findings"])


# --8<-- [start:diagnosed_call]
async def diagnosed_call(label: str, arguments: dict[str, Any], seconds: float) -> DiagnosedCall:
    """Run one `LoopbackCall` with ``arguments`` for ``seconds`` and diagnose its stats timeline."""
    call = LoopbackCall(**{"sample_interval": 0.5, **arguments})
    try:
        async with call:
            await call.run(seconds)
    except (TimeoutError, ConnectionError):
        pass  # a call that never connects is the 'cannot connect' runbook; its empty timeline says so
    # aiortc's stats count no freezes: the callee's decoded-frame times are the only source
    video = call.frame_times.get("video", [])
    frozen = {"video": freezes(video, "video")} if len(video) > 1 else {}
    timeline = timeline_json(call.timeline, label=label, freezes=frozen)
    return DiagnosedCall(diagnose(parse_dump(json.dumps(timeline).encode(), source=label)))


# --8<-- [end:diagnosed_call]


def _number(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{unit}"


def figures(call: DiagnosedCall) -> dict[str, str]:
    """The figures a runbook looks at, as text: RTT, audio loss and jitter, video bitrate and freezes, MOS."""
    connection = call.report["connections"][0] if call.report["connections"] else None
    if connection is None or not connection["connected"]:
        return {"connected": "no"}
    streams = {s["kind"]: s for s in connection["streams"]}
    audio, video = streams.get("audio", {}), streams.get("video")
    shown = {
        "connected": "yes",
        "RTT p50": _number((connection["rtt_ms"] or {}).get("p50"), " ms"),
        "audio loss": _number(audio.get("loss_pct"), " %"),
        "audio jitter p95": _number((audio.get("jitter_ms") or {}).get("p95"), " ms"),
    }
    if video is not None:
        shown["video sent p50"] = _number((video["bitrate_kbps"] or {}).get("p50"), " kbps")
        shown["video frozen"] = _number(video["freeze_pct"], " %")
    shown["MOS (stock aiortc receiver)"] = _number((connection["mos"] or {}).get("mos"), "")
    return shown


def findings(call: DiagnosedCall) -> str:
    """The findings as ``P2 audio-loss, P3 rtt-high``, most severe first, or ``none``."""
    return ", ".join(f"{f['severity']} {f['id']}" for f in call.report["findings"]) or "none"


def table(before: DiagnosedCall, after: DiagnosedCall | None) -> str:
    """Before and after side by side, one figure a line, then each call's findings on a line of its own."""
    left, right = figures(before), figures(after) if after is not None else {}
    rows = [(name, left.get(name, "-"), right.get(name, "-")) for name in {**left, **right}]
    width = max(len(name) for name, _, _ in rows)
    middle = max(len("problem"), *(len(value) for _, value, _ in rows))
    lines = [f"  {'':<{width}}  {'problem':<{middle}}  {'fix' if after is not None else ''}".rstrip()]
    lines += [
        f"  {name:<{width}}  {a:<{middle}}  {b if after is not None else ''}".rstrip() for name, a, b in rows
    ]
    lines.append(f"  findings, problem: {findings(before)}")
    if after is not None:
        lines.append(f"  findings, fix:     {findings(after)}")
    return "\n".join(lines)
