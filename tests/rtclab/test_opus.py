"""rtclab.opus: libopus through ctypes encodes and decodes speech, carries and decodes in-band FEC, conceals lost
frames, honours DTX, and says clearly when libopus is missing."""

import ctypes

import numpy as np
import pytest

from rtclab import opus
from rtclab.opus import (
    SAMPLE_RATE,
    LibopusNotFoundError,
    OpusDecoder,
    OpusEncoder,
    OpusError,
    find_libopus,
    has_lbrr,
    libopus_version,
    load_libopus,
    packet_samples,
    pcm16,
)
from rtclab.signals import SpeechLikeSignal


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Four seconds of the speech-like voice, as 16-bit PCM."""
    return pcm16(SpeechLikeSignal(SAMPLE_RATE, seed=2).read(4 * SAMPLE_RATE))


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    n = min(len(a), len(b))
    return float(np.corrcoef(a[:n].astype(float), b[:n].astype(float))[0, 1])


def test_loads_the_libopus_pyav_bundles():
    assert "av.libs" in find_libopus() or "opus" in find_libopus()
    assert libopus_version().startswith("libopus ")
    assert load_libopus() is load_libopus()  # loaded once


def test_a_missing_library_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv(opus.LIBOPUS_ENV, str(tmp_path / "nope.so"))
    with pytest.raises(LibopusNotFoundError, match="RTCLAB_LIBOPUS"):
        find_libopus()
    not_a_library = tmp_path / "libopus.so"
    not_a_library.write_text("not a shared object")
    with pytest.raises(LibopusNotFoundError, match="cannot load libopus"):
        load_libopus(str(not_a_library))


def test_a_library_that_is_not_libopus_is_refused():
    libc = ctypes.util.find_library("c")
    if libc is None:
        pytest.skip("no libc to load")
    with pytest.raises(LibopusNotFoundError, match="not libopus"):
        load_libopus(libc)


def test_without_pyav_or_system_copy_the_error_says_what_to_install(monkeypatch):
    monkeypatch.delenv(opus.LIBOPUS_ENV, raising=False)
    monkeypatch.setattr(opus.Path, "glob", lambda self, pattern: iter(()))
    monkeypatch.setattr(opus.ctypes.util, "find_library", lambda name: None)
    with pytest.raises(LibopusNotFoundError, match="apt-get install libopus0"):
        find_libopus()


def test_pcm16_clips_and_rounds():
    out = pcm16([0.0, 0.5, 1.0, 2.0, -3.0])
    assert out.dtype == np.int16
    assert out.tolist() == [0, 16384, 32767, 32767, -32767]


def test_encode_then_decode_gives_the_speech_back_after_the_lookahead(speech):
    encoder, decoder = OpusEncoder(32_000), OpusDecoder()
    packets = encoder.encode_signal(speech)
    assert len(packets) == len(speech) // 960
    assert all(packet_samples(p) == 960 for p in packets)
    out = np.concatenate([decoder.decode(p) for p in packets])
    assert out.dtype == np.int16 and len(out) == len(packets) * 960
    lookahead = encoder.lookahead_samples
    assert 0 < lookahead < 960 and encoder.lookahead_ms == pytest.approx(lookahead / 48)
    assert correlation(speech, out[lookahead:]) > 0.8
    assert correlation(speech, out[lookahead:]) > correlation(speech, out) + 0.2  # the lookahead is real


def test_higher_bitrate_sends_more_bytes(speech):
    low = sum(map(len, OpusEncoder(12_000).encode_signal(speech)))
    high = sum(map(len, OpusEncoder(48_000).encode_signal(speech)))
    assert high > 2 * low
    seconds = len(speech) / SAMPLE_RATE
    assert 6 < low * 8 / seconds / 1000 < 18  # VBR lands near its 12 kbps target on speech


@pytest.mark.parametrize("frame_ms", [10, 20, 40, 60])
def test_frame_sizes(speech, frame_ms):
    encoder, decoder = OpusEncoder(24_000, frame_ms=frame_ms), OpusDecoder(frame_ms=frame_ms)
    samples = 48 * frame_ms
    assert encoder.frame_samples == decoder.frame_samples == samples
    packets = encoder.encode_signal(speech)
    assert len(packets) == len(speech) // samples
    assert all(len(decoder.decode(p)) == samples for p in packets[:5])
    assert len(decoder.decode(None)) == samples


def test_fec_packets_carry_lbrr_only_when_asked_and_loss_is_expected(speech):
    plain = OpusEncoder(32_000).encode_signal(speech)
    expecting = OpusEncoder(32_000, fec=True, packet_loss_percent=20).encode_signal(speech)
    not_expecting = OpusEncoder(32_000, fec=True, packet_loss_percent=0).encode_signal(speech)
    assert not any(map(has_lbrr, plain))
    assert not any(map(has_lbrr, not_expecting))
    assert sum(map(has_lbrr, expecting)) >= 0.4 * len(expecting)  # speech frames; quiet ones may not


def test_fec_rebuilds_a_lost_frame_better_than_concealment(speech):
    encoder = OpusEncoder(32_000, fec=True, packet_loss_percent=20)
    packets = encoder.encode_signal(speech)
    lookahead = encoder.lookahead_samples
    # Lose every 10th packet whose successor carries FEC data; rebuild it from the successor, or conceal it.
    lost = {i for i in range(5, len(packets) - 1, 10) if has_lbrr(packets[i + 1])}
    assert len(lost) >= 5

    def play(use_fec: bool) -> np.ndarray:
        decoder, out = OpusDecoder(), []
        for i, packet in enumerate(packets):
            if i not in lost:
                out.append(decoder.decode(packet))
            elif use_fec:
                out.append(decoder.decode(packets[i + 1], fec=True))
            else:
                out.append(decoder.conceal())
        return np.concatenate(out)[lookahead:]

    def error_in_lost_frames(out: np.ndarray) -> float:
        slots = [slice(i * 960, (i + 1) * 960) for i in sorted(lost)]
        return float(sum(np.sum((speech[s].astype(float) - out[s]) ** 2) for s in slots))

    assert error_in_lost_frames(play(True)) < 0.7 * error_in_lost_frames(play(False))


def test_fec_decode_without_lbrr_data_conceals():
    decoder = OpusDecoder()
    plain = OpusEncoder(24_000).encode_signal(pcm16(SpeechLikeSignal(seed=1).read(9600)))
    decoder.decode(plain[0])
    assert len(decoder.decode(plain[2], fec=True)) == 960  # "decoded as if it were lost"


def test_dtx_sends_tiny_packets_in_silence():
    silence = np.zeros(SAMPLE_RATE * 2, dtype=np.int16)
    with_dtx = OpusEncoder(24_000, dtx=True).encode_signal(silence)
    without = OpusEncoder(24_000).encode_signal(silence)
    assert sum(len(p) <= 2 for p in with_dtx) >= 0.7 * len(with_dtx)
    assert sum(len(p) <= 2 for p in without) == 0


def test_settings_can_change_during_a_stream(speech):
    encoder = OpusEncoder(12_000)
    first = encoder.encode_signal(speech[: SAMPLE_RATE * 2])
    encoder.set_bitrate(64_000)
    encoder.set_packet_loss_percent(10)
    second = encoder.encode_signal(speech[: SAMPLE_RATE * 2])
    assert encoder.bitrate_bps == 64_000 and encoder.packet_loss_percent == 10
    assert sum(map(len, second)) > 2 * sum(map(len, first))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_ms": 30}, "frame_ms"),
        ({"bitrate_bps": 1000}, "bitrate_bps"),
        ({"packet_loss_percent": 101}, "packet_loss_percent"),
        ({"application": "music"}, "application"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OpusEncoder(**kwargs)


def test_bad_frames_are_refused():
    encoder = OpusEncoder()
    with pytest.raises(TypeError, match="pcm16"):
        encoder.encode(np.zeros(960, dtype=np.float32))
    with pytest.raises(ValueError, match="960 samples"):
        encoder.encode(np.zeros(961, dtype=np.int16))


def test_corrupt_packets_raise_opus_errors():
    decoder = OpusDecoder()
    with pytest.raises(OpusError) as caught:
        decoder.decode(b"\xff\xff\xff")
    assert caught.value.code < 0
    with pytest.raises(OpusError):
        packet_samples(b"")


def test_closed_codecs_refuse_work_instead_of_crashing():
    with OpusEncoder() as encoder, OpusDecoder() as decoder:
        packet = encoder.encode(np.zeros(960, dtype=np.int16))
    with pytest.raises(ValueError, match="closed"):
        encoder.encode(np.zeros(960, dtype=np.int16))
    with pytest.raises(ValueError, match="closed"):
        decoder.decode(packet)
    encoder.close()  # closing twice is harmless
