"""A simulated voice room member: asks the app's backend for a token, joins with an aiortc peer (loopback only),
publishes a voice if it may, and records every audio stream the server sends it.

Join time runs from the token request to the first decoded audio frame, which is what a user waits for
between tapping "join" and hearing the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.impair import Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.recording import AudioRecorder
from rtclab.service import JsonClient

__all__ = ["Api", "Participant"]


class Api(JsonClient):
    """HTTP calls to the room server; every answer comes back as (status, JSON body) (see rtclab.service)."""


class Participant:
    """One member of a room, with their recordings (one per audio stream the server sends)."""

    def __init__(
        self,
        api: Api,
        room: str,
        user: str,
        role: str,
        track: MediaStreamTrack | None = None,
        *,
        record_seconds: float = 60.0,
        uplink: Impairment | None = None,
    ) -> None:
        self.api, self.room, self.user, self.role, self.track = api, room, user, role, track
        self.record_seconds, self.uplink = record_seconds, uplink
        self.token: str | None = None
        self.pc: RTCPeerConnection | None = None
        self.recorders: list[AudioRecorder] = []
        self.requested_at: float | None = None
        self.first_audio_at: float | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def join_ms(self) -> float | None:
        """Token request to first decoded audio frame, in ms."""
        if self.first_audio_at is None or self.requested_at is None:
            return None
        return (self.first_audio_at - self.requested_at) * 1000

    async def get_token(self, ttl_s: int = 600) -> str:
        body = {"room": self.room, "user": self.user, "role": self.role, "ttl_s": ttl_s}
        status, data = await self.api.backend("POST", "/v1/tokens", body)
        if status != 200:
            raise RuntimeError(f"token request for {self.user} refused: {status} {data}")
        return data["token"]

    # --8<-- [start:join]
    async def join(self) -> None:
        """Token, room info, offer (one sendonly section if publishing, one recvonly per stream), answer."""
        self.requested_at = time.monotonic()
        self.token = await self.get_token()
        status, info = await self.api.call("GET", f"/v1/rooms/{self.room}", token=self.token)
        if status != 200:
            raise RuntimeError(f"{self.user}: room info refused: {status} {info}")
        self.pc = pc = RTCPeerConnection(rtc_configuration())
        if self.track is not None:
            pc.addTransceiver(self.track, direction="sendonly")
        for _ in range(info["slots"]):
            pc.addTransceiver("audio", direction="recvonly")
        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        if self.uplink is not None:
            impair_connection(pc, self.uplink)
        check_loopback_sdp(pc.localDescription.sdp)
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        status, answer = await self.api.call(
            "POST", f"/v1/rooms/{self.room}/join", token=self.token, body=offer
        )
        if status != 200:
            raise RuntimeError(f"{self.user}: join refused: {status} {answer}")
        check_loopback_sdp(answer["sdp"])
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        for transceiver in pc.getTransceivers():
            if transceiver.direction == "recvonly":
                recorder = AudioRecorder(max_seconds=self.record_seconds)
                self.recorders.append(recorder)
                self._tasks.append(asyncio.ensure_future(self._record(transceiver.receiver.track, recorder)))

    # --8<-- [end:join]

    async def _record(self, track: MediaStreamTrack, recorder: AudioRecorder) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if self.first_audio_at is None:
                    self.first_audio_at = now
                recorder.add(frame, now)

    async def wait_for_audio(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.first_audio_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return self.first_audio_at is not None

    def frames_since(self, since: float, slot: int | None = None) -> int:
        """Frames decoded after ``since`` (monotonic seconds), on one stream or all."""
        recorders = self.recorders if slot is None else [self.recorders[slot]]
        return sum(int((r.arrival_s > since).sum()) for r in recorders)

    async def request(self, method: str, action: str, body: Any = None) -> tuple[int, dict]:
        """A member call (seat, mute, kick, leave, or GET the room) with this member's token."""
        path = f"/v1/rooms/{self.room}" + (f"/{action}" if action else "")
        return await self.api.call(method, path, token=self.token, body=body)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()
