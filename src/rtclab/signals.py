"""Synthetic media for lab calls, paced in real time: a speech-like voice (not a sine, which Opus encodes
unlike speech) and a color-bars test-pattern video.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Iterator

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "VIDEO_CLOCK_RATE",
    "ColorBarsVideoTrack",
    "SpeechLikeAudioTrack",
    "SpeechLikeSignal",
    "color_bars",
]

AUDIO_SAMPLE_RATE = 48_000
"""Samples per second of the synthetic voice (Opus' native rate)."""
VIDEO_CLOCK_RATE = 90_000
"""RTP clock rate of video, used for frame timestamps."""

# Rough formants (F1, F2, F3 in Hz) of five vowels: a, e, i, o, u.
_VOWELS = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))
# 75 % color bars: white, yellow, cyan, green, magenta, red, blue.
_BARS = np.array(
    [[191, 191, 191], [191, 191, 0], [0, 191, 191], [0, 191, 0], [191, 0, 191], [191, 0, 0], [0, 0, 191]],
    dtype=np.uint8,
)


class SpeechLikeSignal:
    """A deterministic voice-like signal: phrases of voiced syllables separated by pauses.

    Each syllable is a harmonic series on a gliding pitch (90-220 Hz), shaped by the formants of a vowel,
    with a short noise burst (a consonant) before some syllables. Phrases of 3-8 syllables alternate with
    250-600 ms of near silence, so the level and the spectrum keep changing the way speech does.
    """

    def __init__(self, sample_rate: int = AUDIO_SAMPLE_RATE, *, seed: int = 0, level: float = 0.3) -> None:
        """Create the signal.

        Args:
            sample_rate: Samples per second.
            seed: Seed of the random syllable plan; the same seed gives the same signal.
            level: Peak amplitude of a syllable, as a fraction of full scale (0-1].

        Raises:
            ValueError: If ``level`` is not in (0, 1] or ``sample_rate`` is not positive.
        """
        if not 0 < level <= 1:
            raise ValueError("level must be in (0, 1]")
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        self.sample_rate = sample_rate
        self.level = level
        self._rng = np.random.default_rng(seed)
        self._segments = self._phrases()
        self._pending = np.zeros(0, dtype=np.float32)

    def read(self, num_samples: int) -> npt.NDArray[np.float32]:
        """Return the next ``num_samples`` samples, as floats in [-1, 1].

        Args:
            num_samples: How many samples to return.

        Returns:
            A 1-D float32 array; consecutive reads continue the same signal.
        """
        chunks = [self._pending]
        have = len(self._pending)
        while have < num_samples:
            segment = next(self._segments)
            chunks.append(segment)
            have += len(segment)
        joined = np.concatenate(chunks)
        self._pending = joined[num_samples:]
        return joined[:num_samples]

    def _phrases(self) -> Iterator[npt.NDArray[np.float32]]:
        rng = self._rng
        while True:
            base_f0 = rng.uniform(110, 200)
            count = int(rng.integers(3, 9))
            for i in range(count):
                # Pitch falls along the phrase, as in a statement.
                f0_start = base_f0 * (1.1 - 0.25 * i / count)
                if rng.random() < 0.5:
                    yield self._noise(rng.uniform(0.02, 0.05), 0.25)
                yield self._syllable(rng.uniform(0.12, 0.28), f0_start, f0_start * rng.uniform(0.85, 1.0))
            yield self._noise(rng.uniform(0.25, 0.6), 0.003)

    def _noise(self, seconds: float, amplitude: float) -> npt.NDArray[np.float32]:
        n = int(seconds * self.sample_rate)
        burst = self._rng.standard_normal(n) * np.hanning(n)
        return (self.level * amplitude * burst / 3).astype(np.float32)

    def _syllable(self, seconds: float, f0_start: float, f0_end: float) -> npt.NDArray[np.float32]:
        n = int(seconds * self.sample_rate)
        t = np.arange(n) / self.sample_rate
        f0 = np.linspace(f0_start, f0_end, n) * (1 + 0.02 * np.sin(2 * np.pi * 5.5 * t))  # slight vibrato
        phase = 2 * np.pi * np.cumsum(f0) / self.sample_rate
        formants = _VOWELS[int(self._rng.integers(len(_VOWELS)))]
        mean_f0 = float(f0.mean())
        wave = np.zeros(n)
        for k in range(1, int(4000 / mean_f0) + 1):
            gain = sum(
                np.exp(-0.5 * ((k * mean_f0 - f) / 120) ** 2) / (j + 1) for j, f in enumerate(formants)
            )
            wave += (gain + 0.05 / k) * np.sin(k * phase)
        envelope = np.sin(np.pi * np.arange(n) / n) ** 0.6
        wave *= envelope / max(float(np.max(np.abs(wave))), 1e-9)
        return (self.level * wave).astype(np.float32)


class SpeechLikeAudioTrack(MediaStreamTrack):
    """An audio track that plays `SpeechLikeSignal` in real time, in 20 ms mono s16 frames."""

    kind = "audio"

    def __init__(
        self, *, sample_rate: int = AUDIO_SAMPLE_RATE, ptime: float = 0.020, seed: int = 0, level: float = 0.3
    ) -> None:
        """Create the track.

        Args:
            sample_rate: Samples per second of the frames.
            ptime: Duration of one frame in seconds (Opus in aiortc uses 20 ms).
            seed: Seed of the syllable plan.
            level: Peak amplitude of a syllable, as a fraction of full scale.
        """
        super().__init__()
        self.signal = SpeechLikeSignal(sample_rate, seed=seed, level=level)
        self.samples_per_frame = int(round(ptime * sample_rate))
        self._time_base = fractions.Fraction(1, sample_rate)
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> av.AudioFrame:
        """Wait until the next frame is due and return it.

        Returns:
            A mono s16 ``av.AudioFrame`` whose ``pts`` counts samples.

        Raises:
            MediaStreamError: Once the track has been stopped.
        """
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += self.samples_per_frame
            await asyncio.sleep(self._start + self._pts * self._time_base - time.monotonic())
        samples = self.signal.read(self.samples_per_frame)
        pcm = np.round(samples * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = self.signal.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        return frame


def color_bars(width: int, height: int, index: int) -> npt.NDArray[np.uint8]:
    """Draw frame ``index`` of the test pattern.

    Seven color bars over a gray ramp, a white square that moves across the bars (so the encoder always has
    motion to code), and the frame index in binary as 16 black or white blocks along the bottom edge.

    Args:
        width: Width in pixels (at least 16).
        height: Height in pixels (at least 16).
        index: Frame number, from 0.

    Returns:
        An RGB image of shape ``(height, width, 3)``, dtype uint8.
    """
    if width < 16 or height < 16:
        raise ValueError("the pattern needs at least 16x16 pixels")
    image = np.empty((height, width, 3), dtype=np.uint8)
    bars_height = height * 2 // 3
    image[:bars_height] = _BARS[np.arange(width) * len(_BARS) // width]
    image[bars_height:] = np.linspace(16, 235, width, dtype=np.uint8)[None, :, None]

    side = max(height // 6, 4)
    travel = 2 * (width - side)
    x = (index * 4) % travel
    x = x if x < width - side else travel - x
    y = (bars_height - side) // 2
    image[y : y + side, x : x + side] = 255

    block = width // 16
    bits = (index >> np.arange(15, -1, -1)) & 1
    code = np.repeat(bits * 255, block).astype(np.uint8)
    image[height - block // 2 :, : len(code)] = code[None, :, None]
    return image


class ColorBarsVideoTrack(MediaStreamTrack):
    """A video track that plays the `color_bars` test pattern in real time."""

    kind = "video"

    def __init__(self, *, width: int = 320, height: int = 240, fps: float = 30) -> None:
        """Create the track.

        Args:
            width: Frame width in pixels.
            height: Frame height in pixels.
            fps: Frames per second (0 < fps <= 60).

        Raises:
            ValueError: If ``fps`` is out of range or the size is below 16x16.
        """
        super().__init__()
        if not 0 < fps <= 60:
            raise ValueError("fps must be in (0, 60]")
        if width < 16 or height < 16:
            raise ValueError("the pattern needs at least 16x16 pixels")
        self.width = width
        self.height = height
        self.fps = fps
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        """Wait until the next frame is due and return it.

        Returns:
            An rgb24 ``av.VideoFrame`` with a 90 kHz time base.

        Raises:
            MediaStreamError: Once the track has been stopped.
        """
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._index += 1
            await asyncio.sleep(self._start + self._index / self.fps - time.monotonic())
        frame = av.VideoFrame.from_ndarray(color_bars(self.width, self.height, self._index), format="rgb24")
        frame.pts = round(self._index * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = self._time_base
        return frame
