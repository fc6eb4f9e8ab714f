"""The media pieces of a 1v1 video call: a test "camera" with a face on it, a track that holds its frames back
until the callee accepts, and a resolution ladder that the sender steps down and up with the bandwidth.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from dataclasses import dataclass

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

from rtclab.signals import color_bars

__all__ = ["LADDER", "CameraTrack", "HeldTrack", "LadderTrack", "Rung"]

VIDEO_CLOCK = 90_000


class CameraTrack(MediaStreamTrack):
    """A paced test camera: colour bars with a noisy skin-toned face, so the beauty filter has skin to smooth
    and the encoder has detail to spend bits on (a few pre-rendered frames, cycled)."""

    kind = "video"

    def __init__(self, width: int = 1280, height: int = 720, fps: int = 15, variants: int = 6) -> None:
        super().__init__()
        self.width, self.height, self.fps = width, height, fps
        self._frames = [self._render(i) for i in range(variants)]
        self._index = 0
        self._start: float | None = None

    def _render(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(0)  # the same blemishes in every frame: skin texture, not sensor noise
        image = color_bars(self.width, self.height, seed).astype(np.int16)
        yy, xx = np.mgrid[: self.height, : self.width]
        cx, cy = self.width / 2 + seed * self.width / 200, self.height / 2.4
        face = ((xx - cx) / (self.width * 0.16)) ** 2 + ((yy - cy) / (self.height * 0.34)) ** 2 <= 1
        skin = np.array([224, 172, 150], dtype=np.int16)  # a light skin tone (Cb ~ 111, Cr ~ 150)
        blemishes = rng.normal(0, 10, (self.height, self.width, 1)).astype(np.int16)
        image[face] = (skin + blemishes[face]).clip(0, 255)
        eye_y = int(cy - self.height * 0.08)
        for ex in (int(cx - self.width * 0.06), int(cx + self.width * 0.06)):  # sharp features to keep
            image[
                eye_y - self.height // 60 : eye_y + self.height // 60,
                ex - self.width // 40 : ex + self.width // 40,
            ] = 20
        frame = av.VideoFrame.from_ndarray(image.clip(0, 255).astype(np.uint8), format="rgb24")
        return frame.to_ndarray(format="yuv420p")

    async def recv(self) -> av.VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index / self.fps
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        frame = av.VideoFrame.from_ndarray(self._frames[self._index % len(self._frames)], format="yuv420p")
        frame.pts = self._index * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self._index += 1
        return frame


# --8<-- [start:held]
class HeldTrack(MediaStreamTrack):
    """Gives the sender nothing until ``released`` is set: the call is connected, its media not started.

    While it waits the sender has no frame to encode, so nothing but ICE consent checks crosses the
    network; the camera's clock starts at the first frame after the release."""

    def __init__(self, track: MediaStreamTrack, released: asyncio.Event) -> None:
        super().__init__()
        self.kind = track.kind
        self.track, self.released = track, released

    async def recv(self) -> av.VideoFrame:
        await self.released.wait()
        return await self.track.recv()

    def stop(self) -> None:
        super().stop()
        self.track.stop()


# --8<-- [end:held]


@dataclass(frozen=True)
class Rung:
    """One step of the resolution ladder and the bitrate it needs to look right."""

    name: str
    width: int
    height: int
    min_kbps: float  # step down below this estimate


# --8<-- [start:ladder]
LADDER = (Rung("720p", 1280, 720, 1000), Rung("360p", 640, 360, 300), Rung("180p", 320, 180, 0))


class LadderTrack(MediaStreamTrack):
    """Scales every frame to the current rung of `LADDER`. `adapt` moves one rung at a time from the send
    estimate: down as soon as two readings in a row sit below the rung's need, up only after
    ``up_after_s`` of readings that would fit the rung above (going up too early brings the congestion back).
    """

    kind = "video"

    def __init__(self, track: MediaStreamTrack, start_rung: int = 0, up_after_s: float = 1.5) -> None:
        super().__init__()
        self.track, self.up_after_s = track, up_after_s
        self.rung = start_rung
        self._low = 0
        self._fits_since: float | None = None
        self.changes: list[tuple[float, str]] = []

    def adapt(self, estimate_kbps: float, now: float) -> None:
        need = LADDER[self.rung].min_kbps
        self._low = self._low + 1 if estimate_kbps < need else 0
        if self._low >= 2 and self.rung < len(LADDER) - 1:
            self._move(self.rung + 1, now)
        elif self.rung > 0 and estimate_kbps >= LADDER[self.rung - 1].min_kbps * 1.2:
            self._fits_since = self._fits_since if self._fits_since is not None else now
            if now - self._fits_since >= self.up_after_s:
                self._move(self.rung - 1, now)
        else:
            self._fits_since = None

    def _move(self, rung: int, now: float) -> None:
        self.rung, self._low, self._fits_since = rung, 0, None
        self.changes.append((now, LADDER[rung].name))

    async def recv(self) -> av.VideoFrame:
        frame = await self.track.recv()
        rung = LADDER[self.rung]
        if (frame.width, frame.height) == (rung.width, rung.height):
            return frame
        scaled = frame.reformat(width=rung.width, height=rung.height, format="yuv420p")
        scaled.pts, scaled.time_base = frame.pts, frame.time_base
        return scaled

    def stop(self) -> None:
        super().stop()
        self.track.stop()


# --8<-- [end:ladder]
