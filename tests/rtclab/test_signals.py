"""rtclab.signals: the frame counter survives lossy codecs, audio tracks and their references, espeak-ng speech."""

import asyncio
import fractions
import shutil
import wave

import av
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtclab.signals import (
    COUNTER_MODULUS,
    ColorBarsVideoTrack,
    SilenceAudioTrack,
    SpeechAudioTrack,
    SpeechLikeAudioTrack,
    SpeechToolMissingError,
    ToneAudioTrack,
    color_bars,
    luma,
    read_frame_counter,
    synthesize_speech,
)

HAS_ESPEAK = shutil.which("espeak-ng") is not None


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6), st.sampled_from([(320, 240), (640, 480), (176, 144), (40, 16), (1280, 720)]))
def test_counter_reads_back_from_a_clean_frame(index, size):
    width, height = size
    image = color_bars(width, height, index)
    assert image.shape == (height, width, 3)
    assert read_frame_counter(image) == index % COUNTER_MODULUS


def test_counter_is_none_where_there_is_none():
    assert read_frame_counter(np.full((240, 320), 128, dtype=np.uint8)) is None  # flat gray
    noise = np.random.default_rng(1).integers(0, 256, size=(240, 320)).astype(np.uint8)
    assert read_frame_counter(noise) is None
    assert read_frame_counter(color_bars(32, 32, 5)) is None  # too narrow to carry a counter


def test_a_flipped_cell_is_caught_by_the_check_bits():
    image = color_bars(320, 240, 1234)
    for cell in range(20):  # flip one bit, in both rows, so the cell reads cleanly but wrongly
        damaged = image.copy()
        columns = slice(cell * 16, (cell + 1) * 16)
        damaged[208:, columns] = 255 - damaged[208:, columns]
        assert read_frame_counter(damaged) is None


def test_a_washed_out_cell_is_unreadable():
    image = color_bars(320, 240, 77)
    image[208:, 48:64] = 128
    assert read_frame_counter(image) is None


def test_counter_survives_brightness_shift_and_blur():
    image = color_bars(320, 240, 4321).astype(np.float64)
    shifted = np.clip(image * 0.6 + 60, 0, 255)
    blurred = (shifted + np.roll(shifted, 3, axis=1) + np.roll(shifted, -3, axis=1)) / 3
    assert read_frame_counter(blurred.astype(np.uint8)) == 4321


@pytest.mark.parametrize(("codec", "decoder", "kbps"), [("libvpx", "libvpx", 60), ("libx264", "h264", 40)])
def test_counter_survives_a_low_bitrate_codec(codec, decoder, kbps):
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = 320, 240, "yuv420p"
    encoder.bit_rate = kbps * 1000
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.framerate = fractions.Fraction(30, 1)
    if codec == "libvpx":
        rate = str(kbps * 1000)
        encoder.options = {"deadline": "realtime", "cpu-used": "8", "minrate": rate, "maxrate": rate}
    else:
        encoder.options = {"preset": "ultrafast", "tune": "zerolatency"}
    decoding = av.CodecContext.create(decoder, "r")
    read, decoded, size = [], 0, 0
    for index in range(90):
        frame = av.VideoFrame.from_ndarray(color_bars(320, 240, index), format="rgb24").reformat(
            format="yuv420p"
        )
        frame.pts = index
        for packet in encoder.encode(frame):
            size += packet.size
            for out in decoding.decode(packet):
                decoded += 1
                read.append(read_frame_counter(out))
    assert size * 8 / 3 < kbps * 1000 * 1.5  # it really was a low bitrate (90 frames = 3 s)
    assert decoded >= 80
    values = [v for v in read if v is not None]
    assert len(values) >= 0.95 * decoded
    assert values == sorted(values) and set(values) <= set(range(90))


def test_luma_of_a_decoded_style_frame_matches_the_gray_conversion():
    rgb = color_bars(320, 240, 9)
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
    y = luma(frame)
    assert y.shape == (240, 320) and y.dtype == np.uint8
    assert np.abs(y.astype(int) - luma(rgb).astype(int)).max() <= 4  # same scale as the RGB that was sent
    with pytest.raises(ValueError):
        luma(np.zeros((4, 4, 4)))


def collect(track, frames):
    async def run():
        out = [await track.recv() for _ in range(frames)]
        track.stop()
        with pytest.raises(Exception):  # noqa: B017 - MediaStreamError once stopped
            await track.recv()
        return out

    return asyncio.run(run())


@pytest.mark.parametrize(
    "make", [lambda: SpeechLikeAudioTrack(seed=4), lambda: ToneAudioTrack(1000), lambda: SilenceAudioTrack()]
)
def test_audio_tracks_play_their_reference_in_real_time(make):
    track = make()
    frames = collect(track, 10)
    assert [f.pts for f in frames] == [i * 960 for i in range(10)]
    assert all(f.sample_rate == 48_000 and f.samples == 960 for f in frames)
    played = np.concatenate([f.to_ndarray()[0] for f in frames]) / 32767
    np.testing.assert_allclose(played, track.reference(0.2), atol=2e-4)
    assert track.started_at is not None


def test_tone_has_its_frequency():
    tone = ToneAudioTrack(1000, level=0.5).reference(1.0)
    assert np.argmax(np.abs(np.fft.rfft(tone))) == 1000
    assert np.max(np.abs(tone)) == pytest.approx(0.5, abs=1e-3)
    with pytest.raises(ValueError):
        ToneAudioTrack(30_000)


def test_video_track_remembers_what_it_sent():
    track = ColorBarsVideoTrack(width=160, height=120, fps=60, history=5)
    frames = collect(track, 8)
    assert [read_frame_counter(f.to_ndarray(format="rgb24")) for f in frames] == list(range(8))
    assert [i for i, _ in track.sent_times] == [3, 4, 5, 6, 7]  # the newest `history` frames
    times = [t for _, t in track.sent_times]
    assert times == sorted(times)
    with pytest.raises(ValueError):
        ColorBarsVideoTrack(history=0)


def _vp8_bytes(images, kbps=3000):
    """Bytes libvpx (realtime, CBR at a high target) spends on these frames."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
    encoder.bit_rate = kbps * 1000
    encoder.time_base = fractions.Fraction(1, 30)
    encoder.options = {"deadline": "realtime", "cpu-used": "8"}
    size = 0
    for index, image in enumerate(images):
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        size += sum(packet.size for packet in encoder.encode(frame))
    return size


def test_noisy_video_track_is_hard_to_compress_and_keeps_its_counter():
    plain = ColorBarsVideoTrack(width=320, height=240, fps=60)
    noisy = ColorBarsVideoTrack(width=320, height=240, fps=60, noise=12, seed=3)
    frames = collect(noisy, 6)
    # What was sent is exactly what image() regenerates (the reference for SSIM), and the counter reads back.
    for index, frame in enumerate(frames):
        sent = frame.to_ndarray(format="rgb24")
        np.testing.assert_array_equal(sent, noisy.image(index))
        assert read_frame_counter(sent) == index

    # Fresh noise in every frame, the same for the same seed, none without noise.
    def noise_of(track, index):
        return track.image(index).astype(int) - color_bars(320, 240, index)

    assert np.abs(noise_of(noisy, 1)).max() > 0
    assert not np.array_equal(noise_of(noisy, 1), noise_of(noisy, 2))
    np.testing.assert_array_equal(ColorBarsVideoTrack(noise=12, seed=3).image(5), noisy.image(5))
    assert not np.array_equal(ColorBarsVideoTrack(noise=12, seed=4).image(5), noisy.image(5))
    np.testing.assert_array_equal(plain.image(5), color_bars(320, 240, 5))
    deviation = noisy.image(5).astype(int) - color_bars(320, 240, 5)
    assert np.abs(deviation).max() <= 12
    # An encoder with room to spare spends several times more on the noisy frames than on the plain ones.
    assert _vp8_bytes([noisy.image(i) for i in range(15)]) > 3 * _vp8_bytes(
        [plain.image(i) for i in range(15)]
    )
    for bad in (-1, 33, 2.5, True):
        with pytest.raises(ValueError, match="noise"):
            ColorBarsVideoTrack(noise=bad)


# --- espeak-ng ---


def test_missing_espeak_is_a_one_line_instruction(tmp_path):
    with pytest.raises(SpeechToolMissingError) as error:
        synthesize_speech("hello", cache_dir=tmp_path, espeak="no-such-espeak-ng")
    message = str(error.value)
    assert "apt-get install espeak-ng" in message and "\n" not in message


@pytest.mark.skipif(not HAS_ESPEAK, reason="needs espeak-ng (apt-get install espeak-ng)")
def test_speech_is_synthesized_once_with_its_provenance(tmp_path, monkeypatch):
    text = "The quick brown fox jumps over the lazy dog."
    speech = synthesize_speech(text, voice="en-us", words_per_minute=170, cache_dir=tmp_path)
    assert speech.sample_rate == 48_000 and speech.samples.dtype == np.float32
    assert 1.5 < speech.duration_s < 6
    assert 0.05 < np.max(np.abs(speech.samples)) <= 1
    spectrum = np.abs(np.fft.rfft(speech.samples))
    freqs = np.fft.rfftfreq(speech.samples.size, 1 / 48_000)
    assert spectrum[freqs > 11_500].sum() < 0.01 * spectrum.sum()  # espeak-ng's 22 kHz band, not an alias
    assert speech.provenance["text"] == text and speech.voice == "en-us" and speech.words_per_minute == 170
    assert speech.espeak_version[0].isdigit()
    with wave.open(str(speech.path)) as wav:
        assert wav.getframerate() == 48_000
    # Cached: found again without espeak-ng, and identical.
    monkeypatch.setattr(shutil, "which", lambda name: None)
    again = synthesize_speech(text, voice="en-us", words_per_minute=170, cache_dir=tmp_path)
    np.testing.assert_array_equal(again.samples, speech.samples)
    with pytest.raises(SpeechToolMissingError):
        synthesize_speech(text, voice="en-us", words_per_minute=200, cache_dir=tmp_path)


@pytest.mark.skipif(not HAS_ESPEAK, reason="needs espeak-ng (apt-get install espeak-ng)")
def test_speech_rate_and_voice_change_the_result(tmp_path):
    slow = synthesize_speech("one two three four", words_per_minute=100, cache_dir=tmp_path)
    fast = synthesize_speech("one two three four", words_per_minute=300, cache_dir=tmp_path)
    assert slow.duration_s > 1.5 * fast.duration_s
    assert len(list(tmp_path.glob("*.wav"))) == 2
    with pytest.raises(ValueError, match="voice"):
        synthesize_speech("hello", voice="nosuchvoice", cache_dir=tmp_path)
    with pytest.raises(ValueError):
        synthesize_speech("  ", cache_dir=tmp_path)


@pytest.mark.skipif(not HAS_ESPEAK, reason="needs espeak-ng (apt-get install espeak-ng)")
def test_speech_track_loops_with_pauses(tmp_path):
    speech = synthesize_speech("testing", cache_dir=tmp_path)
    track = SpeechAudioTrack(speech, pause_s=0.25)
    period = speech.samples.size + 12_000
    reference = track.reference(2 * period / 48_000)
    np.testing.assert_array_equal(reference[:period], reference[period:])
    assert not reference[speech.samples.size : period].any()
    frames = collect(track, 5)
    played = np.concatenate([f.to_ndarray()[0] for f in frames]) / 32767
    np.testing.assert_allclose(played, reference[: played.size], atol=2e-4)
