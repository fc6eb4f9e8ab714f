"""Synthetic media for lab calls, paced in real time.

Audio: a speech-like voice (not a sine, which Opus encodes unlike speech), real synthetic speech with a known
text (espeak-ng, cached), a tone and silence. Video: a color-bars test pattern that carries a frame counter
built to survive lossy compression, and `read_frame_counter` to get it back from a decoded frame, so that a
received frame can be matched with the frame that was sent; with seeded noise in every frame when the
encoder must work as hard as with a camera.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import hashlib
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = [
    "AUDIO_SAMPLE_RATE",
    "COUNTER_MODULUS",
    "VIDEO_CLOCK_RATE",
    "ColorBarsVideoTrack",
    "PacedAudioTrack",
    "SilenceAudioTrack",
    "SpeechAudioTrack",
    "SpeechLikeAudioTrack",
    "SpeechLikeSignal",
    "SpeechSample",
    "SpeechToolMissingError",
    "ToneAudioTrack",
    "color_bars",
    "default_cache_dir",
    "luma",
    "read_frame_counter",
    "synthesize_speech",
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
        wave_ = np.zeros(n)
        for k in range(1, int(4000 / mean_f0) + 1):
            gain = sum(
                np.exp(-0.5 * ((k * mean_f0 - f) / 120) ** 2) / (j + 1) for j, f in enumerate(formants)
            )
            wave_ += (gain + 0.05 / k) * np.sin(k * phase)
        envelope = np.sin(np.pi * np.arange(n) / n) ** 0.6
        wave_ *= envelope / max(float(np.max(np.abs(wave_))), 1e-9)
        return (self.level * wave_).astype(np.float32)


# --- audio tracks -------------------------------------------------------------------------------------------


class PacedAudioTrack(MediaStreamTrack):
    """Plays samples from `_next_samples` in real time, in mono s16 frames of ``ptime`` seconds.

    Frames are paced against ``time.monotonic()`` from the first `recv`, so a slow consumer gets frames
    back to back until it has caught up, and the ``pts`` always counts samples played.
    """

    kind = "audio"

    def __init__(self, sample_rate: int, ptime: float) -> None:
        super().__init__()
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        if not 0.0025 <= ptime <= 0.12:
            raise ValueError("ptime must be between 2.5 ms and 120 ms")
        self.sample_rate = sample_rate
        self.samples_per_frame = int(round(ptime * sample_rate))
        self._time_base = fractions.Fraction(1, sample_rate)
        self._start: float | None = None
        self._pts = 0

    @property
    def started_at(self) -> float | None:
        """``time.monotonic()`` when the first frame was handed out (None before), i.e. when sample 0 played."""
        return self._start

    def _next_samples(self, num_samples: int) -> npt.NDArray[np.float32]:
        raise NotImplementedError

    def reference(self, seconds: float) -> npt.NDArray[np.float32]:
        """The first ``seconds`` of what this track plays, regenerated: the reference to score a recording.

        Sample ``k`` is handed to the sender ``k / sample_rate`` seconds after `started_at`.

        Args:
            seconds: Length wanted.

        Returns:
            Mono float32 samples at the track's rate.
        """
        raise NotImplementedError

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
        samples = self._next_samples(self.samples_per_frame)
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        return frame


class SpeechLikeAudioTrack(PacedAudioTrack):
    """An audio track that plays `SpeechLikeSignal` in real time, in 20 ms mono s16 frames."""

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
        super().__init__(sample_rate, ptime)
        self.signal = SpeechLikeSignal(sample_rate, seed=seed, level=level)
        self._seed = seed

    def _next_samples(self, num_samples: int) -> npt.NDArray[np.float32]:
        return self.signal.read(num_samples)

    def reference(self, seconds: float) -> npt.NDArray[np.float32]:
        """The first ``seconds`` of the signal, regenerated from the same seed (see the base class)."""
        signal = SpeechLikeSignal(self.sample_rate, seed=self._seed, level=self.signal.level)
        return signal.read(max(0, int(round(seconds * self.sample_rate))))


class ToneAudioTrack(PacedAudioTrack):
    """A sine tone in real time: for checks where a pure, known frequency helps (level meters, resampling).

    Do not use it to judge a speech codec: Opus spends bits on a sine unlike on speech (a 32 kbps target gave
    48 kbps here), so use `SpeechLikeAudioTrack` or `SpeechAudioTrack` for that.
    """

    def __init__(
        self,
        frequency: float = 440.0,
        *,
        level: float = 0.3,
        sample_rate: int = AUDIO_SAMPLE_RATE,
        ptime: float = 0.020,
    ) -> None:
        """Create the track.

        Args:
            frequency: Tone frequency in Hz, below half the sample rate.
            level: Peak amplitude, as a fraction of full scale (0-1].
            sample_rate: Samples per second.
            ptime: Duration of one frame in seconds.

        Raises:
            ValueError: If the frequency or level is out of range.
        """
        super().__init__(sample_rate, ptime)
        if not 0 < frequency < sample_rate / 2:
            raise ValueError("frequency must be between 0 and half the sample rate")
        if not 0 < level <= 1:
            raise ValueError("level must be in (0, 1]")
        self.frequency = frequency
        self.level = level
        self._n = 0

    def _tone(self, start: int, count: int) -> npt.NDArray[np.float32]:
        n = np.arange(start, start + count)
        return (self.level * np.sin(2 * np.pi * self.frequency * n / self.sample_rate)).astype(np.float32)

    def _next_samples(self, num_samples: int) -> npt.NDArray[np.float32]:
        self._n += num_samples
        return self._tone(self._n - num_samples, num_samples)

    def reference(self, seconds: float) -> npt.NDArray[np.float32]:
        """The first ``seconds`` of the tone (see the base class)."""
        return self._tone(0, max(0, int(round(seconds * self.sample_rate))))


class SilenceAudioTrack(PacedAudioTrack):
    """Digital silence in real time: an audio stream that costs the encoder (almost) nothing to code.

    Useful as the other half of a one-way test, or to see what an encoder sends for silence (aiortc's Opus
    has no DTX, so it keeps sending a packet every 20 ms).
    """

    def __init__(self, *, sample_rate: int = AUDIO_SAMPLE_RATE, ptime: float = 0.020) -> None:
        """Create the track.

        Args:
            sample_rate: Samples per second.
            ptime: Duration of one frame in seconds.
        """
        super().__init__(sample_rate, ptime)

    def _next_samples(self, num_samples: int) -> npt.NDArray[np.float32]:
        return np.zeros(num_samples, dtype=np.float32)

    def reference(self, seconds: float) -> npt.NDArray[np.float32]:
        """Zeros (see the base class)."""
        return np.zeros(max(0, int(round(seconds * self.sample_rate))), dtype=np.float32)


# --- speech with a known text (espeak-ng) --------------------------------------------------------------------


class SpeechToolMissingError(RuntimeError):
    """espeak-ng is not installed; the message says how to install it."""


@dataclass(frozen=True)
class SpeechSample:
    """Synthetic speech with a known text, and where it came from.

    Scoring needs a reference whose content is known and that anyone can regenerate: the text, the voice,
    the speaking rate and the synthesizer's version together say exactly what was played.

    Attributes:
        samples: Mono float32 samples in [-1, 1] at ``sample_rate`` (16-bit precision, as cached).
        sample_rate: 48000.
        text: The text spoken.
        voice: The espeak-ng voice (``espeak-ng --voices`` lists them).
        words_per_minute: The speaking rate given to espeak-ng (``-s``).
        espeak_version: ``espeak-ng --version`` of the synthesizer that made the cached file.
        path: The cached 48 kHz WAV file.
    """

    samples: npt.NDArray[np.float32]
    sample_rate: int
    text: str
    voice: str
    words_per_minute: int
    espeak_version: str
    path: Path

    @property
    def duration_s(self) -> float:
        """Length in seconds."""
        return self.samples.size / self.sample_rate

    @property
    def provenance(self) -> dict[str, Any]:
        """What produced the samples, as a JSON-ready dict (for a report or a results file)."""
        return {
            "tool": "espeak-ng",
            "espeak_version": self.espeak_version,
            "text": self.text,
            "voice": self.voice,
            "words_per_minute": self.words_per_minute,
            "sample_rate": self.sample_rate,
        }


def default_cache_dir() -> Path:
    """Where rtclab caches generated material: ``$RTCLAB_CACHE_DIR``, else ``$XDG_CACHE_HOME/rtclab``, else
    ``~/.cache/rtclab``.
    """
    if os.environ.get("RTCLAB_CACHE_DIR"):
        return Path(os.environ["RTCLAB_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rtclab"


_ESPEAK_MISSING = "espeak-ng is not installed: run `apt-get install espeak-ng` (Debian package espeak-ng)"


def _espeak_version(espeak: str) -> str:
    try:
        out = subprocess.run([espeak, "--version"], capture_output=True, text=True, check=True, timeout=30)
    except FileNotFoundError:
        raise SpeechToolMissingError(_ESPEAK_MISSING) from None
    match = re.search(r"text-to-speech:\s*(\S+)", out.stdout)
    return match.group(1) if match else out.stdout.strip()


def _read_wav(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    with wave.open(str(path), "rb") as wav:
        if wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        rate, channels = wav.getframerate(), wav.getnchannels()
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, channels)
    return (pcm.mean(axis=1) / 32768).astype(np.float32), rate


def _write_wav(path: Path, samples: npt.ArrayLike, rate: int) -> None:
    pcm = np.round(np.clip(np.asarray(samples, dtype=np.float64), -1, 32767 / 32768) * 32768).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(pcm.tobytes())


def synthesize_speech(
    text: str,
    *,
    voice: str = "en-us",
    words_per_minute: int = 160,
    cache_dir: str | os.PathLike[str] | None = None,
    espeak: str = "espeak-ng",
) -> SpeechSample:
    """Speak ``text`` with espeak-ng into a 48 kHz mono recording, cached on disk.

    espeak-ng writes 22.05 kHz 16-bit WAV; it is resampled to 48 kHz (Opus' rate, and what a call records)
    with a polyphase filter and stored as 16-bit WAV next to a JSON file with its provenance. The cache key
    is a hash of the text, the voice and the rate, so the same request is synthesized once and later runs
    work without espeak-ng. Synthesis is deterministic for one espeak-ng version.

    Args:
        text: What to say (any language the voice speaks).
        voice: An espeak-ng voice name, e.g. ``"en-us"``, ``"en-gb"``, ``"cmn"`` (Mandarin).
        words_per_minute: Speaking rate (80-450; espeak-ng's default is 175).
        cache_dir: Directory for the cached files; `default_cache_dir` / ``speech`` when None.
        espeak: The espeak-ng executable.

    Returns:
        The samples and their provenance.

    Raises:
        SpeechToolMissingError: If the file is not cached and espeak-ng is not installed.
        ValueError: On empty text, a rate out of range, or a voice espeak-ng does not know.
    """
    from rtclab.quality import resample  # scipy is needed only here

    if not text.strip():
        raise ValueError("text is empty")
    if not 80 <= words_per_minute <= 450:
        raise ValueError("words_per_minute must be between 80 and 450")
    directory = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "speech"
    key = hashlib.sha256(json.dumps([text, voice, words_per_minute]).encode()).hexdigest()[:20]
    wav_path, meta_path = directory / f"{key}.wav", directory / f"{key}.json"
    if not (wav_path.exists() and meta_path.exists()):
        if shutil.which(espeak) is None:
            raise SpeechToolMissingError(_ESPEAK_MISSING)
        version = _espeak_version(espeak)
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            raw = Path(tmp) / "espeak.wav"
            result = subprocess.run(
                [espeak, "-v", voice, "-s", str(words_per_minute), "-w", str(raw)],
                input=text.encode("utf-8"),
                capture_output=True,
                timeout=120,
            )
            if result.returncode != 0 or not raw.exists():
                message = result.stderr.decode(errors="replace").strip().splitlines()
                raise ValueError(f"espeak-ng failed for voice {voice!r}: {message[-1] if message else ''}")
            samples, rate = _read_wav(raw)
            tmp_wav = Path(tmp) / "speech.wav"
            _write_wav(tmp_wav, resample(samples, rate, AUDIO_SAMPLE_RATE), AUDIO_SAMPLE_RATE)
            meta = {"text": text, "voice": voice, "words_per_minute": words_per_minute}
            meta |= {"espeak_version": version, "source_sample_rate": rate}
            tmp_meta = Path(tmp) / "speech.json"
            tmp_meta.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
            os.replace(tmp_wav, wav_path)  # atomic: a concurrent run sees the whole file or none
            os.replace(tmp_meta, meta_path)
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    samples, rate = _read_wav(wav_path)
    return SpeechSample(
        samples=samples,
        sample_rate=rate,
        text=meta["text"],
        voice=meta["voice"],
        words_per_minute=int(meta["words_per_minute"]),
        espeak_version=meta["espeak_version"],
        path=wav_path,
    )


class SpeechAudioTrack(PacedAudioTrack):
    """Plays a `SpeechSample` in a loop, in real time, with an optional pause between repeats.

    Sample ``k`` of the loop (see `reference`) is played at ``started_at + k / 48000``, so what was sent
    is known exactly: align the received recording against `reference` to score it.
    """

    def __init__(self, speech: SpeechSample, *, pause_s: float = 0.5, ptime: float = 0.020) -> None:
        """Create the track.

        Args:
            speech: What to play.
            pause_s: Silence after each repeat, in seconds (0-10).
            ptime: Duration of one frame in seconds.

        Raises:
            ValueError: If ``pause_s`` is out of range or the speech is empty.
        """
        super().__init__(speech.sample_rate, ptime)
        if not 0 <= pause_s <= 10:
            raise ValueError("pause_s must be between 0 and 10 seconds")
        if speech.samples.size == 0:
            raise ValueError("the speech sample is empty")
        self.speech = speech
        pause = np.zeros(int(round(pause_s * speech.sample_rate)), dtype=np.float32)
        self._loop = np.concatenate([speech.samples.astype(np.float32), pause])
        self._position = 0

    def reference(self, seconds: float) -> npt.NDArray[np.float32]:
        """The first ``seconds`` of what this track plays: the looped speech with its pauses.

        Args:
            seconds: Length wanted.

        Returns:
            Mono float32 samples at the track's rate.
        """
        return np.resize(self._loop, max(0, int(round(seconds * self.sample_rate))))

    def _next_samples(self, num_samples: int) -> npt.NDArray[np.float32]:
        index = (self._position + np.arange(num_samples)) % self._loop.size
        self._position = (self._position + num_samples) % self._loop.size
        return self._loop[index]


# --- video: color bars with a frame counter ----------------------------------------------------------------

COUNTER_BITS = 16
"""Bits of the frame counter drawn into each test-pattern frame."""
COUNTER_MODULUS = 1 << COUNTER_BITS
"""The drawn counter is the frame index modulo this (it wraps after 36 minutes at 30 fps)."""
_CHECK_BITS = 4
_CELLS = COUNTER_BITS + _CHECK_BITS
_CRC_POLY = 0b10011  # CRC-4-ITU, x^4 + x + 1
_MIN_CONTRAST = 64.0  # luma difference a cell pair needs to count as read (black/white differ by 219)
_MAX_NOISE = 32  # noise amplitude limit: two noisy cells still differ by far more than _MIN_CONTRAST


def _crc4(value: int) -> int:
    register = value << _CHECK_BITS
    for bit in range(COUNTER_BITS + _CHECK_BITS - 1, _CHECK_BITS - 1, -1):
        if register >> bit & 1:
            register ^= _CRC_POLY << (bit - _CHECK_BITS)
    return register & ((1 << _CHECK_BITS) - 1)


def _counter_bits(index: int) -> npt.NDArray[np.bool_]:
    value = index % COUNTER_MODULUS
    word = value << _CHECK_BITS | _crc4(value)
    return ((word >> np.arange(_CELLS - 1, -1, -1)) & 1).astype(bool)


def _counter_layout(width: int, height: int) -> tuple[npt.NDArray[np.int_], int] | None:
    """Cell edges across the width and the height of one row of the counter band (None: too small)."""
    if width < 2 * _CELLS or height < 16:
        return None
    row = max(2, min(width // _CELLS, height // 8))
    return np.arange(_CELLS + 1) * width // _CELLS, row


def color_bars(width: int, height: int, index: int) -> npt.NDArray[np.uint8]:
    """Draw frame ``index`` of the test pattern.

    Seven color bars over a gray ramp, a white square that moves across the bars (so the encoder always has
    motion to code), and a frame counter along the bottom edge that `read_frame_counter` reads back.

    The counter is built to survive a video codec at low bitrate: 20 cells across the whole width (16 bits
    of ``index % 65536`` then a CRC-4 check), each a big black or white block (16x16 pixels at 320x240,
    aligned with VP8/H.264 macroblocks there), drawn twice: once as is and once inverted in the row below.
    Blocking, blur and a shift in brightness change both rows alike, so the reader compares the two rows
    instead of using a fixed threshold, and the check bits turn a misread into "unreadable" rather than a
    wrong number. Frames narrower than 40 pixels carry no counter.

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

    layout = _counter_layout(width, height)
    if layout is not None:
        edges, row = layout
        cell_of_column = np.searchsorted(edges, np.arange(width), side="right") - 1
        bits = _counter_bits(index)[cell_of_column]
        image[height - 2 * row : height - row] = np.where(bits, 255, 0).astype(np.uint8)[None, :, None]
        image[height - row :] = np.where(bits, 0, 255).astype(np.uint8)[None, :, None]
    return image


def luma(frame: av.VideoFrame | npt.ArrayLike) -> npt.NDArray[np.uint8]:
    """The luma plane of a frame as a 2-D uint8 array.

    Args:
        frame: An ``av.VideoFrame`` (converted by FFmpeg to full-range gray, so a decoded YUV frame compares
            with the RGB frame that was sent), a 2-D grayscale array, or an RGB array of shape
            ``(height, width, 3)`` (BT.601 weights).

    Returns:
        A ``(height, width)`` uint8 array (a copy).

    Raises:
        ValueError: For an array of any other shape.
    """
    if isinstance(frame, av.VideoFrame):
        return np.asarray(frame.to_ndarray(format="gray"), dtype=np.uint8)
    array = np.asarray(frame)
    if array.ndim == 2:
        return array.astype(np.uint8)
    if array.ndim == 3 and array.shape[2] == 3:
        gray = array.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        return np.round(gray).astype(np.uint8)
    raise ValueError(f"expected a (height, width) or (height, width, 3) frame, got shape {array.shape}")


def read_frame_counter(frame: av.VideoFrame | npt.ArrayLike) -> int | None:
    """Read back the counter `color_bars` drew into a (decoded, possibly degraded) frame.

    For each of the 20 cells, the mean luma of the middle of the cell in the upper row is compared with the
    same cell in the inverted row below: the bit is 1 where the upper one is brighter. A cell whose two
    halves differ by less than 64 levels (of 255) is unreadable, and so is a word whose CRC-4 does not match.

    Args:
        frame: A received frame: ``av.VideoFrame`` or an array (see `luma`), at the size it was sent.

    Returns:
        ``index % 65536`` of the frame that was drawn, or None when the counter cannot be read reliably
        (too degraded, not a test-pattern frame, or smaller than 40x16).
    """
    y = luma(frame).astype(np.float64)
    height, width = y.shape
    layout = _counter_layout(width, height)
    if layout is None:
        return None
    edges, row = layout
    inset = max(row // 4, 0)
    top_rows = y[height - 2 * row + inset : height - row - inset]
    bottom_rows = y[height - row + inset : height - inset]
    word = 0
    for left, right in itertools.pairwise(edges.tolist()):
        margin = (right - left) // 4
        a = float(top_rows[:, left + margin : right - margin].mean())
        b = float(bottom_rows[:, left + margin : right - margin].mean())
        if abs(a - b) < _MIN_CONTRAST:
            return None
        word = word << 1 | (a > b)
    value, check = word >> _CHECK_BITS, word & ((1 << _CHECK_BITS) - 1)
    return value if _crc4(value) == check else None


class ColorBarsVideoTrack(MediaStreamTrack):
    """A video track that plays the `color_bars` test pattern in real time.

    Each frame carries its index as a counter (see `color_bars`), and the track remembers when it handed
    out each index (`sent_times`), so a receiver that reads the counter back can compute each frame's
    end-to-end delay and which frames never arrived (`rtclab.quality.match_video_frames`).

    Plain color bars are easy to compress: at 320x240 a frame fits in about one packet, so the encoder never
    needs its whole bitrate. With ``noise`` every frame also gets fresh, seeded sensor-like noise, which an
    encoder cannot predict from the frame before: it spends every bit of its target, however high, as a
    camera in a dim room makes it do. The counter stays readable (the noise is far below the contrast the
    reader needs), and `image` regenerates exactly what was sent, as the reference for SSIM or PSNR.
    """

    kind = "video"

    def __init__(
        self,
        *,
        width: int = 320,
        height: int = 240,
        fps: float = 30,
        history: int = 18_000,
        noise: int = 0,
        seed: int = 0,
    ) -> None:
        """Create the track.

        Args:
            width: Frame width in pixels.
            height: Frame height in pixels.
            fps: Frames per second (0 < fps <= 60).
            history: How many send times to keep (the most recent ones; 18000 is 10 minutes at 30 fps).
            noise: Amplitude of the noise added to every pixel, in 8-bit levels (0-32): each frame gets the
                same uniform draw from ``-noise..noise`` on its three channels (a change of brightness, as
                sensor noise mostly is). 0: none, the plain pattern.
            seed: Seed of the noise; frame ``index`` of two tracks with the same seed is the same picture.

        Raises:
            ValueError: If ``fps`` or ``noise`` is out of range, the size is below 16x16 or ``history`` is
                below 1.
        """
        super().__init__()
        if not 0 < fps <= 60:
            raise ValueError("fps must be in (0, 60]")
        if width < 16 or height < 16:
            raise ValueError("the pattern needs at least 16x16 pixels")
        if history < 1:
            raise ValueError("history must be at least 1")
        if isinstance(noise, bool) or not isinstance(noise, int) or not 0 <= noise <= _MAX_NOISE:
            raise ValueError(f"noise must be a whole number of levels from 0 to {_MAX_NOISE}")
        self.width = width
        self.height = height
        self.fps = fps
        self.noise = noise
        self.seed = seed
        self.sent_times: collections.deque[tuple[int, float]] = collections.deque(maxlen=history)
        """``(frame index, time.monotonic())`` of each frame handed to the sender, oldest first."""
        self._time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._start: float | None = None
        self._index = 0

    def image(self, index: int) -> npt.NDArray[np.uint8]:
        """Frame ``index`` exactly as this track sends it: the reference for scoring a received frame.

        Args:
            index: Frame number, from 0 (a received counter is ``index % COUNTER_MODULUS``).

        Returns:
            An RGB image of shape ``(height, width, 3)``, dtype uint8.
        """
        image = color_bars(self.width, self.height, index)
        if not self.noise:
            return image
        # One generator per frame, seeded by (seed, index): any frame can be regenerated on its own.
        rng = np.random.default_rng([self.seed, index])
        shift = rng.integers(-self.noise, self.noise + 1, size=(self.height, self.width, 1), dtype=np.int16)
        return np.clip(image.astype(np.int16) + shift, 0, 255).astype(np.uint8)

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
        frame = av.VideoFrame.from_ndarray(self.image(self._index), format="rgb24")
        frame.pts = round(self._index * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = self._time_base
        self.sent_times.append((self._index, time.monotonic()))
        return frame
