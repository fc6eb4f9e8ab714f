"""samples/sdk/browser_call/: headless Chromium calls an aiortc bot on 127.0.0.1 and media flows both ways, on a
loopback pair the browser itself reports; the signaling server refuses requests without the token, oversized
and malformed offers with 4xx; the sample says how to install a missing Chromium; bad arguments exit 2."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from functools import partial
from pathlib import Path
from types import ModuleType

import pytest
import sample_runner
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "samples" / "sdk" / "browser_call"
SAMPLE = FOLDER / "browser_call.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=120)
TOKEN = "t" * 22

# The candidate lines of a Chromium offer (from a real run), one per kind of address Chromium gathers.
CHROMIUM_CANDIDATES = [
    "a=candidate:158947959 1 udp 2122194687 127.0.0.1 36125 typ host generation 0 network-id 3 network-cost 50",
    "a=candidate:2806302203 1 udp 2122063615 192.0.2.2 60708 typ host generation 0 network-id 1",
    "a=candidate:610307756 1 udp 2122267903 ::1 49226 typ host generation 0 network-id 4 network-cost 50",
    "a=candidate:2008463599 1 tcp 1518214911 127.0.0.1 9 typ host tcptype active generation 0 network-id 3",
    "a=candidate:1 1 udp 2122063615 0b3c6d1e-4f2a-4a8e-9d1c-2b7e5f6a8c90.local 5000 typ host generation 0",
]


def load(name: str) -> ModuleType:
    """Import one module of the sample under a name no other test uses."""
    spec = importlib.util.spec_from_file_location(f"browser_call_{name}", FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def offer_sdp(candidates: list[str]) -> str:
    lines = [
        "v=0",
        "o=- 1 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 127.0.0.1",
        *candidates,
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
    ]
    return "\r\n".join(lines) + "\r\n"


# --- the call, end to end ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def call_output() -> str:
    result = run_sample("--seconds", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def line_after(out: str, prefix: str) -> str:
    match = re.search(rf"^\s*{re.escape(prefix)}(.*)$", out, re.MULTILINE)
    assert match, f"no line starting with {prefix!r} in:\n{out}"
    return match[1].strip()


def test_the_selected_path_is_loopback_and_only_loopback_candidates_are_used(call_output):
    pair = line_after(call_output, "selected pair (browser getStats):")
    assert re.fullmatch(
        r"127\.0\.0\.1:\d+ udp host <-> 127\.0\.0\.1:\d+ udp host, succeeded(, RTT [\d.]+ ms)?", pair
    )
    assert re.fullmatch(
        r"\d+ udp 127\.0\.0\.1", line_after(call_output, "kept by the bot before setRemoteDescription:")
    )
    assert re.fullmatch(r"\d+ udp 127\.0\.0\.1", line_after(call_output, "bot answer:"))
    offered = line_after(call_output, "browser offer:")
    assert "udp 127.0.0.1" in offered  # Chromium gathered loopback: the flag works
    assert ".local" not in call_output  # no mDNS names: the feature is off
    assert re.search(r"pairs the browser checked: .*1 from 127\.0\.0\.1 succeeded", call_output)


def test_sdp_table_shows_trickle_and_what_aiortc_answered(call_output):
    assert line_after(call_output, "trickle         offer:") == "a=ice-options:trickle"
    assert line_after(call_output, "answer: a=end-of-candidates").startswith("(every candidate")
    codecs = re.search(r"^  audio  codecs   offer:  (.*)\n\s+answer: (.*)$", call_output, re.MULTILINE)
    assert codecs and codecs[1].startswith("opus") and codecs[2].startswith("opus")
    video = re.search(r"^  video  codecs   offer:  (.*)\n\s+answer: (.*)$", call_output, re.MULTILINE)
    assert video and "VP8" in video[2] and "AV1" not in video[2] and "VP9" not in video[2]
    assert "transport-cc" not in re.search(r"video  rtcp-fb  offer:.*\n\s+answer: (.*)", call_output)[1]


def test_codecs_agree_on_both_sides_each_way(call_output):
    for kind in ("audio", "video"):
        sender, receiver = re.search(
            rf"browser -> bot  {kind}\s+(\S+) \(Chromium outbound-rtp\) / (.+) \(payload types", call_output
        ).groups()
        assert sender in receiver.split(", ")
        sender, receiver = re.search(
            rf"bot -> browser  {kind}\s+(\S+) \(first codec of aiortc's answer\) / (\S+) \(Chromium inbound-rtp\)",
            call_output,
        ).groups()
        assert sender == receiver
    assert "opus/48000/2 (Chromium outbound-rtp)" in call_output


def test_media_flows_both_ways(call_output):
    # 2 s of media: 100 audio packets of 20 ms and ~30 video frames at 15 fps would be expected; ask for far
    # less so a loaded machine still passes, but enough that a one-way call fails.
    got = re.search(r"browser -> bot  audio\s+sent (\d+) packets\s+bot decoded (\d+) frames", call_output)
    assert got and int(got[2]) >= 20 and int(got[2]) <= int(got[1]) + 5
    got = re.search(
        r"browser -> bot  video\s+sent \d+ packets, (\d+) frames \S+\s+bot decoded (\d+) frames", call_output
    )
    assert got and 5 <= int(got[2]) <= int(got[1])
    got = re.search(r"bot -> browser  audio\s+sent (\d+) packets\s+browser got (\d+) packets", call_output)
    assert got and 20 <= int(got[2]) <= int(got[1])
    got = re.search(
        r"bot -> browser  video\s+sent \d+ packets\s+browser got \d+ packets, decoded (\d+) frames, (\d+)x(\d+)",
        call_output,
    )
    assert got and int(got[1]) >= 5 and (int(got[2]), int(got[3])) == (320, 240)


def test_timeline_is_in_protocol_order(call_output):
    def ms(label: str) -> float:
        return float(line_after(call_output, label).split()[-1])

    order = [
        "offer created",
        "ICE gathering complete, offer sent",
        "answer received (server + bot)",
        "connected (ICE + DTLS): connect time",
    ]
    assert [ms(label) for label in order] == sorted(ms(label) for label in order)
    assert ms("ICE connected") <= ms("connected (ICE + DTLS): connect time")
    assert 0 <= ms("answer ready (apply offer, gather, answer)") <= ms("connected  ")


# --- the command line ----------------------------------------------------------------------------------------


def test_missing_chromium_is_one_line_saying_how_to_install_it():
    result = run_sample("--chromium", "/nonexistent/chromium")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "apt-get install chromium" in result.stderr


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--seconds", "--chromium"):
        assert option in result.stdout


@pytest.mark.parametrize("value", ["0", "31", "nan", "inf", "soon"])
def test_bad_seconds_is_a_one_line_usage_error(value):
    result = run_sample("--seconds", value)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--seconds" in errors[0]
    assert result.stdout == ""


# --- the bot's candidate filter ------------------------------------------------------------------------------


def test_filter_keeps_udp_on_127_0_0_1_only():
    bot = load("bot")
    sdp, kept, dropped = bot.keep_loopback_candidates(offer_sdp(CHROMIUM_CANDIDATES))
    assert kept == CHROMIUM_CANDIDATES[:1]
    assert dropped == CHROMIUM_CANDIDATES[1:]
    assert [line for line in sdp.splitlines() if line.startswith("a=candidate:")] == kept
    assert sdp.endswith("\r\n") and "a=ice-ufrag:abcd" in sdp


# --- the signaling server ------------------------------------------------------------------------------------


async def exchange(answerer, requests):
    """Send each (method, path, headers, body) to a fresh server; return [(status, body text)]."""
    server_module = load("server")
    server = TestServer(server_module.make_app(TOKEN, answerer), host="127.0.0.1")
    await server.start_server()
    results = []
    try:
        async with ClientSession() as session:
            for method, path, headers, body in requests:
                data = body() if callable(body) else body  # a generator is sent chunked: no Content-Length
                async with session.request(
                    method, server.make_url(path), headers=headers, data=data
                ) as response:
                    results.append((response.status, await response.text()))
    finally:
        await server.close()
    return results


def run(coroutine):
    return asyncio.run(coroutine)


async def fake_answerer(sdp: str) -> str:
    return "v=0\r\nanswer\r\n"


AUTH = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
GOOD = json.dumps({"type": "offer", "sdp": offer_sdp(CHROMIUM_CANDIDATES[:1])})


def test_every_request_needs_the_token():
    results = run(
        exchange(
            fake_answerer,
            [
                ("GET", "/", {}, None),
                ("GET", "/?token=wrong-token-of-some-length", {}, None),
                ("POST", "/offer", {"Content-Type": "application/json"}, GOOD),
                ("POST", "/offer", {**AUTH, "Authorization": "Bearer nope"}, GOOD),
                ("GET", "/nowhere", {}, None),
                ("GET", f"/?token={TOKEN}", {}, None),
            ],
        )
    )
    assert [status for status, _ in results] == [401, 403, 401, 403, 401, 200]
    assert json.loads(results[0][1])["error"].startswith("missing token")
    assert "RTCPeerConnection" in results[-1][1]  # the call page


def test_malformed_and_oversized_offers_get_4xx_with_a_reason():
    server_module = load("server")
    big = json.dumps({"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * server_module.MAX_OFFER_BYTES})

    async def chunked():
        for start in range(0, len(big), 4096):
            yield big[start : start + 4096].encode()

    results = run(
        exchange(
            fake_answerer,
            [
                ("POST", "/offer", {**AUTH, "Content-Type": "text/plain"}, GOOD),
                ("POST", "/offer", AUTH, "{not json"),
                ("POST", "/offer", AUTH, json.dumps(["offer"])),
                ("POST", "/offer", AUTH, json.dumps({"type": "answer", "sdp": "v=0"})),
                ("POST", "/offer", AUTH, json.dumps({"type": "offer", "sdp": 42})),
                ("POST", "/offer", AUTH, big),
                ("POST", "/offer", AUTH, chunked),
            ],
        )
    )
    assert [status for status, _ in results] == [415, 400, 400, 400, 400, 413, 413]
    for _, body in results:
        assert json.loads(body)["error"]


def test_an_offer_is_answered_once():
    results = run(exchange(fake_answerer, [("POST", "/offer", AUTH, GOOD), ("POST", "/offer", AUTH, GOOD)]))
    assert results[0][0] == 200
    assert json.loads(results[0][1]) == {"type": "answer", "sdp": "v=0\r\nanswer\r\n"}
    assert results[1][0] == 409


def test_the_bot_refuses_an_offer_without_a_loopback_candidate():
    bot_module = load("bot")

    async def scenario():
        bot = bot_module.Bot()
        try:
            no_loopback = json.dumps({"type": "offer", "sdp": offer_sdp(CHROMIUM_CANDIDATES[1:])})
            return await exchange(bot.answer, [("POST", "/offer", AUTH, no_loopback)])
        finally:
            await bot.close()

    [(status, body)] = run(scenario())
    assert status == 422
    assert "no UDP candidate on 127.0.0.1" in json.loads(body)["error"]


def test_token_must_be_long():
    with pytest.raises(ValueError, match="at least 16"):
        load("server").make_app("short", fake_answerer)
