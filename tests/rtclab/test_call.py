"""rtclab.call.LoopbackCall: connects over loopback, receives both kinds, samples stats, shuts down cleanly."""

import asyncio
import gc
import logging
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import pytest

from rtclab.call import LoopbackCall
from rtclab.encoders import VideoEncoderSettings
from rtclab.loopback import candidate_addresses


def test_short_call_connects_receives_and_samples(caplog):
    seen: dict[str, list[str]] = {}
    leftovers: list[asyncio.Task] = []

    async def scenario() -> LoopbackCall:
        async with LoopbackCall(sample_interval=0.2) as call:
            for name, pc in (("caller", call.caller), ("callee", call.callee)):
                ice = pc.getTransceivers()[0].sender.transport.transport
                seen[name] = [c.ip for c in ice.iceGatherer.getLocalCandidates()]
                seen[name] += [c.ip for c in ice.getRemoteCandidates()]
                seen[name] += candidate_addresses(pc.localDescription.sdp)
            await call.wait_for_first_frames(timeout=5)
            await call.run(1.5)
        leftovers.extend(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
        return call

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        call = asyncio.run(scenario())
        gc.collect()

    assert seen["caller"] and seen["callee"]
    assert {ip for ips in seen.values() for ip in ips} == {"127.0.0.1"}

    t = call.timings
    assert t.connected_ms is not None and t.first_audio_ms is not None and t.first_video_ms is not None
    assert 0 < t.connected_ms < 5000
    assert t.connected_ms < t.first_video_ms < 5000
    assert t.connected_ms < t.first_audio_ms < 5000
    # The parts of connecting, in the order they happen.
    assert 0 < t.caller_gathering_ms < t.connected_ms and 0 < t.callee_gathering_ms < t.connected_ms
    assert t.caller_gathering_ms < t.ice_checking_ms < t.ice_completed_ms <= t.connected_ms + 1
    assert t.ice_checking_ms < t.dtls_connecting_ms < t.dtls_connected_ms <= t.connected_ms + 1
    assert t.ice_ms == pytest.approx(t.ice_completed_ms - t.ice_checking_ms)
    assert 0 < t.dtls_ms < t.connected_ms
    assert call.codecs == {"audio": "audio/opus", "video": "video/VP8"}
    assert call.recording is None and call.encoders == {}
    assert call.frames_received["audio"] > 10
    assert call.frames_received["video"] > 10
    first_ms = {"audio": t.first_audio_ms, "video": t.first_video_ms}
    assert set(call.frame_times) == {"audio", "video"}
    for kind, times in call.frame_times.items():
        assert len(times) == call.frames_received[kind]
        assert times == sorted(times) and times[-1] < 10
        assert times[0] * 1000 == pytest.approx(first_ms[kind])

    kinds = {s.kind for s in call.timeline}
    assert kinds == {"audio", "video"}
    times = [s.at_s for s in call.timeline if s.kind == "audio"]
    assert times == sorted(times) and len(times) >= 5
    assert times[-1] > 1.5  # the last sample is taken when the call closes

    audio, video = call.summary()
    for summary in (audio, video):
        assert summary.packets_received > 0
        assert summary.bitrate_kbps is not None and summary.bitrate_kbps > 0
        assert summary.jitter_ms is not None and summary.jitter_ms < 100
        assert summary.rtt_ms is None or 0 < summary.rtt_ms < 100
    assert audio.packets_sent >= audio.packets_received

    assert leftovers == []
    assert "Task was destroyed" not in caplog.text
    assert call.caller.connectionState == call.callee.connectionState == "closed"


def test_close_twice_is_harmless():
    async def scenario() -> None:
        call = LoopbackCall()
        await call.start()
        await call.close()
        await call.close()
        with pytest.raises(RuntimeError):
            await call.start()

    asyncio.run(scenario())


def test_a_failed_start_closes_both_peers(monkeypatch, caplog):
    def refuse(sdp: str) -> None:
        raise ValueError("refused for the test")

    monkeypatch.setattr("rtclab.call.check_loopback_sdp", refuse)
    call = LoopbackCall()

    async def scenario(call: LoopbackCall) -> None:
        with pytest.raises(ValueError, match="refused for the test"):
            await call.start()
        await asyncio.sleep(0.1)

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        asyncio.run(scenario(call))
        assert call.caller.connectionState == call.callee.connectionState == "closed"
        assert call.timeline == []
        del call  # an unretrieved future exception is only reported when it is collected
        gc.collect()
    assert caplog.text == ""


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_interval": 0},
        {"sample_interval": 61},
        {"connect_timeout": 0},
        {"audio_codec": "VP8"},
        {"video_codec": "AV1"},
        {"record_seconds": 0},
    ],
)
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        LoopbackCall(**kwargs)


def test_chosen_codecs_tuned_encoder_and_recording():
    settings = VideoEncoderSettings(max_kbps=150, h264_preset="ultrafast")

    async def scenario() -> LoopbackCall:
        call = LoopbackCall(audio_codec="PCMU", video_codec="H264", video_encoder=settings, record_seconds=10)
        async with call:
            await call.wait_for_first_frames(timeout=5)
            await call.run(2.5)
        return call

    call = asyncio.run(scenario())
    assert call.codecs == {"audio": "audio/PCMU", "video": "video/H264"}
    encoder = call.encoders["video"]
    assert encoder.settings is settings and encoder.max_bitrate == 150_000
    assert encoder.stats.frames > 30 and encoder.stats.ms_per_frame > 0  # aiortc really used it

    video = call.video_report()
    assert video.frames_sent > 30
    assert video.frames_delivered >= 0.8 * video.frames_sent
    assert call.recording.video.readable_fraction > 0.9
    assert 0 < video.median_delay_ms < 1000
    assert video.freezes.events == ()

    audio = call.recording.audio
    assert 1.5 < audio.duration_s < 4 and audio.samples.dtype.name == "float32"
    alignment, delay_ms = call.align_audio()
    assert alignment.correlation > 0.8  # G.711 keeps the waveform
    assert 0 < delay_ms < 1000
    first = audio.arrival_s[0] * 1000
    assert first == pytest.approx(call.timings.first_audio_ms, abs=1)


def test_a_bitrate_cap_lowers_the_video_bitrate():
    async def video_kbps(settings: VideoEncoderSettings | None) -> float:
        async with LoopbackCall(video_encoder=settings, sample_interval=0.5) as call:
            await call.wait_for_first_frames(timeout=5)
            await call.run(2.5)
        return next(s for s in call.summary() if s.kind == "video").bitrate_kbps

    free = asyncio.run(video_kbps(None))
    capped = asyncio.run(video_kbps(VideoEncoderSettings(target_kbps=40, max_kbps=40)))
    assert capped < 0.6 * free
    assert capped < 40 * 2  # packet headers and the first keyframe on top of the cap


def test_reports_need_a_recording():
    call = LoopbackCall()
    with pytest.raises(RuntimeError, match="record_seconds"):
        call.video_report()
    with pytest.raises(RuntimeError, match="record_seconds"):
        call.align_audio()


def test_closing_leaves_no_pending_task_or_open_transport(caplog):
    # asyncio's debug mode reports tasks destroyed while pending, never-retrieved exceptions and slow
    # callbacks; warnings "always" makes every ResourceWarning (unclosed transport, socket) visible.
    async def scenario() -> None:
        async with LoopbackCall(record_seconds=5, audio_codec="G722") as call:
            await call.wait_for_first_frames(timeout=5)
            await call.run(1)

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG, logger="asyncio"):
        warnings.simplefilter("always")
        asyncio.run(scenario(), debug=True)
        gc.collect()
    resource = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert resource == []
    for message in ("Task was destroyed", "never retrieved", "unclosed", "Event loop is closed"):
        assert message not in caplog.text


def _can_make_network_namespace() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("ip"):
        return False
    return subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_make_network_namespace(), reason="needs root, unshare and ip")
def test_call_connects_where_lo_is_the_only_interface():
    # A fresh network namespace holds only `lo`: without loopback_only() aioice would gather nothing there.
    program = textwrap.dedent(
        """
        import asyncio
        from rtclab.call import LoopbackCall

        async def main():
            async with LoopbackCall() as call:
                await call.wait_for_first_frames(timeout=5)
            print("ok", call.frames_received["audio"] > 0, call.frames_received["video"] > 0)

        asyncio.run(main())
        """
    )
    script = 'ip link set lo up && exec "$0" -c "$1"'
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, sys.executable, program],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok True True"
