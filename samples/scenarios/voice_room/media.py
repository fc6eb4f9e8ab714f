"""The room server's audio paths: forward the top-K speakers' Opus packets untouched (an SFU), or decode,
sum and re-encode a mix-minus for every speaker plus one shared mix for the audience (an MCU).

Both paths end in a `PacketTrack`: a track that hands aiortc already-encoded Opus packets, which aiortc's
sender then only packetizes, encrypts and sends (``RTCRtpSender`` calls the encoder's ``pack()`` for an
``av.Packet`` instead of encoding a frame).
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from collections.abc import Callable

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["FRAME_SAMPLES", "ForwardRouter", "Mixer", "PacketTrack", "intercept_rtp", "loudness_from_pcm"]

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms, the only Opus frame size aiortc sends
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
SILENT_DBOV = 127  # RFC 6464: the level field runs 0 (loudest) to 127 (-127 dBov, silence)
SPEAKING_DBOV = 60  # a smoothed level louder than -60 dBov counts as speaking


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
        self.packets_in = 0

    def put(self, payload: bytes) -> None:
        """Queue one Opus packet for sending."""
        self.packets_in += 1
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

    aiortc's DTLS transport routes each decrypted RTP packet to ``receiver._handle_rtp_packet``; replacing it
    on this receiver object hands ``on_packet(payload, level_dbov)`` the Opus payload and the sender's
    ssrc-audio-level header extension (RFC 6464), which aiortc's sender fills from every frame it encodes.
    The replaced method also fed receiver statistics (RTCP receiver reports): this receiver sends none.
    """

    async def handle(packet: object, arrival_time_ms: int) -> None:
        level = packet.extensions.audio_level  # (voice activity flag, level) or None
        on_packet(packet.payload, SILENT_DBOV if level is None else level[1])

    receiver._handle_rtp_packet = handle  # type: ignore[attr-defined]


def loudness_from_pcm(samples: np.ndarray) -> int:
    """The RFC 6464 level (0 = full scale, 127 = silence) of float samples in [-1, 1]."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    if rms <= 0:
        return SILENT_DBOV
    return int(min(SILENT_DBOV, max(0, round(-20 * np.log10(rms)))))


class _Speaker:
    """Smoothed level of one publisher (exponential average over its 20 ms packets)."""

    def __init__(self) -> None:
        self.loudness = 0.0  # 127 - level: bigger is louder

    def update(self, level_dbov: int) -> None:
        self.loudness += 0.1 * ((SILENT_DBOV - level_dbov) - self.loudness)

    @property
    def speaking(self) -> bool:
        return self.loudness > SILENT_DBOV - SPEAKING_DBOV


# --8<-- [start:forward]
class ForwardRouter:
    """Forward mode: each listener gets ``top_k`` slots; each slot carries one loud speaker's packets.

    Every 100 ms the speakers are ranked by their smoothed audio level (read from the RTP header, so nothing
    is decoded). A speaker keeps their slot while they stay in the top K, so a pause does not reshuffle the
    listener's streams; a louder newcomer takes a free slot, or the slot of someone who fell out of the top K.
    Nobody gets their own voice back.
    """

    def __init__(self, top_k: int, audible: Callable[[str], bool]) -> None:
        self.top_k = top_k
        self.audible = audible  # the room's rules: seated, publishing, not muted
        self.speakers: dict[str, _Speaker] = {}
        self.slots: dict[str, list[str | None]] = {}  # listener -> speaker in each slot
        self.tracks: dict[str, list[PacketTrack]] = {}
        self._routes: dict[str, list[PacketTrack]] = {}  # speaker -> the tracks their packets go to

    def add_listener(self, user: str, tracks: list[PacketTrack]) -> None:
        self.tracks[user] = tracks
        self.slots[user] = [None] * len(tracks)

    def add_speaker(self, user: str) -> Callable[[bytes, int], None]:
        """Register a publisher; returns what to call with each of their packets."""
        speaker = self.speakers[user] = _Speaker()

        def on_packet(payload: bytes, level_dbov: int) -> None:
            speaker.update(level_dbov)
            for track in self._routes.get(user, ()):
                track.put(payload)

        return on_packet

    def remove(self, user: str) -> None:
        self.speakers.pop(user, None)
        self.tracks.pop(user, None)
        self.slots.pop(user, None)
        self.reselect()

    def reselect(self) -> None:
        ranked = sorted(
            (u for u, s in self.speakers.items() if s.speaking and self.audible(u)),
            key=lambda u: -self.speakers[u].loudness,
        )
        routes: dict[str, list[PacketTrack]] = {}
        for listener, slots in self.slots.items():
            wanted = [u for u in ranked if u != listener][: self.top_k]
            for i, holder in enumerate(slots):  # a quiet speaker keeps their slot while still audible
                if holder is not None and not (holder in self.speakers and self.audible(holder)):
                    slots[i] = None
            for user in wanted:
                if user in slots:
                    continue
                if None not in slots:  # evict someone who fell out of the top K
                    slots[next(i for i, h in enumerate(slots) if h not in wanted)] = None
                slots[slots.index(None)] = user
            for i, holder in enumerate(slots):
                if holder is not None:
                    routes.setdefault(holder, []).append(self.tracks[listener][i])
        self._routes = routes

    def speaking(self) -> list[str]:
        return sorted(u for u, s in self.speakers.items() if s.speaking and self.audible(u))


# --8<-- [end:forward]


class _Encoder:
    """One continuous Opus stream (its own libopus state), mono, voice mode."""

    def __init__(self, bitrate: int) -> None:
        self.codec = av.CodecContext.create("libopus", "w")
        self.codec.sample_rate = SAMPLE_RATE
        self.codec.layout = "mono"
        self.codec.format = "s16"
        self.codec.bit_rate = bitrate
        self.codec.time_base = TIME_BASE
        self.codec.options = {"application": "voip"}
        self._pts = 0

    def encode(self, pcm: np.ndarray) -> list[bytes]:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, self._pts, TIME_BASE
        self._pts += FRAME_SAMPLES
        return [bytes(p) for p in self.codec.encode(frame)]


# --8<-- [start:mix]
class Mixer:
    """Mix mode: every 20 ms take one decoded frame from each audible speaker, sum them, and encode
    a mix-minus (everyone but themselves) for each speaker plus one mix shared by all pure listeners.

    The cost is one decode per speaker and one encode per speaker plus one, whatever the audience size:
    the audience's packets are encoded once and copied.
    """

    def __init__(self, audible: Callable[[str], bool], bitrate: int = 64_000) -> None:
        self.audible = audible
        self.bitrate = bitrate
        self.inputs: dict[str, collections.deque[np.ndarray]] = {}
        self.levels: dict[str, _Speaker] = {}
        self.outputs: dict[str, tuple[PacketTrack, _Encoder | None]] = {}
        self._shared = _Encoder(bitrate)
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0

    def add_speaker(self, user: str) -> Callable[[av.AudioFrame], None]:
        """Register a publisher; returns what to call with each of their decoded frames."""
        queue = self.inputs[user] = collections.deque(maxlen=3)  # >60 ms behind: drop the oldest
        level = self.levels[user] = _Speaker()

        def on_frame(frame: av.AudioFrame) -> None:
            pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1) / 32768.0
            level.update(loudness_from_pcm(pcm))
            queue.append(pcm.astype(np.float32))

        return on_frame

    def add_listener(self, user: str, track: PacketTrack, speaks: bool) -> None:
        self.outputs[user] = (track, _Encoder(self.bitrate) if speaks else None)

    def remove(self, user: str) -> None:
        self.inputs.pop(user, None)
        self.levels.pop(user, None)
        self.outputs.pop(user, None)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def speaking(self) -> list[str]:
        return sorted(u for u, s in self.levels.items() if s.speaking and self.audible(u))

    async def _run(self) -> None:
        start = time.monotonic()
        while True:
            self.ticks += 1
            await asyncio.sleep(max(0.0, start + self.ticks * 0.020 - time.monotonic()))
            self.tick()

    def tick(self) -> None:
        silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        parts = {}
        for user, queue in self.inputs.items():
            frame = queue.popleft() if queue else None
            if frame is not None and frame.size == FRAME_SAMPLES and self.audible(user):
                parts[user] = frame
        total = sum(parts.values(), silence)
        shared: list[bytes] | None = None
        for user, (track, encoder) in list(self.outputs.items()):
            if encoder is not None:  # a speaker: everyone but themselves
                packets = encoder.encode(_pcm16(total - parts.get(user, silence)))
            else:  # a listener: the one shared mix, encoded once
                if shared is None:
                    shared = self._shared.encode(_pcm16(total))
                packets = shared
            for payload in packets:
                track.put(payload)


# --8<-- [end:mix]


def _pcm16(samples: np.ndarray) -> np.ndarray:
    return np.round(np.clip(samples, -1.0, 32767 / 32768) * 32767).astype(np.int16)
