"""Record what a peer received, for scoring: audio as 48 kHz mono float32 samples with the arrival time of
every frame, and video frames with the test-pattern counter read back (and optionally their luma).

Both recorders keep at most ``max_seconds`` of media, counted from the first frame, and only count what
comes later, so a long call cannot eat the machine's memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from rtclab.signals import AUDIO_SAMPLE_RATE, _write_wav, luma, read_frame_counter

__all__ = ["AudioRecorder", "CallRecording", "ReceivedVideoFrame", "VideoRecorder"]


class AudioRecorder:
    """Collects decoded audio frames as one 48 kHz mono float32 signal.

    Whatever the codec decodes to (Opus: 48 kHz stereo s16, G.711: 8 kHz mono, G.722: 16 kHz), frames are
    resampled to 48 kHz float and the channels averaged, so recordings of different codecs compare directly
    with each other and with the reference. Frames are appended back to back: a frame the receiver never
    produced (aiortc conceals nothing) leaves no gap, which is what a listener would hear; `arrival_s` tells
    when each stretch came out.
    """

    def __init__(self, *, max_seconds: float = 60.0, sample_rate: int = AUDIO_SAMPLE_RATE) -> None:
        """Create an empty recording.

        Args:
            max_seconds: Keep at most this much audio (0.1-3600 s); later frames are only counted.
            sample_rate: Rate of the recording (48000: Opus' own rate).

        Raises:
            ValueError: If ``max_seconds`` is out of range or the rate is not positive.
        """
        if not 0.1 <= max_seconds <= 3600:
            raise ValueError("max_seconds must be between 0.1 and 3600")
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.sample_rate = sample_rate
        self.max_samples = int(max_seconds * sample_rate)
        self.frames_seen = 0
        self.dropped_samples = 0
        self._chunks: list[npt.NDArray[np.float32]] = []
        self._length = 0
        self._offsets: list[int] = []
        self._arrivals: list[float] = []
        self._resampler: av.AudioResampler | None = None
        self._source: tuple[int, str, str] | None = None

    def add(self, frame: av.AudioFrame, at_s: float) -> None:
        """Append one decoded frame.

        Args:
            frame: The frame as ``track.recv()`` returned it.
            at_s: When it came out, in seconds on the caller's clock.
        """
        self.frames_seen += 1
        source = (frame.sample_rate, frame.layout.name, frame.format.name)
        if self._resampler is None or source != self._source:
            self._resampler = av.AudioResampler(format="fltp", rate=self.sample_rate)
            self._source = source
        for out in self._resampler.resample(frame):
            samples = np.asarray(out.to_ndarray(), dtype=np.float32).mean(axis=0)
            room = self.max_samples - self._length
            if room <= 0:
                self.dropped_samples += samples.size
                continue
            if samples.size > room:
                self.dropped_samples += samples.size - room
                samples = samples[:room]
            self._offsets.append(self._length)
            self._arrivals.append(at_s)
            self._chunks.append(samples)
            self._length += samples.size

    @property
    def samples(self) -> npt.NDArray[np.float32]:
        """Everything kept so far, as one 1-D float32 array in [-1, 1]."""
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0].copy() if self._chunks else np.zeros(0, dtype=np.float32)

    @property
    def duration_s(self) -> float:
        """Seconds of audio kept."""
        return self._length / self.sample_rate

    @property
    def frame_offsets(self) -> npt.NDArray[np.int64]:
        """Index in `samples` where each kept frame starts."""
        return np.asarray(self._offsets, dtype=np.int64)

    @property
    def arrival_s(self) -> npt.NDArray[np.float64]:
        """When each kept frame came out (same order as `frame_offsets`)."""
        return np.asarray(self._arrivals, dtype=np.float64)

    def arrival_of_sample(self, index: int) -> float:
        """When sample ``index`` of `samples` came out: the arrival of the frame holding it.

        Args:
            index: A sample index, 0 to ``len(samples) - 1``.

        Returns:
            Seconds on the caller's clock.

        Raises:
            IndexError: If the index is outside the recording.
        """
        if not 0 <= index < self._length:
            raise IndexError("sample index outside the recording")
        frame = int(np.searchsorted(self.frame_offsets, index, side="right")) - 1
        return self._arrivals[frame]

    def save_wav(self, path: str | os.PathLike[str]) -> Path:
        """Write the recording as a 16-bit mono WAV file (what PESQ tools and audio editors read).

        Args:
            path: Where to write it.

        Returns:
            The path written.
        """
        target = Path(path)
        _write_wav(target, self.samples, self.sample_rate)
        return target


@dataclass(frozen=True)
class ReceivedVideoFrame:
    """One decoded video frame, as a receiver saw it.

    Attributes:
        at_s: When it came out of the decoder, in seconds on the caller's clock.
        counter: The test-pattern counter read back (`rtclab.signals.read_frame_counter`), None if unreadable.
        width: Frame width.
        height: Frame height.
        image: Its luma plane (uint8, height x width), if the recorder keeps images; else None.
    """

    at_s: float
    counter: int | None
    width: int
    height: int
    image: npt.NDArray[np.uint8] | None = None


class VideoRecorder:
    """Collects decoded video frames: arrival time and counter of each, and their luma if asked.

    Keeping images costs width x height bytes per frame (77 KB at 320x240, 2.3 MB per second at 30 fps),
    which is why it is off by default; the counter alone is enough for delay, loss and freezes.
    """

    def __init__(self, *, max_seconds: float = 60.0, keep_images: bool = False) -> None:
        """Create an empty recording.

        Args:
            max_seconds: Keep frames that arrive up to this long after the first one (0.1-3600 s).
            keep_images: Also keep each frame's luma plane (for SSIM/PSNR).

        Raises:
            ValueError: If ``max_seconds`` is out of range.
        """
        if not 0.1 <= max_seconds <= 3600:
            raise ValueError("max_seconds must be between 0.1 and 3600")
        self.max_seconds = max_seconds
        self.keep_images = keep_images
        self.frames: list[ReceivedVideoFrame] = []
        self.frames_seen = 0
        self.dropped_frames = 0

    def add(self, frame: av.VideoFrame, at_s: float) -> None:
        """Record one decoded frame.

        Args:
            frame: The frame as ``track.recv()`` returned it.
            at_s: When it came out, in seconds on the caller's clock.
        """
        self.frames_seen += 1
        if self.frames and at_s - self.frames[0].at_s > self.max_seconds:
            self.dropped_frames += 1
            return
        plane = luma(frame)
        self.frames.append(
            ReceivedVideoFrame(
                at_s=at_s,
                counter=read_frame_counter(plane),
                width=frame.width,
                height=frame.height,
                image=plane if self.keep_images else None,
            )
        )

    def counters_and_times(self) -> list[tuple[int | None, float]]:
        """``(counter, at_s)`` of every kept frame, for `rtclab.quality.match_video_frames`."""
        return [(f.counter, f.at_s) for f in self.frames]

    @property
    def readable_fraction(self) -> float | None:
        """Share of kept frames whose counter could be read (None before any frame)."""
        if not self.frames:
            return None
        return sum(f.counter is not None for f in self.frames) / len(self.frames)


@dataclass
class CallRecording:
    """What the callee of a `rtclab.call.LoopbackCall` received.

    Attributes:
        audio: The received audio.
        video: The received video frames.
    """

    audio: AudioRecorder
    video: VideoRecorder
