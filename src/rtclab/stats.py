"""Turn aiortc ``getStats()`` reports into plain records with real units: jitter and RTT in ms, loss as a
fraction, bitrate in kbit/s from two readings of a byte counter.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLOCK_RATES",
    "KINDS",
    "MediaSnapshot",
    "MediaSummary",
    "bitrate_kbps",
    "format_summary",
    "fraction_lost",
    "jitter_ms",
    "media_snapshots",
    "rtt_ms",
    "summarize",
]

CLOCK_RATES: dict[str, int] = {"audio": 48_000, "video": 90_000}
"""RTP clock rate (ticks per second) of each media kind, as aiortc negotiates them (Opus, VP8/H.264)."""

KINDS = ("audio", "video")
"""The media kinds a lab call carries, in the order summaries list them."""


def jitter_ms(ticks: float, clock_rate: int) -> float:
    """Convert an RTP interarrival jitter from clock ticks to milliseconds.

    Args:
        ticks: ``jitter`` as found in ``inbound-rtp`` or ``remote-inbound-rtp``.
        clock_rate: RTP clock rate of the stream (48000 for Opus audio, 90000 for video).

    Returns:
        The jitter in milliseconds.

    Raises:
        ValueError: If ``clock_rate`` is not positive.
    """
    if clock_rate <= 0:
        raise ValueError("clock_rate must be positive")
    return ticks * 1000 / clock_rate


def fraction_lost(raw: int) -> float:
    """Convert an RTCP ``fractionLost`` (0-255, in 1/256ths) to a fraction between 0 and 1.

    Args:
        raw: ``fractionLost`` from ``remote-inbound-rtp``: lost packets in the last report interval, x256.

    Returns:
        The fraction of packets lost in that interval (multiply by 100 for percent).

    Raises:
        ValueError: If ``raw`` is outside 0-255.
    """
    if not 0 <= raw <= 255:
        raise ValueError("fractionLost must be in 0..255")
    return raw / 256


def rtt_ms(seconds: float | None) -> float | None:
    """Convert ``roundTripTime`` from seconds to milliseconds, keeping None (no receiver report yet).

    Args:
        seconds: ``roundTripTime`` from the sending peer's ``remote-inbound-rtp``.

    Returns:
        The round-trip time in milliseconds, or None.
    """
    return None if seconds is None else seconds * 1000


def bitrate_kbps(bytes_before: int, bytes_after: int, seconds: float) -> float:
    """Average bitrate between two readings of a byte counter.

    Args:
        bytes_before: Counter (for example ``bytesSent``) at the first reading.
        bytes_after: Counter at the second reading.
        seconds: Time between the two readings.

    Returns:
        The bitrate in kbit/s (1 kbit = 1000 bits).

    Raises:
        ValueError: If ``seconds`` is not positive or the counter went backwards.
    """
    if seconds <= 0:
        raise ValueError("seconds must be positive")
    if bytes_after < bytes_before:
        raise ValueError("byte counter went backwards")
    return (bytes_after - bytes_before) * 8 / seconds / 1000


@dataclass(frozen=True)
class MediaSnapshot:
    """One media kind at one instant, as seen by both ends of a one-way stream.

    Sender side (``outbound-rtp``, ``remote-inbound-rtp``) comes from the sending peer's report, receiver side
    (``inbound-rtp``) from the receiving peer's. Counters are cumulative; None means "not reported yet".

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        at_s: When the reports were read, in seconds (the caller chooses the origin, e.g. call start).
        packets_sent: RTP packets sent (``outbound-rtp.packetsSent``).
        bytes_sent: RTP payload bytes sent, headers excluded (``outbound-rtp.bytesSent``).
        packets_received: RTP packets received (``inbound-rtp.packetsReceived``; undercounts on reordering).
        packets_lost: Packets lost as counted by the receiver (``inbound-rtp.packetsLost``, may be negative
            when duplicates arrive).
        jitter_ms: Interarrival jitter measured by the receiver (``inbound-rtp.jitter``), in ms.
        fraction_lost: Loss in the last RTCP interval, 0-1 (``remote-inbound-rtp.fractionLost`` / 256).
        rtt_ms: Round-trip time from RTCP, in ms (``remote-inbound-rtp.roundTripTime``).
    """

    kind: str
    at_s: float
    packets_sent: int = 0
    bytes_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0
    jitter_ms: float | None = None
    fraction_lost: float | None = None
    rtt_ms: float | None = None


def _of_type(report: Mapping[str, Any], stat_type: str, kind: str) -> list[Any]:
    return [s for s in report.values() if s.type == stat_type and s.kind == kind]


def _worst(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def media_snapshots(
    sender: Mapping[str, Any], receiver: Mapping[str, Any], at_s: float, kinds: Sequence[str] = KINDS
) -> list[MediaSnapshot]:
    """Read one snapshot per media kind from the two peers' ``getStats()`` reports.

    With several streams of one kind, counters are added up and jitter, loss and RTT take the worst stream.

    Args:
        sender: ``await sending_pc.getStats()``.
        receiver: ``await receiving_pc.getStats()``.
        at_s: Time of the reading, in seconds.
        kinds: Media kinds to read; a kind the sender does not send is left out.

    Returns:
        One :class:`MediaSnapshot` per kind the sender has an ``outbound-rtp`` for.
    """
    snapshots = []
    for kind in kinds:
        outbound = _of_type(sender, "outbound-rtp", kind)
        if not outbound:
            continue
        remote_inbound = _of_type(sender, "remote-inbound-rtp", kind)
        inbound = _of_type(receiver, "inbound-rtp", kind)
        snapshots.append(
            MediaSnapshot(
                kind=kind,
                at_s=at_s,
                packets_sent=sum(s.packetsSent for s in outbound),
                bytes_sent=sum(s.bytesSent for s in outbound),
                packets_received=sum(s.packetsReceived for s in inbound),
                packets_lost=sum(s.packetsLost for s in inbound),
                jitter_ms=_worst(jitter_ms(s.jitter, CLOCK_RATES[kind]) for s in inbound),
                fraction_lost=_worst(fraction_lost(int(s.fractionLost)) for s in remote_inbound),
                rtt_ms=_worst(rtt_ms(s.roundTripTime) for s in remote_inbound),
            )
        )
    return snapshots


@dataclass(frozen=True)
class MediaSummary:
    """What one media kind did over a stretch of a call; ``str()`` gives one readable line.

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        packets_sent: RTP packets sent, at the last snapshot.
        packets_received: RTP packets received, at the last snapshot.
        packets_lost: Packets lost as counted by the receiver, at the last snapshot.
        jitter_ms: Receiver's interarrival jitter at the last snapshot, in ms (None if never reported).
        rtt_ms: Last RTCP round-trip time, in ms (None before the first receiver report).
        bitrate_kbps: Average payload bitrate sent between the first and the last snapshot, in kbit/s
            (None with a single snapshot).
        seconds: Time between the first and the last snapshot.
    """

    kind: str
    packets_sent: int
    packets_received: int
    packets_lost: int
    jitter_ms: float | None
    rtt_ms: float | None
    bitrate_kbps: float | None
    seconds: float

    @property
    def loss_fraction(self) -> float:
        """Packets lost over packets expected (received + lost), 0-1; 0 when nothing was expected."""
        lost = max(self.packets_lost, 0)
        expected = self.packets_received + lost
        return lost / expected if expected else 0.0

    def __str__(self) -> str:
        return (
            f"{self.kind:<6} sent {self.packets_sent} pkts  recv {self.packets_received} pkts"
            f"  lost {self.packets_lost} ({self.loss_fraction * 100:.1f} %)"
            f"  jitter {_number(self.jitter_ms, 'ms')}  RTT {_number(self.rtt_ms, 'ms')}"
            f"  bitrate {_number(self.bitrate_kbps, 'kbit/s')}"
        )


def _number(value: float | None, unit: str) -> str:
    return "n/a" if value is None else f"{value:.1f} {unit}"


def summarize(snapshots: Iterable[MediaSnapshot]) -> list[MediaSummary]:
    """Summarize a series of snapshots, one :class:`MediaSummary` per media kind (audio first).

    Counters, jitter and RTT come from each kind's latest snapshot; the bitrate is the average between its
    earliest and latest snapshots. For the bitrate of a whole call, take the first snapshot at its start.

    Args:
        snapshots: Snapshots from :func:`media_snapshots`, in any order, kinds mixed.

    Returns:
        Summaries ordered audio, video, then any other kind by name.
    """
    by_kind: dict[str, list[MediaSnapshot]] = {}
    for snapshot in snapshots:
        by_kind.setdefault(snapshot.kind, []).append(snapshot)
    order = sorted(by_kind, key=lambda k: (KINDS.index(k) if k in KINDS else len(KINDS), k))
    summaries = []
    for kind in order:
        series = sorted(by_kind[kind], key=lambda s: s.at_s)
        first, last = series[0], series[-1]
        seconds = last.at_s - first.at_s
        rate = bitrate_kbps(first.bytes_sent, last.bytes_sent, seconds) if seconds > 0 else None
        summaries.append(
            MediaSummary(
                kind=kind,
                packets_sent=last.packets_sent,
                packets_received=last.packets_received,
                packets_lost=last.packets_lost,
                jitter_ms=last.jitter_ms,
                rtt_ms=last.rtt_ms,
                bitrate_kbps=rate,
                seconds=seconds,
            )
        )
    return summaries


def format_summary(summaries: Iterable[MediaSummary]) -> str:
    """Format summaries as one readable line per media kind.

    A line reads like
    ``audio  sent 150 pkts  recv 150 pkts  lost 0 (0.0 %)  jitter 1.2 ms  RTT 0.8 ms  bitrate 45.3 kbit/s``.

    Args:
        summaries: Output of :func:`summarize`.

    Returns:
        The lines joined with newlines (no trailing newline).
    """
    return "\n".join(str(s) for s in summaries)
