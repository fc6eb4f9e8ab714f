"""The people in a co-host live room, simulated: a stage member (host or co-host) who publishes a test camera and
a voice and sees and hears the other stage member, and a viewer who watches the composite. Every peer offers
loopback candidates only.

The cameras are rtclab test patterns whose frame counter survives compression, so a viewer can read, from each
tile of the composite it receives, which host frame and which co-host frame it is looking at, and when each was
captured.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from aiohttp import ClientSession
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from compositor import Layout

from rtclab.impair import Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.recording import AudioRecorder
from rtclab.service import JsonClient
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack, luma, read_frame_counter

__all__ = ["Api", "Seen", "StageMember", "Viewer"]


class Api(JsonClient):
    """HTTP calls to the media server for one room; every answer comes back as (status, JSON body)."""

    def __init__(self, http: ClientSession, base_url: str, backend_key: str, room: str) -> None:
        super().__init__(http, base_url, backend_key)
        self.room = room

    async def room_call(
        self, action: str, token: str, body: Any = None, method: str = "POST"
    ) -> tuple[int, dict]:
        path = f"/v1/rooms/{self.room}" + (f"/{action}" if action else "")
        return await self.call(method, path, token=token, body=body if method == "POST" else None)

    async def token(self, user: str, role: str, ttl_s: int = 600) -> str:
        """What your app's backend does (never a client): a host or audience token for ``user``."""
        body = {"room": self.room, "user": user, "role": role, "ttl_s": ttl_s}
        status, data = await self.call("POST", "/v1/tokens", token=self.backend_key, body=body)
        if status != 200:
            raise RuntimeError(f"token for {user} refused: {status} {data}")
        return data["token"]


@dataclass(frozen=True)
class Seen:
    """One decoded frame: when it came out, the counters read in slot 0 (host) and slot 1 (co-host), and its
    luma plane when this frame was kept for scoring."""

    at: float
    slots: tuple[int | None, ...]
    image: npt.NDArray[np.uint8] | None = None


@dataclass
class _Peer:
    """What every participant has: a peer connection and the tasks that read what it receives."""

    api: Api
    name: str
    token: str = ""
    pc: RTCPeerConnection | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def _connect(self, action: str, directions: str, tracks: tuple, uplink: Impairment | None) -> dict:
        self.pc = pc = RTCPeerConnection(rtc_configuration())
        for kind, track in zip(("video", "audio"), tracks, strict=True):
            pc.addTransceiver(track if track is not None else kind, direction=directions)

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tasks.append(asyncio.ensure_future(self._receive(track)))

        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        if uplink is not None:
            impair_connection(pc, uplink)  # right after setLocalDescription: every packet is impaired
        check_loopback_sdp(pc.localDescription.sdp)
        status, answer = await self.api.room_call(
            action, self.token, {"type": "offer", "sdp": pc.localDescription.sdp}
        )
        if status != 200:
            raise RuntimeError(f"{self.name}: {action} refused: {status} {answer}")
        check_loopback_sdp(answer["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        return answer

    async def _receive(self, track: MediaStreamTrack) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()


class StageMember(_Peer):
    """The host or a co-host: publishes a 320x240 test camera and a speech-like voice, and records the other
    stage member's picture (its counter) and voice, to measure the delay between the two people on stage."""

    def __init__(self, api: Api, name: str, *, seed: int, noise: int, fps: float = 15.0) -> None:
        super().__init__(api, name)
        self.camera = ColorBarsVideoTrack(width=320, height=240, fps=fps, noise=noise, seed=seed)
        self.voice = SpeechLikeAudioTrack(seed=seed)
        self.seen: list[tuple[int | None, float]] = []  # (counter of the other's picture, arrival)
        self.heard = AudioRecorder(max_seconds=120)

    # --8<-- [start:publish]
    async def publish(self, uplink: Impairment | None = None) -> None:
        """Go on stage: send camera and voice, receive the other stage member's (sendrecv both)."""
        await self._connect("publish", "sendrecv", (self.camera, self.voice), uplink)

    # --8<-- [end:publish]

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "video":
                    self.seen.append((read_frame_counter(frame), now))
                else:
                    self.heard.add(frame, now)

    def stop_media(self) -> None:
        self.camera.stop()
        self.voice.stop()


class Viewer(_Peer):
    """A viewer: watches the composite (recvonly), reads both tiles' counters from every frame, keeps the luma
    of every ``keep_every``-th frame for SSIM, and records the mixed audio if asked."""

    def __init__(
        self, api: Api, name: str, layout: Layout, *, keep_every: int = 3, record_audio: bool
    ) -> None:
        super().__init__(api, name)
        self.layout, self.keep_every = layout, keep_every
        self.tapped_at: float | None = None
        self.first_video_at: float | None = None
        self.first_audio_at: float | None = None
        self.frames: list[Seen] = []
        self.heard = AudioRecorder(max_seconds=120) if record_audio else None

    # --8<-- [start:watch]
    async def watch(self) -> None:
        """Join as a viewer: recvonly audio and video, nothing sent; the clock starts at the tap."""
        self.tapped_at = time.monotonic()
        await self._connect("watch", "recvonly", (None, None), None)

    # --8<-- [end:watch]

    async def _receive(self, track: MediaStreamTrack) -> None:
        regions = self.layout.regions()
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "audio":
                    self.first_audio_at = self.first_audio_at or now
                    if self.heard is not None:
                        self.heard.add(frame, now)
                    continue
                self.first_video_at = self.first_video_at or now
                plane = luma(frame)
                slots = tuple(read_frame_counter(plane[y : y + h, x : x + w]) for x, y, w, h in regions)
                keep = len(self.frames) % self.keep_every == 0
                self.frames.append(Seen(now, slots, plane if keep else None))

    async def wait_for(self, check: object, timeout: float) -> bool:
        """Wait until ``check()`` is true (True) or ``timeout`` seconds pass (False)."""
        deadline = time.monotonic() + timeout
        while not check():  # type: ignore[operator]
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True
