"""Reproduce a runbook's problem on a loopback call, apply its fix, and let `rtclab diagnose` judge both.

Each case is one runbook. An aiortc call over 127.0.0.1 runs under the network that causes the problem
(rtclab.impair, often an rtclab profile), its stats timeline is diagnosed with the rules a player's dump gets,
then the same call runs with the fix and is diagnosed again: the fix works when the finding is gone. Where
aiortc cannot apply the fix (no TURN server here, no FEC or RED, no concealment stats), the case shows the
problem only and says where the fix is measured. One-way audio, CPU-limited and echo cannot be reproduced on
an aiortc timeline at all; their runbooks say how to confirm them from a browser dump.

Run it:

    .venv/bin/python samples/support/reproduce.py                  # every case, about a minute
    .venv/bin/python samples/support/reproduce.py high-rtt --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runbook_calls import diagnosed_call, table

from rtclab.encoders import VideoEncoderSettings
from rtclab.impair import GilbertElliott, Impairment
from rtclab.profiles import get_profile
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack

Arguments = Callable[[], dict[str, Any]]  # fresh LoopbackCall arguments (tracks cannot be reused)


@dataclass(frozen=True)
class Case:
    finding: str  # the rule id the problem must raise
    problem_is: str
    problem: Arguments
    fix_is: str
    fix: Arguments | None = None  # None: the fix cannot be applied to an aiortc call here


def profile(name: str, extra_delay_ms: float = 0) -> dict[str, Any]:
    """Both directions of a built-in profile, with an extra one-way delay (a longer route) on each."""
    chosen = get_profile(name)
    return {
        direction: dataclasses.replace(link, delay_ms=link.delay_ms + extra_delay_ms)
        for direction, link in (
            ("uplink", chosen.uplink_impairment(seed=1)),
            ("downlink", chosen.downlink_impairment(seed=1)),
        )
    }


def camera(width: int, height: int) -> list[Any]:
    """A voice and a noisy test picture, which VP8 cannot compress below what it is told to spend."""
    return [SpeechLikeAudioTrack(), ColorBarsVideoTrack(width=width, height=height, noise=8)]


# --8<-- [start:cases]
CASES = {
    "cannot-connect": Case(
        finding="not-connected",
        problem_is="every UDP datagram dropped (a firewall that blocks UDP)",
        problem=lambda: {"uplink": Impairment(loss=1.0), "connect_timeout": 4.0},
        fix_is="TURN over TCP/TLS 443 needs a TURN server (coturn): not run here",
    ),
    "high-rtt": Case(
        finding="rtt-high",
        problem_is="profile chrome-fast-4g + 200 ms each way (a server on another continent)",
        problem=lambda: profile("chrome-fast-4g", extra_delay_ms=200),
        fix_is="the same last mile to a server in the region (chrome-fast-4g alone)",
        fix=lambda: profile("chrome-fast-4g"),
    ),
    "bursty-loss": Case(
        finding="audio-loss",
        problem_is="Gilbert-Elliott loss on the media path: 6.3 % on average, ~3 packets a burst",
        problem=lambda: {"uplink": Impairment(burst=GilbertElliott(p=0.02, r=0.3), seed=1)},
        fix_is="FEC and redundancy recover it at the receiver, which aiortc cannot: see the notebook",
    ),
    "audio-glitches": Case(
        finding="audio-jitter",
        problem_is="60 ms one way, each packet up to a few hundred ms later (jitter sd 250 ms, in order)",
        problem=lambda: {"uplink": Impairment(delay_ms=60, jitter_ms=250, seed=1)},
        fix_is="an adaptive jitter buffer; it changes what is played, not the network: see the notebook",
    ),
    "video-freezes": Case(
        finding="video-freezes",
        problem_is="profile chrome-3g (400 kbps, 200 ms) with 640x360 video",
        problem=lambda: {"tracks": camera(640, 360), **profile("chrome-3g")},
        fix_is="a lower layer: 160x120 video at 120 kbps",
        fix=lambda: {
            "tracks": camera(160, 120),
            **profile("chrome-3g"),
            "video_encoder": VideoEncoderSettings(target_kbps=120, min_kbps=60, max_kbps=120),
        },
    ),
    "bitrate-collapse": Case(
        finding="audio-loss",  # aiortc reports no qualityLimitation: its own queue's drops are the sign
        problem_is="a 300 kbps link; aiortc never sends less than Opus 96 + VP8 250 kbps",
        problem=lambda: {"tracks": camera(320, 240), "uplink": Impairment(rate_kbps=300, queue_ms=300)},
        fix_is="the video encoder capped under the link (VP8 at most 150 kbps)",
        fix=lambda: {
            "tracks": camera(320, 240),
            "uplink": Impairment(rate_kbps=300, queue_ms=300),
            "video_encoder": VideoEncoderSettings(target_kbps=150, min_kbps=60, max_kbps=150),
        },
    ),
}
# --8<-- [end:cases]


async def run_case(name: str, case: Case, seconds: float) -> bool:
    print(f"# --8<-- [start:{name}]")
    print(f"{name}\n  problem: {case.problem_is}\n  fix:     {case.fix_is}")
    before = await diagnosed_call(f"{name} problem", case.problem(), seconds)
    after = await diagnosed_call(f"{name} fix", case.fix(), seconds) if case.fix is not None else None
    print(table(before, after))
    raised = before.has(case.finding)
    word = "raised" if raised else "NOT raised"
    if after is None:
        print(f"  {case.finding}: {word}; the fix is not applied here")
        ok = raised
    else:
        gone = not after.has(case.finding)
        print(f"  {case.finding}: {word} before, {'gone' if gone else 'STILL THERE'} after")
        ok = raised and gone
    print(f"# --8<-- [end:{name}]\n")
    return ok


async def run_all(names: list[str], seconds: float) -> int:
    results = [await run_case(name, CASES[name], seconds) for name in names]
    return 0 if all(results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="cases:\n" + "\n".join(f"  {name:<17} {case.problem_is}" for name, case in CASES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "cases", nargs="*", metavar="CASE", help="one or more of the cases below (default: all)"
    )
    parser.add_argument(
        "--seconds", type=float, default=5.0, help="seconds of media per call (2-30, default 5)"
    )
    args = parser.parse_args()
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}: choose from {', '.join(CASES)}")
    if not 2 <= args.seconds <= 30:
        parser.error(f"--seconds {args.seconds:g} is not between 2 and 30")
    return asyncio.run(run_all(args.cases or list(CASES), args.seconds))


if __name__ == "__main__":
    sys.exit(main())
