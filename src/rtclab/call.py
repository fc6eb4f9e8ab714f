"""A one-way call between two aiortc peers in one process, over loopback only, with timings and a stats timeline.

The caller sends a speech-like voice and a color-bars video; the callee receives and decodes them. Each
direction can go through a userspace impairment (delay, loss, rate limit...) from `rtclab.impair`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.impair import Impairment, Link, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack
from rtclab.stats import MediaSnapshot, MediaSummary, media_snapshots, summarize

__all__ = ["CallTimings", "LoopbackCall"]


@dataclass
class CallTimings:
    """Milestones of a call, in milliseconds from the moment the caller starts creating its offer.

    Attributes:
        connected_ms: Both peers report ``connectionState == "connected"`` (ICE and DTLS done).
        first_audio_ms: The callee decoded its first audio frame.
        first_video_ms: The callee decoded its first video frame.
    """

    connected_ms: float | None = None
    first_audio_ms: float | None = None
    first_video_ms: float | None = None


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
            (feed them to `rtclab.stats.freezes`).
        links: The impairment models in force, ``"uplink"`` and/or ``"downlink"`` (after `start`);
            their ``counters`` tell what was sent, delivered and dropped.
    """

    def __init__(
        self,
        *,
        sample_interval: float = 0.25,
        connect_timeout: float = 10.0,
        tracks: Sequence[MediaStreamTrack] | None = None,
        uplink: Impairment | None = None,
        downlink: Impairment | None = None,
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

        Raises:
            ValueError: If ``sample_interval`` or ``connect_timeout`` is out of range.
        """
        if not 0.05 <= sample_interval <= 60:
            raise ValueError("sample_interval must be between 0.05 and 60 seconds")
        if connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
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
        for pc in (caller, callee):
            pc.on("connectionstatechange", self._on_connection_state)
        callee.on("track", self._on_track)
        for track in self.tracks:
            caller.addTrack(track)

        try:
            self._t0 = loop.time()
            with loopback_only():  # both peers gather their candidates inside setLocalDescription()
                await caller.setLocalDescription(await caller.createOffer())
                # No await before impairing: ICE starts in a task that runs at the next await.
                self._impair(caller, "uplink", self.uplink)
                check_loopback_sdp(caller.localDescription.sdp)
                await callee.setRemoteDescription(caller.localDescription)
                await callee.setLocalDescription(await callee.createAnswer())
                self._impair(callee, "downlink", self.downlink)
                check_loopback_sdp(callee.localDescription.sdp)
                await caller.setRemoteDescription(callee.localDescription)
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
        sender, receiver = await asyncio.gather(self.caller.getStats(), self.callee.getStats())
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
                await track.recv()
            except MediaStreamError:
                return
            now = self.elapsed_s
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
