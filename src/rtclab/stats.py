"""Turn aiortc ``getStats()`` reports into plain records with real units: jitter and RTT in ms, loss as a
fraction, bitrate in kbit/s from two readings of a byte counter; then into a table and a MOS. Freezes, which
aiortc's stats do not count, are found from frame times by `rtclab.freezes`.

aiortc's receiver stats have a trap for video: a video stream and its retransmission (RTX) stream share one
``inbound-rtp`` id, so once a retransmission has arrived, ``getStats()`` describes the RTX stream instead of
the video (see `get_stats`). Read the receiving peer with `get_stats` to get the video stream's own numbers;
`media_snapshots` matches SSRCs, so it never takes the RTX stream's numbers for the video's.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rtclab.quality import score_speech

if TYPE_CHECKING:
    import pandas as pd
    from aiortc import RTCPeerConnection
    from aiortc.stats import RTCStatsReport

__all__ = [
    "AIORTC_RECEIVER",
    "CLOCK_RATES",
    "KINDS",
    "TABLE_COLUMNS",
    "MediaSnapshot",
    "MediaSummary",
    "MosEstimate",
    "RECEIVERS",
    "ReceiverModel",
    "bitrate_kbps",
    "estimate_mos",
    "format_summary",
    "fraction_lost",
    "get_stats",
    "jitter_ms",
    "media_snapshots",
    "rtt_ms",
    "rtx_ssrcs",
    "summarize",
    "to_dataframe",
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
        received_from: Where ``packets_received``, ``packets_lost`` and ``jitter_ms`` come from:
            ``"inbound-rtp"`` (the receiver's own counters for the sent SSRC, current), ``"rtcp"`` (the
            receiver's last RTCP report as the sender saw it in ``remote-inbound-rtp``, up to about 1.5 s
            old, its ``packetsReceived`` counted by the sender as sent minus lost) when the receiver's entry
            describes another SSRC (aiortc's RTX trap, see `get_stats`), or ``"none"`` (nothing received
            yet, or only another SSRC's entry and no RTCP report yet: then the counters are 0).
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
    received_from: str = "inbound-rtp"


def _of_type(report: Mapping[str, Any], stat_type: str, kind: str) -> list[Any]:
    return [s for s in report.values() if s.type == stat_type and s.kind == kind]


def _worst(values: Iterable[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def media_snapshots(
    sender: Mapping[str, Any], receiver: Mapping[str, Any], at_s: float, kinds: Sequence[str] = KINDS
) -> list[MediaSnapshot]:
    """Read one snapshot per media kind from the two peers' ``getStats()`` reports.

    The receiver's ``inbound-rtp`` entries are matched to the sender's ``outbound-rtp`` by SSRC: an entry
    about any other SSRC (a retransmission stream) is never counted as the media. When no entry of a kind
    matches but one describes another SSRC (aiortc's plain ``getStats()`` after the first video
    retransmission, see `get_stats`), the receiver-side numbers come from the receiver's last RTCP report
    instead (``received_from="rtcp"``).
    Read the receiving peer with `get_stats` to keep them current. With several streams of one kind,
    counters are added up and jitter, loss and RTT take the worst stream.

    Args:
        sender: ``await sending_pc.getStats()``.
        receiver: ``await get_stats(receiving_pc)`` (or ``await receiving_pc.getStats()``).
        at_s: Time of the reading, in seconds.
        kinds: Media kinds to read; a kind the sender does not send is left out.

    Returns:
        One `MediaSnapshot` per kind the sender has an ``outbound-rtp`` for.
    """
    snapshots = []
    for kind in kinds:
        outbound = _of_type(sender, "outbound-rtp", kind)
        if not outbound:
            continue
        sent_ssrcs = {s.ssrc for s in outbound}
        remote_inbound = _of_type(sender, "remote-inbound-rtp", kind)
        any_inbound = _of_type(receiver, "inbound-rtp", kind)
        inbound = [s for s in any_inbound if s.ssrc in sent_ssrcs]
        clock_rate = CLOCK_RATES[kind]
        if inbound:
            received_from, received = "inbound-rtp", inbound
        elif any_inbound and remote_inbound:  # the receiver's entry describes another SSRC: RTX
            received_from, received = "rtcp", remote_inbound
        else:
            received_from, received = "none", []
        snapshots.append(
            MediaSnapshot(
                kind=kind,
                at_s=at_s,
                packets_sent=sum(s.packetsSent for s in outbound),
                bytes_sent=sum(s.bytesSent for s in outbound),
                packets_received=sum(s.packetsReceived for s in received),
                packets_lost=sum(s.packetsLost for s in received),
                jitter_ms=_worst(jitter_ms(s.jitter, clock_rate) for s in received),
                fraction_lost=_worst(fraction_lost(int(s.fractionLost)) for s in remote_inbound),
                rtt_ms=_worst(rtt_ms(s.roundTripTime) for s in remote_inbound),
                received_from=received_from,
            )
        )
    return snapshots


# --- aiortc's RTX trap -----------------------------------------------------------------------------------------

# a=ssrc-group:FID <media SSRC> <retransmission SSRC> (RFC 4588 section 8.7; RFC 5576 section 4.2)
_FID_GROUP = re.compile(r"^a=ssrc-group:FID (\d+) (\d+)\s*$", re.MULTILINE)
_REMOTE_STREAMS = "_RTCRtpReceiver__remote_streams"  # aiortc's per-SSRC StreamStatistics, keyed by SSRC


def rtx_ssrcs(sdp: str) -> dict[int, int]:
    """Map each retransmission (RTX) SSRC of a session description to the media SSRC it repairs.

    aiortc announces a video sender's RTX stream with ``a=ssrc-group:FID <media> <rtx>`` in its SDP.

    Args:
        sdp: A session description, e.g. the receiving peer's ``remoteDescription.sdp``.

    Returns:
        ``{rtx_ssrc: media_ssrc}``; empty when nothing is retransmitted on its own SSRC (audio, or no RTX).
    """
    return {int(rtx): int(media) for media, rtx in _FID_GROUP.findall(sdp)}


async def get_stats(pc: RTCPeerConnection) -> RTCStatsReport:
    """``pc.getStats()`` with one ``inbound-rtp`` entry per received *media* SSRC, never the RTX stream's.

    What aiortc 1.16 does: an ``RTCRtpReceiver`` keeps RTP statistics per SSRC it receives, and a video
    receiver receives two, the video and its retransmissions (RTX, announced in the sender's SDP as
    ``a=ssrc-group:FID <media> <rtx>``). ``RTCRtpReceiver.getStats()`` turns each into an
    ``inbound-rtp`` entry but gives every one the same id, ``"inbound-rtp_" + str(id(receiver))``, so in the
    report each overwrites the one before. SSRCs are kept in order of first arrival, so from the first
    retransmission on (under any video loss, NACK triggers one within a round trip) the entry describes the RTX
    stream: its ``packetsReceived`` counts retransmissions only, its ``packetsLost`` and ``jitter`` are the RTX
    stream's, and the video's own counters are no longer in any report. The sender side is not affected:
    ``outbound-rtp`` counts media packets only (retransmissions are not counted) and ``remote-inbound-rtp``
    keeps only receiver-report blocks about the media SSRC.

    This reads the receiver's per-SSRC statistics (aiortc's private ``RTCRtpReceiver.__remote_streams``,
    the same numbers its ``getStats()`` and RTCP receiver reports use) and writes one entry per media SSRC,
    leaving the RTX streams (the ``FID`` groups of the remote description) out. If a future aiortc no
    longer has that attribute, an entry that describes an RTX SSRC is dropped instead (`media_snapshots`
    then falls back on the RTCP reports).

    Args:
        pc: A peer connection, usually the one receiving media.

    Returns:
        The report; the sender-side entries and ``transport`` are those of ``pc.getStats()``.
    """
    from aiortc.stats import RTCInboundRtpStreamStats

    report = await pc.getStats()
    remote = pc.remoteDescription
    rtx = rtx_ssrcs(remote.sdp) if remote is not None else {}
    for receiver in pc.getReceivers():
        entry_id = f"inbound-rtp_{id(receiver)}"
        entry = report.get(entry_id)
        if entry is None:  # nothing received yet
            continue
        streams = getattr(receiver, _REMOTE_STREAMS, None)
        if not isinstance(streams, dict):
            if entry.ssrc in rtx:
                del report[entry_id]
            continue
        del report[entry_id]
        media = [(ssrc, stream) for ssrc, stream in list(streams.items()) if ssrc not in rtx]
        for index, (ssrc, stream) in enumerate(media):
            report.add(
                RTCInboundRtpStreamStats(
                    timestamp=entry.timestamp,
                    type="inbound-rtp",
                    id=entry_id if index == 0 else f"{entry_id}_{ssrc}",
                    ssrc=ssrc,
                    kind=entry.kind,
                    transportId=entry.transportId,
                    packetsReceived=stream.packets_received,
                    packetsLost=stream.packets_lost,
                    jitter=stream.jitter,
                )
            )
    return report


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
    """Summarize a series of snapshots, one `MediaSummary` per media kind (audio first).

    Counters, jitter and RTT come from each kind's latest snapshot; the bitrate is the average between its
    earliest and latest snapshots. For the bitrate of a whole call, take the first snapshot at its start.

    Args:
        snapshots: Snapshots from `media_snapshots`, in any order, kinds mixed.

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
        summaries: Output of `summarize`.

    Returns:
        The lines joined with newlines (no trailing newline).
    """
    return "\n".join(str(s) for s in summaries)


# --- a tidy table -------------------------------------------------------------------------------------------

TABLE_COLUMNS = (
    "at_s",
    "kind",
    "packets_sent",
    "bytes_sent",
    "packets_received",
    "packets_lost",
    "jitter_ms",
    "rtt_ms",
    "rtcp_loss_pct",
    "interval_s",
    "bitrate_kbps",
    "loss_pct",
)
"""Columns of `to_dataframe`, in order; each name carries its unit (``_s``, ``_ms``, ``_kbps``, ``_pct``)."""


def _interval_loss_pct(before: MediaSnapshot, after: MediaSnapshot) -> float:
    lost = max(after.packets_lost - before.packets_lost, 0)
    received = after.packets_received - before.packets_received
    expected = received + lost
    return lost * 100 / expected if expected > 0 else math.nan


def to_dataframe(timeline: Iterable[MediaSnapshot]) -> pd.DataFrame:
    """Lay a stats timeline out as a tidy table: one row per snapshot, units in the column names.

    Columns (`TABLE_COLUMNS`): the snapshot's own fields (``at_s``, ``kind``, the cumulative
    ``packets_sent``, ``bytes_sent``, ``packets_received``, ``packets_lost``, ``jitter_ms``, ``rtt_ms``),
    ``rtcp_loss_pct`` (``fraction_lost`` x 100: the loss the receiver reported for its last RTCP interval),
    and three derived from the previous snapshot of the same kind: ``interval_s``, ``bitrate_kbps`` (payload
    bytes sent in between) and ``loss_pct`` (packets lost in between over packets expected in between). The
    first row of each kind, a zero interval, or a counter that went backwards gives NaN there; values not
    reported yet are NaN too.

    Args:
        timeline: Snapshots in any order, kinds mixed (for example ``LoopbackCall.timeline``).

    Returns:
        A ``pandas.DataFrame`` sorted by time then kind (audio before video), with a fresh 0..n-1 index.
    """
    import pandas as pd

    order = {kind: i for i, kind in enumerate(KINDS)}
    snapshots = sorted(timeline, key=lambda s: (s.at_s, order.get(s.kind, len(KINDS)), s.kind))
    previous: dict[str, MediaSnapshot] = {}
    rows = []
    for snap in snapshots:
        before = previous.get(snap.kind)
        interval = bitrate = loss = math.nan
        if before is not None:
            interval = snap.at_s - before.at_s
            if interval > 0 and snap.bytes_sent >= before.bytes_sent:
                bitrate = bitrate_kbps(before.bytes_sent, snap.bytes_sent, interval)
            loss = _interval_loss_pct(before, snap)
        previous[snap.kind] = snap
        rows.append(
            {
                "at_s": snap.at_s,
                "kind": snap.kind,
                "packets_sent": snap.packets_sent,
                "bytes_sent": snap.bytes_sent,
                "packets_received": snap.packets_received,
                "packets_lost": snap.packets_lost,
                "jitter_ms": math.nan if snap.jitter_ms is None else snap.jitter_ms,
                "rtt_ms": math.nan if snap.rtt_ms is None else snap.rtt_ms,
                "rtcp_loss_pct": math.nan if snap.fraction_lost is None else snap.fraction_lost * 100,
                "interval_s": interval,
                "bitrate_kbps": bitrate,
                "loss_pct": loss,
            }
        )
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    integer_columns = ["packets_sent", "bytes_sent", "packets_received", "packets_lost"]
    return table.astype({column: "int64" for column in integer_columns} | {"at_s": "float64"})


# --- a MOS estimate ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiverModel:
    """What an audio receiver does to speech, in the terms the E-model needs: its buffer delay and its loss.

    Attributes:
        name: Which receiver, for reports (``"aiortc"``).
        buffer_ms: Delay its jitter buffer adds while no packet has been lost, in ms.
        buffer_after_loss_ms: Delay its jitter buffer adds once a packet has been lost, in ms.
        conceals: Whether it conceals a lost frame (False: the listener hears a gap).
        frames_lost_per_lost_packet: Frames the listener misses for one isolated lost packet.
    """

    name: str
    buffer_ms: float
    buffer_after_loss_ms: float
    conceals: bool
    frames_lost_per_lost_packet: int

    def jitter_buffer_ms(self, packets_lost: int) -> float:
        """The buffer delay of a call that lost ``packets_lost`` packets (`buffer_after_loss_ms` from the first)."""
        return self.buffer_after_loss_ms if packets_lost > 0 else self.buffer_ms

    def frame_loss(self, loss_fraction: float) -> float:
        """The share of frames the listener misses at a random packet loss, 0-1.

        A frame is played only if it and the ``frames_lost_per_lost_packet - 1`` frames after it arrived, so the
        frame loss is ``1 - (1 - loss) ** frames_lost_per_lost_packet``: ``frames_lost_per_lost_packet x loss``
        while losses are rare, less once the frames a loss discards overlap those of the next one, never above 1.

        Raises:
            ValueError: If the loss is outside 0-1.
        """
        if not 0 <= loss_fraction <= 1:
            raise ValueError("loss_fraction must be a fraction from 0 to 1")
        if loss_fraction == 1:
            return 1.0
        return -math.expm1(self.frames_lost_per_lost_packet * math.log1p(-loss_fraction))  # exact near 0


AIORTC_RECEIVER = ReceiverModel(
    name="aiortc",
    buffer_ms=80.0,
    buffer_after_loss_ms=280.0,
    conceals=False,
    frames_lost_per_lost_packet=5,
)
"""Stock aiortc's audio receiver (``JitterBuffer(capacity=16, prefetch=4)``, no concealment), as rtclab measured it.

Each number comes from aiortc's own buffer class fed packet by packet (`rtclab.aiortc_jitter.run_aiortc`), on
the lab page *Jitter buffer: fixed vs adaptive* (``notebooks/tuning/jitter-buffer.ipynb``, site page
``tuning/jitter-buffer/``) and in ``tests/rtclab/test_jitter.py``:

* ``buffer_ms`` 80: a frame is released once four later frames are there, 4 x 20 ms. Measured: median 80 ms
  on a loss-free stream, 80.0 ms mean on the loss-free high-jitter profile (the page's step 3 table).
* ``buffer_after_loss_ms`` 280: at a gap nothing is released until 16 packets have piled up, and from then on
  one frame leaves per packet that arrives, so about 14-15 frames stay queued for the rest of the call.
  Measured: median 280 ms after the first loss on random-loss traces; 278.6 ms (4G) and 278.8 ms (3G) mean on
  the page's step 3 table.
* ``conceals`` False: aiortc runs no packet-loss concealment; a missing frame is a gap (read from its source).
* ``frames_lost_per_lost_packet`` 5: when the ring overflows, ``smart_remove`` discards the oldest packets,
  including the up-to-4 good frames just before the gap, which are never played; with the lost one that is
  five. Measured: 1.09 % of output slots empty at 0.22 % network loss (4G) and 2.02 % at 0.40 % (3G) on the
  page's step 3 table; 4.7-5.1 frames per lost packet at 0.5-2 % random loss. `ReceiverModel.frame_loss` is a
  model of this behaviour (a frame plays only if it and the next four arrived), not a fit to those numbers.
  Checked against `run_aiortc` on 60 s random-loss traces, three seeds each, at the loss each trace realised:
  model 4.3-7.4 % of frames missing where 4.5-7.6 % were measured (0.9-1.5 % loss), 21-26 % for 23-27 %
  (4.7-5.8 % loss; FACTS: 73.5 % of frames out at 5 %), 43 % for 46 % (10.7 %) and 68-70 % for 71-73 %
  (20-21 %): about 3 points low at most, so if anything kind to aiortc. The linear ``5 x loss`` fits only below
  about 2 % loss (at 20 % it would say 100 %).
"""

RECEIVERS = ("aiortc", "concealing")
"""The receivers `estimate_mos` models: stock aiortc as measured, or the usual optimistic assumption."""


@dataclass(frozen=True)
class MosEstimate:
    """An E-model MOS estimated from a stats timeline, with its parts and the numbers it was computed from.

    ``str()`` gives one line, e.g. ``MOS 1.83 (R 38: Id 12.4, Ie-eff 42.8; aiortc receiver: 280 ms buffer, no
    concealment)``.

    Attributes:
        mos: The estimate, 1-4.5.
        r: The E-model rating behind it: ``93.2 - id - ie_eff``.
        one_way_delay_ms: Mouth-to-ear delay used: RTT / 2 plus ``jitter_buffer_ms``.
        rtt_ms: Median RTT over the timeline.
        jitter_ms: Median receiver jitter over the timeline (0 if never reported).
        jitter_buffer_ms: The delay counted for the receiver's jitter buffer.
        loss_fraction: Packets lost over packets expected, at the last snapshot (the network's loss).
        id: Delay impairment Id, in R points.
        ie_eff: Effective equipment impairment Ie,eff (codec and loss), in R points.
        conceals: Whether the receiver was taken to conceal lost frames.
        receiver: ``"aiortc"`` (stock aiortc, `AIORTC_RECEIVER`) or ``"concealing"`` (2 x jitter buffer, the
            codec's concealment).
        frame_loss_fraction: The loss Ie,eff was computed from: what the listener missed, 0-1 (for aiortc the
            frames its buffer never played; for a concealing receiver the packet loss).
    """

    mos: float
    r: float
    one_way_delay_ms: float
    rtt_ms: float
    jitter_ms: float
    jitter_buffer_ms: float
    loss_fraction: float
    id: float
    ie_eff: float
    conceals: bool
    receiver: str
    frame_loss_fraction: float

    @property
    def receiver_text(self) -> str:
        """The receiver assumption in words, e.g. ``aiortc receiver: 280 ms buffer, no concealment``."""
        concealment = "Opus concealment" if self.conceals else "no concealment"
        return f"{self.receiver} receiver: {self.jitter_buffer_ms:.0f} ms buffer, {concealment}"

    def __str__(self) -> str:
        return (
            f"MOS {self.mos:.2f} (R {self.r:.0f}: Id {self.id:.1f}, Ie-eff {self.ie_eff:.1f}; "
            f"{self.receiver_text})"
        )


def estimate_mos(
    snapshots: Iterable[MediaSnapshot],
    *,
    kind: str = "audio",
    codec: str = "opus",
    jitter_buffer_ms: float | None = None,
    burst_ratio: float = 1.0,
    receiver: str = "aiortc",
) -> MosEstimate:
    """Estimate the MOS of one media kind of a call with the E-model (`rtclab.quality.score_speech`).

    Mouth-to-ear delay is ``RTT / 2 + jitter buffer``: RTCP gives only the round trip, so half of it stands for
    the one-way network delay (exact only when both directions are alike); encoding, capture and playout are
    not counted. What the receiver adds depends on ``receiver``:

    * ``"aiortc"`` (default): stock aiortc as rtclab measured it (`AIORTC_RECEIVER`). Its buffer adds 80 ms
      while no packet was lost and 280 ms once one was (the call is taken to have lost one if the last snapshot
      counts any); it conceals nothing, so Ie,eff uses the Bpl of a receiver without concealment, and the loss
      it sees is the frames the buffer never played, ``AIORTC_RECEIVER.frame_loss(packet loss)``: about five
      frames per lost packet. The discards come in runs of up to five frames, which G.107 would count as
      bursty (BurstR above 1): ``burst_ratio`` stays the network's, so on that point the estimate is still
      kind to aiortc.
    * ``"concealing"``: the usual optimistic assumption, which Twilio's and LiveKit's estimates also make: a
      jitter buffer of twice the median jitter and a receiver that conceals lost packets with the codec
      (Opus: Bpl 25.1), so Ie,eff sees the packet loss itself. Use it to compare, or for a receiver that does
      conceal.

    Args:
        snapshots: A stats timeline (e.g. ``LoopbackCall.timeline``); only snapshots of ``kind`` are used.
        kind: Media kind to score (the E-model is about speech: ``"audio"``).
        codec: Codec name for Ie (and, for ``"concealing"``, Bpl): see `rtclab.quality.CODECS`.
        jitter_buffer_ms: Delay to count for the jitter buffer, in ms, instead of the receiver's.
        burst_ratio: G.107 BurstR of the network's loss (1 = random).
        receiver: ``"aiortc"`` or ``"concealing"`` (see above).

    Returns:
        The estimate with Id and Ie,eff, and its inputs.

    Raises:
        ValueError: If there is no snapshot of ``kind``, no RTT was ever reported, the receiver is unknown, or
            a value is out of range.
    """
    if receiver not in RECEIVERS:
        raise ValueError(f"unknown receiver {receiver!r}: use one of {', '.join(RECEIVERS)}")
    series = sorted((s for s in snapshots if s.kind == kind), key=lambda s: s.at_s)
    if not series:
        raise ValueError(f"no {kind} snapshot to estimate from")
    rtts = [s.rtt_ms for s in series if s.rtt_ms is not None]
    if not rtts:
        raise ValueError(
            f"no RTT in the {kind} snapshots yet (RTCP receiver reports come after a second or so)"
        )
    jitters = [s.jitter_ms for s in series if s.jitter_ms is not None]
    rtt = statistics.median(rtts)
    jitter = statistics.median(jitters) if jitters else 0.0
    (summary,) = summarize([series[-1]])
    loss = summary.loss_fraction
    if receiver == "aiortc":
        buffer_ms = AIORTC_RECEIVER.jitter_buffer_ms(summary.packets_lost)
        heard_loss, conceals = AIORTC_RECEIVER.frame_loss(loss), AIORTC_RECEIVER.conceals
    else:
        buffer_ms, heard_loss, conceals = 2 * jitter, loss, True
    if jitter_buffer_ms is not None:
        buffer_ms = float(jitter_buffer_ms)
    if not buffer_ms >= 0:
        raise ValueError("jitter_buffer_ms must be 0 or more")
    score = score_speech(
        network_delay_ms=rtt / 2,
        jitter_buffer_ms=buffer_ms,
        loss_fraction=heard_loss,
        conceals=conceals,
        burst_ratio=burst_ratio,
        codec=codec,
    )
    return MosEstimate(
        mos=score.mos,
        r=score.r,
        one_way_delay_ms=score.one_way_delay_ms,
        rtt_ms=rtt,
        jitter_ms=jitter,
        jitter_buffer_ms=buffer_ms,
        loss_fraction=loss,
        id=score.id,
        ie_eff=score.ie_eff,
        conceals=conceals,
        receiver=receiver,
        frame_loss_fraction=heard_loss,
    )
