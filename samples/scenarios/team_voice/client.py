"""A simulated player: asks the game backend for a token, joins voice channels with aiortc peers (loopback
only), talks through a push-to-talk or VAD gate, records every stream the server sends, and rejoins with a
fresh peer connection when its network drops (aiortc has no ICE restart).

The lab's handover: `Network` is the player's phone. An outage drops every datagram its connection sends
(`rtclab.impair.Blackout` through `impair_connection`) and receives (`watch_receive` below), and its
signaling requests fail at once, as they do when the phone knows it has no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.impair import Blackout, Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.recording import AudioRecorder
from rtclab.service import JsonClient

__all__ = ["Api", "ChannelLink", "Network", "NetworkDown", "Player", "Rejoin", "watch_receive"]


class NetworkDown(ConnectionError):
    """The player's network is in an outage: the request never left the phone."""


class Api(JsonClient):
    """HTTP calls to the voice server; every answer comes back as (status, JSON body) (see rtclab.service)."""


@dataclass
class Network:
    """A player's network: up, except during outages (``time.monotonic()`` start and end)."""

    outages: list[tuple[float, float]] = field(default_factory=list)

    def up(self, at: float | None = None) -> bool:
        now = time.monotonic() if at is None else at
        return not any(start <= now < end for start, end in self.outages)


class ReceiveWatch:
    """When a connection last received a datagram, and what an outage made it drop."""

    def __init__(self) -> None:
        self.last_rx = time.monotonic()
        self.dropped = 0


def watch_receive(pc: RTCPeerConnection, network: Network) -> ReceiveWatch:
    """Stamp every datagram ``pc`` receives, and drop those that arrive during an outage of ``network``.

    rtclab.impair impairs what a peer sends; a phone in a handover receives nothing either. aioice's
    ``StunProtocol.datagram_received`` gets every datagram of a local candidate's socket (STUN, DTLS, RTP,
    RTCP); wrapping it on the protocol objects (private: ``_connection._protocols``) sees all of them.
    Call right after ``setLocalDescription()``, like ``impair_connection``.
    """
    watch = ReceiveWatch()
    ices = {id(t.receiver.transport.transport): t.receiver.transport.transport for t in pc.getTransceivers()}
    for ice in ices.values():
        for protocol in ice._connection._protocols:
            original = protocol.datagram_received

            def received(data: bytes, addr: tuple, original: Any = original) -> None:
                now = time.monotonic()
                if not network.up(now):
                    watch.dropped += 1
                    return
                watch.last_rx = now
                original(data, addr)

            protocol.datagram_received = received
    return watch


class ChannelLink:
    """One peer connection to one channel: what it sends, what it records per slot, when audio came."""

    def __init__(self, channel: str, pc: RTCPeerConnection, watch: ReceiveWatch, record_s: float) -> None:
        self.channel, self.pc, self.watch = channel, pc, watch
        self.recorders: list[AudioRecorder] = []
        self.first_audio_at: float | None = None
        self._record_s = record_s
        self._tasks: list[asyncio.Task[None]] = []

    def start_recording(self) -> None:
        for transceiver in self.pc.getTransceivers():
            if transceiver.direction == "recvonly":
                recorder = AudioRecorder(max_seconds=self._record_s)
                self.recorders.append(recorder)
                self._tasks.append(asyncio.ensure_future(self._record(transceiver.receiver.track, recorder)))

    async def _record(self, track: MediaStreamTrack, recorder: AudioRecorder) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if self.first_audio_at is None:
                    self.first_audio_at = now
                recorder.add(frame, now)

    def frames_between(self, since: float, until: float = float("inf")) -> int:
        """Frames decoded on any slot between two instants (monotonic seconds)."""
        return sum(int(((r.arrival_s > since) & (r.arrival_s <= until)).sum()) for r in self.recorders)

    def last_frame_before(self, instant: float) -> float | None:
        times = [t for r in self.recorders for t in r.arrival_s.tolist() if t < instant]
        return max(times) if times else None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.pc.close()


@dataclass
class Rejoin:
    """What one recovery took, in ``time.monotonic()`` seconds (None: did not happen)."""

    detected_at: float | None = None
    refused_while_down: int = 0
    request_at: float | None = None  # the attempt that went through
    answer_at: float | None = None
    first_audio_at: float | None = None


class Player:
    """A player of a match: one token, one `ChannelLink` per channel joined."""

    def __init__(
        self,
        api: Api,
        match: str,
        user: str,
        team: str,
        *,
        role: str = "player",
        uplink: Impairment | None = None,
        record_s: float = 60.0,
    ) -> None:
        self.api, self.match, self.user, self.team, self.role = api, match, user, team, role
        self.uplink, self.record_s = uplink, record_s
        self.network = Network()
        self.token: str | None = None
        self.links: dict[str, ChannelLink] = {}

    async def get_token(self, ttl_s: int = 900) -> str:
        body = {"match": self.match, "user": self.user, "role": self.role, "team": self.team, "ttl_s": ttl_s}
        status, data = await self.api.backend("POST", "/v1/tokens", body)
        if status != 200:
            raise RuntimeError(f"token request for {self.user} refused: {status} {data}")
        self.token = data["token"]
        return self.token

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        """A call with this player's token, through their network."""
        if not self.network.up():
            raise NetworkDown("no network")
        return await self.api.call(method, f"/v1/matches/{self.match}{path}", token=self.token, body=body)

    async def join(
        self, channel: str, talk: MediaStreamTrack | None = None, *, blackout: Blackout | None = None
    ) -> ChannelLink:
        """Offer one sendonly section if talking and one recvonly per slot; record what comes back."""
        if self.token is None:
            await self.get_token()
        status, info = await self.request("GET", f"/channels/{channel}")
        if status != 200:
            raise RuntimeError(f"{self.user}: channel {channel} refused: {status} {info}")
        pc = RTCPeerConnection(rtc_configuration())
        if talk is not None:
            pc.addTransceiver(talk, direction="sendonly")
        for _ in range(info["slots"]):
            pc.addTransceiver("audio", direction="recvonly")
        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        uplink = self.uplink
        if blackout is not None:  # the lab's handover: this connection's network goes dark
            uplink = replace(uplink or Impairment(), blackouts=(blackout,))
        if uplink is not None:
            peer = impair_connection(pc, uplink)
            if blackout is not None:  # the same outage for what it receives and for signaling
                start = peer.link.start_s + blackout.start_s  # loop.time() is time.monotonic()
                self.network.outages.append((start, start + blackout.duration_s))
        watch = watch_receive(pc, self.network)
        check_loopback_sdp(pc.localDescription.sdp)
        offer = {"type": "offer", "sdp": pc.localDescription.sdp}
        try:
            status, answer = await self.request("POST", f"/channels/{channel}/join", offer)
            if status != 200:
                raise RuntimeError(f"{self.user}: join {channel} refused: {status} {answer}")
            check_loopback_sdp(answer["sdp"])
            await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        except BaseException:
            await pc.close()
            raise
        link = self.links[channel] = ChannelLink(channel, pc, watch, self.record_s)
        link.start_recording()
        return link

    # --8<-- [start:rejoin]
    async def stay_connected(
        self, channel: str, *, dead_after_s: float = 1.5, retry_s: float = 0.25, give_up_s: float = 30.0
    ) -> Rejoin:
        """Watch one link; when nothing has arrived for ``dead_after_s``, rejoin with a fresh connection.

        aiortc has no ICE restart, and after a Wi-Fi -> 4G handover the old addresses are gone anyway: the
        client closes the dead connection and joins again with the token it holds. The server sees the
        same player join the same channel and replaces their connection. While the network is still down,
        each attempt fails at once and is retried every ``retry_s``. Watching and rejoining each stop after
        ``give_up_s``.
        """
        result = Rejoin()
        link = self.links[channel]
        watch_until = time.monotonic() + give_up_s
        while time.monotonic() - link.watch.last_rx < dead_after_s:
            if time.monotonic() > watch_until:
                return result  # no outage seen
            await asyncio.sleep(0.05)
        result.detected_at = time.monotonic()
        await link.close()  # its sockets are bound to the network that went away
        deadline = result.detected_at + give_up_s  # give up rejoining after this
        while time.monotonic() < deadline:
            try:
                result.request_at = time.monotonic()
                new = await self.join(channel, talk=None)
            except NetworkDown:
                result.refused_while_down += 1
                await asyncio.sleep(retry_s)
                continue
            result.answer_at = time.monotonic()
            while new.first_audio_at is None and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            result.first_audio_at = new.first_audio_at
            break
        return result

    # --8<-- [end:rejoin]

    async def leave(self, channel: str) -> None:
        link = self.links.pop(channel, None)
        if link is None:
            return
        with contextlib.suppress(Exception):
            if self.network.up():
                await self.request("POST", f"/channels/{channel}/leave")
        await link.close()

    async def close(self) -> None:
        for channel in list(self.links):
            await self.leave(channel)
