"""The bot of the browser call: an aiortc peer that answers a browser's offer, the way a recorder or an AI agent
joins a call from a server.

It keeps the call on 127.0.0.1 from its side: it drops every candidate of the browser's offer that is not UDP
on 127.0.0.1 before `setRemoteDescription()`, gathers its own candidates with `rtclab.loopback.loopback_only()`,
checks both descriptions with `check_loopback_sdp()`, and refuses to send a datagram anywhere but 127.0.0.1.
It receives the browser's audio and video (counting decoded frames and the codec of the packets) and sends
its own speech-like audio and color-bars video. `browser_call.py` in this folder runs it:

    .venv/bin/python samples/sdk/browser_call/browser_call.py
"""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket

from rtclab.loopback import (
    LOOPBACK_ADDRESS,
    check_loopback_sdp,
    keep_loopback_candidates,
    loopback_only,
    rtc_configuration,
)
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack

__all__ = ["Bot", "Received", "keep_loopback_candidates", "rtpmap"]

# A browser offers a host candidate on every interface, over UDP and TCP: Bot.answer() keeps only UDP on
# 127.0.0.1 with rtclab.loopback.keep_loopback_candidates (shown on the page) before aiortc sees the offer.


def rtpmap(sdp: str) -> dict[str, dict[int, str]]:
    """Payload type -> codec (``opus/48000/2``) for each media kind of an SDP, from its ``a=rtpmap`` lines."""
    codecs: dict[str, dict[int, str]] = {}
    kind = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            kind = line[2:].split()[0]
            codecs.setdefault(kind, {})
        elif line.startswith("a=rtpmap:") and kind is not None:
            payload_type, _, name = line.removeprefix("a=rtpmap:").partition(" ")
            codecs[kind][int(payload_type)] = name
    return codecs


class _LoopbackOnlyTransport:
    """Wraps a socket transport of aioice: a datagram to any address but 127.0.0.1 is dropped and counted.

    A browser may send checks from another interface's address to the bot's 127.0.0.1 candidate; aioice
    then learns a peer-reflexive candidate and would answer it. This guard keeps the bot from doing so.
    """

    def __init__(self, inner: Any, refused: list[str]) -> None:
        self._inner = inner
        self._refused = refused

    def sendto(self, data: bytes, addr: Any = None) -> None:
        host = addr[0] if addr else None
        if host is None or ipaddress.ip_address(host) != ipaddress.ip_address(LOOPBACK_ADDRESS):
            self._refused.append(str(host))
            return
        self._inner.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


@dataclass
class Received:
    """What the bot got from the browser for one kind of media."""

    frames: int = 0
    first_frame_ms: float | None = None
    size: tuple[int, int] | None = None  # video: width, height of the last frame
    payload_types: set[int] = field(default_factory=set)


class Bot:
    """An aiortc peer that answers one offer, receives the browser's media and sends its own."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(configuration=rtc_configuration())  # iceServers=[]: no STUN, no TURN
        self.received = {"audio": Received(), "video": Received()}
        self.marks: dict[str, float] = {}  # ms since the offer arrived
        self.offer = self.answer_sdp = ""
        self.candidates_kept: list[str] = []
        self.candidates_dropped: list[str] = []
        self.refused: list[str] = []  # destinations the guard refused
        self.connected = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._start = 0.0
        self.pc.on("connectionstatechange", self._on_state)
        self.pc.on("track", self._on_track)

    def _mark(self, name: str) -> None:
        self.marks.setdefault(name, (asyncio.get_running_loop().time() - self._start) * 1000)

    def _on_state(self) -> None:
        if self.pc.connectionState == "connected":
            self._mark("connected")
            self.connected.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        received = self.received[track.kind]
        while True:
            try:
                frame = await track.recv()  # decoded: through aiortc's jitter buffer and decoder
            except MediaStreamError:
                return
            if received.frames == 0:
                self._mark(f"first {track.kind} frame")
            received.frames += 1
            if track.kind == "video":
                received.size = (frame.width, frame.height)

    def _watch_payload_types(self, receiver: RTCRtpReceiver) -> None:
        # Which codec the browser really sends: aiortc has no stats for it, so look at each packet's payload
        # type. `_handle_rtp_packet` is private to aiortc (the lock file pins the version).
        handle = receiver._handle_rtp_packet
        payload_types = self.received[receiver.track.kind].payload_types

        async def seen(packet: RtpPacket, arrival_time_ms: int) -> None:
            payload_types.add(packet.payload_type)
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = seen

    # --8<-- [start:answer]
    async def answer(self, offer_sdp: str) -> str:
        """Apply the browser's offer and return the bot's answer (all candidates in it: aiortc does not trickle).

        Raises:
            ValueError: If the offer has no UDP candidate on 127.0.0.1, or an SDP aiortc cannot apply.
        """
        self._start = asyncio.get_running_loop().time()
        self.offer = offer_sdp
        sdp, self.candidates_kept, self.candidates_dropped = keep_loopback_candidates(offer_sdp)
        if not self.candidates_kept:
            raise ValueError(
                "the offer has no UDP candidate on 127.0.0.1 "
                "(start Chromium with --allow-loopback-in-peer-connection)"
            )
        check_loopback_sdp(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for receiver in self.pc.getReceivers():
            self._watch_payload_types(receiver)
        # Reuse the transceivers the offer created, so the answer sends on them (sendrecv).
        self.pc.addTrack(SpeechLikeAudioTrack())
        self.pc.addTrack(ColorBarsVideoTrack(width=320, height=240, fps=15))
        with loopback_only():  # aiortc gathers inside setLocalDescription(): 127.0.0.1 only
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._guard_sockets()  # no await since setLocalDescription(): ICE has not sent anything yet
        self.answer_sdp = self.pc.localDescription.sdp
        check_loopback_sdp(self.answer_sdp)
        self._mark("answer ready")
        return self.answer_sdp

    # --8<-- [end:answer]

    def _guard_sockets(self) -> None:
        # `_connection` (aiortc) and `_protocols` (aioice) are private, as in rtclab.impair.
        for transceiver in self.pc.getTransceivers():
            for protocol in transceiver.receiver.transport.transport._connection._protocols:
                if not isinstance(protocol.transport, _LoopbackOnlyTransport):
                    protocol.transport = _LoopbackOnlyTransport(protocol.transport, self.refused)

    async def sent(self) -> dict[str, dict[str, int]]:
        """Packets and bytes the bot sent per kind, from aiortc's ``outbound-rtp`` stats."""
        report = await self.pc.getStats()
        return {
            stat.kind: {"packets": stat.packetsSent, "bytes": stat.bytesSent}
            for stat in report.values()
            if stat.type == "outbound-rtp"
        }

    def send_codec(self, kind: str) -> str | None:
        """The codec the bot sends for ``kind``: aiortc sends with the first codec of its answer's m= line."""
        for line in self.answer_sdp.splitlines():
            if line.startswith(f"m={kind} "):
                first = int(line.split()[3])
                return rtpmap(self.answer_sdp)[kind].get(first)
        return None

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
