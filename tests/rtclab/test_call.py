"""rtclab.call.LoopbackCall: connects over loopback, receives both kinds, samples stats, shuts down cleanly."""

import asyncio
import gc
import logging
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from rtclab.call import LoopbackCall
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


@pytest.mark.parametrize("kwargs", [{"sample_interval": 0}, {"sample_interval": 61}, {"connect_timeout": 0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        LoopbackCall(**kwargs)


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
