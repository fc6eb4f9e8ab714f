"""samples/support/rtcstats_collector.py: a client with the token gets its entries stored in rtcstats-server's line
format; a wrong or missing token is refused before the upgrade; an oversized message closes the socket with 1009;
an existing dump is never overwritten; a non-loopback --host or a missing token exits 2 without a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import aiohttp
import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "support" / "rtcstats_collector.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=30)
MAX_MESSAGE = 4096
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
)


class Collector:
    """The collector in its own process on 127.0.0.1 with a fresh token; its printed lines land in `lines`."""

    def __init__(self, out: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        self.out = out
        env = {**os.environ, "RTCSTATS_TOKEN": self.token}
        command = [sys.executable, str(SAMPLE), "--port", "0", "--out", str(out)]
        command += ["--max-message-bytes", str(MAX_MESSAGE)]
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:"), line
        self.url = line.removeprefix("listening on http://")
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def closed_line(self) -> str:
        """The line the collector prints when a session ends."""
        return self.lines.get(timeout=10)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    running = Collector(tmp_path_factory.mktemp("dumps"))
    yield running
    running.stop()


def entry(method: str, pc_id: str | None, payload: object, seq: int) -> str:
    """What @jitsi/rtcstats puts in `data`: the JSON text of [method, pcId, payload, timestamp, seq]."""
    return json.dumps([method, pc_id, payload, 1765100000000 + seq, seq])


async def talk(
    url: str, messages: list[dict], headers: dict[str, str] | None = None, *, server_closes: bool = False
) -> tuple[dict, int | None]:
    """Connect as the rtcstats client does, send `messages`, return the server's first message and close code.

    With `server_closes`, wait for the server to close the socket instead of closing it.
    """
    headers = {"User-Agent": USER_AGENT, **(headers or {})}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, protocols=["3.1_STANDARD"], headers=headers) as ws,
    ):
        hello = await ws.receive_json(timeout=5)
        for message in messages:
            await ws.send_str(json.dumps(message))
        if server_closes:
            await ws.receive(timeout=5)
        await ws.close()
        return hello, ws.close_code


def session(session_id: str, *extra: dict) -> list[dict]:
    getstats = {"RTCTransport_0_1": {"type": "transport", "bytesSent": 1200}, "timestamp": 1765100000500}
    return [
        {"statsSessionId": session_id, "type": "identity", "data": ["identity", None, {"room": "r"}, 1, 1]},
        {"statsSessionId": session_id, "type": "stats-entry", "data": entry("create", "PC_0", {}, 2)},
        {"statsSessionId": session_id, "type": "keepalive"},
        {"statsSessionId": session_id, "type": "stats-entry", "data": entry("getstats", "PC_0", getstats, 3)},
        *extra,
    ]


def test_a_session_with_the_token_is_stored_one_json_array_per_line(collector: Collector):
    url = f"ws://{collector.url}/{collector.token}/my-room?statsSessionId=good-1"
    hello, _ = asyncio.run(talk(url, session("good-1")))
    assert hello == {"type": "sn", "body": {"value": 0, "state": "initial"}}  # the client waits for this
    assert collector.closed_line().startswith("session good-1: 3 entries, ")
    lines = [json.loads(line) for line in (collector.out / "good-1.rtcstats").read_text().splitlines()]
    info = lines[0]  # the metadata object: the connection's details and the client's identity data
    assert info["identity"] == {"room": "r"} and info["statsSessionId"] == "good-1"
    assert info["userAgent"] == USER_AGENT and info["clientProtocol"] == "3.1_STANDARD"
    assert info["path"] == "/my-room" and collector.token not in json.dumps(lines)
    assert lines[1] == ["identity", None, {"room": "r"}, 1, 1]
    assert lines[2][:3] == ["create", "PC_0", {}]
    assert lines[3][0] == "getstats" and lines[3][2]["RTCTransport_0_1"]["bytesSent"] == 1200  # parsed back


def test_string_payloads_stay_strings_even_empty_ones(collector: Collector):
    # @jitsi/rtcstats sends "" for createOfferOnSuccess when it does not send SDPs: a plain string, not JSON.
    strings = [
        {
            "statsSessionId": "str-1",
            "type": "stats-entry",
            "data": entry("createOfferOnSuccess", "PC_0", "", 4),
        },
        {"statsSessionId": "str-1", "type": "stats-entry", "data": entry("addTrack", "PC_0", "[not json", 5)},
    ]
    asyncio.run(talk(f"ws://{collector.url}/{collector.token}/room?statsSessionId=str-1", strings))
    assert collector.closed_line().startswith("session str-1: 2 entries, ")
    lines = [json.loads(line) for line in (collector.out / "str-1.rtcstats").read_text().splitlines()]
    assert [line[2] for line in lines[1:]] == ["", "[not json"]


def test_a_bearer_header_works_too(collector: Collector):
    url = f"ws://{collector.url}/other-room?statsSessionId=bearer-1"
    asyncio.run(talk(url, session("bearer-1"), {"Authorization": f"Bearer {collector.token}"}))
    assert collector.closed_line().startswith("session bearer-1: 3 entries")


@pytest.mark.parametrize("path", ["/wrong-token-0123456789/room", "/", "/room"])
def test_a_wrong_or_missing_token_is_refused_before_the_upgrade(collector: Collector, path: str):
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        asyncio.run(talk(f"ws://{collector.url}{path}?statsSessionId=bad-1", []))
    assert refused.value.status == 403
    assert not (collector.out / "bad-1.rtcstats").exists()


def test_an_oversized_message_closes_the_session_with_1009(collector: Collector):
    huge = {
        "statsSessionId": "big-1",
        "type": "stats-entry",
        "data": entry("getstats", "PC_0", "x" * 5000, 9),
    }
    url = f"ws://{collector.url}/{collector.token}/room?statsSessionId=big-1"
    _, code = asyncio.run(talk(url, [huge], server_closes=True))
    assert code == 1009
    assert "0 entries" in collector.closed_line()
    assert len((collector.out / "big-1.rtcstats").read_text().splitlines()) == 1  # only the metadata line


def test_an_existing_dump_is_never_overwritten(collector: Collector):
    earlier = collector.out / "again-1.rtcstats"
    earlier.write_text("an earlier session\n")
    asyncio.run(
        talk(f"ws://{collector.url}/{collector.token}/room?statsSessionId=again-1", session("again-1"))
    )
    assert collector.closed_line().endswith("again-1_1.rtcstats")
    assert earlier.read_text() == "an earlier session\n"
    assert len((collector.out / "again-1_1.rtcstats").read_text().splitlines()) == 4


def test_an_unsafe_session_id_gets_a_generated_file_name(collector: Collector):
    url = f"ws://{collector.url}/{collector.token}/room?statsSessionId=..%2F..%2Fescape"
    asyncio.run(talk(url, session("x")))
    name = Path(collector.closed_line().rsplit(" -> ", 1)[1])
    assert name.parent == collector.out and len(name.stem) == 32  # a uuid, inside --out


def test_a_host_outside_loopback_exits_2_with_one_line():
    result = run_sample("--host", "0.0.0.0")
    assert result.returncode == 2
    assert "not a loopback address" in result.stderr and "Traceback" not in result.stderr


def test_no_token_exits_2_with_one_line(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("RTCSTATS_TOKEN", raising=False)
    result = run_sample()
    assert result.returncode == 2
    assert "RTCSTATS_TOKEN" in result.stderr.splitlines()[-1] and "Traceback" not in result.stderr
