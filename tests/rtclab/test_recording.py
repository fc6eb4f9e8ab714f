"""rtclab.recording: received audio as 48 kHz mono float32 with arrival times, video frames with counters."""

import fractions
import wave

import av
import numpy as np
import pytest

from rtclab.recording import AudioRecorder, VideoRecorder
from rtclab.signals import color_bars


def audio_frame(samples: np.ndarray, rate: int, layout: str = "mono", pts: int = 0) -> av.AudioFrame:
    pcm = np.round(samples * 32767).astype(np.int16)
    channels = 2 if layout == "stereo" else 1
    frame = av.AudioFrame.from_ndarray(np.repeat(pcm, channels).reshape(1, -1), format="s16", layout=layout)
    frame.sample_rate = rate
    frame.pts = pts
    frame.time_base = fractions.Fraction(1, rate)
    return frame


def tone(rate: int, seconds: float, freq: float = 500.0) -> np.ndarray:
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def test_opus_style_stereo_frames_become_the_same_mono_signal():
    signal = tone(48_000, 0.2)
    recorder = AudioRecorder()
    for i in range(10):
        chunk = signal[i * 960 : (i + 1) * 960]
        recorder.add(audio_frame(chunk, 48_000, "stereo", pts=i * 960), at_s=1.0 + i * 0.02)
    samples = recorder.samples
    assert samples.dtype == np.float32 and samples.size == 9600
    np.testing.assert_allclose(samples, signal, atol=1e-4)
    np.testing.assert_array_equal(recorder.frame_offsets, np.arange(10) * 960)
    assert recorder.arrival_of_sample(0) == 1.0
    assert recorder.arrival_of_sample(961) == pytest.approx(1.02)
    with pytest.raises(IndexError):
        recorder.arrival_of_sample(9600)


def test_g711_style_8khz_frames_are_resampled_to_48khz():
    signal = tone(8_000, 1.0, freq=440)
    recorder = AudioRecorder()
    for i in range(50):
        recorder.add(audio_frame(signal[i * 160 : (i + 1) * 160], 8_000, pts=i * 160), at_s=i * 0.02)
    samples = recorder.samples
    assert abs(samples.size - 48_000) <= 960  # the resampler may hold back a few ms
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * 48_000 / samples.size == pytest.approx(440, abs=2)


def test_memory_is_capped():
    recorder = AudioRecorder(max_seconds=0.1)
    for i in range(20):
        recorder.add(audio_frame(np.full(960, 0.1), 48_000, pts=i * 960), at_s=i * 0.02)
    assert recorder.samples.size == 4800 and recorder.duration_s == pytest.approx(0.1)
    assert recorder.dropped_samples == 20 * 960 - 4800
    assert recorder.frames_seen == 20
    with pytest.raises(ValueError):
        AudioRecorder(max_seconds=0)


def test_save_wav_writes_48khz_mono(tmp_path):
    recorder = AudioRecorder()
    recorder.add(audio_frame(tone(48_000, 0.02), 48_000), at_s=0)
    path = recorder.save_wav(tmp_path / "received.wav")
    with wave.open(str(path)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()) == (
            48_000,
            1,
            2,
            960,
        )


def video_frame(index: int) -> av.VideoFrame:
    rgb = av.VideoFrame.from_ndarray(color_bars(320, 240, index), format="rgb24")
    return rgb.reformat(format="yuv420p")


def test_video_frames_are_recorded_with_their_counter():
    recorder = VideoRecorder(max_seconds=1.0)
    for index in range(40):
        recorder.add(video_frame(index), at_s=index / 30)
    blank = av.VideoFrame.from_ndarray(np.full((240, 320, 3), 90, dtype=np.uint8), format="rgb24")
    recorder.add(blank, at_s=0.5)
    assert [f.counter for f in recorder.frames[:31]] == list(range(31))  # up to 1 s after the first
    assert recorder.dropped_frames == 9
    assert recorder.frames[-1].counter is None
    assert recorder.readable_fraction == pytest.approx(31 / 32)
    assert all(f.image is None for f in recorder.frames)
    assert recorder.counters_and_times()[1] == (1, pytest.approx(1 / 30))


def test_video_images_are_kept_on_request():
    recorder = VideoRecorder(keep_images=True)
    recorder.add(video_frame(3), at_s=0)
    image = recorder.frames[0].image
    assert image is not None and image.shape == (240, 320) and image.dtype == np.uint8
