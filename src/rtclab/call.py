"""A one-way call between two aiortc peers in one process, over loopback only, with timings and a stats timeline.

The caller sends a speech-like voice and a color-bars video; the callee receives and decodes them. Each
direction can go through a userspace impairment (delay, loss, rate limit...) from `rtclab.impair`. A call
can also pick its codecs and video encoder settings (`rtclab.encoders`), time each step of connecting
(`CallTimings`) and record what the callee received (`rtclab.recording`) for scoring with `rtclab.quality`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.encoders import (
    TunedH264Encoder,
    TunedVp8Encoder,
    VideoEncoderSettings,
    codec_preferences,
    install_encoder,
    make_video_encoder,
    negotiated_codecs,
)
from rtclab.impair import Impairment, Link, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.quality import Alignment, VideoFrameReport, align, match_video_frames, resample
from rtclab.recording import AudioRecorder, CallRecording, VideoRecorder
from rtclab.signals import ColorBarsVideoTrack, PacedAudioTrack, SpeechLikeAudioTrack
from rtclab.stats import MediaSnapshot, MediaSummary, get_stats, media_snapshots, summarize

__all__ = ["CallTimings", "LoopbackCall"]


@dataclass
class CallTimings:
    """Milestones of a call, in milliseconds from the moment the caller starts creating its offer.

    Connecting goes: each peer gathers its candidates inside ``setLocalDescription`` (the caller's offer,
    then the callee's answer), ICE checks candidate pairs (``checking`` to ``completed``), DTLS runs its
    handshake over the chosen pair (``connecting`` to ``connected``), and media starts. The ICE and DTLS
    milestones take the first peer to start and the last one to finish.

    Attributes:
        connected_ms: Both peers report ``connectionState == "connected"`` (ICE and DTLS done).
        first_audio_ms: The callee decoded its first audio frame.
        first_video_ms: The callee decoded its first video frame.
        caller_gathering_ms: How long the caller's ``setLocalDescription(offer)`` took (gathering inside).
        callee_gathering_ms: How long the callee's ``setLocalDescription(answer)`` took.
        ice_checking_ms: A peer's ICE connection state became ``checking``.
        ice_completed_ms: Both peers' ICE connection states are ``completed``.
        dtls_connecting_ms: A peer's DTLS transport started its handshake.
        dtls_connected_ms: Both peers' DTLS transports are ``connected``.
    """

    connected_ms: float | None = None
    first_audio_ms: float | None = None
    first_video_ms: float | None = None
    caller_gathering_ms: float | None = None
    callee_gathering_ms: float | None = None
    ice_checking_ms: float | None = None
    ice_completed_ms: float | None = None
    dtls_connecting_ms: float | None = None
    dtls_connected_ms: float | None = None

    @property
    def ice_ms(self) -> float | None:
        """Duration of ICE connectivity checks (``checking`` to ``completed``), ms."""
        if self.ice_checking_ms is None or self.ice_completed_ms is None:
            return None
        return self.ice_completed_ms - self.ice_checking_ms

    @property
    def dtls_ms(self) -> float | None:
        """Duration of the DTLS handshake, ms."""
        if self.dtls_connecting_ms is None or self.dtls_connected_ms is None:
            return None
        return self.dtls_connected_ms - self.dtls_connecting_ms


class LoopbackCall:
    """Two peers in this process, talking over 127.0.0.1 with no STUN server.

    Use it as an async context manager: entering negotiates and waits until the call is connected, leaving
    takes a last stats sample and closes everything. While the call runs, both peers' ``getStats()`` are
    sampled every ``sample_interval`` seconds into `timeline`.

    Example:
        ```python
        async with LoopbackCall(sample_interval=0.25) as call:
            await call.run(4)
        print(call.timings)
        print(format_summary(call.summary()))
        ```

        H.264 at most 300 kbit/s with x264's fastest preset, recording what arrives:

        ```python
        fast = VideoEncoderSettings(max_kbps=300, h264_preset="ultrafast")
        async with LoopbackCall(video_codec="H264", video_encoder=fast, record_seconds=10) as call:
            await call.run(4)
        report = call.video_report()
        print(report.median_delay_ms, report.frames_lost, call.encoders["video"].stats.ms_per_frame)
        ```

        A weak network, 100 ms each way and 5 % loss on the media path:

        ```python
        bad = Impairment(delay_ms=100, loss=0.05)
        async with LoopbackCall(uplink=bad, downlink=Impairment(delay_ms=100)) as call:
            await call.run(4)
        print(call.links["uplink"].counters)
        ```

    Attributes:
        caller: The peer that sends media and creates the offer (None before `start`).
        callee: The peer that receives media and answers (None before `start`).
        timings: Connect and first-frame times.
        timeline: Every stats sample taken, one `rtclab.stats.MediaSnapshot` per kind per sample,
            with ``at_s`` in seconds from the start of the offer.
        frames_received: Frames the callee decoded, per kind.
        frame_times: When the callee got each decoded frame, per kind, in seconds from the start of the offer
            (feed them to `rtclab.freezes.freezes`).
        links: The impairment models in force, ``"uplink"`` and/or ``"downlink"`` (after `start`);
            their ``counters`` tell what was sent, delivered and dropped.
        codecs: The negotiated MIME type per kind, e.g. ``{"audio": "audio/opus", "video": "video/VP8"}``
            (after `start`).
        encoders: The tuned encoders installed, by kind (only ``"video"``, and only with ``video_encoder``);
            their ``stats`` count encode time and bytes.
        recording: What the callee received (with ``record_seconds``), else None.
    """

    def __init__(
        self,
        *,
        sample_interval: float = 0.25,
        connect_timeout: float = 10.0,
        tracks: Sequence[MediaStreamTrack] | None = None,
        uplink: Impairment | None = None,
        downlink: Impairment | None = None,
        audio_codec: str | None = None,
        video_codec: str | None = None,
        video_encoder: VideoEncoderSettings | None = None,
        record_seconds: float | None = None,
        record_images: bool = False,
    ) -> None:
        """Prepare a call; nothing is created until `start`.

        Args:
            sample_interval: Seconds between two stats samples (0.05-60).
            connect_timeout: Seconds to wait for both peers to connect.
            tracks: Tracks the caller sends; by default a `rtclab.signals.SpeechLikeAudioTrack`
                and a 320x240, 30 fps `rtclab.signals.ColorBarsVideoTrack`.
            uplink: Impairment of everything the caller sends to the callee (media, RTCP, ICE, DTLS);
                None leaves that direction alone.
            downlink: Impairment of everything the callee sends back (RTCP reports, ICE, DTLS).
            audio_codec: Offer only this audio codec: ``"opus"``, ``"PCMU"``, ``"PCMA"`` or ``"G722"``
                (None: aiortc's order, which gives Opus).
            video_codec: Offer only this video codec: ``"VP8"`` or ``"H264"`` (None: VP8).
            video_encoder: Settings of the caller's video encoder (bitrate start/floor/cap, VP8 deadline and
                cpu-used, x264 preset and tune); None keeps aiortc's encoder untouched.
            record_seconds: Record up to this many seconds of what the callee receives (`recording`);
                None records nothing.
            record_images: With ``record_seconds``, also keep each received frame's luma plane.

        Raises:
            ValueError: If a setting is out of range or a codec unknown.
        """
        if not 0.05 <= sample_interval <= 60:
            raise ValueError("sample_interval must be between 0.05 and 60 seconds")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        for kind, name in (("audio", audio_codec), ("video", video_codec)):
            if name is not None:
                codec_preferences(kind, name)  # raises on an unknown codec, before anything is created
        self.audio_codec = audio_codec
        self.video_codec = video_codec
        self.video_encoder = video_encoder
        self.recording: CallRecording | None = None
        if record_seconds is not None:
            self.recording = CallRecording(
                audio=AudioRecorder(max_seconds=record_seconds),
                video=VideoRecorder(max_seconds=record_seconds, keep_images=record_images),
            )
        self.codecs: dict[str, str] = {}
        self.encoders: dict[str, TunedVp8Encoder | TunedH264Encoder] = {}
        self.sample_interval = sample_interval
        self.connect_timeout = connect_timeout
        self.tracks: list[MediaStreamTrack] = (
            list(tracks) if tracks is not None else [SpeechLikeAudioTrack(), ColorBarsVideoTrack()]
        )
        self.caller: RTCPeerConnection | None = None
        self.callee: RTCPeerConnection | None = None
        self.timings = CallTimings()
        self.timeline: list[MediaSnapshot] = []
        self.frames_received: dict[str, int] = {}
        self.frame_times: dict[str, list[float]] = {}
        self.uplink = uplink
        self.downlink = downlink
        self.links: dict[str, Link] = {}
        self._t0 = 0.0
        self._monotonic_offset = 0.0  # time.monotonic() - loop.time(), for the tracks' clocks
        self._states: dict[tuple[str, str], dict[str, float]] = {}
        self._connected: asyncio.Future[None] | None = None
        self._consumers: list[asyncio.Task[None]] = []
        self._sampler: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> LoopbackCall:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the caller started creating its offer."""
        return asyncio.get_running_loop().time() - self._t0

    async def start(self) -> None:
        """Create both peers, negotiate over loopback and wait until both are connected.

        Raises:
            TimeoutError: If the peers do not connect within ``connect_timeout``.
            ConnectionError: If a peer's connection fails.
            ValueError: If a description offers a non-loopback candidate (nothing has been sent then).
            RuntimeError: If the call was started before.

        Both peers are closed again if starting fails.
        """
        if self.caller is not None:
            raise RuntimeError("a LoopbackCall can only be started once")
        loop = asyncio.get_running_loop()
        self.caller = caller = RTCPeerConnection(configuration=rtc_configuration())
        self.callee = callee = RTCPeerConnection(configuration=rtc_configuration())
        self._connected = loop.create_future()
        for name, pc in (("caller", caller), ("callee", callee)):
            pc.on("connectionstatechange", self._on_connection_state)
            pc.on("iceconnectionstatechange", self._state_recorder(name, "ice", pc))
        callee.on("track", self._on_track)
        for track in self.tracks:
            sender = caller.addTrack(track)
            transceiver = next(t for t in caller.getTransceivers() if t.sender is sender)
            name = self.audio_codec if track.kind == "audio" else self.video_codec
            if name is not None:
                transceiver.setCodecPreferences(codec_preferences(track.kind, name))
        self._watch_dtls("caller", caller)

        try:
            self._t0 = loop.time()
            self._monotonic_offset = time.monotonic() - self._t0
            with loopback_only():  # both peers gather their candidates inside setLocalDescription()
                offer = await caller.createOffer()
                started = self.elapsed_s
                await caller.setLocalDescription(offer)
                self.timings.caller_gathering_ms = (self.elapsed_s - started) * 1000
                # No await before impairing: ICE starts in a task that runs at the next await.
                self._impair(caller, "uplink", self.uplink)
                check_loopback_sdp(caller.localDescription.sdp)
                await callee.setRemoteDescription(caller.localDescription)
                self._watch_dtls("callee", callee)
                answer = await callee.createAnswer()
                started = self.elapsed_s
                await callee.setLocalDescription(answer)
                self.timings.callee_gathering_ms = (self.elapsed_s - started) * 1000
                self._impair(callee, "downlink", self.downlink)
                check_loopback_sdp(callee.localDescription.sdp)
                await caller.setRemoteDescription(callee.localDescription)
            # Media starts only once DTLS is up, so the encoder is still unset here.
            self.codecs = negotiated_codecs(callee.localDescription.sdp)
            self._install_encoders(caller)
            try:
                await asyncio.wait_for(self._connected, self.connect_timeout)
            except TimeoutError:
                raise TimeoutError(f"peers did not connect within {self.connect_timeout} s") from None
        except BaseException:
            await self.close()
            raise
        self._sampler = asyncio.create_task(self._sample_forever())

    async def run(self, seconds: float) -> None:
        """Keep the call going for ``seconds`` (media flows and stats are sampled meanwhile).

        Args:
            seconds: How long to wait, in seconds.
        """
        await asyncio.sleep(seconds)

    async def wait_for_first_frames(self, timeout: float = 5.0) -> None:
        """Wait until the callee has decoded a frame of every kind it receives.

        Args:
            timeout: Seconds to wait at most.

        Raises:
            TimeoutError: If a kind has no frame after ``timeout``.
        """
        kinds = {track.kind for track in self.tracks}
        deadline = asyncio.get_running_loop().time() + timeout
        while not kinds <= self.frames_received.keys():
            if asyncio.get_running_loop().time() > deadline:
                missing = ", ".join(sorted(kinds - self.frames_received.keys()))
                raise TimeoutError(f"no {missing} frame within {timeout} s")
            await asyncio.sleep(0.01)

    async def sample(self) -> list[MediaSnapshot]:
        """Read both peers' stats now and append one snapshot per media kind to `timeline`.

        Returns:
            The snapshots just taken.
        """
        if self.caller is None or self.callee is None:
            raise RuntimeError("the call has not started")
        # get_stats: plain getStats() lets the video's RTX stream overwrite its inbound-rtp entry.
        sender, receiver = await asyncio.gather(self.caller.getStats(), get_stats(self.callee))
        snapshots = media_snapshots(sender, receiver, at_s=self.elapsed_s)
        self.timeline.extend(snapshots)
        return snapshots

    def summary(self) -> list[MediaSummary]:
        """Summarize `timeline` per media kind (bitrate averaged from the first to the last sample).

        Returns:
            One `rtclab.stats.MediaSummary` per kind, audio first.
        """
        return summarize(self.timeline)

    async def close(self) -> None:
        """Take a last stats sample, close both peers and wait for every task of the call to finish.

        Safe to call more than once.
        """
        if self._closed:
            return
        self._closed = True
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            await self.sample()
        if self._connected is not None and not self._connected.done():
            self._connected.cancel()  # closing would otherwise report the peers' "closed" state as a failure
        for pc in (self.caller, self.callee):
            if pc is not None:
                await pc.close()
        for track in self.tracks:
            track.stop()
        # Closing the callee ends its remote tracks, so the consumers return on their own; cancel stragglers.
        for task in self._consumers:
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)

    def video_report(self, *, freeze_threshold_ms: float | None = None) -> VideoFrameReport:
        """Match the recorded video frames with the frames the caller's color-bars track sent.

        Needs ``record_seconds`` and a `rtclab.signals.ColorBarsVideoTrack` among the tracks. Times are
        seconds from the start of the offer on both sides (one process, one clock).

        Args:
            freeze_threshold_ms: Stall counted as a freeze (None: 600 ms).

        Returns:
            Per-frame delay, lost frames and freezes (`rtclab.quality.match_video_frames`).

        Raises:
            RuntimeError: Without a recording or a color-bars track.
        """
        if self.recording is None:
            raise RuntimeError("the call records nothing: pass record_seconds")
        track = next((t for t in self.tracks if isinstance(t, ColorBarsVideoTrack)), None)
        if track is None:
            raise RuntimeError("no ColorBarsVideoTrack was sent: nothing to match the frames with")
        offset = self._monotonic_offset + self._t0
        sent = [(index, at - offset) for index, at in track.sent_times]
        return match_video_frames(
            sent, self.recording.video.counters_and_times(), freeze_threshold_ms=freeze_threshold_ms
        )

    def align_audio(self, *, max_delay_ms: float | None = 2000.0) -> tuple[Alignment, float | None]:
        """Align the recorded audio with what the caller's audio track played.

        The reference is regenerated by the track (``reference``), resampled to 48 kHz when needed, and
        found in the recording by cross-correlation (`rtclab.quality.align`).

        Args:
            max_delay_ms: Search window either way (None: any shift). The recording starts when the first
                frame is decoded, so the shift is the reference's position at that moment.

        Returns:
            The alignment, and the end-to-end delay in ms of the first matched sample (when it was handed
            to the sender to when its frame came out of the callee's decoder), None if it cannot be told.

        Raises:
            RuntimeError: Without a recording or an rtclab audio track.
            ValueError: If the recording is silent or empty.
        """
        if self.recording is None:
            raise RuntimeError("the call records nothing: pass record_seconds")
        track = next((t for t in self.tracks if isinstance(t, PacedAudioTrack)), None)
        if track is None:
            raise RuntimeError("no rtclab audio track was sent: nothing to align with")
        audio = self.recording.audio
        received = audio.samples
        reference = track.reference(audio.duration_s + 2.0)
        if track.sample_rate != audio.sample_rate:
            reference = resample(reference, track.sample_rate, audio.sample_rate)
        result = align(reference, received, audio.sample_rate, max_delay_ms=max_delay_ms)
        delay_ms = None
        if track.started_at is not None:
            first = max(result.delay_samples, 0)  # recording index of the first matched sample
            played_s = track.started_at - self._monotonic_offset - self._t0
            played_s += (first - result.delay_samples) / audio.sample_rate
            delay_ms = (audio.arrival_of_sample(first) - played_s) * 1000
        return result, delay_ms

    def _watch_dtls(self, name: str, pc: RTCPeerConnection) -> None:
        transceivers = pc.getTransceivers()
        if transceivers:  # with BUNDLE the first transceiver's transport carries everything
            dtls = transceivers[0].sender.transport
            dtls.on("statechange", self._state_recorder(name, "dtls", dtls))

    def _state_recorder(self, peer: str, layer: str, source: object) -> Callable[[], None]:
        def record() -> None:
            state = str(getattr(source, "iceConnectionState" if layer == "ice" else "state"))
            now_ms = self.elapsed_s * 1000
            seen = self._states.setdefault((peer, layer), {})
            seen.setdefault(state, now_ms)
            self._update_timings()

        return record

    def _update_timings(self) -> None:
        def first(layer: str, state: str) -> float | None:
            times = [seen[state] for (_, lay), seen in self._states.items() if lay == layer and state in seen]
            return min(times) if times else None

        def both(layer: str, state: str) -> float | None:
            times = [self._states.get((peer, layer), {}).get(state) for peer in ("caller", "callee")]
            return None if None in times else max(t for t in times if t is not None)

        t = self.timings
        t.ice_checking_ms = first("ice", "checking")
        t.ice_completed_ms = both("ice", "completed")
        t.dtls_connecting_ms = first("dtls", "connecting")
        t.dtls_connected_ms = both("dtls", "connected")

    def _install_encoders(self, caller: RTCPeerConnection) -> None:
        if self.video_encoder is None or "video" not in self.codecs:
            return
        for transceiver in caller.getTransceivers():
            if transceiver.kind == "video":
                encoder = make_video_encoder(self.codecs["video"], self.video_encoder)
                install_encoder(transceiver.sender, encoder)
                self.encoders["video"] = encoder

    def _impair(self, pc: RTCPeerConnection, direction: str, impairment: Impairment | None) -> None:
        if impairment is not None:
            self.links[direction] = impair_connection(pc, impairment).link

    def _on_connection_state(self) -> None:
        assert self.caller is not None and self.callee is not None and self._connected is not None
        if self._connected.done():
            return
        states = {self.caller.connectionState, self.callee.connectionState}
        if states == {"connected"}:
            self.timings.connected_ms = self.elapsed_s * 1000
            self._connected.set_result(None)
        elif states & {"failed", "closed"}:
            self._connected.set_exception(ConnectionError(f"connection states: {sorted(states)}"))

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._consumers.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = self.elapsed_s
            if self.recording is not None:
                if track.kind == "audio":
                    self.recording.audio.add(frame, now)
                else:
                    self.recording.video.add(frame, now)
            if track.kind not in self.frames_received:
                if track.kind == "audio":
                    self.timings.first_audio_ms = now * 1000
                elif track.kind == "video":
                    self.timings.first_video_ms = now * 1000
            self.frames_received[track.kind] = self.frames_received.get(track.kind, 0) + 1
            self.frame_times.setdefault(track.kind, []).append(now)

    async def _sample_forever(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.sample_interval)
