"""The server's media core for a co-host live room: the host's and the co-host's decoded pictures composed into
one picture (side by side, or the co-host as a picture-in-picture), their voices mixed into one, and both handed
to every viewer; each stage member gets back the other one's picture and voice (a mix-minus).

Everything runs on two clocks of its own (a video tick at the output frame rate, an audio tick every 20 ms), so
the output never waits for a late input: a source that has not delivered a new picture is shown with its last
one, a voice that has not delivered a frame is left out of that 20 ms. That is what keeps the stream smooth,
and it is also why a co-host on a slow network shows up late in the composite rather than holding the host back.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import time
from dataclasses import dataclass, field

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["LAYOUTS", "Compositor", "FrameQueue", "Layout", "compose"]

SAMPLE_RATE = 48_000
FRAME_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
VIDEO_TIME_BASE = fractions.Fraction(1, 90_000)
PLACEHOLDER = 32  # the gray of an empty seat
MAX_VOICE_FRAMES = 25  # 500 ms of one voice waiting to be mixed; beyond that the oldest is dropped
BACKLOG_FRAMES = (
    2  # a voice with more than this waiting for a whole second loses one frame (catches up 20 ms)
)


# --8<-- [start:layout]
@dataclass(frozen=True)
class Layout:
    """Where the host (slot 0) and the co-host (slot 1) go in the composite.

    ``side-by-side`` puts two tiles next to each other (the picture is twice as wide as one camera);
    ``pip`` keeps the host's full picture and lays the co-host over its top-right quarter at half size.
    The composite keeps its size whether or not a co-host is on stage (an empty seat is a gray tile), so
    the viewers' decoders never see a resolution change when someone joins or leaves the stage.
    """

    name: str
    tile: tuple[int, int] = (320, 240)

    @property
    def size(self) -> tuple[int, int]:
        width, height = self.tile
        return (2 * width, height) if self.name == "side-by-side" else (width, height)

    def regions(self) -> tuple[tuple[int, int, int, int], ...]:
        """``(x, y, width, height)`` of slot 0 and slot 1."""
        width, height = self.tile
        if self.name == "side-by-side":
            return (0, 0, width, height), (width, 0, width, height)
        return (0, 0, width, height), (width // 2, 0, width // 2, height // 2)


LAYOUTS = {name: Layout(name) for name in ("side-by-side", "pip")}


def _fit(picture: av.VideoFrame | npt.NDArray[np.uint8], width: int, height: int) -> npt.NDArray[np.uint8]:
    """``picture`` as an RGB array of ``width`` x ``height`` (FFmpeg's scaler when the size differs)."""
    if isinstance(picture, np.ndarray):
        if picture.shape[:2] == (height, width):
            return picture
        picture = av.VideoFrame.from_ndarray(picture, format="rgb24")
    return picture.reformat(width=width, height=height, format="rgb24").to_ndarray()


def compose(
    layout: Layout, pictures: list[av.VideoFrame | npt.NDArray[np.uint8] | None]
) -> npt.NDArray[np.uint8]:
    """The composite of ``pictures`` (slot 0, slot 1; None is an empty seat) as an RGB array.

    The server calls it with decoded frames; a viewer calls it with the two sources' own images to get the
    ideal composite, the reference for SSIM.
    """
    width, height = layout.size
    canvas = np.full((height, width, 3), PLACEHOLDER, dtype=np.uint8)
    for (x, y, w, h), picture in zip(layout.regions(), pictures, strict=False):
        canvas[y : y + h, x : x + w] = PLACEHOLDER if picture is None else _fit(picture, w, h)
    return canvas


# --8<-- [end:layout]


class FrameQueue(MediaStreamTrack):
    """A track fed by the compositor: whatever was put, in order; the oldest is dropped when the queue is full,
    so a slow consumer gets fresh media instead of a growing backlog."""

    def __init__(self, kind: str, max_queue: int) -> None:
        super().__init__()
        self.kind = kind
        self._queue: collections.deque[av.VideoFrame | av.AudioFrame] = collections.deque(maxlen=max_queue)
        self._ready = asyncio.Event()

    def put(self, frame: av.VideoFrame | av.AudioFrame) -> None:
        self._queue.append(frame)
        self._ready.set()

    async def recv(self) -> av.VideoFrame | av.AudioFrame:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


@dataclass
class _Member:
    slot: int
    video: FrameQueue  # what this member sees: the other member's picture
    audio: FrameQueue  # what this member hears: everyone but themselves
    picture: av.VideoFrame | None = None
    voice: collections.deque[npt.NDArray[np.float32]] = field(
        default_factory=lambda: collections.deque(maxlen=MAX_VOICE_FRAMES)
    )
    backlog_ticks: int = 0  # consecutive ticks with more than BACKLOG_FRAMES waiting


def _pcm(frame: av.AudioFrame) -> npt.NDArray[np.float32]:
    """A decoded 48 kHz frame as mono float samples."""
    return (frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1) / 32768.0).astype(
        np.float32
    )


def _audio_frame(samples: npt.NDArray[np.float32], pts: int) -> av.AudioFrame:
    pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32767).astype(np.int16).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = SAMPLE_RATE, pts, AUDIO_TIME_BASE
    return frame


# --8<-- [start:compositor]
class Compositor:
    """One room's composition: stage members in, one composite out to every viewer.

    The composite is made once per video tick and handed to every viewer's track (aiortc then encodes it once
    per viewer: see the page for encoding once and fanning packets out instead). The mix is made once per
    20 ms; each stage member gets a mix-minus (everyone but their own voice, so they hear no echo of it).
    """

    def __init__(self, layout: Layout, fps: float = 15.0) -> None:
        self.layout, self.fps = layout, fps
        self.members: dict[str, _Member] = {}
        self.viewers: dict[str, tuple[FrameQueue, FrameQueue]] = {}
        self.frames_composed = 0
        self.compose_s = 0.0  # time spent composing (CPU on the event loop)
        self._tasks: list[asyncio.Task[None]] = []

    def add_member(self, user: str, slot: int) -> tuple[FrameQueue, FrameQueue]:
        """Put ``user`` on stage in ``slot`` (0: host, 1: co-host); returns their return feed (video, audio)."""
        member = self.members[user] = _Member(slot, FrameQueue("video", 2), FrameQueue("audio", 10))
        return member.video, member.audio

    def add_viewer(self, user: str) -> tuple[FrameQueue, FrameQueue]:
        """A viewer's feed (video, audio)."""
        feed = self.viewers[user] = (FrameQueue("video", 2), FrameQueue("audio", 10))
        return feed

    def remove(self, user: str) -> None:
        for track in self.viewers.pop(user, ()):
            track.stop()
        member = self.members.pop(user, None)
        if member is not None:
            member.video.stop()
            member.audio.stop()

    def on_video(self, user: str, frame: av.VideoFrame) -> None:
        """A stage member's newly decoded picture (the latest one wins)."""
        if user in self.members:
            self.members[user].picture = frame

    def on_audio(self, user: str, frame: av.AudioFrame) -> None:
        """A stage member's newly decoded 20 ms of voice."""
        if user in self.members:
            self.members[user].voice.append(_pcm(frame))

    def start(self) -> None:
        self._tasks = [
            asyncio.ensure_future(self._run(1 / self.fps, self.video_tick)),
            asyncio.ensure_future(self._run(FRAME_SAMPLES / SAMPLE_RATE, self.audio_tick)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, period: float, tick: object) -> None:
        start, count = time.monotonic(), 0
        while True:
            count += 1  # a late tick runs at once: the schedule, not the previous tick, sets the pace
            await asyncio.sleep(max(0.0, start + count * period - time.monotonic()))
            tick(count)  # type: ignore[operator]

    def video_tick(self, count: int) -> None:
        started = time.perf_counter()
        pictures: list[av.VideoFrame | None] = [None, None]
        for member in self.members.values():
            pictures[member.slot] = member.picture
        pts = round(count * 90_000 / self.fps)
        if self.viewers and pictures[0] is not None:
            frame = av.VideoFrame.from_ndarray(compose(self.layout, pictures), format="rgb24")
            # Converted once here, not once per viewer's encoder. The viewers' encoders share this frame: one
            # that was asked for a keyframe (PLI) marks it as one, so the others send a keyframe too; harmless.
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = pts, VIDEO_TIME_BASE
            for video, _ in self.viewers.values():
                video.put(frame)
            self.frames_composed += 1
        for member in self.members.values():  # each stage member sees the other one
            other = pictures[1 - member.slot]
            if other is not None:
                width, height = self.layout.tile
                back = av.VideoFrame.from_ndarray(_fit(other, width, height), format="rgb24")
                back.pts, back.time_base = pts, VIDEO_TIME_BASE
                member.video.put(back)
        self.compose_s += time.perf_counter() - started

    def audio_tick(self, count: int) -> None:
        silence = np.zeros(FRAME_SAMPLES, dtype=np.float32)
        voices = {}
        for user, member in self.members.items():
            # Frames arrive in bursts (network jitter, aiortc's jitter buffer): a short queue absorbs them, and
            # a queue that stays long is drained slowly, one frame a second, so a burst costs no lasting delay.
            member.backlog_ticks = member.backlog_ticks + 1 if len(member.voice) > BACKLOG_FRAMES else 0
            if member.backlog_ticks >= SAMPLE_RATE // FRAME_SAMPLES:
                member.voice.popleft()
                member.backlog_ticks = 0
            if member.voice:
                samples = member.voice.popleft()
                if samples.size == FRAME_SAMPLES:
                    voices[user] = samples
        total = sum(voices.values(), silence)
        pts = count * FRAME_SAMPLES
        if self.viewers:
            mix = _audio_frame(total, pts)  # one mix for every viewer
            for _, audio in self.viewers.values():
                audio.put(mix)
        for user, member in self.members.items():
            member.audio.put(_audio_frame(total - voices.get(user, silence), pts))


# --8<-- [end:compositor]
