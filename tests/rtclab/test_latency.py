"""rtclab.latency: frame traces add up, summaries are right, the waveform measure finds a known delay, the
probe sees every stage of a real loopback call, and a shorter jitter-buffer prefetch shortens that stage."""

import asyncio
import statistics
from types import SimpleNamespace

import av
import numpy as np
import pytest
from aiortc.rtp import RtpPacket

from rtclab.impair import Impairment
from rtclab.latency import (
    G114_PLANNING_LIMIT_MS,
    G114_TRANSPARENT_MS,
    STAGES,
    FrameTrace,
    PipelineProbe,
    breakdown,
    measure_latency,
    mouth_to_ear_ms,
    set_audio_jitter_prefetch,
)
from rtclab.recording import AudioRecorder
from rtclab.signals import SpeechLikeAudioTrack


def trace(kind: str, timestamp: int, start: float, steps_ms: list[float]) -> FrameTrace:
    marks = [start]
    for step in steps_ms:
        marks.append(marks[-1] + step / 1000)
    return FrameTrace(kind, timestamp, 0, *marks)


def test_stages_follow_the_pipeline_and_add_up_to_the_total():
    t = trace("video", 90, 10.0, [1, 2, 3, 40, 33, 1])
    assert t.complete
    assert list(t.stage_ms()) == list(STAGES)
    assert t.stage_ms()["network"] == pytest.approx(40)
    assert t.total_ms == pytest.approx(80)
    assert sum(t.stage_ms().values()) == pytest.approx(t.total_ms)


def test_an_incomplete_trace_has_no_stages():
    t = FrameTrace("audio", 960, captured_s=1.0, sent_s=1.1)
    assert not t.complete
    assert t.total_ms is None
    with pytest.raises(ValueError, match="every stage"):
        t.stage_ms()


def test_breakdown_means_add_up_and_skip_other_kinds_and_partial_frames():
    traces = [
        trace("audio", 0, 0.0, [1, 1, 1, 10, 80, 1]),
        trace("audio", 960, 0.02, [1, 1, 1, 30, 80, 1]),
        trace("audio", 1920, 0.04, [1, 1, 1, 20, 80, 1]),
        trace("video", 0, 0.0, [5, 5, 5, 5, 5, 5]),
        FrameTrace("audio", 2880, captured_s=0.06),
    ]
    b = breakdown(traces, "audio")
    assert b.kind == "audio" and b.frames == 3
    assert b.mean_ms["network"] == pytest.approx(20)
    assert b.median_ms["network"] == pytest.approx(20)
    assert b.mean_ms["jitter buffer"] == pytest.approx(80)
    assert b.stage_sum_ms == pytest.approx(b.total_mean_ms)
    assert b.total_median_ms == pytest.approx(104)
    assert 20 < b.p95_ms["network"] <= 30
    with pytest.raises(ValueError, match="no complete video"):
        breakdown(traces[:3], "video")


def test_g114_constants():
    assert (G114_TRANSPARENT_MS, G114_PLANNING_LIMIT_MS) == (150.0, 400.0)


def fake_sender(ssrc: int, kind: str):
    transport = SimpleNamespace(sent=[])

    async def send_rtp(data: bytes) -> None:
        transport.sent.append(data)

    transport._send_rtp = send_rtp
    encoder = SimpleNamespace(encode=lambda frame, force_keyframe=False: ([b"x" * 10, b"y" * 10], frame.pts))

    async def next_encoded_frame(codec):
        return None

    sender = SimpleNamespace(
        _ssrc=ssrc,
        _RTCRtpSender__encoder=encoder,
        _next_encoded_frame=next_encoded_frame,
        transport=transport,
    )
    sender.track = SimpleNamespace(kind=kind)
    return sender, encoder


def rtp(ssrc: int, timestamp: int, seq: int) -> bytes:
    packet = RtpPacket(payload_type=96, sequence_number=seq, timestamp=timestamp, ssrc=ssrc)
    packet.payload = b"z"
    return packet.serialize()


def test_sender_hooks_join_source_encoder_and_packets_by_timestamp():
    clock = iter(x / 1000 for x in range(1000, 2000)).__next__
    probe = PipelineProbe(clock=clock)
    sender, encoder = fake_sender(1234, "video")
    probe._hook_sender(sender, "video")
    assert sender.transport._lma_timed

    async def scenario():
        await sender._next_encoded_frame(None)  # wraps the encoder that now exists
        probe._captured[("video", 3000)] = 0.5
        encoder.encode(SimpleNamespace(pts=3000))
        for seq in (1, 2):
            await sender.transport._send_rtp(rtp(1234, 3000, seq))
        await sender.transport._send_rtp(rtp(999, 3000, 7))  # another stream (RTX): ignored
        await sender.transport._send_rtp(bytes([0x80, 200]) + bytes(26))  # RTCP: ignored

    asyncio.run(scenario())
    assert probe.encoders["video"] is encoder
    assert len(sender.transport.sent) == 4  # every packet still goes out
    [t] = probe.traces()
    assert (t.kind, t.rtp_timestamp, t.source_pts, t.captured_s, t.packets_sent) == (
        "video",
        3000,
        3000,
        0.5,
        2,
    )
    assert t.captured_s < t.encode_start_s < t.encode_end_s < t.sent_s
    assert not t.complete  # nothing received yet


def test_attach_names_a_missing_aiortc_internal():
    probe = PipelineProbe()
    sender = SimpleNamespace(track=SimpleNamespace(kind="audio"), _ssrc=1)
    pc = SimpleNamespace(getSenders=lambda: [sender], getReceivers=lambda: [])
    with pytest.raises(RuntimeError, match="_RTCRtpSender__encoder"):
        probe.attach(pc, pc)


def test_mouth_to_ear_finds_a_known_delay_in_a_recording():
    rate = 48_000
    track = SpeechLikeAudioTrack(seed=3)
    asyncio.run(track.recv())  # the track starts playing: sample k is due at started_at + k / rate
    start = track.started_at
    signal = track.reference(6.0)
    recorder = AudioRecorder(max_seconds=10)
    delay_s, frame = 0.150, 960
    for k in range(0, 5 * rate, frame):
        pcm = np.round(signal[k : k + frame] * 32767).astype(np.int16).reshape(1, -1)
        audio = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        audio.sample_rate = rate
        # Sample k comes out delay_s after it was due; the recording's clock starts 10 s before the track.
        recorder.add(audio, 10.0 + k / rate + delay_s)
    delays = mouth_to_ear_ms(recorder, track, clock_offset_s=start - 10.0, after_s=start + 1.0)
    assert len(delays) >= 150  # one per 20 ms frame in the 4 s after after_s, minus the last window
    assert statistics.fmean(delays) == pytest.approx(150, abs=0.5)


def test_mouth_to_ear_needs_a_started_track():
    assert mouth_to_ear_ms(AudioRecorder(), SpeechLikeAudioTrack(), clock_offset_s=0, after_s=0) == []


@pytest.mark.parametrize(("prefetch", "capacity"), [(-1, 16), (9, 16), (4, 12), (4, 4)])
def test_jitter_prefetch_is_checked(prefetch, capacity):
    with pytest.raises(ValueError):
        set_audio_jitter_prefetch(SimpleNamespace(getReceivers=list), prefetch, capacity=capacity)


def test_jitter_prefetch_needs_an_audio_receiver():
    with pytest.raises(RuntimeError, match="no audio receiver"):
        set_audio_jitter_prefetch(SimpleNamespace(getReceivers=list), 2)


@pytest.fixture(scope="module")
def calls():
    async def scenario():
        plain = await measure_latency(seconds=2.0)
        delayed = await measure_latency(
            label="delayed", seconds=2.0, uplink=Impairment(delay_ms=80), audio_jitter_prefetch=1
        )
        return plain, delayed

    return asyncio.run(scenario())


def test_a_real_call_is_seen_at_every_stage(calls):
    plain, _ = calls
    assert plain.label == "loopback" and plain.uplink_delay_ms == 0
    for b, least in ((plain.audio, 50), (plain.video, 30)):  # 2 s of 20 ms audio, 30 fps video
        assert b.frames >= least, b.kind
        assert all(value >= 0 for value in b.mean_ms.values()), b.kind
        assert b.stage_sum_ms == pytest.approx(b.total_mean_ms)
    assert any(t.complete for t in plain.traces)
    # Independent measures agree with the timestamps: same frames by counter; audio plus Opus' lookahead.
    assert plain.glass_to_glass_ms == pytest.approx(plain.video.total_mean_ms, abs=5)
    assert plain.audio_lookahead_ms is not None and 2.5 <= plain.audio_lookahead_ms <= 30
    assert plain.codec_delay_ms is not None and -5 <= plain.codec_delay_ms <= 25
    assert plain.video_frames_lost <= 3


def test_added_delay_lands_in_the_network_stage_and_prefetch_in_the_jitter_buffer(calls):
    plain, delayed = calls
    for kind in ("audio", "video"):
        grew = getattr(delayed, kind).mean_ms["network"] - getattr(plain, kind).mean_ms["network"]
        assert 0.9 * 80 <= grew <= 1.5 * 80, kind
    assert delayed.glass_to_glass_ms - plain.glass_to_glass_ms >= 0.8 * 80
    # aiortc holds 4 audio frames (80 ms); prefetch 1 holds one, so about 60 ms less.
    shorter = plain.audio.mean_ms["jitter buffer"] - delayed.audio.mean_ms["jitter buffer"]
    assert shorter >= 35
