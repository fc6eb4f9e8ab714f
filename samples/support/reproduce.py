"""Reproduce a runbook's problem on a loopback call, apply its fix, and let `rtclab diagnose` judge both.

Each case is one finding family from the support runbooks. An aiortc call over 127.0.0.1 runs under the
network that causes the problem (rtclab.impair on what the caller sends), its stats timeline is diagnosed
with the same rules as a player's dump, then the call runs again with the fix and is diagnosed again. The
fix works when the finding is gone. Cases whose fix aiortc cannot apply (it has no FEC, no RED, no adaptive
jitter buffer of its own, no TURN over TCP here) show the problem only and say where the fix is measured.

Run it:

    .venv/bin/python samples/support/reproduce.py                  # every case, about 1 minute
    .venv/bin/python samples/support/reproduce.py high-rtt --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from rtclab.call import LoopbackCall
from rtclab.diagnose import diagnose
from rtclab.dumps import parse_dump, timeline_json
from rtclab.encoders import VideoEncoderSettings
from rtclab.impair import GilbertElliott, Impairment
from rtclab.stats import freezes


@dataclass(frozen=True)
class Case:
    finding: str  # the rule id the problem must raise
    problem: dict[str, Any]  # LoopbackCall arguments that cause it
    fix: dict[str, Any] | None = None  # the same call with the fix, or None when aiortc cannot apply it
    fix_is: str = ""  # what the fix changes, in a few words
    measured_in: str = ""  # where the fix is measured when it is not here
    extra: dict[str, Any] = field(default_factory=dict)


def both_ways(delay_ms: float) -> dict[str, Impairment]:
    return {"uplink": Impairment(delay_ms=delay_ms), "downlink": Impairment(delay_ms=delay_ms)}


# --8<-- [start:cases]
CASES = {
    "high-rtt": Case(
        finding="rtt-high",
        problem=both_ways(250),  # a media server on another continent: 250 ms each way
        fix=both_ways(60),  # a server in the player's region
        fix_is="media server in the player's region (one way 250 -> 60 ms)",
    ),
    "video-freezes": Case(
        finding="video-freezes",
        problem={"uplink": Impairment(rate_kbps=250, queue_ms=300)},  # aiortc's VP8 floor is 250 kbps
        fix={
            "uplink": Impairment(rate_kbps=250, queue_ms=300),
            "video_encoder": VideoEncoderSettings(target_kbps=120, min_kbps=80, max_kbps=150),
        },
        fix_is="video capped under the link (VP8 at most 150 kbps)",
    ),
    "bursty-loss": Case(
        finding="audio-loss",
        problem={"uplink": Impairment(burst=GilbertElliott(p=0.02, r=0.3), seed=1)},  # 6.3 % in bursts of ~3
        measured_in="notebook tuning/audio-under-loss (Opus FEC and redundancy, measured)",
    ),
    "audio-glitches": Case(
        finding="audio-jitter",
        problem={
            "uplink": Impairment(delay_ms=80, jitter_ms=60, reorder=True)
        },  # a busy cell: packets spread and overtake
        measured_in="notebook tuning/jitter-buffer (fixed vs adaptive buffer, measured)",
    ),
    "cannot-connect": Case(
        finding="not-connected",
        problem={"uplink": Impairment(loss=1.0), "connect_timeout": 4.0},  # every UDP datagram dropped
        measured_in="TURN over TCP/TLS 443 needs a TURN server (coturn); not run here",
    ),
}
# --8<-- [end:cases]


async def diagnosed_call(name: str, arguments: dict[str, Any], seconds: float) -> dict[str, Any]:
    """One call under ``arguments``, its timeline diagnosed like a player's dump."""
    call = LoopbackCall(sample_interval=0.5, **arguments)
    try:
        async with call:
            await call.run(seconds)
    except (TimeoutError, ConnectionError, RuntimeError):
        pass  # a call that never connects is the 'cannot connect' case; its empty timeline says so
    frozen = (
        {"video": freezes(call.frame_times["video"], "video")}
        if len(call.frame_times.get("video", [])) > 1
        else {}
    )
    text = json.dumps(timeline_json(call.timeline, label=name, freezes=frozen))
    return diagnose(parse_dump(text, name))


def figures(report: dict[str, Any]) -> str:
    connection = report["connections"][0] if report["connections"] else None
    if connection is None or not connection["connected"]:
        return "never connected"
    rtt = (connection["rtt_ms"] or {}).get("p50")
    parts = [f"RTT {rtt:g} ms" if rtt is not None else "RTT -"]
    for stream in connection["streams"]:
        parts.append(
            f"{stream['kind']} loss {stream['loss_pct'] if stream['loss_pct'] is not None else '-'} %"
        )
        if stream["freeze_pct"] is not None:
            parts.append(f"video frozen {stream['freeze_pct']:g} %")
    return ", ".join(parts)


def findings(report: dict[str, Any]) -> str:
    return ", ".join(f"{f['severity']} {f['id']}" for f in report["findings"]) or "none"


async def run_case(name: str, case: Case, seconds: float) -> bool:
    print(f"# --8<-- [start:{name}]")
    before = await diagnosed_call(name, case.problem, seconds)
    print(f"{name}: the problem")
    print(f"  {figures(before)}\n  findings: {findings(before)}")
    raised = any(f["id"] == case.finding for f in before["findings"])
    ok = raised
    if case.fix is not None:
        after = await diagnosed_call(name, case.fix, seconds)
        gone = not any(f["id"] == case.finding for f in after["findings"])
        print(f"{name}: with the fix: {case.fix_is}")
        print(f"  {figures(after)}\n  findings: {findings(after)}")
        print(
            f"  {case.finding}: {'raised' if raised else 'NOT raised'} before, {'gone' if gone else 'STILL THERE'} after"
        )
        ok = raised and gone
    else:
        print(f"  {case.finding}: {'raised' if raised else 'NOT raised'}; the fix: {case.measured_in}")
    print(f"# --8<-- [end:{name}]")
    return ok


async def main_async(names: list[str], seconds: float) -> int:
    results = [await run_case(name, CASES[name], seconds) for name in names]
    return 0 if all(results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "cases", nargs="*", metavar="CASE", help=f"one or more of {', '.join(CASES)} (default all)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="seconds of media per call (default 5, 2-30)"
    )
    args = parser.parse_args()
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}: choose from {', '.join(CASES)}")
    if not 2 <= args.seconds <= 30:
        parser.error(f"--seconds {args.seconds:g} is not between 2 and 30")
    return asyncio.run(main_async(args.cases or list(CASES), args.seconds))


if __name__ == "__main__":
    sys.exit(main())
