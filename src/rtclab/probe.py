"""Probe a network profile: run a short loopback call (audio + video) under the profile's impairments, measure
it (connect time, RTT, jitter, loss, freezes, an E-model MOS) and judge it against published thresholds.

`run_probe` makes the call and returns a `ProbeReport`; `ProbeReport.checks` is the verdict, one `Check`
per rule, each against a number in `THRESHOLDS` with its source. The ``rtclab probe`` command
(`rtclab.cli`) prints the report. Every call stays on 127.0.0.1 (`rtclab.call.LoopbackCall`); the profile's
uplink impairs what the caller sends (the media), its downlink what the callee sends back (RTCP reports, ICE
and DTLS answers).

Example:
    ```python
    from rtclab.probe import run_probe
    from rtclab.profiles import get_profile

    report = await run_probe(get_profile("chrome-slow-4g"), seconds=5)
    print(report.rtt_median_ms, report.loss_pct, report.verdict)
    ```
"""

from __future__ import annotations

import asyncio
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rtclab.freezes import FREEZE_THRESHOLDS_MS, FreezeReport, freezes
from rtclab.profiles import Link as ProfileLink
from rtclab.profiles import Profile
from rtclab.stats import CLOCK_RATES, KINDS, MediaSnapshot, MosEstimate, jitter_ms

if TYPE_CHECKING:
    from rtclab.call import LoopbackCall

__all__ = [
    "CONNECT_TIMEOUT_S",
    "DEFAULT_SECONDS",
    "RTT_WAIT_MAX_S",
    "FAIR",
    "GOOD",
    "MOS_METHOD",
    "POOR",
    "SAMPLE_INTERVAL_S",
    "SECONDS_RANGE",
    "THRESHOLDS",
    "Check",
    "MediaResult",
    "ProbeError",
    "ProbeReport",
    "Threshold",
    "format_percent",
    "g109_category",
    "judge",
    "run_probe",
]

SECONDS_RANGE = (2.0, 120.0)
"""Shortest and longest probe, in seconds (RTCP reports come about once a second, so 2 s is the floor)."""
DEFAULT_SECONDS = 10.0
SAMPLE_INTERVAL_S = 0.25
CONNECT_TIMEOUT_S = 20.0
"""Generous, because ICE and DTLS cross the impaired links too (1.3 s RTT and 18 kbit/s on rural 2G)."""
RTT_WAIT_MAX_S = 10.0
"""Longest the media flows on past ``seconds`` while no receiver report has brought an RTT yet."""

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
        says="video counts as frozen after a 600 ms stall (Agora Analytics; rtclab.freezes.FREEZE_THRESHOLDS_MS)",
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

MOS_METHOD = (
    "E-model (ITU-T G.107) for Opus audio as stock aiortc receives it (rtclab.stats.estimate_mos, "
    "rtclab.stats.AIORTC_RECEIVER): delay = RTT/2 + the jitter buffer rtclab measured (80 ms, 280 ms once a "
    "packet was lost); loss = frames the buffer never played, about 5 per lost packet, with no concealment; "
    "R = 93.2 - Id - Ie-eff"
)
"""How the probe's MOS is computed, in one sentence: the ``method`` of its JSON."""


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

    Loss compares what the sender sent with what arrived on the media SSRC, counted by the receiver once
    the media had stopped and everything in flight had landed (`rtclab.stats.get_stats`, so video
    retransmissions are not counted as arrivals). Should that count be missing, loss falls back on the
    receiver reports (RTCP), which cannot count packets lost after the last one that arrived. Jitter and RTT
    come from the receiver reports, as a browser's ``getStats()`` shows them on the sending side
    (``remote-inbound-rtp``).

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        frames: Frames decoded while the probe ran.
        first_frame_ms: When the first one came, in ms from the start of the offer (None if none did).
        packets_sent: RTP packets sent (retransmissions not counted).
        packets_received: Those that arrived, or None if the receiver's count could not be read.
        reported_lost: Packets lost according to the last receiver report, or None if none came.
        jitter_ms: Median of the jitter over the receiver reports that came while media flowed, in ms.
        reports: Receiver reports that came back while the media flowed.
        bitrate_kbps: Average payload bitrate sent, in kbit/s.
        freeze: Freezes of the decoded frames (`rtclab.freezes.freezes`), None without frames. A stream
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
        rtt_ms: Round-trip times from the receiver reports of both kinds while media flowed, in ms, one per
            report block, computed from the sender report it answers (RFC 3550 section 6.4.1; not aiortc's
            smoothed ``roundTripTime``, which long paths never get, see `run_probe`).
        media_s: How long media flowed: ``seconds``, or longer when no RTT had come back by then (see
            `run_probe`).
        media: One `MediaResult` per kind.
        links: Counters of the impaired links (``"uplink"``, ``"downlink"``), as
            `rtclab.impair.LinkCounters.as_dict`.
        mos: The E-model estimate for audio as stock aiortc receives it (`rtclab.stats.estimate_mos`), or None.
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
    media_s: float | None = None
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
                "media_s": _round(self.media_s, 3),
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
                "id": _round(mos.id, 1),
                "ie_eff": _round(mos.ie_eff, 1),
                "frame_loss_pct": _round(mos.frame_loss_fraction * 100, 3),
                "conceals": mos.conceals,
                "receiver": mos.receiver,
                "method": MOS_METHOD,
            },
            "mos_problem": self.mos_problem,
            "verdict": {"overall": self.verdict, "checks": [c.to_dict() for c in self.checks]},
            "thresholds": {
                key: {"value": t.value, "unit": t.unit, "rule_set": t.rule_set, "says": t.says, "url": t.url}
                for key, t in THRESHOLDS.items()
            },
        }


def format_percent(value: float | None) -> str:
    """A percentage with three significant digits (``"0.995 %"``), or ``"-"`` for None.

    Three digits, so that 0.995 % does not print as 1.00 % next to a "< 1 %" verdict.
    """
    return "-" if value is None else f"{value:.3g} %"


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
        shown = f"{format_percent(result.loss_pct)} ({result.packets_lost} of {result.packets_sent} packets"
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
        shown = (
            f"{mos.mos:.2f}, R {mos.r:.0f} ('{g109_category(mos.r)}'; Id {mos.id:.1f}, Ie-eff {mos.ie_eff:.1f}, "
            f"{mos.receiver_text})"
        )
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


class _RttMeter:
    """Round-trip times from every RTCP receiver report, computed as RFC 3550 (section 6.4.1) says.

    aiortc's sender computes an RTT only from a receiver report that answers its *latest* sender report,
    and it sends one every 0.5-1.5 s: once the path's RTT plus the receiver's wait for its next report
    exceeds that spacing (about 1 s and more: EDGE, 2G), no report ever matches and ``roundTripTime`` stays
    None. This keeps the send time of every sender report (hooking each sender's ``_send_rtcp``) and answers
    each receiver report block from there (hooking ``_handle_rtcp_packet``): RTT = arrival - send time of
    the report it answers (LSR) - the receiver's hold time (DLSR). Each reading is raw, not smoothed.
    """

    def __init__(self) -> None:
        self.readings: dict[str, list[tuple[float, float]]] = {kind: [] for kind in KINDS}  # (loop time, ms)
        self._sent: dict[tuple[int, int], float] = {}  # (sender SSRC, LSR) -> wall-clock send time

    def attach(self, pc: Any) -> None:
        from aiortc.rtp import RtcpRrPacket, RtcpSrPacket

        loop = asyncio.get_running_loop()
        for sender in pc.getSenders():
            kind = getattr(sender.track, "kind", None)
            if kind not in self.readings or not hasattr(sender, "_send_rtcp"):
                continue
            send, handle = sender._send_rtcp, sender._handle_rtcp_packet

            async def send_rtcp(packets: Any, send: Any = send) -> None:
                for packet in packets if isinstance(packets, list) else [packets]:
                    if isinstance(packet, RtcpSrPacket):
                        lsr = (packet.sender_info.ntp_timestamp >> 16) & 0xFFFFFFFF
                        self._sent[(packet.ssrc, lsr)] = time.time()
                await send(packets)

            async def handle_rtcp(
                packet: Any, handle: Any = handle, sender: Any = sender, kind: str = kind
            ) -> None:
                if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
                    now = time.time()
                    for block in packet.reports:
                        sent = self._sent.get((block.ssrc, block.lsr))
                        if block.ssrc == sender._ssrc and sent is not None and block.dlsr:
                            rtt = now - sent - block.dlsr / 65536
                            if rtt >= 0:
                                self.readings[kind].append((loop.time(), rtt * 1000))
                await handle(packet)

            sender._send_rtcp = send_rtcp
            sender._handle_rtcp_packet = handle_rtcp

    def until(self, end: float) -> list[float]:
        return [ms for kind in KINDS for at, ms in self.readings[kind] if at <= end]


async def run_probe(
    profile: Profile,
    *,
    seconds: float = DEFAULT_SECONDS,
    seed: int = 0,
    profile_source: str = "built-in",
    connect_timeout: float | None = None,
) -> ProbeReport:
    """Make a loopback call (audio + video) under a profile for ``seconds`` and measure it.

    The caller's stats are read every `SAMPLE_INTERVAL_S`. After ``seconds`` the media stops, unless
    no receiver report has brought an RTT yet: then it flows on until one does, for at most
    `RTT_WAIT_MAX_S` more (on a long path the first RTT needs a sender report and a receiver report to
    cross it, each sent 0.5-1.5 s apart: about 3 s plus the RTT). Once the media stops, the probe waits until
    what was in flight has arrived and one more receiver report has come back (a few seconds at most), so
    that the loss counts cover every packet sent. RTT and jitter come from the reports received while media
    flowed: aiortc's sender reports carry the time of the last RTP packet sent, so once the media stops
    they all carry the same one and a report no longer tells which it answers.

    The RTT is computed by the probe from every receiver report and the send time of the sender report it
    answers. aiortc's own ``roundTripTime`` needs a report that answers the *latest* sender report, which on a
    path with an RTT of about a second or more (EDGE, 2G) never comes.

    Args:
        profile: The network condition: its uplink impairs the media the caller sends, its downlink what
            the callee sends back.
        seconds: How long media flows after the peers connect (`SECONDS_RANGE`).
        seed: Seed of the uplink's random draws; the downlink uses ``seed + 1``.
        profile_source: Where the profile came from, for the report.
        connect_timeout: Seconds to wait for the peers to connect; None for `CONNECT_TIMEOUT_S`.

    Returns:
        The report.

    Raises:
        ValueError: If ``seconds`` is outside `SECONDS_RANGE`.
        ProbeError: If the peers do not connect in time.
    """
    from rtclab.call import LoopbackCall  # aiortc is only needed here: listing profiles stays fast
    from rtclab.stats import get_stats

    low, high = SECONDS_RANGE
    if not low <= seconds <= high:
        raise ValueError(f"seconds must be between {low:g} and {high:g}, got {seconds!r}")
    uplink = profile.uplink_impairment(seed)
    call = LoopbackCall(
        sample_interval=SAMPLE_INTERVAL_S,
        connect_timeout=CONNECT_TIMEOUT_S if connect_timeout is None else connect_timeout,
        uplink=uplink,
        downlink=profile.downlink_impairment(seed + 1),
    )
    try:
        await call.start()
    except (TimeoutError, ConnectionError, ValueError) as error:
        raise ProbeError(f"the call did not connect under profile {profile.name!r}: {error}") from None
    loop = asyncio.get_running_loop()
    log = _ReportLog()
    meter = _RttMeter()
    meter.attach(call.caller)
    try:
        started = loop.time()
        deadline, latest = started + seconds, started + seconds + RTT_WAIT_MAX_S
        while (now := loop.time()) < latest and (now < deadline or not meter.until(now)):
            log.read(await call.caller.getStats(), now)
            await asyncio.sleep(
                min(SAMPLE_INTERVAL_S, deadline - now) if now < deadline else SAMPLE_INTERVAL_S
            )
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
        received = _arrivals(await call.caller.getStats(), await get_stats(call.callee))
    finally:
        await call.close()
    return _build_report(
        call,
        log,
        counted,
        received,
        meter.until(ended),
        profile,
        seconds=seconds,
        seed=seed,
        ended_s=ended_s,
        profile_source=profile_source,
        media_s=ended - started,
    )


def _arrivals(sender: Mapping[str, Any], receiver: Mapping[str, Any]) -> dict[str, int]:
    """Media packets received per kind, from the receiver's count for the sent SSRCs."""
    from rtclab.stats import media_snapshots

    arrived = {}
    for snapshot in media_snapshots(sender, receiver, at_s=0.0):
        if snapshot.received_from == "inbound-rtp":
            arrived[snapshot.kind] = snapshot.packets_received
        elif snapshot.received_from == "none":  # aiortc makes the entry at the first packet: none arrived
            arrived[snapshot.kind] = 0
    return arrived


_RTCP_INTERVAL_MAX_S = 1.5
"""aiortc's receiver sends a report every 0.5-1.5 s (``RTCRtpReceiver._run_rtcp``)."""


def _build_report(
    call: LoopbackCall,
    log: _ReportLog,
    counted: Mapping[str, int],
    received: Mapping[str, int],
    rtts: list[float],
    profile: Profile,
    *,
    seconds: float,
    seed: int,
    ended_s: float,
    profile_source: str,
    media_s: float,
) -> ProbeReport:
    from rtclab.stats import summarize

    timeline = [s for s in call.timeline if s.at_s <= ended_s]  # not the idle link after the media stopped
    summaries = {s.kind: s for s in summarize(timeline)}
    first_ms = {"audio": call.timings.first_audio_ms, "video": call.timings.first_video_ms}
    media: dict[str, MediaResult] = {}
    used: dict[str, list[_ReceiverReport]] = {}
    for kind in KINDS:
        if kind not in log.packets_sent:
            continue
        during = log.reports[kind][: counted[kind]]
        used[kind] = during
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
    mos, problem = _mos(media.get("audio"), used.get("audio", []), rtts, profile)
    return ProbeReport(
        profile=profile,
        profile_source=profile_source,
        seconds=seconds,
        seed=seed,
        ended_s=ended_s,
        connect_ms=call.timings.connected_ms,
        rtt_ms=tuple(rtts),
        media=media,
        media_s=media_s,
        links={direction: link.counters.as_dict() for direction, link in call.links.items()},
        mos=mos,
        mos_problem=problem,
    )


def _mos(
    audio: MediaResult | None, reports: list[_ReceiverReport], rtts: list[float], profile: Profile
) -> tuple[MosEstimate | None, str | None]:
    """The E-model estimate from the probe's own numbers: its RTT readings, audio jitter and audio loss."""
    from rtclab.stats import estimate_mos

    if audio is None:
        return None, "no audio was sent"
    if not rtts:
        return None, "no RTT: no receiver report answered a sender report"
    lost = audio.packets_lost
    if lost is None:
        return None, "no count of the audio packets lost"
    # One snapshot per RTT reading (estimate_mos takes their median), the audio jitter readings, and the
    # loss counted at the end in the last one.
    readings = [MediaSnapshot(kind="audio", at_s=i, rtt_ms=rtt) for i, rtt in enumerate(rtts)]
    readings += [
        MediaSnapshot(kind="audio", at_s=len(rtts) + i, jitter_ms=r.jitter_ms) for i, r in enumerate(reports)
    ]
    readings.append(
        MediaSnapshot(
            kind="audio",
            at_s=len(rtts) + len(reports),
            packets_received=max(audio.packets_sent - lost, 0),
            packets_lost=lost,
        )
    )
    burst = profile.uplink.burst
    try:
        estimate = estimate_mos(readings, kind="audio", burst_ratio=burst.burst_ratio if burst else 1.0)
    except ValueError as error:
        return None, str(error)
    return estimate, None


def _freezes(times: list[float], kind: str, ended_s: float) -> tuple[FreezeReport | None, bool]:
    if not times:
        return None, False
    # A picture that stops for good is frozen until the probe ends: count that tail as a freeze too.
    stalled = (ended_s - max(times)) * 1000 > FREEZE_THRESHOLDS_MS[kind]
    return freezes([*times, ended_s] if stalled else times, kind), stalled
