"""A simulated 1v1 user: gets a token from the app's backend, asks the matchmaker for a partner, and runs the
call with an aiortc peer (loopback only) whose offer, answer and accept go through the server's mailboxes.

Signaling over a slow network is modelled by sleeping the profile's one-way delay on the way to the server
and again on the way back, so an HTTP exchange costs one round trip, like a request on a warm connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from aiohttp import ClientSession
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.impair import Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.service import JsonClient

__all__ = ["Api", "User"]


class Api(JsonClient):
    """HTTP calls to the matchmaker; every answer comes back as (status, JSON body) (see rtclab.service)."""

    def __init__(self, http: ClientSession, base_url: str, backend_key: str, one_way_s: float = 0.0) -> None:
        super().__init__(http, base_url, backend_key)
        self.one_way_s = one_way_s

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        raw: bytes | None = None,
        delayed: bool = True,
    ) -> tuple[int, dict]:
        """One request; ``delayed`` False for the backend's calls, which do not cross the user's network."""
        delay = self.one_way_s if delayed else 0.0
        await asyncio.sleep(delay)
        answer = await super().call(method, path, token=token, body=body, raw=raw)
        await asyncio.sleep(delay)
        return answer

    async def token(self, user: str, ttl_s: int = 600) -> str:
        """What your app's backend does (never a client): a token for ``user``."""
        status, data = await self.call(
            "POST", "/v1/tokens", token=self.backend_key, body={"user": user, "ttl_s": ttl_s}, delayed=False
        )
        if status != 200:
            raise RuntimeError(f"token for {user} refused: {status} {data}")
        return data["token"]


class User:
    """One side of a call: matchmaking, signaling, and a peer connection with one video track each way."""

    def __init__(self, api: Api, name: str, uplink: Impairment | None = None) -> None:
        self.api, self.name, self.uplink = api, name, uplink
        self.token = ""
        self.call_id = self.role = self.peer = ""
        self.pc: RTCPeerConnection | None = None
        self.first_frame_at: float | None = None
        self.frames: list[tuple[float, int, int]] = []  # (arrival, width, height) of each decoded frame
        self._tasks: list[asyncio.Task[None]] = []

    async def sign_in(self) -> None:
        self.token = await self.api.token(self.name)

    async def match(self, wait_s: float = 10.0) -> None:
        status, data = await self.api.call("POST", "/v1/match", token=self.token, body={"wait_s": wait_s})
        if status != 200:
            raise RuntimeError(f"{self.name}: no match: {status} {data}")
        self.call_id, self.role, self.peer = data["call"], data["role"], data["peer"]

    async def send(self, kind: str, sdp: str | None = None) -> tuple[int, dict]:
        body = {"type": kind} | ({"sdp": sdp} if sdp is not None else {})
        return await self.api.call("POST", f"/v1/calls/{self.call_id}/send", token=self.token, body=body)

    async def next_message(self, wait_s: float = 5.0) -> dict:
        """The next message in this user's mailbox (``{"type": "idle"}`` if none came within ``wait_s``)."""
        path = f"/v1/calls/{self.call_id}/next?wait_s={wait_s:.2f}"
        status, message = await self.api.call("GET", path, token=self.token)
        if status != 200:
            raise RuntimeError(f"{self.name}: mailbox refused: {status} {message}")
        return message

    async def expect(self, kind: str, timeout: float = 15.0) -> dict:
        """Long-poll the mailbox until a message of type ``kind`` arrives."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = await self.next_message(min(5.0, max(0.0, deadline - time.monotonic())))
            if message.get("type") == kind:
                return message
            if message.get("type") == "hangup":
                raise RuntimeError(f"{self.name}: the peer hung up")
        raise TimeoutError(f"{self.name}: no {kind} within {timeout:g} s")

    # --8<-- [start:peer]
    async def offer(self, track: MediaStreamTrack) -> str:
        """The caller's side: a sendrecv video transceiver; returns the offer's SDP."""
        self.pc = pc = RTCPeerConnection(rtc_configuration())
        pc.addTransceiver(track, direction="sendrecv")
        self._watch(pc)
        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        if self.uplink is not None:
            impair_connection(pc, self.uplink)  # right after setLocalDescription: every packet is impaired
        check_loopback_sdp(pc.localDescription.sdp)
        return pc.localDescription.sdp

    async def answer(self, offer_sdp: str, track: MediaStreamTrack) -> str:
        """The callee's side: answer the offer with our own video; returns the answer's SDP."""
        check_loopback_sdp(offer_sdp)
        self.pc = pc = RTCPeerConnection(rtc_configuration())
        self._watch(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        transceiver = pc.getTransceivers()[0]
        transceiver.sender.replaceTrack(track)
        transceiver.direction = "sendrecv"
        with loopback_only():
            await pc.setLocalDescription(await pc.createAnswer())
        if self.uplink is not None:
            impair_connection(pc, self.uplink)
        check_loopback_sdp(pc.localDescription.sdp)
        return pc.localDescription.sdp

    async def complete(self, answer_sdp: str) -> None:
        check_loopback_sdp(answer_sdp)
        assert self.pc is not None
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer_sdp, type="answer"))

    # --8<-- [end:peer]

    def _watch(self, pc: RTCPeerConnection) -> None:
        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self._tasks.append(asyncio.ensure_future(self._receive(track)))

    async def _receive(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if self.first_frame_at is None:
                    self.first_frame_at = now
                self.frames.append((now, frame.width, frame.height))

    async def wait_for_frame(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.first_frame_at is None and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        return self.first_frame_at is not None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.pc is not None:
            await self.pc.close()
