"""The ``rtclab`` command: list the network profiles, and probe one with a short loopback call whose report
(connect time, RTT, jitter, loss, freezes, MOS and a verdict against published thresholds) a person can read.

Run ``rtclab --help`` (or ``python -m rtclab --help``). Every call stays on 127.0.0.1
(`rtclab.call.LoopbackCall`); the profile's uplink impairs what the caller sends (the media), its
downlink what the callee sends back (RTCP reports, ICE and DTLS answers). Exit codes: 0 when the command ran
(whatever the verdict), 1 when the call did not connect, 2 on a bad argument or profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

from rtclab.profiles import Link as ProfileLink
from rtclab.profiles import Profile, ProfileError, get_profile, load_profiles
from rtclab.stats import (
    CLOCK_RATES,
    FREEZE_THRESHOLDS_MS,
    KINDS,
    FreezeReport,
    MosEstimate,
    freezes,
    jitter_ms,
)

if TYPE_CHECKING:
    from rtclab.call import LoopbackCall

__all__ = [
    "GOOD",
    "FAIR",
    "POOR",
    "THRESHOLDS",
    "Check",
    "MediaResult",
    "ProbeError",
    "ProbeReport",
    "Threshold",
    "format_profiles",
    "format_report",
    "g109_category",
    "judge",
    "main",
    "profile_rows",
    "run_probe",
]

SECONDS_RANGE = (2.0, 120.0)
"""Shortest and longest probe, in seconds (RTCP reports come about once a second, so 2 s is the floor)."""
DEFAULT_SECONDS = 10.0
SAMPLE_INTERVAL_S = 0.25
CONNECT_TIMEOUT_S = 20.0
"""Generous, because ICE and DTLS cross the impaired links too (1.3 s RTT and 18 kbit/s on rural 2G)."""

# --- thresholds: every number the verdict uses, with where it comes from -----------------------------------

_G114 = "https://www.itu.int/rec/T-REC-G.114"
_G109 = "https://www.itu.int/rec/T-REC-G.109"
_TWILIO_PREFLIGHT = "https://github.com/twilio/twilio-video.js/releases/tag/2.8.0-beta.1"
_AGORA = "https://docs.agora.io/en/agora-analytics/reference/call-search-terms"
_TWILIO_TAGS = "https://www.twilio.com/docs/voice/insights/api/voice-insights-call-tags"


@dataclass(frozen=True)
class Threshold:
    """A published number that a measurement is compared with.

    Attributes:
        value: The number.
        unit: Its unit (``"ms"``, ``"%"``, ``"R"``).
        rule_set: Who publishes it, as printed at the start of each verdict line.
        says: What the source says about it, in a few words.
        url: Where to read it.
    """

    value: float
    unit: str
    rule_set: str
    says: str
    url: str


THRESHOLDS: dict[str, Threshold] = {
    "delay_good_ms": Threshold(
        value=150,
        unit="ms",
        rule_set="ITU-T G.114",
        says="one-way delay up to 150 ms is acceptable for most user applications (05/2000 edition, Table 1)",
        url=_G114,
    ),
    "delay_max_ms": Threshold(
        value=400,
        unit="ms",
        rule_set="ITU-T G.114",
        says="400 ms one way should not be exceeded for general network planning; 150-400 ms only if the "
        "impact on interactivity is accepted",
        url=_G114,
    ),
    "jitter_optimal_ms": Threshold(
        value=30,
        unit="ms",
        rule_set="Twilio preflight",
        says="optimal jitter (packet delay variation on audio tracks): below 30 ms (testPreflight notes)",
        url=_TWILIO_PREFLIGHT,
    ),
    "loss_optimal_pct": Threshold(
        value=1,
        unit="%",
        rule_set="Twilio preflight",
        says="optimal packet loss: below 1 % of the packets sent (testPreflight notes)",
        url=_TWILIO_PREFLIGHT,
    ),
    "loss_high_pct": Threshold(
        value=5,
        unit="%",
        rule_set="Twilio Voice Insights",
        says="calls with more than 5 % packet loss are tagged high_packet_loss (Voice SDK edge tags)",
        url=_TWILIO_TAGS,
    ),
    "audio_freeze_gap_ms": Threshold(
        value=FREEZE_THRESHOLDS_MS["audio"],
        unit="ms",
        rule_set="Agora",
        says="audio freezes when rendering pauses for over 200 ms (Agora Analytics call search terms)",
        url=_AGORA,
    ),
    "video_freeze_gap_ms": Threshold(
        value=FREEZE_THRESHOLDS_MS["video"],
        unit="ms",
        rule_set="Agora",
        says="video counts as frozen after a 600 ms stall (Agora Analytics; rtclab.stats.FREEZE_THRESHOLDS_MS)",
        url=_AGORA,
    ),
    "r_medium": Threshold(
        value=70,
        unit="R",
        rule_set="ITU-T G.109",
        says="E-model R 70-80 is 'medium' quality, some users dissatisfied; 80 and up 'high' or 'best'",
        url=_G109,
    ),
    "r_low": Threshold(
        value=60,
        unit="R",
        rule_set="ITU-T G.109",
        says="E-model R 60-70 is 'low', many users dissatisfied; 50-60 'poor', below 50 not recommended",
        url=_G109,
    ),
}
"""The thresholds of the verdict, by name. Edit here, nowhere else: the checks and the report read them."""

GOOD, FAIR, POOR = "good", "fair", "poor"
_LEVELS = (GOOD, FAIR, POOR)


@dataclass(frozen=True)
class Check:
    """One line of the verdict.

    Attributes:
        subject: What was checked (``"one-way delay"``, ``"video freezes"``...).
        level: `GOOD`, `FAIR` or `POOR`.
        reason: The measured value against the threshold, in words.
        rule_set: Whose threshold (``"ITU-T G.114"``...).
        thresholds: Keys of `THRESHOLDS` the check used.
    """

    subject: str
    level: str
    reason: str
    rule_set: str
    thresholds: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The check as plain data, with the thresholds' URLs."""
        return {
            "subject": self.subject,
            "level": self.level,
            "reason": self.reason,
            "rule_set": self.rule_set,
            "thresholds": list(self.thresholds),
            "urls": sorted({THRESHOLDS[key].url for key in self.thresholds}),
        }


def g109_category(r: float) -> str:
    """The ITU-T G.109 speech transmission quality category of an E-model rating R."""
    for floor, name in ((90, "best"), (80, "high"), (70, "medium"), (60, "low"), (50, "poor")):
        if r >= floor:
            return name
    return "not recommended"


# --- what a probe measured -----------------------------------------------------------------------------------


class ProbeError(Exception):
    """The probe call could not be made (the peers did not connect); ``str()`` is one line."""


@dataclass(frozen=True)
class MediaResult:
    """What one media kind did during a probe.

    Loss compares what the sender sent with what arrived, counted by the receiver once the media had
    stopped and everything in flight had landed. aiortc's receiver gives all the SSRCs of a stream one stats
    entry, so once video retransmissions (RTX) arrive that entry counts the RTX stream: then the count of
    arrivals is unknown and loss falls back on the receiver reports (RTCP), which cannot count packets lost
    after the last one that arrived. Jitter and RTT come from the receiver reports, as a browser's
    ``getStats()`` shows them on the sending side (``remote-inbound-rtp``).

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        frames: Frames decoded while the probe ran.
        first_frame_ms: When the first one came, in ms from the start of the offer (None if none did).
        packets_sent: RTP packets sent (retransmissions not counted).
        packets_received: Those that arrived, or None where aiortc's stats hide the count (see above).
        reported_lost: Packets lost according to the last receiver report, or None if none came.
        jitter_ms: Median of the jitter over the receiver reports of the probe, in ms.
        reports: Receiver reports that came back while the probe ran.
        bitrate_kbps: Average payload bitrate sent, in kbit/s.
        freeze: Freezes of the decoded frames (`rtclab.stats.freezes`), None without frames. A stream
            that stopped before the probe ended counts as frozen from its last frame to the end.
        stalled_at_end: True if no frame came during the last freeze threshold before the end.
    """

    kind: str
    frames: int
    first_frame_ms: float | None
    packets_sent: int
    packets_received: int | None
    reported_lost: int | None
    jitter_ms: float | None
    reports: int
    bitrate_kbps: float | None
    freeze: FreezeReport | None
    stalled_at_end: bool = False

    @property
    def packets_lost(self) -> int | None:
        """Packets that never arrived (or, failing that count, the receiver reports' loss)."""
        if self.packets_received is not None:
            return max(self.packets_sent - self.packets_received, 0)
        return None if self.reported_lost is None else max(self.reported_lost, 0)

    @property
    def loss_basis(self) -> str | None:
        """``"arrivals"``, ``"receiver reports"`` (a lower bound), or None when loss is unknown."""
        if self.packets_received is not None:
            return "arrivals"
        return None if self.reported_lost is None else "receiver reports"

    @property
    def loss_pct(self) -> float | None:
        """Packets lost over packets sent, in percent (Twilio's "percent of total packets sent")."""
        lost = self.packets_lost
        if lost is None or self.packets_sent <= 0:
            return None
        return min(lost / self.packets_sent, 1.0) * 100

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data (stable keys; unknown values are null)."""
        freeze = self.freeze
        return {
            "frames": self.frames,
            "first_frame_ms": _round(self.first_frame_ms, 1),
            "packets_sent": self.packets_sent,
            "packets_received": self.packets_received,
            "packets_lost": self.packets_lost,
            "loss_pct": _round(self.loss_pct, 3),
            "loss_basis": self.loss_basis,
            "reported_lost": self.reported_lost,
            "jitter_ms_median": _round(self.jitter_ms, 2),
            "receiver_reports": self.reports,
            "bitrate_kbps": _round(self.bitrate_kbps, 1),
            "freeze_threshold_ms": FREEZE_THRESHOLDS_MS[self.kind],
            "freezes": None if freeze is None else len(freeze.events),
            "freeze_rate": None if freeze is None else _round(freeze.freeze_rate, 4),
            "frozen_s": None if freeze is None else _round(freeze.frozen_s, 3),
            "longest_freeze_ms": None if freeze is None else _round(_longest_ms(freeze), 1),
            "stalled_at_end": self.stalled_at_end,
        }


def _longest_ms(freeze: FreezeReport) -> float:
    return max((event.duration_s for event in freeze.events), default=0.0) * 1000


@dataclass(frozen=True)
class ProbeReport:
    """Everything a probe measured, the verdict derived from it, and how to print it.

    Attributes:
        profile: The profile the call ran under.
        profile_source: ``"built-in"`` or the file it came from.
        seconds: How long media flowed after connecting, as asked.
        seed: Seed of the impairments (uplink ``seed``, downlink ``seed + 1``).
        ended_s: When the probe stopped, in seconds from the start of the offer.
        connect_ms: When both peers were connected, in ms from the start of the offer.
        rtt_ms: Round-trip times from the receiver reports of both kinds while media flowed, in ms. aiortc
            smooths each one (0.85 x previous + 0.15 x new), so the p95 understates short spikes.
        media: One `MediaResult` per kind.
        links: Counters of the impaired links (``"uplink"``, ``"downlink"``), as
            `rtclab.impair.LinkCounters.as_dict`.
        mos: The E-model estimate for audio, or None.
        mos_problem: Why there is no estimate, if there is none.
    """

    profile: Profile
    profile_source: str
    seconds: float
    seed: int
    ended_s: float
    connect_ms: float | None
    rtt_ms: tuple[float, ...]
    media: Mapping[str, MediaResult]
    links: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    mos: MosEstimate | None = None
    mos_problem: str | None = None

    @property
    def rtt_median_ms(self) -> float | None:
        """Median of the RTT readings, in ms."""
        return statistics.median(self.rtt_ms) if self.rtt_ms else None

    @property
    def rtt_p95_ms(self) -> float | None:
        """95th percentile (nearest rank) of the RTT readings, in ms."""
        if not self.rtt_ms:
            return None
        ordered = sorted(self.rtt_ms)
        return ordered[max(math.ceil(0.95 * len(ordered)) - 1, 0)]

    @property
    def one_way_delay_ms(self) -> float | None:
        """Network one-way delay, estimated as half the median RTT (buffering and codecs not included)."""
        median = self.rtt_median_ms
        return None if median is None else median / 2

    @property
    def loss_pct(self) -> float | None:
        """RTP packets lost over packets sent, audio and video together, in percent (kinds with a report)."""
        known = [m for m in self.media.values() if m.packets_lost is not None]
        sent = sum(m.packets_sent for m in known)
        return sum(m.packets_lost or 0 for m in known) * 100 / sent if sent else None

    @property
    def checks(self) -> list[Check]:
        """The verdict, line by line (see `THRESHOLDS`)."""
        return judge(self)

    @property
    def verdict(self) -> str:
        """The worst level among `checks`."""
        return max((c.level for c in self.checks), key=_LEVELS.index, default=GOOD)

    def blackouts(self) -> list[dict[str, Any]]:
        """The profile's blackouts, each with ``in_probe``: whether it began before the probe ended."""
        return [
            {"start_s": b.start_s, "duration_s": b.duration_s, "in_probe": b.start_s < self.ended_s}
            for b in self.profile.blackouts
        ]

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data for ``--json``: the same keys on every run, null where unknown."""
        profile = self.profile
        mos = self.mos
        return {
            "profile": {
                "name": profile.name,
                "description": profile.description,
                "source": self.profile_source,
                "uplink": _link_dict(profile.uplink),
                "downlink": _link_dict(profile.downlink),
                "rtt_ms": profile.rtt_ms,
                "blackouts": self.blackouts(),
                "sources": [{"name": s.name, "url": s.url} for s in profile.sources],
                "assumed": list(profile.assumed),
            },
            "probe": {
                "seconds": self.seconds,
                "seed": self.seed,
                "ended_s": _round(self.ended_s, 3),
                "media_path": "caller -> callee through the profile's uplink; RTCP back through its downlink",
            },
            "connect_ms": _round(self.connect_ms, 1),
            "rtt_ms": {
                "median": _round(self.rtt_median_ms, 1),
                "p95": _round(self.rtt_p95_ms, 1),
                "readings": len(self.rtt_ms),
                "profile": profile.rtt_ms,
            },
            "one_way_delay_ms": _round(self.one_way_delay_ms, 1),
            "loss_pct": _round(self.loss_pct, 3),
            "media": {kind: result.to_dict() for kind, result in self.media.items()},
            "network": {direction: dict(counters) for direction, counters in self.links.items()},
            "mos": None
            if mos is None
            else {
                "mos": _round(mos.mos, 2),
                "r": _round(mos.r, 1),
                "g109_category": g109_category(mos.r),
                "one_way_delay_ms": _round(mos.one_way_delay_ms, 1),
                "jitter_buffer_ms": _round(mos.jitter_buffer_ms, 1),
                "loss_pct": _round(mos.loss_fraction * 100, 3),
                "method": "E-model (ITU-T G.107), Opus, audio: delay = RTT/2 + 2 x jitter (rtclab.stats)",
            },
            "mos_problem": self.mos_problem,
            "verdict": {"overall": self.verdict, "checks": [c.to_dict() for c in self.checks]},
            "thresholds": {
                key: {"value": t.value, "unit": t.unit, "rule_set": t.rule_set, "says": t.says, "url": t.url}
                for key, t in THRESHOLDS.items()
            },
        }


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _link_dict(link: ProfileLink) -> dict[str, Any]:
    return {
        "rate_kbps": link.rate_kbps,
        "delay_ms": link.delay_ms,
        "jitter_ms": link.jitter_ms,
        "loss": link.loss,
        "burst": None if link.burst is None else {"p": link.burst.p, "r": link.burst.r},
        "mean_loss": link.mean_loss,
    }


# --- the verdict ---------------------------------------------------------------------------------------------


def judge(report: ProbeReport) -> list[Check]:
    """Compare a probe's numbers with `THRESHOLDS`, one `Check` per rule.

    Rules: one-way delay (RTT / 2) against ITU-T G.114; audio jitter against Twilio's preflight "optimal"
    value; each kind's loss against that value and Twilio Voice Insights' "high packet loss" tag; each
    kind's freezes with Agora's definitions; the audio MOS estimate's R against the ITU-T G.109 categories.
    Where a source gives a single line (jitter, freezes) crossing it gives `FAIR`; `POOR` needs
    a second, published line (delay, loss, R) or media that never came. A check's ``rule_set`` is the
    source of the line that decided its level.

    Args:
        report: The probe's measurements.

    Returns:
        The checks, in the order above.
    """
    checks = [_delay_check(report.one_way_delay_ms)]
    audio = report.media.get("audio")
    checks.append(_jitter_check(audio))
    for kind in KINDS:
        result = report.media.get(kind)
        if result is not None:
            checks.append(_loss_check(result))
    for kind in KINDS:
        result = report.media.get(kind)
        if result is not None:
            checks.append(_freeze_check(result))
    checks.append(_mos_check(report.mos, report.mos_problem))
    return checks


def _delay_check(one_way_ms: float | None) -> Check:
    keys = ("delay_good_ms", "delay_max_ms")
    good, most = THRESHOLDS["delay_good_ms"].value, THRESHOLDS["delay_max_ms"].value
    if one_way_ms is None:
        level, reason = POOR, "not measured: no receiver report answered a sender report"
    else:
        shown = f"{one_way_ms:.0f} ms (RTT/2, network only)"
        if one_way_ms <= good:
            level, reason = GOOD, f"{shown} <= {good:g} ms"
        elif one_way_ms <= most:
            level, reason = (
                FAIR,
                f"{shown} > {good:g} ms: only if the lag in the conversation is accepted; <= {most:g} ms",
            )
        else:
            level, reason = POOR, f"{shown} > {most:g} ms, the limit for network planning"
    return Check("one-way delay", level, reason, "ITU-T G.114", keys)


def _jitter_check(audio: MediaResult | None) -> Check:
    keys = ("jitter_optimal_ms",)
    limit = THRESHOLDS["jitter_optimal_ms"].value
    if audio is None or audio.jitter_ms is None:
        level, reason = POOR, "not measured: no audio packet arrived"
    elif audio.jitter_ms < limit:
        level, reason = GOOD, f"{audio.jitter_ms:.1f} ms (median) < {limit:g} ms"
    else:
        level, reason = FAIR, f"{audio.jitter_ms:.1f} ms (median) >= {limit:g} ms: not optimal"
    return Check("audio jitter", level, reason, "Twilio preflight", keys)


def _loss_check(result: MediaResult) -> Check:
    keys = ("loss_optimal_pct", "loss_high_pct")
    optimal, high = THRESHOLDS["loss_optimal_pct"], THRESHOLDS["loss_high_pct"]
    rule_set = optimal.rule_set
    if result.loss_pct is None:
        level, reason = POOR, f"not measured: no {result.kind} count or receiver report came back"
    else:
        shown = f"{_percent(result.loss_pct)} ({result.packets_lost} of {result.packets_sent} packets"
        shown += " sent)" if result.loss_basis == "arrivals" else ", from receiver reports: a lower bound)"
        if result.loss_pct < optimal.value:
            level, reason = GOOD, f"{shown} < {optimal.value:g} %"
        elif result.loss_pct <= high.value:
            level, reason = FAIR, f"{shown} >= {optimal.value:g} %: not optimal; <= {high.value:g} %"
        else:
            level, reason, rule_set = POOR, f"{shown} > {high.value:g} %: 'high packet loss'", high.rule_set
    return Check(f"{result.kind} loss", level, reason, rule_set, keys)


def _freeze_check(result: MediaResult) -> Check:
    key = f"{result.kind}_freeze_gap_ms"
    gap = THRESHOLDS[key].value
    freeze = result.freeze
    if freeze is None:
        level, reason = POOR, f"no {result.kind} frame was decoded"
    elif not freeze.events:
        level, reason = GOOD, f"none (no gap > {gap:g} ms between {result.frames} frames)"
    else:
        count = len(freeze.events)
        level = FAIR
        reason = (
            f"{count} gap{'s' if count != 1 else ''} > {gap:g} ms, frozen {freeze.frozen_s:.1f} s "
            f"({freeze.freeze_rate * 100:.1f} % of the time), longest {_longest_ms(freeze):.0f} ms"
        )
        if result.stalled_at_end:
            reason += "; stopped before the end"
    return Check(f"{result.kind} freezes", level, reason, "Agora", (key,))


def _mos_check(mos: MosEstimate | None, problem: str | None) -> Check:
    keys = ("r_medium", "r_low")
    medium, low = THRESHOLDS["r_medium"].value, THRESHOLDS["r_low"].value
    if mos is None:
        level, reason = POOR, f"no estimate: {problem or 'unknown reason'}"
    else:
        shown = f"{mos.mos:.2f}, R {mos.r:.0f} ('{g109_category(mos.r)}')"
        if mos.r >= medium:
            level, reason = GOOD, f"{shown}: R >= {medium:g}"
        elif mos.r >= low:
            level, reason = FAIR, f"{shown}: R < {medium:g}, many users dissatisfied"
        else:
            level, reason = POOR, f"{shown}: R < {low:g}, nearly all users dissatisfied"
    return Check("estimated MOS", level, reason, "ITU-T G.109", keys)


# --- running a probe -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ReceiverReport:
    """One RTCP receiver report about one kind, as the sender's ``remote-inbound-rtp`` showed it."""

    seen_at: float  # loop time when the probe first read it
    packets_lost: int
    jitter_ms: float
    rtt_ms: float | None


class _ReportLog:
    """The sender's view of the receiver reports, each report kept once, and its own packet counts.

    aiortc replaces a sender's ``remote-inbound-rtp`` entry at every receiver report and stamps it with the
    arrival time, so a new timestamp means a new report.
    """

    def __init__(self) -> None:
        self.reports: dict[str, list[_ReceiverReport]] = {kind: [] for kind in KINDS}
        self.packets_sent: dict[str, int] = {}
        self._stamps: dict[str, object] = {}

    def read(self, stats: Mapping[str, Any], now: float) -> None:
        sent: dict[str, int] = {}
        for entry in stats.values():
            if getattr(entry, "kind", None) not in self.reports:
                continue
            if entry.type == "outbound-rtp":
                sent[entry.kind] = sent.get(entry.kind, 0) + entry.packetsSent
            elif entry.type == "remote-inbound-rtp" and self._stamps.get(entry.id) != entry.timestamp:
                self._stamps[entry.id] = entry.timestamp
                rtt = entry.roundTripTime
                self.reports[entry.kind].append(
                    _ReceiverReport(
                        seen_at=now,
                        packets_lost=entry.packetsLost,
                        jitter_ms=jitter_ms(entry.jitter, CLOCK_RATES[entry.kind]),
                        rtt_ms=None if rtt is None else rtt * 1000,
                    )
                )
        self.packets_sent.update(sent)


async def run_probe(
    profile: Profile, *, seconds: float = DEFAULT_SECONDS, seed: int = 0, profile_source: str = "built-in"
) -> ProbeReport:
    """Make a loopback call (audio + video) under a profile for ``seconds`` and measure it.

    The caller's stats are read every `SAMPLE_INTERVAL_S`. After ``seconds`` the media stops; the
    probe then waits until what was in flight has arrived and one more receiver report has come back (a
    few seconds at most), so that the loss counts cover every packet sent. RTT and jitter come from the
    reports received while media flowed.

    Args:
        profile: The network condition: its uplink impairs the media the caller sends, its downlink what
            the callee sends back.
        seconds: How long media flows after the peers connect.
        seed: Seed of the uplink's random draws; the downlink uses ``seed + 1``.
        profile_source: Where the profile came from, for the report.

    Returns:
        The report.

    Raises:
        ProbeError: If the peers do not connect within `CONNECT_TIMEOUT_S`.
    """
    from rtclab.call import LoopbackCall  # aiortc is only needed here: listing profiles stays fast

    uplink = profile.uplink_impairment(seed)
    call = LoopbackCall(
        sample_interval=SAMPLE_INTERVAL_S,
        connect_timeout=CONNECT_TIMEOUT_S,
        uplink=uplink,
        downlink=profile.downlink_impairment(seed + 1),
    )
    try:
        await call.start()
    except (TimeoutError, ConnectionError, ValueError) as error:
        raise ProbeError(f"the call did not connect under profile {profile.name!r}: {error}") from None
    loop = asyncio.get_running_loop()
    log = _ReportLog()
    try:
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            log.read(await call.caller.getStats(), loop.time())
            await asyncio.sleep(min(SAMPLE_INTERVAL_S, left))
        log.read(await call.caller.getStats(), loop.time())
        ended_s, ended = call.elapsed_s, loop.time()
        counted = {kind: len(reports) for kind, reports in log.reports.items()}

        for track in call.tracks:
            track.stop()
        up, down = profile.uplink, profile.downlink
        in_flight_s = (up.delay_ms + 4 * up.jitter_ms + uplink.queue_ms) / 1000 + SAMPLE_INTERVAL_S
        report_due = ended + in_flight_s + (down.delay_ms + 4 * down.jitter_ms) / 1000
        give_up = report_due + _RTCP_INTERVAL_MAX_S + 0.5
        while loop.time() < give_up:
            await asyncio.sleep(0.1)
            log.read(await call.caller.getStats(), loop.time())
            if all(any(r.seen_at >= report_due for r in log.reports[kind]) for kind in log.packets_sent):
                break
        received = _arrivals(await call.caller.getStats(), await call.callee.getStats())
    finally:
        await call.close()
    return _build_report(
        call,
        log,
        counted,
        received,
        profile,
        seconds=seconds,
        seed=seed,
        ended_s=ended_s,
        profile_source=profile_source,
    )


def _arrivals(sender: Mapping[str, Any], receiver: Mapping[str, Any]) -> dict[str, int]:
    """Packets received per kind; a kind whose ``inbound-rtp`` describes another SSRC (RTX) is left out."""
    inbound = {s.kind: s for s in receiver.values() if s.type == "inbound-rtp"}
    arrived = {}
    for entry in sender.values():
        if entry.type == "outbound-rtp":
            seen = inbound.get(entry.kind)
            if seen is None:  # aiortc makes the entry at the first packet: none arrived
                arrived[entry.kind] = 0
            elif seen.ssrc == entry.ssrc:
                arrived[entry.kind] = seen.packetsReceived
    return arrived


_RTCP_INTERVAL_MAX_S = 1.5
"""aiortc's receiver sends a report every 0.5-1.5 s (``RTCRtpReceiver._run_rtcp``)."""


def _build_report(
    call: LoopbackCall,
    log: _ReportLog,
    counted: Mapping[str, int],
    received: Mapping[str, int],
    profile: Profile,
    *,
    seconds: float,
    seed: int,
    ended_s: float,
    profile_source: str,
) -> ProbeReport:
    from rtclab.stats import estimate_mos, summarize

    timeline = [s for s in call.timeline if s.at_s <= ended_s]  # not the idle link after the media stopped
    summaries = {s.kind: s for s in summarize(timeline)}
    first_ms = {"audio": call.timings.first_audio_ms, "video": call.timings.first_video_ms}
    media: dict[str, MediaResult] = {}
    rtts: list[float] = []
    for kind in KINDS:
        if kind not in log.packets_sent:
            continue
        during = log.reports[kind][: counted[kind]]
        rtts += [r.rtt_ms for r in during if r.rtt_ms is not None]
        last = log.reports[kind][-1] if log.reports[kind] else None
        times = [t for t in call.frame_times.get(kind, []) if t <= ended_s]
        freeze, stalled = _freezes(times, kind, ended_s)
        summary = summaries.get(kind)
        media[kind] = MediaResult(
            kind=kind,
            frames=len(times),
            first_frame_ms=first_ms.get(kind),
            packets_sent=log.packets_sent[kind],
            packets_received=received.get(kind),
            reported_lost=None if last is None else last.packets_lost,
            jitter_ms=statistics.median(r.jitter_ms for r in during) if during else None,
            reports=len(during),
            bitrate_kbps=None if summary is None else summary.bitrate_kbps,
            freeze=freeze,
            stalled_at_end=stalled,
        )
    mos: MosEstimate | None = None
    problem: str | None = None
    burst = profile.uplink.burst
    try:
        mos = estimate_mos(timeline, kind="audio", burst_ratio=burst.burst_ratio if burst else 1.0)
    except ValueError as error:
        problem = str(error)
    return ProbeReport(
        profile=profile,
        profile_source=profile_source,
        seconds=seconds,
        seed=seed,
        ended_s=ended_s,
        connect_ms=call.timings.connected_ms,
        rtt_ms=tuple(rtts),
        media=media,
        links={direction: link.counters.as_dict() for direction, link in call.links.items()},
        mos=mos,
        mos_problem=problem,
    )


def _freezes(times: list[float], kind: str, ended_s: float) -> tuple[FreezeReport | None, bool]:
    if not times:
        return None, False
    # A picture that stops for good is frozen until the probe ends: count that tail as a freeze too.
    stalled = (ended_s - max(times)) * 1000 > FREEZE_THRESHOLDS_MS[kind]
    return freezes([*times, ended_s] if stalled else times, kind), stalled


# --- text output ---------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pair(up: float | None, down: float | None, digits: int = 2) -> str:
    a, b = _num(up, digits), _num(down, digits)
    return a if a == b else f"{a}/{b}"


def _hosts(profile: Profile) -> list[str]:
    hosts: list[str] = []
    for source in profile.sources:
        host = urlsplit(source.url).hostname if source.url else None
        if host:
            host = host.removeprefix("www.")
            if host not in hosts:
                hosts.append(host)
    return hosts


def profile_rows(profiles: Iterable[Profile]) -> list[dict[str, Any]]:
    """The profiles as plain data for ``rtclab profiles --json``: the file format plus derived numbers.

    Args:
        profiles: Profiles, e.g. ``load_profiles().values()``.

    Returns:
        One dict per profile, with the same keys for every profile: those of
        `rtclab.profiles.Profile.to_dict` (``blackouts``, ``assumed`` and ``notes`` always present)
        plus ``rtt_ms`` and ``source_hosts``; each direction also gets ``mean_loss``.
    """
    rows = []
    for profile in profiles:
        row = profile.to_dict()
        row.setdefault("blackouts", [])
        row.setdefault("assumed", [])
        row.setdefault("notes", "")
        for direction in ("uplink", "downlink"):
            row[direction] = _link_dict(getattr(profile, direction))
        row["rtt_ms"] = profile.rtt_ms
        row["source_hosts"] = _hosts(profile)
        rows.append(row)
    return rows


def format_profiles(profiles: Iterable[Profile]) -> str:
    """Format profiles as a table: one line each, up/down values as ``up/down`` where they differ.

    Args:
        profiles: The profiles to list.

    Returns:
        The table and a legend, without a trailing newline.
    """
    header = [
        "name",
        "up kbit/s",
        "down kbit/s",
        "delay ms",
        "jitter ms",
        "loss %",
        "burst",
        "blackouts",
        "source",
    ]
    rows: list[list[str] | None] = [header, None]
    for p in profiles:
        up, down = p.uplink, p.downlink
        bursts = [link.burst.mean_burst_packets if link.burst else None for link in (up, down)]
        hosts = _hosts(p)
        rows.append(
            [
                p.name,
                "no cap" if up.rate_kbps is None else _num(up.rate_kbps),
                "no cap" if down.rate_kbps is None else _num(down.rate_kbps),
                _pair(up.delay_ms, down.delay_ms),
                _pair(up.jitter_ms, down.jitter_ms),
                _pair(up.mean_loss * 100, down.mean_loss * 100),
                "-" if bursts == [None, None] else _pair(*bursts, digits=1) + " pkts",
                ", ".join(f"{_num(b.start_s)}-{_num(b.start_s + b.duration_s)} s" for b in p.blackouts)
                or "-",
                (hosts[0] + (f" +{len(hosts) - 1}" if len(hosts) > 1 else "")) if hosts else "-",
            ]
        )
    legend = [
        "",
        "delay: one way; up/down where the two directions differ; loss: long-run mean, bursts included;",
        "burst: mean packets lost in a row; blackouts: seconds after the call starts; source: host of the",
        "first source (+N more). Add --json for every field, sources and notes included.",
    ]
    return "\n".join(_table(rows, right=range(1, 6)) + legend)


def _table(rows: Sequence[Sequence[str] | None], right: Iterable[int] = ()) -> list[str]:
    """Lay rows out in columns, two spaces apart; columns in ``right`` are right-aligned; None is a rule."""
    right = set(right)
    cells = [row for row in rows if row is not None]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        "  ".join(
            "-" * width if row is None else row[i].rjust(width) if i in right else row[i].ljust(width)
            for i, width in enumerate(widths)
        ).rstrip()
        for row in rows
    ]


def _describe_link(link: ProfileLink) -> str:
    rate = "no cap" if link.rate_kbps is None else f"{_num(link.rate_kbps)} kbit/s"
    loss = f"{_num(link.mean_loss * 100)} % loss"
    if link.burst is not None:
        loss += f" in bursts of {_num(link.burst.mean_burst_packets, 1)} packets"
    return f"{rate}, {_num(link.delay_ms)} ms one way, jitter {_num(link.jitter_ms)} ms, {loss}"


def _profile_lines(report: ProbeReport) -> list[str]:
    p = report.profile
    lines = [
        f"rtclab probe: {p.name} ({report.profile_source}), {_num(report.seconds)} s, loopback only, "
        f"seed {report.seed}",
        f"  models     {p.description}",
        f"  uplink     {_describe_link(p.uplink)}  (carries the media)",
        f"  downlink   {_describe_link(p.downlink)}  (carries RTCP back)",
    ]
    for b in report.blackouts():
        end = b["start_s"] + b["duration_s"]
        where = (
            "inside the probe"
            if b["in_probe"]
            else f"after the probe: --seconds {math.ceil(end) + 1} covers it"
        )
        lines.append(f"  blackout   {_num(b['start_s'])}-{_num(end)} s, {where}")
    lines.append(f"  sources    {', '.join(_hosts(p)) or 'no URL given'}")
    if p.assumed:
        lines.append(f"  assumed    {', '.join(p.assumed)} (no source gives these numbers)")
    return lines


def _measurement_lines(report: ProbeReport) -> list[str]:
    p = report.profile
    first = "".join(
        f", first {kind} frame {_num(m.first_frame_ms, 0)} ms"
        for kind, m in report.media.items()
        if m.first_frame_ms is not None
    )
    connect = "did not connect" if report.connect_ms is None else f"{report.connect_ms:.0f} ms"
    lines = [f"Connect      {connect} (ICE + DTLS through the impaired links){first}"]
    if report.rtt_ms:
        lines.append(
            f"RTT          median {report.rtt_median_ms:.0f} ms, p95 {report.rtt_p95_ms:.0f} ms "
            f"({len(report.rtt_ms)} receiver reports, smoothed by aiortc; the profile's delays add up to "
            f"{_num(p.rtt_ms)} ms)"
        )
    else:
        lines.append(
            "RTT          not measured: no receiver report answered a sender report (RTCP lost or queued)"
        )
    loss = report.loss_pct
    lines.append(f"Loss         {_percent(loss)} of RTP packets, audio and video")
    for direction, counters in report.links.items():
        drops = ", ".join(
            f"{name.removeprefix('dropped_')} {n}"
            for name, n in counters.items()
            if name.startswith("dropped_") and n
        )
        lines.append(
            f"{direction.capitalize():<12} {counters['sent']} datagrams sent, {counters['delivered']} delivered, "
            + (f"dropped: {drops}" if drops else "none dropped")
        )
    lines.append("")

    media = list(report.media.values())
    gaps = "/".join(_num(FREEZE_THRESHOLDS_MS[m.kind]) for m in media)
    rows = [
        ["", *(m.kind for m in media)],
        ["packets sent", *(str(m.packets_sent) for m in media)],
        [
            "packets received",
            *("-" if m.packets_received is None else str(m.packets_received) for m in media),
        ],
        ["loss", *(_percent(m.loss_pct) + ("" if m.loss_basis == "arrivals" else " *") for m in media)],
        [
            "jitter, median of reports",
            *("-" if m.jitter_ms is None else f"{m.jitter_ms:.1f} ms" for m in media),
        ],
        ["bitrate sent", *("-" if m.bitrate_kbps is None else f"{m.bitrate_kbps:.0f} kbit/s" for m in media)],
        ["frames decoded", *(str(m.frames) for m in media)],
        [f"freezes > {gaps} ms", *("-" if m.freeze is None else str(len(m.freeze.events)) for m in media)],
        [
            "frozen time",
            *(
                "-" if m.freeze is None else f"{m.freeze.frozen_s:.1f} s ({m.freeze.freeze_rate * 100:.1f} %)"
                for m in media
            ),
        ],
    ]
    lines += _table(rows, right=range(1, len(media) + 1))
    if any(m.loss_basis != "arrivals" for m in media):
        lines.append(
            "* from RTCP receiver reports, a lower bound: once retransmissions (RTX) arrive, aiortc's receiver"
        )
        lines.append("  stats describe the RTX stream, so the count of media packets that arrived is unknown")
    lines.append("")
    mos = report.mos
    if mos is None:
        lines.append(f"MOS          no estimate ({report.mos_problem})")
    else:
        lines.append(
            f"MOS          {mos.mos:.2f} (E-model R {mos.r:.0f}, audio): mouth-to-ear {mos.one_way_delay_ms:.0f} ms "
            f"= RTT/2 + {mos.jitter_buffer_ms:.0f} ms jitter buffer, loss {_percent(mos.loss_fraction * 100)}"
        )
    return lines


def _percent(value: float | None) -> str:
    # Three significant digits, so that 0.995 % does not print as 1.00 % next to a "< 1 %" verdict.
    return "-" if value is None else f"{value:.3g} %"


def _verdict_lines(report: ProbeReport) -> list[str]:
    checks = report.checks
    below = sum(c.level != GOOD for c in checks)
    lines = [f"Verdict: {report.verdict.upper()} ({below} of {len(checks)} checks below 'good')"]
    lines += [
        "  " + line
        for line in _table([[c.level, f"[{c.rule_set}]", f"{c.subject}: {c.reason}"] for c in checks])
    ]
    lines += ["", "Rule sets"]
    used: dict[str, str] = {}
    for check in checks:
        for key in check.thresholds:
            used.setdefault(THRESHOLDS[key].rule_set, THRESHOLDS[key].url)
    lines += ["  " + line for line in _table([[rule_set, url] for rule_set, url in used.items()])]
    return lines


def format_report(report: ProbeReport) -> str:
    """Format a probe report for a person: the profile, the measurements, the verdict and its sources.

    Args:
        report: A probe's report.

    Returns:
        The text, without a trailing newline.
    """
    return "\n".join([*_profile_lines(report), "", *_measurement_lines(report), "", *_verdict_lines(report)])


# --- the command line ----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported on one line as ``rtclab: error: ...`` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"rtclab: error: {text} (see '{self.prog} --help')\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    low, high = SECONDS_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g} seconds")
    return value


def _parser() -> _Parser:
    parser = _Parser(
        prog="rtclab",
        description="Last Mile Academy's lab toolkit: network profiles and a loopback call probe.",
        epilog="Exit codes: 0 ran, 1 the call did not connect, 2 bad argument or profile.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "profiles",
        help="list the network profiles",
        description="List the built-in network profiles, or those of a YAML/JSON profile file.",
    )
    listing.add_argument(
        "--file", metavar="PATH", help="list this profile file instead (only read, never written)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    probe = commands.add_parser(
        "probe",
        help="run a loopback call under a profile and judge it",
        description=(
            "Run a loopback call (audio + video, 127.0.0.1 only) under a profile's uplink and downlink "
            "impairments and report connect time, RTT, jitter, loss, freezes, an estimated MOS and a verdict "
            "against published thresholds."
        ),
    )
    probe.add_argument(
        "--profile",
        required=True,
        metavar="NAME_OR_FILE",
        help="a built-in profile name (see 'rtclab profiles'), a file with one profile, or FILE#NAME",
    )
    probe.add_argument(
        "--seconds",
        type=_seconds,
        default=DEFAULT_SECONDS,
        metavar="N",
        help=f"how long media flows after connecting (default {DEFAULT_SECONDS:g}, {SECONDS_RANGE[0]:g}-{SECONDS_RANGE[1]:g})",
    )
    probe.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the random impairments (default 0)"
    )
    probe.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"rtclab: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rtclab`` command.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ran (whatever the verdict), 1 the call did not connect, 2 bad argument or profile,
        130 interrupted. Every error is one line on stderr starting with ``rtclab: error:``.
    """
    args = _parser().parse_args(argv)
    try:
        if args.command == "profiles":
            return _list_profiles(args.file, as_json=args.json)
        profile = get_profile(args.profile)
    except (ProfileError, OSError, ValueError) as error:
        return _fail(str(error), 2)

    source = "built-in" if args.profile in load_profiles() else args.profile
    try:
        report = asyncio.run(run_probe(profile, seconds=args.seconds, seed=args.seed, profile_source=source))
    except ProbeError as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    print(json.dumps(report.to_dict(), indent=2, allow_nan=False) if args.json else format_report(report))
    return 0


def _list_profiles(path: str | None, *, as_json: bool) -> int:
    profiles = list(load_profiles(path).values())  # raises ProfileError before anything is printed
    source = "built-in" if path is None else str(Path(path))
    if as_json:
        print(json.dumps({"source": source, "profiles": profile_rows(profiles)}, indent=2, allow_nan=False))
        return 0
    count = f"{len(profiles)} profile{'s' if len(profiles) != 1 else ''}"
    if path is None:
        print(f"{count} in rtclab/data/profiles.yaml; 'rtclab probe --profile NAME' runs one")
    else:
        print(f"{count} in {source}; 'rtclab probe --profile {source}#NAME' runs one")
    print()
    print(format_profiles(profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
