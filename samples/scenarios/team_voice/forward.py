"""The channel's audio path: an SFU that forwards each talker's Opus packets, untouched, to the other members of
the same channel; never decoded, never mixed.

Each member's connection carries a fixed number of receive slots; the router puts the loudest active talkers
in them. A talker is active while packets keep coming (a push-to-talk or VAD gate on the client sends nothing
in between), and a talker who starts again gets a slot on their very first packet. The router is also where
abuse is stopped on the media path: a muted player's packets, packets faster than a voice can produce and
packets larger than Opus allows are dropped here and counted.

`PacketTrack` and `intercept_rtp` follow samples/scenarios/voice_room/media.py (copied, not imported: each
scenario folder stands alone).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.ratelimit import RateLimiter

__all__ = ["MAX_OPUS_BYTES", "MediaCounters", "PacketTrack", "TalkerRouter", "intercept_rtp"]

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, the only Opus frame size aiortc sends
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
SILENT_DBOV = 127  # RFC 6464: the level field runs 0 (loudest) to 127 (-127 dBov, silence)
SPEAKING_DBOV = 60  # a smoothed level louder than -60 dBov counts as speaking
ACTIVE_S = 0.3  # a talker with no packet for this long has stopped (their gate closed)
HOLD_S = 1.0  # ... or with no loud packet for this long (an open mic left on in silence)
IDLE_S = 1.0  # a slot holder may be replaced after this long without a packet
MAX_OPUS_BYTES = 1275  # RFC 6716: the largest Opus frame
PACKETS_PER_S = 60.0  # a voice sends 50 packets/s (20 ms frames); allow a little slack
PACKET_BURST = 25  # ... and a burst after a stall of the sender's network


class PacketTrack(MediaStreamTrack):
    """An audio track of already-encoded Opus packets: one per 20 ms, with a continuous timestamp.

    The queue is short on purpose: if the listener's path stalls, old audio is dropped, never piled up.
    """

    kind = "audio"

    def __init__(self, max_queue: int = 10) -> None:
        super().__init__()
        self._queue: collections.deque[bytes] = collections.deque(maxlen=max_queue)
        self._ready = asyncio.Event()
        self._pts = 0

    def put(self, payload: bytes) -> None:
        """Queue one Opus packet for sending."""
        self._queue.append(payload)
        self._ready.set()

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        packet = av.Packet(self._queue.popleft())
        packet.pts, packet.time_base = self._pts, TIME_BASE
        self._pts += FRAME_SAMPLES
        return packet

    def stop(self) -> None:
        super().stop()
        self._ready.set()


def intercept_rtp(receiver: object, on_packet: Callable[[bytes, int], None]) -> None:
    """Take a receiver's RTP packets before aiortc depacketizes and decodes them (an SFU never decodes).

    aiortc's DTLS transport hands each decrypted RTP packet to ``receiver._handle_rtp_packet``; replacing it
    on this receiver object gives ``on_packet(payload, level_dbov)`` the Opus payload and the RFC 6464 audio
    level aiortc's sender writes into every packet's header extension.
    """

    async def handle(packet: object, arrival_time_ms: int) -> None:
        level = packet.extensions.audio_level  # (voice activity flag, level) or None
        on_packet(packet.payload, SILENT_DBOV if level is None else level[1])

    receiver._handle_rtp_packet = handle  # type: ignore[attr-defined]


@dataclass
class MediaCounters:
    """What the router did with the packets it got, over its lifetime."""

    forwarded: int = 0  # packets in (each is copied to one or more listeners)
    dropped_muted: int = 0
    dropped_flood: int = 0
    dropped_oversize: int = 0


class _Talker:
    """One publisher: level (fast attack, slow release), when they last sent and were loud."""

    def __init__(self) -> None:
        self.loudness = 0.0  # 127 - level: bigger is louder
        self.last_packet = self.last_loud = -1e9

    def heard(self, now: float, level_dbov: int) -> None:
        loudness = SILENT_DBOV - level_dbov
        self.loudness = max(loudness, self.loudness + 0.1 * (loudness - self.loudness))
        self.last_packet = now
        if self.loudness > SILENT_DBOV - SPEAKING_DBOV:
            self.last_loud = now

    def active(self, now: float) -> bool:
        """Sending (their gate is open) and loud within the last HOLD_S."""
        return now - self.last_packet < ACTIVE_S and now - self.last_loud < HOLD_S

    def idle(self, now: float) -> bool:
        """Silent long enough to give up a slot (a short pause, or a stalled network, keeps it)."""
        return now - self.last_packet >= IDLE_S or now - self.last_loud >= HOLD_S


# --8<-- [start:router]
class TalkerRouter:
    """One channel's forwarding: each listener has ``len(tracks)`` slots, each slot carries one talker.

    A talker keeps their slot through pauses; a talker who becomes active takes a free slot, or the slot of a
    holder idle for a second (loudest newcomer first). When every slot is held, a newcomer waits: that is
    the channel's limit of simultaneous voices per listener. Nobody gets their own voice back, and a muted
    player's packets stop here, before any listener's queue.
    """

    def __init__(self, audible: Callable[[str], bool], clock: Callable[[], float] = time.monotonic) -> None:
        self.audible = audible  # the match's rules: not muted
        self.clock = clock
        self.talkers: dict[str, _Talker] = {}
        self.slots: dict[str, list[str | None]] = {}  # listener -> talker in each slot
        self.tracks: dict[str, list[PacketTrack]] = {}
        self.counters = MediaCounters()
        self.packets = RateLimiter(PACKET_BURST, PACKETS_PER_S, clock=clock)  # a bucket per talker
        self._routes: dict[str, list[PacketTrack]] = {}  # talker -> the tracks their packets go to

    def add_listener(self, user: str, tracks: list[PacketTrack]) -> None:
        self.tracks[user] = tracks
        self.slots[user] = [None] * len(tracks)
        self.reselect()

    def add_talker(self, user: str) -> Callable[[bytes, int], None]:
        """Register a publisher; returns what to call with each of their packets."""
        talker = self.talkers[user] = _Talker()

        def on_packet(payload: bytes, level_dbov: int) -> None:
            now = self.clock()
            if not self.packets.allow(user):
                self.counters.dropped_flood += 1
            elif len(payload) > MAX_OPUS_BYTES:
                self.counters.dropped_oversize += 1
            elif not self.audible(user):
                self.counters.dropped_muted += 1
            else:
                starting = not talker.active(now)
                talker.heard(now, level_dbov)
                if starting and talker.active(now):
                    self.reselect()  # a slot from the first loud packet on: no clipped first word
                self.counters.forwarded += 1
                for track in self._routes.get(user, ()):
                    track.put(payload)

        return on_packet

    def remove(self, user: str) -> None:
        self.talkers.pop(user, None)
        self.tracks.pop(user, None)
        self.slots.pop(user, None)
        self.reselect()

    def reselect(self) -> None:
        now = self.clock()
        active = {u for u, t in self.talkers.items() if t.active(now) and self.audible(u)}
        ranked = sorted(active, key=lambda u: -self.talkers[u].loudness)
        routes: dict[str, list[PacketTrack]] = {}
        for listener, slots in self.slots.items():
            for i, holder in enumerate(slots):  # gone or muted: the slot is free at once
                if holder is not None and (holder not in self.talkers or not self.audible(holder)):
                    slots[i] = None
            for user in ranked:
                if user == listener or user in slots:
                    continue
                free = [i for i, h in enumerate(slots) if h is None or self.talkers[h].idle(now)]
                if not free:
                    break  # every slot is held by someone who spoke within IDLE_S
                slots[free[0]] = user
            for i, holder in enumerate(slots):  # a quiet holder keeps the route: no re-slotting per pause
                if holder is not None:
                    routes.setdefault(holder, []).append(self.tracks[listener][i])
        self._routes = routes

    def talking(self) -> list[str]:
        now = self.clock()
        return sorted(u for u, t in self.talkers.items() if t.active(now) and self.audible(u))


# --8<-- [end:router]
