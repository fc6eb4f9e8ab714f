"""rtclab.quality: E-model, the Twilio and LiveKit estimates, PESQ/STOI/ViSQOL, alignment, SSIM/PSNR."""

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtclab.quality import (
    CODECS,
    CodecImpairment,
    EModelScore,
    ToolNotInstalledError,
    align,
    delay_impairment,
    effective_equipment_impairment,
    livekit_mos,
    livekit_quality,
    livekit_score,
    match_video_frames,
    mos_from_r,
    pesq_mos,
    psnr,
    r_factor,
    resample,
    score_speech,
    ssim,
    stoi_score,
    to_gray,
    twilio_mos,
    visqol_mos,
)
from rtclab.signals import SpeechLikeSignal

RATE = 48_000


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    return SpeechLikeSignal(RATE, seed=3).read(6 * RATE).astype(np.float64)


def add_noise(signal: np.ndarray, snr_db: float, seed: int = 0) -> np.ndarray:
    noise = np.random.default_rng(seed).standard_normal(signal.size)
    return signal + noise * math.sqrt(np.mean(signal**2) / 10 ** (snr_db / 10))


def drop_frames(signal: np.ndarray, every: int, frame_ms: float = 20) -> np.ndarray:
    out = signal.copy()
    frame = int(RATE * frame_ms / 1000)
    for start in range(0, out.size, frame * every):
        out[start : start + frame] = 0
    return out


# --- E-model ---


@pytest.mark.parametrize(
    ("r", "mos"),
    [
        (-10, 1.0),
        (0, 1.0),
        (3, 1.0),  # the cubic alone gives 0.94 here
        (50, 1 + 1.75 + 7e-6 * 50 * -10 * 50),
        (93.2, 4.4093),
        (100, 4.5),
        (120, 4.5),
    ],
)
def test_mos_from_r_follows_g107(r, mos):
    assert mos_from_r(r) == pytest.approx(mos, abs=1e-4)


@given(st.floats(min_value=0, max_value=100), st.floats(min_value=0, max_value=100))
def test_mos_rises_with_r(a, b):
    low, high = sorted((a, b))
    assert 1.0 <= mos_from_r(low) <= mos_from_r(high) <= 4.5


def test_mos_from_r_rejects_nan():
    with pytest.raises(ValueError):
        mos_from_r(math.nan)


@pytest.mark.parametrize(
    ("delay", "model", "expected"),
    [
        (0, "cole-rosenbluth", 0.0),
        (100, "cole-rosenbluth", 2.4),
        (177.3, "cole-rosenbluth", 0.024 * 177.3),
        (200, "cole-rosenbluth", 0.024 * 200 + 0.11 * 22.7),
        (400, "cole-rosenbluth", 9.6 + 0.11 * 222.7),
        (100, "g107", 0.0),
        # X = log2(200/100) = 1: 25 * (2^(1/6) - 3 * (1 + 3^-6)^(1/6) + 2)
        (200, "g107", 25 * (2 ** (1 / 6) - 3 * (1 + 3**-6) ** (1 / 6) + 2)),
        (400, "g107", 25 * ((1 + 2**6) ** (1 / 6) - 3 * (1 + (2 / 3) ** 6) ** (1 / 6) + 2)),
    ],
)
def test_delay_impairment_values(delay, model, expected):
    assert delay_impairment(delay, model) == pytest.approx(expected)


@given(st.floats(min_value=0, max_value=2000), st.floats(min_value=0, max_value=2000))
def test_delay_never_helps(a, b):
    low, high = sorted((a, b))
    for model in ("cole-rosenbluth", "g107"):
        assert 0 <= delay_impairment(low, model) <= delay_impairment(high, model) + 1e-9


def test_g114_bands_show_up_in_the_mos():
    # ITU-T G.114: under 150 ms one way is fine, over 400 ms unacceptable.
    assert mos_from_r(r_factor(150, 0)) > 4.3
    assert mos_from_r(r_factor(400, 0)) < 4.0
    assert mos_from_r(r_factor(400, 0, delay_model="g107")) < mos_from_r(r_factor(150, 0, delay_model="g107"))


@pytest.mark.parametrize(
    ("codec", "loss", "expected"),
    [
        ("g711", 0.0, 0.0),
        ("g711", 0.01, 95 * 1 / (1 + 4.3)),
        ("g711-plc", 0.01, 95 * 1 / (1 + 25.1)),
        ("g711-plc", 0.05, 95 * 5 / (5 + 25.1)),
        (CodecImpairment(ie=10, bpl=20, source="test"), 0.02, 10 + 85 * 2 / (2 + 20)),
    ],
)
def test_ie_eff_follows_g107(codec, loss, expected):
    assert effective_equipment_impairment(loss, codec) == pytest.approx(expected)


def test_bursty_loss_hurts_more_than_random_loss():
    random_loss = effective_equipment_impairment(0.03, "g711-plc", burst_ratio=1)
    bursty = effective_equipment_impairment(0.03, "g711-plc", burst_ratio=2)
    assert bursty == pytest.approx(95 * 3 / (3 / 2 + 25.1))
    assert bursty > random_loss


@given(st.floats(min_value=0, max_value=1), st.sampled_from(sorted(CODECS)))
def test_ie_eff_of_random_loss_stays_between_ie_and_95(loss, codec):
    assert CODECS[codec].ie <= effective_equipment_impairment(loss, codec) <= 95


@given(
    st.floats(min_value=0, max_value=0.2),
    st.floats(min_value=1, max_value=10),
    st.floats(min_value=1, max_value=10),
)
def test_burstier_loss_never_helps(loss, a, b):
    low, high = sorted((a, b))
    assert effective_equipment_impairment(loss, "opus", low) <= effective_equipment_impairment(
        loss, "opus", high
    )


def test_every_codec_says_where_its_values_come_from():
    assert CODECS["g711"].bpl == 4.3 and "G.113" in CODECS["g711"].source
    assert CODECS["g711-plc"].bpl == 25.1
    assert CODECS["opus"].source.startswith("assumption")


def test_r_factor_of_a_perfect_call_is_93_2():
    assert r_factor(0, 0) == pytest.approx(93.2)
    assert r_factor(0, 0, advantage=5) == pytest.approx(98.2)
    assert r_factor(200, 0.02, "g711-plc") == pytest.approx(93.2 - (4.8 + 0.11 * 22.7) - 95 * 2 / (2 + 25.1))


@given(
    st.floats(min_value=0, max_value=1000),
    st.floats(min_value=0, max_value=1000),
    st.floats(min_value=0, max_value=1),
    st.floats(min_value=0, max_value=1),
)
def test_more_delay_or_loss_never_raises_r(d1, d2, l1, l2):
    assert r_factor(max(d1, d2), max(l1, l2)) <= r_factor(min(d1, d2), min(l1, l2)) + 1e-9


@pytest.mark.parametrize(
    "call",
    [
        lambda: r_factor(-1, 0),
        lambda: r_factor(10, 1.5),
        lambda: r_factor(10, 0.1, "speex"),
        lambda: r_factor(10, 0.1, burst_ratio=0),
        lambda: delay_impairment(10, "made-up"),
    ],
)
def test_e_model_rejects_bad_input(call):
    with pytest.raises(ValueError):
        call()


# --- score_speech: the one estimate probe, notebooks and diagnose share ---


def speech_score(**changes: float | bool | str) -> EModelScore:
    args = {"network_delay_ms": 150.0, "jitter_buffer_ms": 80.0, "loss_fraction": 0.02, "conceals": False}
    return score_speech(**(args | changes))  # type: ignore[arg-type]


def test_score_speech_matches_g107_by_hand():
    score = speech_score()
    # d = 150 + 80 = 230 ms: Id = 0.024 d + 0.11 (d - 177.3) (Cole-Rosenbluth's fit of G.107's Id)
    assert score.one_way_delay_ms == 230
    assert score.id == pytest.approx(0.024 * 230 + 0.11 * (230 - 177.3))  # 11.317
    # no concealment: Ie 0, Bpl 4.3 (G.113 Appendix I, G.711 without PLC); Ppl = 2 %, random loss
    assert score.ie_eff == pytest.approx(95 * 2 / (2 / 1 + 4.3))  # 30.159
    assert score.r == pytest.approx(51.724, abs=1e-3)
    assert score.mos == pytest.approx(
        1 + 0.035 * 51.72427 + 7e-6 * 51.72427 * (51.72427 - 60) * (100 - 51.72427)
    )
    assert score.mos == pytest.approx(2.6657, abs=1e-4)
    assert score.loss_pct == pytest.approx(2.0) and score.conceals is False
    assert speech_score(burst_ratio=2.0).ie_eff == pytest.approx(95 * 2 / (2 / 2 + 4.3))  # 35.849


@given(
    st.floats(min_value=0, max_value=800),
    st.floats(min_value=0, max_value=800),
    st.floats(min_value=0, max_value=1),
    st.booleans(),
    st.floats(min_value=1, max_value=5),
)
def test_score_speech_parts_add_up_to_r(network, buffer, loss, conceals, burst):
    score = score_speech(
        network_delay_ms=network,
        jitter_buffer_ms=buffer,
        loss_fraction=loss,
        conceals=conceals,
        burst_ratio=burst,
    )
    assert score.r == pytest.approx(93.2 - score.id - score.ie_eff)
    assert score.one_way_delay_ms == pytest.approx(network + buffer)
    assert score.mos == pytest.approx(mos_from_r(score.r))
    assert score.id == pytest.approx(delay_impairment(network + buffer))


@pytest.mark.parametrize("loss", [0.005, 0.02, 0.1, 0.3])
def test_no_concealment_scores_worse_than_concealment_at_the_same_loss(loss):
    hidden, heard = speech_score(loss_fraction=loss, conceals=True), speech_score(loss_fraction=loss)
    assert heard.ie_eff > hidden.ie_eff + 1
    assert heard.mos < hidden.mos
    assert hidden.ie_eff == pytest.approx(effective_equipment_impairment(loss, "opus"))  # Bpl 25.1
    assert heard.id == hidden.id  # concealment changes the loss term only
    assert (
        speech_score(loss_fraction=0.0).ie_eff == speech_score(loss_fraction=0.0, conceals=True).ie_eff == 0
    )


def test_more_delay_raises_id_and_lowers_the_score():
    scores = [speech_score(jitter_buffer_ms=b) for b in (0, 80, 280, 500)]
    ids = [s.id for s in scores]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [s.r for s in scores] == sorted((s.r for s in scores), reverse=True)
    assert speech_score(network_delay_ms=300).id > speech_score().id
    assert {s.ie_eff for s in scores} == {scores[0].ie_eff}  # delay changes the delay term only


def test_score_speech_to_dict_rounds_every_part():
    data = speech_score().to_dict()
    assert data == {
        "mos": 2.67,
        "r": 51.7,
        "id": 11.3,
        "ie_eff": 30.2,
        "one_way_delay_ms": 230.0,
        "network_delay_ms": 150.0,
        "jitter_buffer_ms": 80.0,
        "loss_pct": 2.0,
        "conceals": False,
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"network_delay_ms": -1.0},
        {"network_delay_ms": math.nan},
        {"jitter_buffer_ms": -0.1},
        {"jitter_buffer_ms": math.nan},
        {"loss_fraction": 1.5},
        {"loss_fraction": -0.01},
        {"burst_ratio": 0.0},
        {"codec": "speex"},
    ],
)
def test_score_speech_rejects_bad_input(changes):
    with pytest.raises(ValueError):
        speech_score(**changes)


# --- Twilio and LiveKit ---


def test_twilio_mos_reproduces_calculate_mos():
    # effective latency 10 ms -> R = 94.768 - 10/40
    r = 94.768 - 10 / 40
    assert twilio_mos(0, 0, 0) == pytest.approx(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))
    # 200 + 2*20 + 10 = 250 ms -> R = 94.768 - 13; loss 0.02 -> R - 0.05
    r = 94.768 - 13 - 0.05
    assert twilio_mos(200, 20, 0.02) == pytest.approx(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))
    # 1000 ms or more: R = 0; with no loss the floor of 6.52 applies, with any loss R stays 0.
    assert twilio_mos(990, 0, 0) == pytest.approx(mos_from_r(6.52))
    assert twilio_mos(990, 0, 0.01) == 1.0


def test_twilio_preflight_barely_reacts_to_loss():
    clean = twilio_mos(
        100, 0.005, 0.0
    )  # jitter in seconds and loss as a fraction, as preflighttest.ts passes
    lossy = twilio_mos(100, 0.005, 0.05)
    assert clean - lossy < 0.01


def test_livekit_score_reproduces_calculate_packet_score():
    assert livekit_score(0, 0, 0) == 100
    assert livekit_score(200, 0, 0) == pytest.approx(100 - 100 / 40)
    assert livekit_score(400, 10, 0) == pytest.approx(100 - (220 - 120) / 10)
    assert livekit_score(200, 0, 0.01) == pytest.approx(100 - 2.5 - 8)
    assert livekit_score(200, 0, 0.01, track="opus-fec") == pytest.approx(100 - 2.5 - 8 / 1.5)
    assert livekit_score(200, 0, 0.01, track="red") == pytest.approx(100 - 2.5 - 4)
    assert livekit_score(200, 0, 0.01, track="video") == pytest.approx(100 - 2.5 - 10)
    assert livekit_score(400, 10, 0, include_rtt=False) == pytest.approx(100 - 20 / 40)
    assert livekit_score(400, 10, 0.5) == 30  # the floor the smoothed score never goes below
    assert livekit_mos(0, 0, 0) == 4.5
    assert livekit_mos(200, 0, 0.01) == pytest.approx(mos_from_r(89.5))


@pytest.mark.parametrize(
    ("score", "quality"), [(100, "excellent"), (80.5, "excellent"), (80, "good"), (40, "poor")]
)
def test_livekit_quality_levels(score, quality):
    assert livekit_quality(score) == quality


def test_the_three_estimates_weigh_loss_and_delay_differently():
    loss_effect = {
        "g107": mos_from_r(r_factor(50, 0)) - mos_from_r(r_factor(50, 0.05)),
        "twilio": twilio_mos(100, 10, 0) - twilio_mos(100, 10, 0.05),
        "livekit": livekit_mos(100, 10, 0) - livekit_mos(100, 10, 0.05),
    }
    assert loss_effect["twilio"] < 0.01 < loss_effect["g107"] < loss_effect["livekit"]
    # Twilio counts the whole RTT as delay, LiveKit half of it: at 600 ms RTT Twilio is far more pessimistic.
    assert twilio_mos(600, 0, 0) < livekit_mos(600, 0, 0) - 1


@given(st.floats(0, 2000), st.floats(0, 200), st.floats(0, 1))
def test_estimates_stay_on_the_mos_scale(rtt, jitter, loss):
    assert 0.9 < twilio_mos(rtt, jitter, loss) <= 4.5
    assert 1.0 <= livekit_mos(rtt, jitter, loss) <= 4.5


# --- resampling and alignment ---


def test_resample_keeps_length_ratio_and_pitch():
    t = np.arange(RATE) / RATE
    tone = np.sin(2 * np.pi * 440 * t)
    down = resample(tone, RATE, 16_000)
    assert down.size == 16_000
    spectrum = np.abs(np.fft.rfft(down))
    assert np.argmax(spectrum) * 16_000 / down.size == pytest.approx(440, abs=1)
    assert np.array_equal(resample(tone, RATE, RATE), tone)
    with pytest.raises(ValueError):
        resample(tone, 0, 16_000)


@pytest.mark.parametrize("delay_ms", [0.0, 7.3, 123.4, 480.0, -20.0])
def test_align_recovers_a_known_delay_within_1_ms(speech, delay_ms):
    shift = round(delay_ms * RATE / 1000)
    noisy = add_noise(speech, 20, seed=1)
    degraded = np.concatenate([np.zeros(shift), noisy])[: speech.size] if shift >= 0 else noisy[-shift:]
    result = align(speech, degraded, RATE)
    assert result.delay_ms == pytest.approx(delay_ms, abs=1.0)
    assert result.delay_samples == shift
    assert result.reference.size == result.degraded.size > 0
    assert result.correlation > 0.9
    np.testing.assert_allclose(
        result.degraded, noisy[: result.degraded.size] if shift >= 0 else result.degraded
    )


def test_align_can_limit_the_search(speech):
    degraded = np.concatenate([np.zeros(RATE // 2), speech])
    assert align(speech, degraded, RATE).delay_ms == pytest.approx(500, abs=0.1)
    assert abs(align(speech, degraded, RATE, max_delay_ms=100).delay_ms) <= 100


def test_align_rejects_silence_and_bad_shapes(speech):
    with pytest.raises(ValueError, match="silent"):
        align(speech, np.zeros(100), RATE)
    with pytest.raises(ValueError, match="1-D"):
        align(speech.reshape(2, -1), speech, RATE)


# --- PESQ, STOI, ViSQOL ---


@pytest.mark.parametrize("band", ["wb", "nb"])
def test_pesq_of_speech_against_itself_is_high(speech, band):
    assert pesq_mos(speech, speech, RATE, band) > 4.0


def test_pesq_falls_with_noise_and_dropped_frames(speech):
    clean = pesq_mos(speech, speech, RATE)
    noisy = [pesq_mos(speech, add_noise(speech, snr), RATE) for snr in (35, 20, 5)]
    assert clean > noisy[0] > noisy[1] > noisy[2]
    dropped = pesq_mos(speech, drop_frames(speech, every=5), RATE)  # every 5th 20 ms frame zeroed: 20 % loss
    assert dropped < clean - 1.5


def test_pesq_explains_what_it_cannot_score(speech):
    with pytest.raises(ValueError, match="PESQ cannot score this pair: a signal is silent"):
        pesq_mos(speech, np.zeros(RATE), RATE)
    with pytest.raises(ValueError, match="PESQ cannot score this pair: BufferTooShortError"):
        pesq_mos(speech[:1000], speech[:1000], RATE)
    with pytest.raises(ValueError, match="band"):
        pesq_mos(speech, speech, RATE, "fb")


def test_stoi_is_one_for_a_clean_copy_and_lower_when_degraded(speech):
    assert stoi_score(speech, speech, RATE) == pytest.approx(1.0, abs=1e-6)
    assert stoi_score(speech, add_noise(speech, 0), RATE) < 0.9
    assert stoi_score(speech, drop_frames(speech, every=3), RATE, extended=True) < stoi_score(
        speech, speech, RATE, extended=True
    )


def test_visqol_needs_an_installed_package(speech):
    if importlib.util.find_spec("visqol") is None:
        with pytest.raises(ToolNotInstalledError, match="pip install visqol-python"):
            visqol_mos(speech, speech, RATE)
        assert issubclass(ToolNotInstalledError, ImportError)
    else:
        assert 1.0 <= visqol_mos(speech, speech, RATE) <= 5.0
    with pytest.raises(ValueError, match="mode"):
        visqol_mos(speech, speech, RATE, mode="music")


# --- SSIM and PSNR ---


def test_identical_frames_score_perfectly():
    frame = np.random.default_rng(0).integers(0, 256, size=(48, 64)).astype(np.uint8)
    assert ssim(frame, frame) == pytest.approx(1.0)
    assert psnr(frame, frame) == math.inf


def test_psnr_of_a_known_error():
    frame = np.full((20, 20), 100, dtype=np.uint8)
    assert psnr(frame, frame + 1) == pytest.approx(10 * math.log10(255**2))  # MSE 1: 48.13 dB
    assert psnr(frame, frame + 16) == pytest.approx(10 * math.log10(255**2 / 256))


def test_ssim_of_two_flat_frames_is_the_luminance_term():
    a, b = 100.0, 120.0
    c1 = (0.01 * 255) ** 2
    expected = (2 * a * b + c1) / (a**2 + b**2 + c1)  # no variance: contrast and structure terms are 1
    assert ssim(np.full((16, 16), a), np.full((16, 16), b)) == pytest.approx(expected)


def test_ssim_matches_a_direct_windowed_computation():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, size=(15, 17)).astype(np.float64)
    y = np.clip(x + rng.normal(0, 25, size=x.shape), 0, 255)
    g = np.exp(-(np.arange(-5, 6) ** 2) / (2 * 1.5**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for i in range(x.shape[0] - 10):
        for j in range(x.shape[1] - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            values.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    assert ssim(x, y) == pytest.approx(float(np.mean(values)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_more_noise_means_lower_ssim_and_psnr(seed):
    rng = np.random.default_rng(seed)
    # A smooth gradient with a square: structure that noise can destroy.
    frame = np.tile(np.linspace(30, 220, 96), (72, 1))
    frame[20:50, 30:60] = 240
    scores = []
    for sigma in (2, 8, 20, 50):
        noisy = np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255)
        scores.append((ssim(frame, noisy), psnr(frame, noisy)))
    for (ssim_a, psnr_a), (ssim_b, psnr_b) in zip(scores, scores[1:], strict=False):
        assert ssim_a > ssim_b and psnr_a > psnr_b
    assert scores[0][0] < 1.0


def test_rgb_frames_are_compared_on_luma():
    rgb = np.zeros((12, 12, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    assert to_gray(rgb)[0, 0] == pytest.approx(0.299 * 200)
    assert ssim(rgb, rgb) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [
        (np.zeros((12, 12)), np.zeros((12, 13)), "differ in size"),
        (np.zeros((8, 8)), np.zeros((8, 8)), "at least 11x11"),
        (np.zeros((12, 12, 4)), np.zeros((12, 12, 4)), "frame, got shape"),
    ],
)
def test_ssim_rejects_frames_it_cannot_compare(a, b, message):
    with pytest.raises(ValueError, match=message):
        ssim(a, b)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_ssim_is_at_most_one_and_symmetric(seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, size=(16, 16)).astype(np.float64)
    y = rng.integers(0, 256, size=(16, 16)).astype(np.float64)
    assert ssim(x, y) <= 1.0 + 1e-12
    assert ssim(x, y) == pytest.approx(ssim(y, x))


# --- video frames matched by counter ---


def sent_frames(count, fps=30.0, start=0):
    return [(i, (i - start) / fps) for i in range(start, start + count)]


def test_every_frame_delivered_with_a_constant_delay():
    sent = sent_frames(60)
    received = [(i, t + 0.05) for i, t in sent]
    report = match_video_frames(sent, received)
    assert report.frames_sent == report.frames_delivered == 60
    assert report.frames_lost == 0 and report.loss_fraction == 0
    assert report.median_delay_ms == pytest.approx(50)
    assert report.delay_percentile_ms(95) == pytest.approx(50)
    assert report.freezes.events == ()


def test_lost_unreadable_repeated_and_a_freeze():
    sent = sent_frames(90)
    received = []
    for i, t in sent:
        if 30 <= i < 55 or i in (58, 89):  # 30-54 (833 ms) never arrive: a freeze; 89 is still in flight
            continue
        if i % 10 == 0:
            received.append((None, t + 0.04))  # decoded but unreadable: 0, 10, 20, 60, 70, 80
            continue
        received.append((i, t + 0.04 + (0.1 if i == 88 else 0)))
    received.append((12, 12 / 30 + 0.1))  # the same picture again
    received.append((58, 59 / 30 + 0.05))  # arrives after 59: too late to be shown, counted lost
    report = match_video_frames(sent, received)
    assert report.frames_sent == 89  # up to the last one delivered (88): 89 may still be in flight
    assert report.frames_unreadable == 6
    assert report.frames_repeated == 2
    assert report.lost_indexes == (0, 10, 20, *range(30, 55), 58, 60, 70, 80)
    assert report.frames_lost == report.frames_sent - report.frames_delivered == 32
    (freeze,) = report.freezes.events
    assert freeze.start_s == pytest.approx(29 / 30 + 0.04)
    assert freeze.duration_s == pytest.approx(55 / 30 - 29 / 30)
    assert report.deliveries[-1].index == 88
    assert max(d.delay_ms for d in report.deliveries) == pytest.approx(140)


def test_counters_wrap_around():
    modulus = 16
    sent = sent_frames(40)
    received = [(i % modulus, t + 0.03) for i, t in sent if i != 20]
    report = match_video_frames(sent, received, modulus=modulus)
    assert report.frames_delivered == 39
    assert report.lost_indexes == (20,)
    assert all(d.delay_ms == pytest.approx(30) for d in report.deliveries)


def test_a_counter_never_sent_is_not_a_delivery():
    report = match_video_frames(sent_frames(5), [(3, 1.0), (4000, 1.1)])
    assert report.frames_delivered == 1 and report.frames_unreadable == 1
    assert report.frames_lost == 3
    with pytest.raises(ValueError):
        match_video_frames(sent_frames(5), [(70000, 1.0)])
    empty = match_video_frames([], [])
    assert empty.frames_sent == 0 and empty.median_delay_ms is None and empty.loss_fraction == 0
