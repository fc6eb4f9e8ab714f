"""What getStats() tells you about a call, in real units, and three ways to turn it into a MOS.

A one-way call (caller sends a speech-like voice and a test video, callee decodes them) runs over loopback
under each network profile in turn: no impairment, then built-in `rtclab.profiles` profiles. For the last
profile the script prints one raw getStats() report field by field, with the unit aiortc uses and the value
in real units, then the per-interval table rtclab.stats builds from the whole call (bitrate and loss
derived from two readings of the counters). For every profile it prints what the network did (RTT, jitter,
loss, freezes), the MOS three models give for those same numbers (the ITU-T G.107 E-model as rtclab
simplifies it, Twilio's preflight formula, LiveKit's connection-quality score) and the E-model with what
stock aiortc's receiver really does (rtclab.stats.estimate_mos), and finally how each model reacts to loss at
the last call's RTT and jitter.

Nothing leaves the machine: ICE offers 127.0.0.1 only and no STUN server is asked.

Run it:

    .venv/bin/python samples/sdk/call_stats.py
    .venv/bin/python samples/sdk/call_stats.py --profile loadero-3g --profile atc-3g-good --seconds 6
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rtclab.arguments import number
from rtclab.call import LoopbackCall
from rtclab.freezes import freezes
from rtclab.profiles import Profile, ProfileError, get_profile
from rtclab.quality import livekit_mos, livekit_quality, livekit_score, mos_from_r, r_factor, twilio_mos
from rtclab.stats import CLOCK_RATES, MediaSnapshot, estimate_mos, to_dataframe

DEFAULT_PROFILES = ("loopback", "chrome-slow-4g", "nigeria-mobile")
NO_IMPAIRMENT = "loopback"
MAX_PROFILES = 6
LOSS_SWEEP = (0.0, 0.01, 0.02, 0.05, 0.10)
RTT_WAIT_S = 8.0  # at most this much longer per call, until RTCP has measured a round trip


# --8<-- [start:units]
def to_ms(ticks: int, clock: int) -> str:
    return f"{ticks / clock * 1000:.1f} ms"  # RTP clock ticks -> ms


# (stat type, field, unit aiortc reports it in, conversion to real units or None). The caller's report holds
# outbound-rtp and remote-inbound-rtp (what the callee's RTCP receiver reports said); the callee's inbound-rtp.
FIELDS = (
    ("outbound-rtp", "packetsSent", "packets, total", None),
    ("outbound-rtp", "bytesSent", "payload bytes, total", None),
    ("remote-inbound-rtp", "packetsLost", "packets, total", None),
    (
        "remote-inbound-rtp",
        "fractionLost",
        "1/256 of last interval",
        lambda v, clock: f"{v / 256 * 100:.1f} %",
    ),
    ("remote-inbound-rtp", "jitter", "RTP ticks at {clock} Hz", to_ms),
    ("remote-inbound-rtp", "roundTripTime", "seconds", lambda v, clock: f"{v * 1000:.1f} ms"),
    ("inbound-rtp", "packetsReceived", "packets, total", None),
    ("inbound-rtp", "packetsLost", "packets, total", None),
    ("inbound-rtp", "jitter", "RTP ticks at {clock} Hz", to_ms),
)


def raw_fields(sender: Mapping[str, Any], receiver: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Both peers' getStats() reports as rows: where, field, raw value, aiortc's unit, real units."""
    rows = []
    for kind in ("audio", "video"):
        clock = CLOCK_RATES[kind]  # 48000 ticks/s for Opus, 90000 for VP8
        for stat_type, field, unit, convert in FIELDS:
            peer, report = ("callee", receiver) if stat_type == "inbound-rtp" else ("caller", sender)
            if (kind, stat_type) == ("video", "inbound-rtp"):
                continue  # aiortc overwrites it with the RTX stream's entry (same id): see the page
            stat = next((s for s in report.values() if s.type == stat_type and s.kind == kind), None)
            if stat is None:
                continue  # no RTCP receiver report yet
            value = getattr(stat, field)
            real = "n/a" if value is None else convert(value, clock) if convert else ""
            raw = f"{value:.4f}" if isinstance(value, float) else f"{value}"
            rows.append((f"{peer} {stat_type} {kind}", field, raw, unit.format(clock=clock), real))
    transport = next(s for s in sender.values() if s.type == "transport")
    rows.append(("caller transport", "bytesSent", f"{transport.bytesSent}", "datagram bytes, total", ""))
    return rows


# --8<-- [end:units]


def format_rows(header: tuple[str, ...], rows: list[tuple[str, ...]], right: set[int]) -> str:
    """Align rows under a header; columns whose index is in ``right`` are right-aligned."""
    table = [header, *rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = []
    for row in table:
        cells = [
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


# --8<-- [start:tidy]
TIDY_COLUMNS = ["at_s", "interval_s", "bitrate_kbps", "loss_pct", "rtcp_loss_pct", "jitter_ms", "rtt_ms"]


def tidy_table(timeline: list[MediaSnapshot], kind: str = "audio") -> str:
    """The call's stats timeline as rtclab.stats lays it out: one row per reading, units in the names."""
    table = to_dataframe(timeline)  # cumulative counters in, per-interval bitrate and loss derived
    table = table[table["kind"] == kind][TIDY_COLUMNS]
    return table.to_string(index=False, float_format=lambda x: f"{x:.1f}", na_rep="n/a")


# --8<-- [end:tidy]


# --8<-- [start:scores]
@dataclass(frozen=True)
class Scores:
    """Three MOS estimates computed from the same three numbers."""

    emodel: float  # ITU-T G.107, simplified: one-way delay = RTT/2 + a 2 x jitter buffer, Opus, random loss
    twilio: float  # twilio-video.js preflight: latency = RTT + 2 x jitter + 10 ms, 2.5 R per unit of loss
    livekit: float  # LiveKit server: delay = RTT/2 + 2 x jitter, 8 points per percent of Opus loss
    livekit_quality: str  # LiveKit's ConnectionQuality for that score


def three_mos(rtt_ms: float, jitter_ms: float, loss_fraction: float) -> Scores:
    """Score one set of network numbers with the three models (rtclab.quality implements them)."""
    emodel = mos_from_r(r_factor(rtt_ms / 2 + 2 * jitter_ms, loss_fraction, codec="opus"))
    return Scores(
        emodel=emodel,
        twilio=twilio_mos(rtt_ms, jitter_ms, loss_fraction),
        livekit=livekit_mos(rtt_ms, jitter_ms, loss_fraction, track="opus"),
        livekit_quality=livekit_quality(livekit_score(rtt_ms, jitter_ms, loss_fraction, track="opus")),
    )


# --8<-- [end:scores]


@dataclass
class Outcome:
    """What one call under one profile left behind."""

    name: str
    profile_rtt_ms: float
    timeline: list[MediaSnapshot]
    frame_times: dict[str, list[float]]
    raw: tuple[Mapping[str, Any], Mapping[str, Any]]


# --8<-- [start:call]
async def run_call(name: str, profile: Profile | None, seconds: float, interval: float) -> Outcome:
    """Run one call under a profile (None: no impairment); keep its stats timeline and one raw report."""
    impair = {}
    if profile is not None:  # seeded, so a rerun drops the same packets
        impair = {
            "uplink": profile.uplink_impairment(seed=1),
            "downlink": profile.downlink_impairment(seed=2),
        }
    async with LoopbackCall(sample_interval=interval, **impair) as call:
        await call.run(seconds)  # LoopbackCall reads both peers' getStats() every `interval` s meanwhile
        # roundTripTime stays None until a receiver report echoes the sender's latest sender report; aiortc
        # remembers only that one, so on a long or busy path a report can miss. Wait a little for one.
        for _ in range(int(RTT_WAIT_S / interval)):
            if any(s.rtt_ms is not None for s in call.timeline if s.kind == "audio"):
                break
            await call.run(interval)
        raw = await asyncio.gather(call.caller.getStats(), call.callee.getStats())
    return Outcome(
        name=name,
        profile_rtt_ms=0.0 if profile is None else profile.rtt_ms,
        timeline=call.timeline,
        frame_times=call.frame_times,
        raw=(raw[0], raw[1]),
    )


# --8<-- [end:call]


def freeze_cell(frame_times: dict[str, list[float]], kind: str) -> str:
    """``count / seconds frozen`` with Agora's thresholds (audio gap > 200 ms, video > 600 ms)."""
    report = freezes(frame_times.get(kind, []), kind)
    return f"{len(report.events)} / {report.frozen_s:.2f} s"


def network_and_scores(outcomes: list[Outcome]) -> tuple[str, str]:
    """The 'what the network did' table and the 'three MOS' table, one row per profile."""
    network, scores = [], []
    for outcome in outcomes:
        try:
            est = estimate_mos(outcome.timeline)  # median RTT and jitter, loss over the whole call
        except ValueError:  # no RTCP round trip measured yet
            network.append((outcome.name, f"{outcome.profile_rtt_ms:.0f}", "n/a", "n/a", "n/a", "", ""))
            scores.append((outcome.name, "n/a", "n/a", "n/a", ""))
            continue
        network.append(
            (
                outcome.name,
                f"{outcome.profile_rtt_ms:.0f}",
                f"{est.rtt_ms:.1f}",
                f"{est.jitter_ms:.1f}",
                f"{est.loss_fraction * 100:.2f}",
                freeze_cell(outcome.frame_times, "audio"),
                freeze_cell(outcome.frame_times, "video"),
            )
        )
        mos = three_mos(est.rtt_ms, est.jitter_ms, est.loss_fraction)
        scores.append(
            (
                outcome.name,
                f"{mos.emodel:.2f}",
                f"{mos.twilio:.2f}",
                f"{mos.livekit:.2f}",
                mos.livekit_quality,
            )
        )
    header = ("profile", "profile RTT ms", "RTT ms", "jitter ms", "loss %", "audio freezes", "video freezes")
    header2 = ("profile", "E-model", "Twilio", "LiveKit", "LiveKit quality")
    return format_rows(header, network, set(range(1, 5))), format_rows(header2, scores, {1, 2, 3})


def loss_sweep(rtt_ms: float, jitter_ms: float) -> str:
    """The three models at a fixed RTT and jitter, as the loss grows."""
    rows = []
    for loss in LOSS_SWEEP:
        mos = three_mos(rtt_ms, jitter_ms, loss)
        rows.append((f"{loss * 100:.0f}", f"{mos.emodel:.2f}", f"{mos.twilio:.2f}", f"{mos.livekit:.2f}"))
    return format_rows(("loss %", "E-model", "Twilio", "LiveKit"), rows, {0, 1, 2, 3})


async def call_stats(names: list[str], seconds: float, interval: float) -> int:
    """Run one call per profile, then print the four sections."""
    outcomes = []
    for name in names:
        profile = None if name == NO_IMPAIRMENT else get_profile(name)
        outcomes.append(await run_call(name if profile is None else profile.name, profile, seconds, interval))
    last = outcomes[-1]
    print(
        f"profiles: {', '.join(names)}; {seconds:g} s of audio + video each, stats read every {interval:g} s"
    )
    print()
    print(f"1. One raw getStats() report ({last.name}, end of the call)")
    header = ("where", "field", "raw", "unit in aiortc", "real units")
    print(format_rows(header, raw_fields(*last.raw), {2, 4}))
    print()
    print(f"2. The call as a tidy table (rtclab.stats.to_dataframe; {last.name}, audio)")
    print(tidy_table(last.timeline))
    print()
    network, scores = network_and_scores(outcomes)
    print("3. What the network did (RTT and jitter: medians; loss: whole call; freezes: count / time frozen)")
    print(network)
    print()
    print("   MOS from those same numbers, three models (audio)")
    print(scores)
    print()
    print(
        "   The E-model as stock aiortc receives the audio (rtclab.stats.estimate_mos: its measured buffer, no PLC)"
    )
    for outcome in outcomes:
        try:
            print(f"   {outcome.name:<16} {estimate_mos(outcome.timeline)}")
        except ValueError as error:
            print(f"   {outcome.name:<16} n/a ({error})")
    try:
        est = estimate_mos(last.timeline)
    except ValueError:
        return 0
    print()
    print(f"4. MOS as loss grows, at {last.name}'s RTT {est.rtt_ms:.1f} ms and jitter {est.jitter_ms:.1f} ms")
    print(loss_sweep(est.rtt_ms, est.jitter_ms))
    return 0


def profile_name(text: str) -> str:
    """Parse ``--profile``: 'loopback' (no impairment), a built-in profile or a profile file."""
    if text != NO_IMPAIRMENT:
        try:
            get_profile(text)
        except ProfileError as error:
            raise argparse.ArgumentTypeError(str(error)) from None
    return text


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the calls and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--profile",
        action="append",
        type=profile_name,
        metavar="NAME",
        help=f"'{NO_IMPAIRMENT}' (no impairment), a built-in rtclab profile or a profile file; repeat for "
        f"several, at most {MAX_PROFILES} (default: {' '.join(DEFAULT_PROFILES)})",
    )
    parser.add_argument(
        "--seconds",
        type=number(3, 60, "s"),
        default=4.0,
        help="how long each call runs, in s (default: %(default)g; RTCP needs about 3 s for a first RTT)",
    )
    parser.add_argument(
        "--interval",
        type=number(0.25, 5, "s"),
        default=1.0,
        help="seconds between two getStats() readings (default: %(default)g)",
    )
    args = parser.parse_args(argv)
    names = args.profile or list(DEFAULT_PROFILES)
    if len(names) > MAX_PROFILES:
        parser.error(f"argument --profile: at most {MAX_PROFILES} profiles, got {len(names)}")
    return asyncio.run(call_stats(names, args.seconds, args.interval))


if __name__ == "__main__":
    sys.exit(main())
