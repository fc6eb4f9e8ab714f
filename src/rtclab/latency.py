"""Where the delay of a call goes: timestamp every frame at each stage of aiortc's media pipeline.

A frame goes capture -> encode -> packetize -> network -> jitter buffer -> decode (-> render, which a
loopback call does not have: the application receiving the decoded frame is the end). aiortc has no event for
any of these steps, so `PipelineProbe` wraps the objects that do the work, on one peer pair only, and stamps
``time.monotonic()`` as each frame passes:

=====================  ========================================================================================
stage                  from -> to (hook)
=====================  ========================================================================================
capture                the source track hands the frame out (``track.recv()`` of the caller's track)
                       -> the encoder starts on it (the sender's encoder, wrapped; it runs in a worker thread)
encode                 encoder start -> encoder returns the RTP payloads
packetize              encoder returns -> the frame's last RTP packet has been protected (SRTP) and handed to the
                       socket (``RTCDtlsTransport._send_rtp`` of the caller)
network                the last packet is handed to the socket -> the frame's last packet (or its retransmission)
                       reaches the callee's receiver (``RTCRtpReceiver._handle_rtp_packet``)
jitter buffer          the frame is complete -> the jitter buffer releases it to the decoder
decode                 released -> the decoded frame comes out of the callee's track (``track.recv()``): the
                       decoder thread plus the hand-back to the event loop
=====================  ========================================================================================

Frames are matched across the stages by their RTP timestamp. The stages add up, by construction, to "source
hands the frame out -> application gets it"; what checks the matching is an independent end-to-end measure
that uses no timestamp at all: the frame counter drawn in the picture (`rtclab.signals.ColorBarsVideoTrack`,
read back by `rtclab.recording.VideoRecorder`) for video, and cross-correlation of the received waveform with
the sent one (`rtclab.quality.align`) for audio. `measure_latency` runs a `rtclab.call.LoopbackCall` with
both and returns a `LatencyReport`.

Private aiortc attributes used (aiortc 1.16, pinned by the lock file; `PipelineProbe.attach` raises
RuntimeError naming the one that is missing if a new aiortc moved it):

* ``RTCRtpSender._next_encoded_frame`` (method, wrapped on the instance) to find the encoder once it exists;
* ``RTCRtpSender.__encoder`` (name-mangled ``_RTCRtpSender__encoder``): its ``encode`` is wrapped;
* ``RTCRtpSender._ssrc``: which RTP stream is audio and which is video;
* ``RTCDtlsTransport._send_rtp`` (method, wrapped): every RTP packet, before encryption;
* ``RTCRtpReceiver._handle_rtp_packet`` (method, wrapped): every RTP packet received, after decryption;
* ``RTCRtpReceiver.__jitter_buffer`` (``_RTCRtpReceiver__jitter_buffer``): its ``add`` is wrapped, and
  `set_audio_jitter_prefetch` replaces it;
* ``RTCRtpReceiver.__timestamp_mapper`` (``._origin``): turns a decoded frame's ``pts`` back into the RTP
  timestamp.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import MediaStreamTrack
from aiortc.rtp import is_rtcp

from rtclab.call import LoopbackCall
from rtclab.encoders import VideoEncoderSettings
from rtclab.impair import Impairment
from rtclab.quality import align
from rtclab.recording import AudioRecorder
from rtclab.signals import AUDIO_SAMPLE_RATE, ColorBarsVideoTrack, PacedAudioTrack, SpeechLikeAudioTrack

__all__ = [
    "G114_PLANNING_LIMIT_MS",
    "G114_TRANSPARENT_MS",
    "STAGES",
    "FrameTrace",
    "LatencyReport",
    "PipelineProbe",
    "StageBreakdown",
    "breakdown",
    "measure_latency",
    "mouth_to_ear_ms",
    "set_audio_jitter_prefetch",
]

STAGES: tuple[str, ...] = ("capture", "encode", "packetize", "network", "jitter buffer", "decode")
"""The pipeline stages a loopback call can time, in order (render is not one: see the module docstring)."""

G114_TRANSPARENT_MS = 150.0
"""ITU-T G.114 (05/2003): below this one-way (mouth-to-ear) delay most applications are essentially
transparent. https://www.itu.int/rec/T-REC-G.114-200305-I/en"""
G114_PLANNING_LIMIT_MS = 400.0
"""ITU-T G.114 (05/2003): one-way delay not to be exceeded for general network planning."""

_SENDER_ENCODER = "_RTCRtpSender__encoder"
_RECEIVER_JITTER = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_MAPPER = "_RTCRtpReceiver__timestamp_mapper"
_UINT32 = 0xFFFFFFFF
_MIN_CORRELATION = 0.5  # below this a window of received audio is not trusted to match the reference


@dataclass
class FrameTrace:
    """When one frame passed each point of the pipeline, ``time.monotonic()`` seconds (None: not seen).

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        rtp_timestamp: The frame's RTP timestamp (what matches it across the stages).
        source_pts: ``pts`` of the frame as the source track made it.
        captured_s: The source track handed it out.
        encode_start_s: The encoder started on it.
        encode_end_s: The encoder returned its payloads.
        sent_s: Its last RTP packet was handed to the socket.
        arrived_s: Its last packet (or the last retransmission of one) reached the receiver.
        released_s: The jitter buffer released it to the decoder.
        delivered_s: The decoded frame came out of the receiving track.
        packets_sent: RTP packets sent for it (retransmissions not counted).
        packets_arrived: Packets that arrived for it (retransmissions counted).
    """

    kind: str
    rtp_timestamp: int
    source_pts: int | None = None
    captured_s: float | None = None
    encode_start_s: float | None = None
    encode_end_s: float | None = None
    sent_s: float | None = None
    arrived_s: float | None = None
    released_s: float | None = None
    delivered_s: float | None = None
    packets_sent: int = 0
    packets_arrived: int = 0

    def _marks(self) -> tuple[float | None, ...]:
        return (
            self.captured_s,
            self.encode_start_s,
            self.encode_end_s,
            self.sent_s,
            self.arrived_s,
            self.released_s,
            self.delivered_s,
        )

    @property
    def complete(self) -> bool:
        """True when every stage was seen (a frame seen only partly is left out of the statistics)."""
        return all(mark is not None for mark in self._marks())

    def stage_ms(self) -> dict[str, float]:
        """Time spent in each of `STAGES`, in ms.

        Raises:
            ValueError: If the trace is not `complete`.
        """
        marks = self._marks()
        if any(mark is None for mark in marks):
            raise ValueError("the frame was not seen at every stage")
        times = [float(mark) for mark in marks if mark is not None]
        return {
            stage: (end - start) * 1000 for stage, (start, end) in zip(STAGES, pairwise(times), strict=True)
        }

    @property
    def total_ms(self) -> float | None:
        """Source to application, in ms (the sum of the stages); None if not `complete`."""
        if not self.complete:
            return None
        assert self.delivered_s is not None and self.captured_s is not None
        return (self.delivered_s - self.captured_s) * 1000


@dataclass(frozen=True)
class StageBreakdown:
    """Per-stage delay of one media kind over many frames.

    Means add up: the per-stage means sum to the mean total, which is why a delay budget (a stacked bar)
    uses them. Medians and 95th percentiles do not add up, but say more about a typical and a bad frame.

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        frames: Complete frames the statistics are over.
        mean_ms: Mean time in each of `STAGES`, ms.
        median_ms: Median per stage, ms.
        p95_ms: 95th percentile per stage, ms.
        total_mean_ms: Mean of the per-frame totals (source to application), ms.
        total_median_ms: Median of the per-frame totals, ms.
        total_p95_ms: 95th percentile of the per-frame totals, ms.
    """

    kind: str
    frames: int
    mean_ms: dict[str, float]
    median_ms: dict[str, float]
    p95_ms: dict[str, float]
    total_mean_ms: float
    total_median_ms: float
    total_p95_ms: float

    @property
    def stage_sum_ms(self) -> float:
        """Sum of the per-stage means, ms: the height of the stacked bar (equal to `total_mean_ms`)."""
        return sum(self.mean_ms.values())


def breakdown(traces: Iterable[FrameTrace], kind: str) -> StageBreakdown:
    """Summarize complete traces of one kind.

    Args:
        traces: Frame traces (incomplete ones and other kinds are skipped).
        kind: ``"audio"`` or ``"video"``.

    Returns:
        Medians and 95th percentiles per stage.

    Raises:
        ValueError: If no complete trace of that kind is given.
    """
    stages = [t.stage_ms() for t in traces if t.kind == kind and t.complete]
    if not stages:
        raise ValueError(f"no complete {kind} frame to summarize")
    totals = [sum(s.values()) for s in stages]
    return StageBreakdown(
        kind=kind,
        frames=len(stages),
        mean_ms={name: statistics.fmean(s[name] for s in stages) for name in STAGES},
        median_ms={name: statistics.median(s[name] for s in stages) for name in STAGES},
        p95_ms={name: float(np.percentile([s[name] for s in stages], 95)) for name in STAGES},
        total_mean_ms=statistics.fmean(totals),
        total_median_ms=statistics.median(totals),
        total_p95_ms=float(np.percentile(totals, 95)),
    )


def _private(obj: object, name: str) -> Any:
    if not hasattr(obj, name):
        raise RuntimeError(
            f"this aiortc's {type(obj).__name__} has no {name}: rtclab.latency was written for aiortc 1.16"
        )
    return getattr(obj, name)


class PipelineProbe:
    """Timestamps every frame of a call at each pipeline stage (see the module docstring for the hooks).

    Use it in two steps: `watch_tracks` on the caller's source tracks before the call starts, then `attach`
    once both peers have their senders and receivers (after ``setRemoteDescription`` on both sides, e.g.
    right after `rtclab.call.LoopbackCall.start`). Frames that were under way when a hook went in are seen
    only partly and left out. Nothing in aiortc's behaviour changes: each wrapper calls the original.

    Example:
        ```python
        audio, video = SpeechLikeAudioTrack(), ColorBarsVideoTrack()
        probe = PipelineProbe()
        probe.watch_tracks(audio, video)
        async with LoopbackCall(tracks=[audio, video]) as call:
            probe.attach(call.caller, call.callee)
            await call.run(4)
        print(breakdown(probe.traces(after_s=probe.attached_s + 1), "video").median_ms)
        ```

    Attributes:
        attached_s: ``time.monotonic()`` when `attach` ran (None before).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """Create an empty probe.

        Args:
            clock: Seconds, monotonic; must be the clock the tracks use (``time.monotonic``).
        """
        self._clock = clock
        self.attached_s: float | None = None
        self._captured: dict[tuple[str, int], float] = {}
        self._encoded: dict[str, tuple[int | None, float, float] | None] = {}
        self._traces: dict[tuple[str, int], FrameTrace] = {}
        self._arrivals: dict[tuple[str, int], tuple[float, int]] = {}
        self._released: dict[tuple[str, int], float] = {}
        self._delivered: dict[tuple[str, int], float] = {}
        self._ssrc_kind: dict[int, str] = {}
        self.encoders: dict[str, Any] = {}
        """The sender's encoder per kind, once it exists (aiortc's ``OpusEncoder``, ``Vp8Encoder``...)."""

    # --8<-- [start:capture]
    def watch_tracks(self, *tracks: MediaStreamTrack) -> None:
        """Stamp when each source track hands a frame to the sender (wraps ``recv`` on the instance).

        Args:
            tracks: The caller's tracks, before they are added to the call.
        """
        for track in tracks:
            original = track.recv

            async def recv(original: Any = original, track: MediaStreamTrack = track) -> Any:
                frame = await original()
                now = self._clock()
                if isinstance(track, PacedAudioTrack) and track.started_at is not None:
                    # Audio: when the frame's first sample was due, the instant the waveform measure uses.
                    now = track.started_at + frame.pts / track.sample_rate
                self._captured[(track.kind, int(frame.pts))] = now
                return frame

            track.recv = recv  # type: ignore[method-assign]

    # --8<-- [end:capture]

    def attach(self, caller: RTCPeerConnection, callee: RTCPeerConnection) -> None:
        """Hook the caller's senders and DTLS transport and the callee's receivers and tracks.

        Args:
            caller: The peer that sends media.
            callee: The peer that receives it.

        Raises:
            RuntimeError: If the callee has no receiving track yet, or an aiortc internal moved.
        """
        for sender in caller.getSenders():
            if sender.track is not None:
                self._hook_sender(sender, sender.track.kind)
        for receiver in callee.getReceivers():
            if receiver.track is None:
                raise RuntimeError("the callee has no track yet: attach after setRemoteDescription")
            self._hook_receiver(receiver, receiver.track.kind)
        self.attached_s = self._clock()

    # --8<-- [start:sender]
    def _hook_sender(self, sender: Any, kind: str) -> None:
        self._ssrc_kind[int(_private(sender, "_ssrc"))] = kind
        self._encoded[kind] = None
        _private(sender, _SENDER_ENCODER)
        next_encoded_frame = _private(sender, "_next_encoded_frame")

        async def next_frame(codec: Any) -> Any:
            # aiortc creates the encoder on the first frame: wrap it as soon as it exists.
            encoder = getattr(sender, _SENDER_ENCODER)
            if encoder is not None and not getattr(encoder, "_lma_timed", False):
                self._time_encoder(encoder, kind)
            return await next_encoded_frame(codec)

        sender._next_encoded_frame = next_frame
        transport = sender.transport
        if not getattr(transport, "_lma_timed", False):  # audio and video share it (BUNDLE)
            send_rtp = _private(transport, "_send_rtp")

            async def sent(data: bytes) -> None:
                await send_rtp(data)
                if not is_rtcp(data):
                    self._on_sent(data)

            transport._send_rtp = sent
            transport._lma_timed = True

    def _time_encoder(self, encoder: Any, kind: str) -> None:
        encode = encoder.encode

        def timed(frame: Any, force_keyframe: bool = False) -> Any:  # runs in aiortc's worker thread
            start = self._clock()
            payloads, timestamp = encode(frame, force_keyframe)
            if payloads:
                self._encoded[kind] = (frame.pts, start, self._clock())
            return payloads, timestamp

        encoder.encode = timed
        encoder._lma_timed = True
        self.encoders[kind] = encoder

    def _on_sent(self, data: bytes) -> None:
        kind = self._ssrc_kind.get(int.from_bytes(data[8:12], "big"))
        if kind is None:  # a retransmission (RTX stream) or another peer's stream
            return
        key = (kind, int.from_bytes(data[4:8], "big"))
        trace = self._traces.get(key)
        if trace is None:
            # The sender sends a frame's packets right after encoding it, before it encodes the next one,
            # so the first packet with a new timestamp belongs to the frame encoded last.
            trace = self._traces[key] = FrameTrace(kind, key[1])
            encoded, self._encoded[kind] = self._encoded[kind], None
            if encoded is not None:
                pts, trace.encode_start_s, trace.encode_end_s = encoded
                trace.source_pts = pts
                if pts is not None:
                    trace.captured_s = self._captured.pop((kind, int(pts)), None)
        trace.sent_s = self._clock()
        trace.packets_sent += 1

    # --8<-- [end:sender]

    # --8<-- [start:receiver]
    def _hook_receiver(self, receiver: Any, kind: str) -> None:
        handle = _private(receiver, "_handle_rtp_packet")
        jitter_buffer = _private(receiver, _RECEIVER_JITTER)
        mapper = _private(receiver, _RECEIVER_MAPPER)

        async def arrived(packet: Any, arrival_time_ms: int) -> None:
            key = (kind, packet.timestamp)  # a retransmission carries the timestamp of the original
            _, count = self._arrivals.get(key, (0.0, 0))
            self._arrivals[key] = (self._clock(), count + 1)
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = arrived
        self._time_jitter_buffer(jitter_buffer, kind)
        receiver._lma_kind = kind

        track = receiver.track
        recv = track.recv

        async def delivered(recv: Any = recv) -> Any:
            frame = await recv()
            # The receiver numbers decoded frames from its first RTP timestamp: undo that.
            origin = getattr(mapper, "_origin", None)
            if origin is not None and frame.pts is not None:
                self._delivered.setdefault((kind, (int(frame.pts) + origin) & _UINT32), self._clock())
            return frame

        track.recv = delivered

    def _time_jitter_buffer(self, jitter_buffer: JitterBuffer, kind: str) -> None:
        add = jitter_buffer.add

        def timed(packet: Any) -> Any:
            pli_flag, frame = add(packet)
            if frame is not None:
                self._released.setdefault((kind, frame.timestamp), self._clock())
            return pli_flag, frame

        jitter_buffer.add = timed  # type: ignore[method-assign]

    # --8<-- [end:receiver]

    def traces(self, *, after_s: float | None = None) -> list[FrameTrace]:
        """Every frame seen, with the receiver's marks filled in, in sending order.

        Args:
            after_s: Keep only frames the source handed out at or after this ``time.monotonic()`` (to skip
                the start of a call, when the encoder and the bitrate settle); None keeps all.

        Returns:
            The traces (some may not be `FrameTrace.complete`).
        """
        out = []
        for key, trace in self._traces.items():
            arrival = self._arrivals.get(key)
            if arrival is not None:
                trace.arrived_s, trace.packets_arrived = arrival
            trace.released_s = self._released.get(key)
            trace.delivered_s = self._delivered.get(key)
            if after_s is None or (trace.captured_s is not None and trace.captured_s >= after_s):
                out.append(trace)
        return sorted(out, key=lambda t: (t.kind, t.sent_s or 0.0))


def set_audio_jitter_prefetch(callee: RTCPeerConnection, prefetch: int, *, capacity: int = 16) -> None:
    """Give the callee's audio receiver a jitter buffer with another prefetch (aiortc: 4 frames, 80 ms).

    aiortc's audio jitter buffer releases a frame only once ``prefetch`` later frames have arrived, so the
    prefetch is its fixed target delay. Replacing the buffer mid-call drops what the old one held (a few
    frames); call it before media flows, or skip the first second of the measurement. Call it before
    `PipelineProbe.attach`, which wraps the buffer in place.

    Args:
        callee: The receiving peer.
        prefetch: Frames to hold back, 0-8.
        capacity: Packets the ring holds, a power of 2 above ``prefetch`` (aiortc: 16).

    Raises:
        ValueError: If ``prefetch`` or ``capacity`` is out of range.
        RuntimeError: If the callee has no audio receiver, or aiortc moved the attribute.
    """
    if not 0 <= prefetch <= 8:
        raise ValueError("prefetch must be between 0 and 8 frames")
    if capacity <= prefetch or capacity & (capacity - 1):
        raise ValueError("capacity must be a power of 2 above prefetch")
    receivers = [r for r in callee.getReceivers() if r.track is not None and r.track.kind == "audio"]
    if not receivers:
        raise RuntimeError("the callee has no audio receiver")
    for receiver in receivers:
        _private(receiver, _RECEIVER_JITTER)
        setattr(receiver, _RECEIVER_JITTER, JitterBuffer(capacity=capacity, prefetch=prefetch))


# --8<-- [start:mouth-to-ear]
def mouth_to_ear_ms(
    recording: AudioRecorder,
    track: PacedAudioTrack,
    *,
    clock_offset_s: float,
    after_s: float,
    window_s: float = 1.0,
) -> list[float]:
    """Mouth-to-ear delay of every received audio frame, measured on the waveform alone (no RTP timestamp).

    The recording is cut into consecutive windows that start on a received frame; each window is found in
    the sent signal by cross-correlation (`rtclab.quality.align`), which says which sample of the source
    each of its frames starts with. Sample ``k`` was handed to the sender at ``track.started_at + k / rate``
    and came out of the decoder when its frame arrived, so the difference is that frame's delay, codec delay
    included. Frames come out back to back (aiortc conceals nothing), so inside a window that lost a frame
    the frames after the gap are attributed 20 ms too early: trust this on calls without loss.

    Args:
        recording: What the callee received (`rtclab.call.LoopbackCall.recording`'s audio).
        track: The caller's audio track (it regenerates what it played).
        clock_offset_s: ``time.monotonic()`` minus the recording's clock (the call's ``elapsed_s``).
        after_s: Only frames whose first sample was due at or after this ``time.monotonic()``.
        window_s: Window length in seconds (long enough to hold speech, not only a pause).

    Returns:
        One delay in ms per received frame inside a window that matched the source well (correlation
        above 0.5).
    """
    if track.started_at is None or recording.duration_s < window_s:
        return []
    rate = recording.sample_rate
    received = recording.samples
    reference = track.reference(recording.duration_s + 5.0)
    size = int(window_s * rate)
    offsets, arrivals = recording.frame_offsets, recording.arrival_s
    delays = []
    start = 0
    while start < len(offsets) and offsets[start] + size <= received.size:
        first = int(offsets[start])
        stop = int(np.searchsorted(offsets, first + size))  # frames that start inside the window
        window = received[first : first + size]
        result = align(reference, window, rate) if window.any() else None
        if result is not None and result.correlation >= _MIN_CORRELATION:
            for offset, arrival in zip(
                offsets[start:stop].tolist(), arrivals[start:stop].tolist(), strict=True
            ):
                source_index = offset - first - result.delay_samples  # window sample j is source j - lag
                played_s = track.started_at + source_index / rate
                if source_index >= 0 and played_s >= after_s:
                    delays.append((arrival + clock_offset_s - played_s) * 1000)
        start = max(stop, start + 1)
    return delays


# --8<-- [end:mouth-to-ear]


@dataclass(frozen=True)
class LatencyReport:
    """What `measure_latency` measured on one call.

    Attributes:
        label: A name for the condition (a profile name, "loopback"...).
        audio: Per-stage audio delay from timestamps.
        video: Per-stage video delay from timestamps.
        mouth_to_ear_ms: Mean audio delay from the waveform (independent of the stages; the loudspeaker
            not included), None if no window matched.
        glass_to_glass_ms: Mean video delay from the frame counter in the picture (independent of the
            stages; the screen itself not included), None if no frame was read.
        video_frames_lost: Frames sent after the warm-up that never came out readable.
        uplink_delay_ms: The one-way delay the uplink impairment added (0 without one), ms.
        audio_frames_matched: How many received audio frames the mouth-to-ear mean is over.
        video_frames_matched: How many frames the glass-to-glass mean is over.
        audio_lookahead_ms: The Opus encoder's lookahead, read from the encoder (aiortc's
            ``OpusEncoder.first_packet_pts``: its first packet starts that many samples before the first
            input sample); None for another codec.
        traces: Every frame trace after the warm-up.
    """

    label: str
    audio: StageBreakdown
    video: StageBreakdown
    mouth_to_ear_ms: float | None
    glass_to_glass_ms: float | None
    video_frames_lost: int
    uplink_delay_ms: float
    audio_frames_matched: int = 0
    video_frames_matched: int = 0
    audio_lookahead_ms: float | None = None
    traces: tuple[FrameTrace, ...] = field(default=(), repr=False)

    @property
    def codec_delay_ms(self) -> float | None:
        """Mouth-to-ear minus the audio stage total: delay the waveform shows and timestamps cannot see
        (Opus' lookahead: the encoder's output starts with a few ms of padding)."""
        if self.mouth_to_ear_ms is None:
            return None
        return self.mouth_to_ear_ms - self.audio.total_mean_ms


# --8<-- [start:measure]
async def measure_latency(
    *,
    label: str = "loopback",
    seconds: float = 4.0,
    warmup_s: float = 1.0,
    uplink: Impairment | None = None,
    downlink: Impairment | None = None,
    fps: float = 30,
    video_encoder: VideoEncoderSettings | None = None,
    audio_jitter_prefetch: int | None = None,
) -> LatencyReport:
    """Run one loopback call and time every audio and video frame at each stage, plus end to end.

    Args:
        label: Name of the condition, copied into the report.
        seconds: How long to measure, after the warm-up.
        warmup_s: Seconds skipped after the hooks go in (encoder start, bitrate ramp, replaced buffers).
        uplink: Impairment of the caller -> callee direction (media); None: plain loopback.
        downlink: Impairment of the callee -> caller direction (RTCP feedback).
        fps: Video frame rate of the color-bars source (320x240).
        video_encoder: Video encoder settings (`rtclab.encoders.VideoEncoderSettings`); None: aiortc's VP8.
        audio_jitter_prefetch: Replace aiortc's audio jitter buffer prefetch (4) with this; None keeps it.

    Returns:
        The per-stage breakdowns and the two independent end-to-end measures.
    """
    audio = SpeechLikeAudioTrack()
    video = ColorBarsVideoTrack(width=320, height=240, fps=fps)
    probe = PipelineProbe()
    probe.watch_tracks(audio, video)
    call = LoopbackCall(
        tracks=[audio, video],
        uplink=uplink,
        downlink=downlink,
        video_encoder=video_encoder,
        record_seconds=warmup_s + seconds + 5,
        sample_interval=1.0,
    )
    async with call:
        assert call.callee is not None and call.caller is not None
        if audio_jitter_prefetch is not None:
            set_audio_jitter_prefetch(call.callee, audio_jitter_prefetch)
        probe.attach(call.caller, call.callee)
        offset_s = time.monotonic() - call.elapsed_s  # the recording's clock -> time.monotonic()
        after_s = time.monotonic() + warmup_s
        await call.run(warmup_s + seconds)
    traces = probe.traces(after_s=after_s)

    assert call.recording is not None
    delivered = [d for d in call.video_report().deliveries if d.sent_s + offset_s >= after_s]
    sent_after = [i for i, at in video.sent_times if after_s <= at]
    last_index = max((d.index for d in delivered), default=-1)
    lost = len([i for i in sent_after if i <= last_index]) - len(delivered)
    per_frame = mouth_to_ear_ms(call.recording.audio, audio, clock_offset_s=offset_s, after_s=after_s)
    first_pts = getattr(probe.encoders.get("audio"), "first_packet_pts", None)
    return LatencyReport(
        label=label,
        audio=breakdown(traces, "audio"),
        video=breakdown(traces, "video"),
        mouth_to_ear_ms=statistics.fmean(per_frame) if per_frame else None,
        glass_to_glass_ms=statistics.fmean(d.delay_ms for d in delivered) if delivered else None,
        video_frames_lost=max(lost, 0),
        uplink_delay_ms=uplink.delay_ms if uplink is not None else 0.0,
        audio_frames_matched=len(per_frame),
        video_frames_matched=len(delivered),
        audio_lookahead_ms=-first_pts * 1000 / AUDIO_SAMPLE_RATE if first_pts is not None else None,
        traces=tuple(traces),
    )


# --8<-- [end:measure]
