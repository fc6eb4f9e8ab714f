"""The far end of a captured call: an aiortc peer that answers Chromium's offer on 127.0.0.1 and plays one
scenario's fault, so the browser's stats show it.

What it can do, per `Fault`: impair what it sends to the browser (``rtclab.impair.impair_connection``), impair
what it receives from the browser (the same `rtclab.impair.Link` model, run on each datagram before aioice
sees it: rtclab.impair only wraps the sending side), send no audio although the answer says sendrecv, and
answer with candidates that lead nowhere. capture_dumps.py in this folder runs it; it is not a lesson.
"""

from __future__ import annotations

import asyncio
import re
import socket
from dataclasses import dataclass
from typing import Any

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtclab.impair import ImpairedDatagramTransport, Impairment, Link, impair_connection
from rtclab.loopback import check_loopback_sdp, keep_loopback_candidates, loopback_only, rtc_configuration
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack


def unused_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nothing listens on (Chromium ignores remote candidates below 1024)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Fault:
    """What goes wrong in one scenario, from the aiortc peer's side. The default is a healthy call."""

    to_browser: Impairment | None = None
    from_browser: Impairment | None = None
    send_audio: bool = True
    unreachable: bool = False  # answer with candidates on an unused port and drop everything this peer sends
    camera: tuple[int, int] = (640, 480)  # what the page asks getUserMedia for (15 fps)


class StalledAudioTrack(MediaStreamTrack):
    """An audio track that never yields a frame: the SDP says sendrecv, yet no audio packet ever leaves.

    This is what a far end with a dead capture device (or a media server that forwards nothing) looks like.
    """

    kind = "audio"

    async def recv(self) -> Any:
        await asyncio.Event().wait()  # forever; aiortc's sender waits here and sends no RTP


class _ReceiveSide:
    """Stands in for a transport under `ImpairedDatagramTransport` so that its queue delivers to a protocol.

    ``sendto`` hands the datagram to the protocol's own ``datagram_received``: the wrapper's delay, loss and
    rate queue then act on what arrives instead of what leaves.
    """

    def __init__(self, protocol: Any) -> None:
        self._deliver = protocol.datagram_received
        self._protocol = protocol

    def sendto(self, data: bytes, addr: Any = None) -> None:
        self._deliver(data, addr)

    def is_closing(self) -> bool:
        transport = getattr(self._protocol, "transport", None)
        return transport is None or transport.is_closing()


def impair_receiving(pc: RTCPeerConnection, impairment: Impairment) -> Link:
    """Impair every datagram ``pc`` receives from now on; call right after ``setLocalDescription()``."""
    link = Link(impairment, start_s=asyncio.get_running_loop().time())
    for transceiver in pc.getTransceivers():
        # `_connection` (aiortc) and `_protocols` (aioice) are private, as in rtclab.impair.
        for protocol in transceiver.receiver.transport.transport._connection._protocols:
            if isinstance(getattr(protocol, "_receive_wrapper", None), ImpairedDatagramTransport):
                continue  # bundled transceivers share one ICE transport
            wrapper = ImpairedDatagramTransport(_ReceiveSide(protocol), link)
            protocol._receive_wrapper = wrapper
            protocol.datagram_received = wrapper.sendto  # asyncio looks the method up on every datagram
    return link


def point_candidates_nowhere(sdp: str, port: int) -> str:
    """Rewrite the port of every ``a=candidate`` line to ``port``, as a wrong NAT mapping would."""
    return re.sub(r"^(a=candidate:\S+ \d+ \S+ \d+ \S+) \d+ ", rf"\g<1> {port} ", sdp, flags=re.MULTILINE)


class CallPeer:
    """Answers one offer, sends speech-like audio and color bars back, consumes what the browser sends."""

    def __init__(self, fault: Fault) -> None:
        self.fault = fault
        self.pc = RTCPeerConnection(configuration=rtc_configuration())  # no STUN, no TURN
        self.links: dict[str, Link] = {}
        self._tasks: list[asyncio.Task] = []
        self.pc.on("track", lambda track: self._tasks.append(asyncio.create_task(self._drain(track))))

    async def _drain(self, track: MediaStreamTrack) -> None:
        while True:  # decode the browser's media so aiortc sends receiver reports and REMB as it would
            try:
                await track.recv()
            except MediaStreamError:
                return

    async def answer(self, offer_sdp: str) -> str:
        sdp, kept, _ = keep_loopback_candidates(offer_sdp)
        if not kept:
            raise ValueError("the offer has no UDP candidate on 127.0.0.1")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        audio = SpeechLikeAudioTrack() if self.fault.send_audio else StalledAudioTrack()
        self.pc.addTrack(audio)
        # Noise makes the encoder spend its whole target, as a real camera does, so a rate cap bites.
        self.pc.addTrack(ColorBarsVideoTrack(width=320, height=240, fps=15, noise=12))
        with loopback_only():  # aiortc gathers inside setLocalDescription(): 127.0.0.1 only
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        # No await between here and the return: ICE has not sent anything yet.
        to_browser = Impairment(loss=1.0) if self.fault.unreachable else self.fault.to_browser
        if to_browser is not None:
            self.links["to_browser"] = impair_connection(self.pc, to_browser).link
        if self.fault.from_browser is not None:
            self.links["from_browser"] = impair_receiving(self.pc, self.fault.from_browser)
        answer = self.pc.localDescription.sdp
        check_loopback_sdp(answer)
        return point_candidates_nowhere(answer, unused_udp_port()) if self.fault.unreachable else answer

    async def close(self) -> None:
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
