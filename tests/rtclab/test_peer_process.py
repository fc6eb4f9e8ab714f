"""rtclab.peer_process: a call whose callee runs in a child process, signaled over 127.0.0.1 with a token."""

import asyncio
import json
import os
import subprocess
import sys

import pytest

from rtclab.impair import Impairment
from rtclab.loopback import candidate_addresses
from rtclab.peer_process import ProcessCall


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it is gone once its parent reaps it.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_a_two_process_call_connects_receives_and_the_child_exits():
    seen: dict[str, object] = {}

    async def scenario() -> ProcessCall:
        async with ProcessCall(
            uplink=Impairment(delay_ms=40, loss=0.1, seed=2), sample_interval=0.25
        ) as call:
            seen["pid"] = call.process.pid
            seen["addresses"] = candidate_addresses(call.caller.localDescription.sdp) + candidate_addresses(
                call.caller.remoteDescription.sdp
            )
            await call.wait_for_first_frames(timeout=8)
            await call.run(2.5)
        return call

    call = asyncio.run(scenario())
    assert set(seen["addresses"]) == {"127.0.0.1"}
    assert call.exit_code == 0
    assert not alive(seen["pid"])

    t = call.timings
    assert t.connected_ms is not None and t.connected_ms > 0
    assert t.first_audio_ms is not None and t.first_video_ms is not None
    assert t.connected_ms < t.first_video_ms < 10_000
    assert call.frames_received["video"] > 10 and call.frames_received["audio"] > 0
    for kind, times in call.frame_times.items():
        assert len(times) == call.frames_received[kind] and times == sorted(times)
        assert 0 < times[0] < times[-1] < 60

    audio, video = call.summary()
    assert (audio.kind, video.kind) == ("audio", "video")
    for summary in (audio, video):
        assert 0 < summary.packets_received <= summary.packets_sent
        assert 0.03 < summary.loss_fraction < 0.3  # 10 % uplink loss
        assert summary.rtt_ms is None or summary.rtt_ms >= 40 * 0.8  # 40 ms one way, none back
    video_received = [s.packets_received for s in call.timeline if s.kind == "video"]
    assert video_received == sorted(video_received)  # the media SSRC's count, not the RTX stream's
    assert {s.received_from for s in call.timeline if s.kind == "video"} <= {"inbound-rtp", "none"}
    assert call.links["uplink"].counters.dropped["random"] > 0


def test_a_connection_without_the_token_is_turned_away():
    async def scenario() -> tuple[bytes, ProcessCall]:
        call = ProcessCall(connect_timeout=20)
        starting = asyncio.create_task(call.start())
        while call._server is None or not call._server.sockets:
            await asyncio.sleep(0.01)
        port = call._server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(json.dumps({"type": "hello", "token": "guess"}).encode() + b"\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 5)  # closed without a word
        writer.close()
        await starting
        await call.close()
        return answer, call

    answer, call = asyncio.run(scenario())
    assert answer == b""
    assert call.timings.connected_ms is not None  # the real child still got in
    assert call.exit_code == 0


def test_start_failure_leaves_no_child(monkeypatch):
    pids = []

    async def scenario() -> None:
        call = ProcessCall(connect_timeout=0.05)  # too short for the child to even import aiortc
        with pytest.raises((TimeoutError, ConnectionError)):
            await call.start()
        pids.append(call.process.pid)
        assert call.exit_code is not None

    asyncio.run(scenario())
    assert not alive(pids[0])


def test_the_child_exits_on_its_own_when_the_parent_goes_away():
    async def scenario() -> int:
        server_ready = asyncio.get_running_loop().create_future()

        async def accept(reader, writer):
            await reader.readline()  # the hello
            writer.close()  # the "parent" goes away without a bye

        server = await asyncio.start_server(accept, "127.0.0.1", 0)
        server_ready.set_result(server.sockets[0].getsockname()[1])
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rtclab.peer_process",
            "--port",
            str(await server_ready),
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        child.stdin.write(b"token\n")
        child.stdin.close()
        try:
            code = await asyncio.wait_for(child.wait(), 30)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
            server.close()
        return code

    assert asyncio.run(scenario()) in (0, 1)


def test_the_child_without_a_token_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "rtclab.peer_process", "--port", "9"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "rtclab.peer_process: error: no token on stdin"
