"""The latency budget of a call: how long audio and video spend in each stage of the media pipeline.

Two aiortc peers in one process run a call twice: once on plain loopback, once with a one-way delay added
to every datagram in each direction (a stand-in for a long network path). Every audio and video frame is
timestamped as it leaves the source, enters and leaves the encoder, leaves as RTP, arrives, leaves the
jitter buffer and comes out of the decoder (`rtclab.latency` wraps aiortc's internals to see this). The
script prints the mean time per stage, and two end-to-end measures that use no timestamp at all: the frame
counter drawn in each video picture (glass-to-glass, minus the screen) and the received waveform aligned
with the sent one (mouth-to-ear, minus the loudspeaker), compared with ITU-T G.114's one-way delay guidance.

Nothing leaves the machine: ICE offers 127.0.0.1 only, and the delay is added in userspace (`rtclab.impair`).

Run it:

    python samples/sdk/latency_budget.py
    python samples/sdk/latency_budget.py --delay-ms 250 --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from rtclab.arguments import number
from rtclab.impair import Impairment
from rtclab.latency import (
    G114_PLANNING_LIMIT_MS,
    G114_TRANSPARENT_MS,
    STAGES,
    LatencyReport,
    measure_latency,
)

MAX_DELAY_MS = 1000.0
MAX_SECONDS = 60.0


# --8<-- [start:measure]
async def measure(delay_ms: float, seconds: float) -> list[LatencyReport]:
    """One call on plain loopback, then one with ``delay_ms`` added each way; audio and video in both."""
    path = Impairment(delay_ms=delay_ms)
    return [
        await measure_latency(label="loopback", seconds=seconds),
        await measure_latency(label=f"+{delay_ms:g} ms", seconds=seconds, uplink=path, downlink=path),
    ]


# --8<-- [end:measure]


# --8<-- [start:table]
def budget_table(reports: list[LatencyReport]) -> str:
    """Mean ms per stage, audio then video, one column per call; then the end-to-end checks."""
    columns = [(r, kind) for kind in ("audio", "video") for r in reports]
    header = f"{'stage (mean ms)':<34}" + "".join(f"{f'{kind} {r.label}':>16}" for r, kind in columns)

    def row(name: str, values: list[float | None]) -> str:
        return f"{name:<34}" + "".join(f"{'-' if v is None else f'{v:.1f}':>16}" for v in values)

    lines = [header]
    for stage in STAGES:
        lines.append(row(stage, [getattr(r, kind).mean_ms[stage] for r, kind in columns]))
    lines.append(row("render (not in loopback)", [None for _ in columns]))
    lines.append(row("sum of the stages", [getattr(r, kind).stage_sum_ms for r, kind in columns]))
    end_to_end = [r.mouth_to_ear_ms if kind == "audio" else r.glass_to_glass_ms for r, kind in columns]
    lines.append(row("end to end, no timestamps (*)", end_to_end))
    lines.append(
        row(
            "  minus the sum of the stages",
            [
                None if e2e is None else e2e - getattr(r, kind).stage_sum_ms
                for (r, kind), e2e in zip(columns, end_to_end, strict=True)
            ],
        )
    )
    lines.append(row("p95 of the per-frame totals", [getattr(r, kind).total_p95_ms for r, kind in columns]))
    lines.append(
        f"{'frames measured':<34}" + "".join(f"{getattr(r, kind).frames:>16}" for r, kind in columns)
    )
    return "\n".join(lines)


def g114_verdict(one_way_ms: float | None) -> str:
    """Where a one-way delay falls against ITU-T G.114 (05/2003)."""
    if one_way_ms is None:
        return "not measured"
    if one_way_ms < G114_TRANSPARENT_MS:
        return f"below {G114_TRANSPARENT_MS:g} ms (essentially transparent for most applications)"
    if one_way_ms <= G114_PLANNING_LIMIT_MS:
        return f"between {G114_TRANSPARENT_MS:g} and {G114_PLANNING_LIMIT_MS:g} ms (usable, but interactivity is affected)"
    return f"above {G114_PLANNING_LIMIT_MS:g} ms (beyond G.114's planning limit)"


# --8<-- [end:table]


async def latency_budget(delay_ms: float, seconds: float) -> int:
    """Measure both calls and print the budget table, the codec delay and the G.114 verdicts."""
    reports = await measure(delay_ms, seconds)
    print(f"each call: {seconds:g} s measured after a 1 s warm-up; 320x240 VP8 at 30 fps, Opus 20 ms frames")
    print(budget_table(reports))
    print("(*) audio: received waveform aligned with the sent one (mouth-to-ear without the loudspeaker);")
    print("    video: frame counter read from each decoded picture (glass-to-glass without the screen)")
    print()
    for report in reports:
        lookahead = report.audio_lookahead_ms
        codec = report.codec_delay_ms
        print(
            f"{report.label}: audio delay the timestamps miss {'-' if codec is None else f'{codec:.1f}'} ms, "
            f"Opus encoder lookahead {'-' if lookahead is None else f'{lookahead:.1f}'} ms"
        )
    print()
    print("against ITU-T G.114 (one-way, mouth-to-ear):")
    for report in reports:
        print(f"  {report.label:<10} audio {g114_verdict(report.mouth_to_ear_ms)}")
        print(f"  {report.label:<10} video {g114_verdict(report.glass_to_glass_ms)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run both calls and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--delay-ms",
        type=number(0, MAX_DELAY_MS, "ms"),
        default=100.0,
        metavar="D",
        help="one-way delay added each way in the second call, in ms "
        f"(default: %(default)g, at most {MAX_DELAY_MS:g})",
    )
    parser.add_argument(
        "--seconds",
        type=number(1, MAX_SECONDS, "s"),
        default=2.5,
        help=f"seconds to measure each call, after a 1 s warm-up (default: %(default)g, at most {MAX_SECONDS:g})",
    )
    args = parser.parse_args(argv)
    return asyncio.run(latency_budget(args.delay_ms, args.seconds))


if __name__ == "__main__":
    sys.exit(main())
