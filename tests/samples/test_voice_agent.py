"""The voice agent scenario: the quick run's stage breakdown, a browser driving the agent, the turn detector,
the tokens, and the service under hostile input."""

from __future__ import annotations

import importlib.util
import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import sample_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab import tokens as rtclab_tokens
from rtclab.headlines import read_headlines

FOLDER = sample_runner.ROOT / "samples" / "scenarios" / "voice_agent"
SAMPLE = FOLDER / "voice_agent.py"


def load(name: str) -> ModuleType:
    """Import a module of the sample that imports no sibling, under a name no other test uses."""
    spec = importlib.util.spec_from_file_location(f"voice_agent_{name}", FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tokens = load("tokens")
agent = load("agent")


def value(out: str, label: str) -> float:
    """The ms column of the first report line that starts (after indentation) with ``label``."""
    line = next(line for line in out.splitlines() if line.strip().startswith(label))
    return float(re.search(r"\s(-?\d+|n/a)(?:\s{3}|$)", line[len(label) :]).group(1))


# --- the quick run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headlines_file(quick_run: subprocess.CompletedProcess[str]) -> Path:
    return sample_runner.page_headlines(SAMPLE)


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    """The run the playbook page shows, which every test below reads (with its headline figures)."""
    return sample_runner.page_run(SAMPLE)


def test_quick_run_breaks_the_response_time_into_stages(quick_run):
    out = quick_run.stdout
    assert quick_run.returncode == 0, out[-2000:] + quick_run.stderr[-3000:]
    assert "STAND-IN" in out and "first token after 300 ms" in out
    total = value(out, "total (no ASR here")
    hangover = value(out, "VAD hangover")
    llm = value(out, "LLM request -> first token")
    assert hangover >= 0.9 * 500 and llm >= 0.9 * 300  # the configured waits are really waited
    stages = [
        value(out, label)
        for label in ("uplink: user's", "VAD hangover", "reply still being", "audio queued", "downlink:")
    ]
    assert stages[0] >= -20 and all(s >= 0 for s in stages[1:])  # uplink: the last sound is inside a frame
    assert abs(sum(stages) - total) <= 0.25 * total  # medians of two turns: the stages add up to the total


def test_quick_run_prepares_the_reply_during_the_hangover(quick_run):
    out = quick_run.stdout
    started = re.search(r"preemptive: started (\d+) ms into the silence", out)
    assert started and 80 <= int(started[1]) < 500  # after the 100 ms pause, before the 500 ms hangover ends
    # the LLM's 300 ms and the hangover's 500 ms overlap: the reply is heard sooner than their sum
    assert value(out, "total (no ASR here") < value(out, "VAD hangover") + value(out, "LLM request")
    assert re.search(r"speculative replies thrown away because the user only paused: \d+", out)


def test_quick_run_stops_talking_when_the_user_barges_in(quick_run):
    out = quick_run.stdout
    assert "barge-ins it obeyed: 1 of 1" in out and "turns the agent detected: 2" in out
    barge = out[out.index("Barge-in:") :]
    total = value(barge, "total")
    # 80 ms of speech (four 20 ms frames) before it counts; the first sound may lie up to 20 ms into the first
    assert value(barge, "uplink + VAD onset") >= 80 - 20 - 20
    assert 0 < total < 1500  # flushing a queue is fast: what is left is detection and the frames in flight
    assert total < value(out, "total (no ASR here")
    dropped = re.search(r"queued agent audio dropped at the first barge-in: (\d+) ms", out)
    assert dropped and int(dropped[1]) > 0  # the reply was still queued: the flush is what silenced it


def test_quick_run_refuses_every_hostile_request_and_keeps_the_call(quick_run):
    out = quick_run.stdout
    checks = re.findall(r"^  (.+?)\s+-> (\d{3})  (.+)$", out, re.MULTILINE)
    assert len(checks) == 9
    assert all(400 <= int(status) < 500 and verdict == "ok" for _, status, verdict in checks), checks
    kept = re.search(r"kept hearing the caller: (\d+)% of real time", out)
    assert kept and int(kept[1]) >= 50
    assert "server still answering: yes" in out


def test_quick_run_writes_its_headline_figures(quick_run, headlines_file):
    out = quick_run.stdout
    assert quick_run.returncode == 0, out[-2000:] + quick_run.stderr[-3000:]
    assert f"headline figures written to {headlines_file}" in out
    scenario, mode, figures = read_headlines(headlines_file)
    assert (scenario, mode) == ("ai-agent", "quick") and 3 <= len(figures) <= 5
    by = {h.metric: h for h in figures}
    total = by["end of speech -> first agent audio"]
    assert total.target == 600 and "Retell" in total.source
    assert "no ASR" in total.conditions and "first token after 300 ms" in total.conditions
    assert abs(total.value - value(out, "total (no ASR here")) <= 0.6  # the JSON says what the table printed
    rtc = by["RTC both ways (uplink + downlink stages)"]
    assert rtc.target == 300 and 0 < rtc.value < total.value
    # per turn uplink + downlink; with one or two turns the median of sums is the sum of medians
    assert abs(rtc.value - value(out, "uplink: user's") - value(out, "downlink:")) <= 1.0
    tts = by["TTS: first phrase -> first audio"]
    assert tts.target == 350 and abs(tts.value - value(out, "TTS: espeak-ng")) <= 0.6
    barge = by["barge-in: user speech onset -> agent audio stopped"]
    barge_table = out[out.index("Barge-in:") :]
    assert barge.target is None and abs(barge.value - value(barge_table, "total")) <= 0.6
    assert all(h.unit == "ms" and h.better == "lower" for h in figures)


def test_the_knobs_move_their_own_stage():
    result = sample_runner.run_sample(
        SAMPLE,
        *("--hangover-ms", "300", "--first-token-ms", "900", "--no-preempt", "--jitter-buffer", "aiortc"),
        timeout=240,
    )
    out = result.stdout
    assert result.returncode == 0, out[-2000:] + result.stderr[-2000:]
    assert 0.9 * 300 <= value(out, "VAD hangover") < 500
    assert value(out, "LLM request -> first token") >= 0.9 * 900
    assert "The reply's own stages (started when the turn ended)" in out
    assert value(out, "reply still being prepared") >= 0.9 * 900  # nothing overlaps the LLM any more
    # aiortc's buffer releases a frame once four more have arrived: 80 ms, less the frame's own 20
    assert value(out, "uplink: user's") >= 50 and value(out, "downlink:") >= 50


def test_a_browser_with_a_fake_microphone_drives_the_agent():
    pytest.importorskip("playwright")
    result = sample_runner.run_sample(SAMPLE, "--browser", timeout=240)
    out = result.stdout
    assert result.returncode == 0, out[-2000:] + result.stderr[-3000:]
    turns = re.search(r"agent turns: (\d+), frames the agent heard: (\d+)", out)
    assert turns and int(turns[1]) >= 1 and int(turns[2]) > 100  # it heard the browser's microphone
    assert "browser heard agent audio: True" in out  # and the browser heard the reply


# --- command line --------------------------------------------------------------------------------------------


def test_help():
    result = sample_runner.run_sample(SAMPLE, "--help")
    assert result.returncode == 0
    for option in (
        "--full",
        "--rounds",
        "--browser",
        "--hangover-ms",
        "--onset-ms",
        "--first-token-ms",
        "--llm-url",
        "--preempt-after-ms",
        "--no-preempt",
        "--jitter-buffer",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--hangover-ms", "5"],
        ["--rounds", "0"],
        ["--first-token-ms", "x"],
        ["--llm-url", "https://api.openai.com/v1"],
        ["--browser-seconds", "1000"],
        ["--preempt-after-ms", "500"],  # not below the 500 ms hangover: it would never fire
        ["--jitter-buffer", "none"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    result = sample_runner.run_sample(SAMPLE, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr


# --- latency_levers.py --------------------------------------------------------------------------------------


LEVERS = FOLDER / "latency_levers.py"


@pytest.mark.parametrize("args", [["--rounds", "9"], ["--first-token-ms", "-1"]])
def test_latency_levers_refuses_bad_arguments_with_one_line(args):
    result = sample_runner.run_sample(LEVERS, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr


def test_latency_levers_table_shows_what_each_row_saved():
    from rtclab.headlines import Headline

    levers = load("latency_levers")

    def row(total: float) -> dict:
        return {
            levers.TOTAL: Headline(levers.TOTAL, total, "ms", target=600.0, source="Retell"),
            levers.RTC: Headline(levers.RTC, 40.0, "ms"),
            levers.BARGE: Headline(levers.BARGE, 120.0, "ms"),
        }

    lines = levers.table([("plain", row(1100.0)), ("adaptive", row(950.0)), ("preemptive", row(540.0))])
    assert "vs 600 ms" in lines[0]
    assert re.search(r"^plain\s+40\s+1100\s+\+83%\s+120$", lines[2])  # no saving on the first row
    assert re.search(r"^adaptive\s+40\s+950\s+150\s+\+58%", lines[3])
    assert re.search(r"^preemptive\s+40\s+540\s+410\s+-10%", lines[4])


def test_an_existing_json_file_is_refused_before_the_run(tmp_path):
    earlier = tmp_path / "earlier.json"
    earlier.write_text("somebody's earlier result\n", encoding="utf-8")
    result = sample_runner.run_sample(SAMPLE, "--json", str(earlier))
    assert result.returncode == 2 and result.stdout == ""  # refused before the server starts
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --json:" in errors[0] and "exists" in errors[0]
    assert "Traceback" not in result.stderr
    assert earlier.read_text(encoding="utf-8") == "somebody's earlier result\n"


def test_a_json_file_in_a_missing_folder_is_refused_before_the_run(tmp_path):
    result = sample_runner.run_sample(SAMPLE, "--json", str(tmp_path / "missing" / "headlines.json"))
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --json: no directory" in errors[0]
    assert not (tmp_path / "missing").exists()


# --- the agent's parts ---------------------------------------------------------------------------------------


def frames(samples: np.ndarray) -> list[bytes]:
    pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
    pcm = np.concatenate([pcm, np.zeros(-pcm.size % 960, dtype=np.int16)])
    return [chunk.tobytes() for chunk in pcm.reshape(-1, 960)]


@pytest.mark.parametrize("hangover_ms", [300, 600])
def test_the_turn_ends_one_hangover_after_the_last_voiced_frame(hangover_ms):
    from rtclab.signals import synthesize_speech

    speech = synthesize_speech("What will the weather be like in Lagos this afternoon").samples
    detector = agent.TurnDetector(agent.AgentConfig(hangover_ms=hangover_ms, preempt_after_ms=None))
    events = []
    for i, pcm in enumerate(frames(np.concatenate([np.zeros(9600), speech, np.zeros(48000)]))):
        event = detector.feed(pcm, i * 0.02)
        if event:
            events.append((event, i * 0.02))
    assert [e for e, _ in events] == ["onset", "end"]  # one turn: the pauses between words do not end it
    assert events[0][1] >= 0.2  # not during the leading silence
    assert events[1][1] - detector.last_voiced_at == pytest.approx(hangover_ms / 1000, abs=0.021)


def test_a_pause_comes_before_the_end_and_speech_resumes_it():
    from rtclab.signals import synthesize_speech

    word = synthesize_speech("Lagos").samples
    word = word[: np.flatnonzero(np.abs(word) > 0.01)[-1] + 1]  # without the silence espeak-ng adds
    gap = np.zeros(int(48000 * 0.3))  # a 300 ms pause inside the turn: longer than 100, shorter than 500
    audio = np.concatenate([np.zeros(9600), word, gap, word, np.zeros(48000)])
    detector = agent.TurnDetector(agent.AgentConfig(hangover_ms=500, preempt_after_ms=100))
    events = []
    for i, pcm in enumerate(frames(audio)):
        event = detector.feed(pcm, i * 0.02)
        if event:
            events.append((event, i * 0.02))
    assert [e for e, _ in events] == ["onset", "pause", "resume", "pause", "end"]
    assert events[-2][1] - detector.last_voiced_at == pytest.approx(0.1, abs=0.021)
    assert events[-1][1] - detector.last_voiced_at == pytest.approx(0.5, abs=0.021)


def test_a_preemptive_reply_speaks_only_once_released():
    import asyncio

    llm_standin = load("llm_standin")

    async def scenario():
        runner, url = await llm_standin.start(llm_standin.StandIn(50))
        bot = agent.Agent(agent.AgentConfig(llm_url=url))
        try:
            turn = agent.Turn(0, onset_at=0.0, last_voiced_at=1.0)
            release = asyncio.Event()
            task = asyncio.ensure_future(bot.reply(turn, release))
            for _ in range(200):  # the LLM answers and espeak-ng speaks the first phrase, then it waits
                if turn.tts_first_audio_at is not None:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.1)
            assert turn.tts_first_audio_at is not None and not bot.voice.speaking  # held back
            release.set()
            await asyncio.sleep(0.1)
            assert bot.voice.speaking  # released: the audio is queued for the encoder
            task.cancel()
            held = asyncio.ensure_future(
                bot.reply(agent.Turn(1, onset_at=0.0, last_voiced_at=1.0), asyncio.Event())
            )
            await asyncio.sleep(0.02)
            held.cancel()  # what a "resume" does: the reply is thrown away before it said anything
            await asyncio.sleep(0.1)
            assert not any(uid // 1000 == 1 for uid in bot.voice.first_sent)
        finally:
            await bot.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_silence_and_noise_never_start_a_turn():
    detector = agent.TurnDetector(agent.AgentConfig())
    quiet = np.random.default_rng(1).normal(0, 0.001, 48000 * 2)
    assert not any(detector.feed(pcm, 0) for pcm in frames(quiet))


def test_flush_silences_the_voice_at_the_next_frame():
    import asyncio

    async def scenario():
        voice = agent.AgentVoiceTrack()
        voice.speak(np.full(48000, 0.3, dtype=np.float32), utterance=1)  # one second queued
        first = await voice.recv()
        assert np.abs(first.to_ndarray()).max() > 0 and voice.speaking
        assert voice.flush() == 49
        after = await voice.recv()
        assert not np.abs(after.to_ndarray()).any() and not voice.speaking
        voice.stop()

    asyncio.run(scenario())


def test_phrases_are_cut_at_punctuation_after_a_few_words():
    split = agent.phrases()
    out = []
    for word in [
        "Hi.",
        "Here",
        "is",
        "the",
        "forecast",
        "for",
        "Lagos.",
        "It",
        "will",
        "be",
        "warm",
        "and",
        "humid",
    ]:
        out += split(word + " ")
    out += split(None)
    assert out == ["Hi. Here is the forecast for Lagos.", "It will be warm and humid"]


def test_browser_offers_keep_only_udp_loopback_candidates():
    sdp = (
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
        "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n"
        "a=candidate:2 1 udp 2122194687 10.0.0.5 50001 typ host\r\n"
        "a=candidate:3 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active\r\n"
    )
    kept, count = agent.keep_loopback_candidates(sdp)
    assert count == 1 and "10.0.0.5" not in kept and " tcp " not in kept


# --- tokens --------------------------------------------------------------------------------------------------

SECRET = b"k" * 32


def test_token_round_trip():
    token = tokens.issue_token(SECRET, "s1", "alice", "caller", 60, now=1000)
    grant = tokens.verify_token(SECRET, token, "s1", now=1059)
    assert (grant.session, grant.user, grant.role, grant.expires_at) == ("s1", "alice", "caller", 1060)


@pytest.mark.parametrize(
    ("mutate", "session", "status", "message"),
    [
        (lambda t: t, "s1", 401, "expired"),
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "s1", 401, "signature"),
        (lambda t: t + "." + t, "s1", 401, "malformed"),
        (lambda t: t + "A" * 2000, "s1", 401, "malformed"),
    ],
)
def test_bad_tokens_are_refused(mutate, session, status, message):
    token = tokens.issue_token(SECRET, "s1", "alice", "caller", 60, now=1000)
    with pytest.raises(tokens.TokenError, match=message) as refused:
        tokens.verify_token(SECRET, mutate(token), session, now=2000)
    assert refused.value.status == status


def test_a_token_opens_one_session_and_needs_the_secret():
    token = tokens.issue_token(SECRET, "s1", "alice", "caller", 60)
    with pytest.raises(tokens.TokenError) as refused:
        tokens.verify_token(SECRET, token, "s2")
    assert refused.value.status == 403
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(b"s" * 32, token, "s1")


@pytest.mark.parametrize(
    ("claims", "status", "message"),
    [
        ({"sid": "s1", "sub": "alice", "role": "admin"}, 403, "unknown role"),
        ({"sub": "alice", "role": "caller"}, 401, "malformed"),  # another service's token: no session
        ({"sid": "s1", "sub": "bad user", "role": "caller"}, 401, "malformed"),
    ],
)
def test_signed_claims_are_still_checked(claims, status, message):
    """A token signed with the right secret must still carry this scenario's claims."""
    with pytest.raises(rtclab_tokens.TokenError, match=message) as refused:  # what the servers catch
        tokens.verify_token(SECRET, rtclab_tokens.sign(SECRET, claims, 60), "s1")
    assert refused.value.status == status


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_strings_never_verify(text):
    with pytest.raises(tokens.TokenError):
        tokens.verify_token(SECRET, text, "s1")


# --- the service under hostile input -------------------------------------------------------------------------


class Server(sample_runner.ScenarioServer):
    """server.py in its own process on 127.0.0.1 (see sample_runner.ScenarioServer)."""

    def __init__(self) -> None:
        super().__init__(FOLDER / "server.py", "VOICE_AGENT")

    def token(self, session: str, user: str, role: str) -> str:
        return self.issue({"session": session, "user": user, "role": role})


@pytest.fixture(scope="module")
def server():
    running = Server()
    yield running
    running.stop()


def fake_offer() -> dict:
    return {"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\n"}


def test_each_hostile_request_gets_its_4xx(server):
    offer, turns = "/v1/sessions/s1/offer", "/v1/sessions/s1/turns"
    caller, observer = server.token("s1", "alice", "caller"), server.token("s1", "bob", "observer")
    expired = tokens.issue_token(server.secret, "s1", "old", "caller", 5, now=time.time() - 60)
    cases = [
        (server.call("POST", offer, body=fake_offer()), 401),
        (server.call("GET", turns, expired), 401),
        (server.call("GET", turns, caller[:-3] + "abc"), 401),
        (server.call("GET", turns, server.token("s2", "alice", "caller")), 403),
        (server.call("POST", offer, observer, body=fake_offer()), 403),
        (server.call("POST", "/v1/sessions/s1/hangup", observer), 403),
        (server.call("POST", offer, caller, raw=b"{not json"), 400),
        (server.call("POST", offer, caller, raw=b"[1, 2]"), 400),
        (server.call("POST", offer, caller, raw=b'{"type": "offer", "sdp": "' + b"a" * 70_000 + b'"}'), 413),
        (server.call("POST", offer, caller, body={"type": "answer", "sdp": "v=0"}), 400),
        (server.call("POST", offer, caller, body=fake_offer()), 422),  # no 127.0.0.1 candidate
        (server.call("GET", turns, caller), 404),  # no agent in this session
        (server.call("POST", "/v1/tokens", None, {"session": "s1", "user": "x", "role": "caller"}), 401),
        (server.call("POST", "/v1/tokens", server.key, {"session": "s1", "user": "x", "role": "admin"}), 400),
    ]
    for (status, body), expected in cases:
        assert status == expected, body
        assert isinstance(body.get("error"), str) and body["error"]
    assert server.call("GET", "/v1/health")[0] == 200


def test_a_flood_from_one_user_is_throttled_and_others_still_served(server):
    flooder, other = server.token("s3", "flood", "observer"), server.token("s3", "calm", "observer")
    statuses = [server.call("GET", "/v1/sessions/s3/turns", flooder)[0] for _ in range(60)]
    assert set(statuses) <= {404, 429} and statuses.count(429) > 0
    assert (
        server.call("GET", "/v1/sessions/s3/turns", other)[0] == 404
    )  # served (no agent yet), not throttled


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=50),
            lambda inner: (
                st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
            ),
            max_leaves=10,
        ).map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {"type": st.just("offer"), "sdp": st.text(max_size=500).map(lambda s: "v=0\r\n" + s)}
        ).map(lambda v: json.dumps(v).encode()),
    ),
)
def test_junk_offers_get_4xx_never_5xx(server, body):
    token = server.token(
        "junk", "fuzzer" + secrets.token_hex(3), "caller"
    )  # fresh user: under the rate limit
    status, answer = server.call("POST", "/v1/sessions/junk/offer", token, raw=body)
    assert 400 <= status < 500, answer
    assert server.call("GET", "/v1/health")[0] == 200


@pytest.mark.parametrize("args", [["--host", "0.0.0.0"], ["--llm-url", "http://10.0.0.1/v1"]])
def test_the_server_stays_on_loopback(args):
    result = subprocess.run(
        [sys.executable, str(FOLDER / "server.py"), *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "loopback" in result.stderr
