"""The team voice scenario: the quick run's report and headlines, the token, channel, gate and router rules, and a
server under hostile input."""

from __future__ import annotations

import asyncio
import base64
import fractions
import importlib.util
import json
import math
import re
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
import sample_runner
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab import tokens as rtclab_tokens
from rtclab.headlines import read_headlines

FOLDER = sample_runner.ROOT / "samples" / "scenarios" / "team_voice"
SAMPLE = FOLDER / "team_voice.py"
SIBLINGS = ("tokens", "channels", "forward", "talk", "client", "server")


def load(name: str) -> ModuleType:
    """Import a module of the sample under a name no other test uses.

    channels.py imports ``tokens`` by its plain name, as other scenario folders' modules do: while loading,
    other folders' plain-named modules are set aside, and put back afterwards.
    """
    saved = {n: sys.modules.pop(n) for n in SIBLINGS if n in sys.modules}
    sys.path.insert(0, str(FOLDER))
    try:
        spec = importlib.util.spec_from_file_location(f"team_voice_{name}", FOLDER / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(FOLDER))
        for sibling in SIBLINGS:
            sys.modules.pop(sibling, None)
        sys.modules.update(saved)


tokens = load("tokens")
channels = load("channels")
forward = load("forward")
talk = load("talk")


# --- the quick run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headlines_file(quick_run: subprocess.CompletedProcess[str]) -> Path:
    return sample_runner.page_headlines(SAMPLE)


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    """The run the playbook page shows, which every test below reads (with its headline figures)."""
    return sample_runner.page_run(SAMPLE)


def ms(out: str, label: str) -> float:
    found = re.search(rf"^  {re.escape(label)}\s+(\d+) ms", out, re.MULTILINE)
    assert found, (label, out)
    return float(found[1])


def test_quick_run_keeps_channels_apart_and_mutes_on_the_server(quick_run):
    out = quick_run.stdout
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    rows = re.findall(r"^  (.+?)\s+(hears|silent)\s+(\d+)  (ok|UNEXPECTED)$", out, re.MULTILINE)
    assert len(rows) == 5, out
    for what, expected, frames, verdict in rows:
        assert verdict == "ok", what
        assert (int(frames) > 0) if expected == "hears" else int(frames) == 0, what
    sent, made = map(int, re.search(r"push-to-talk: (\d+) of (\d+) microphone frames", out).groups())
    assert 0 < sent < made  # the key was held for part of the scene only
    vad = int(re.search(r"open mic with VAD: (\d+) % of frames sent", out)[1])
    assert 30 <= vad <= 100
    assert int(re.search(r"muted player the server dropped: (\d+)", out)[1]) > 0


def test_quick_run_recovers_from_the_handover_with_a_fresh_connection(quick_run):
    out = quick_run.stdout
    assert re.search(r"heard alice before the outage\s+yes", out)
    noticed = ms(out, "outage noticed after")
    assert 1400 <= noticed < 3000  # 1.5 s of silence, and before the 3 s outage ended
    assert int(re.search(r"rejoin attempts refused, network still down\s+(\d+)", out)[1]) >= 1
    recovery = ms(out, "recovery: outage end -> audio heard again")
    assert 0 < recovery < 10_000
    silence = ms(out, "silence bob heard in all")
    assert silence >= 0.9 * 3000  # the outage itself, at least
    assert re.search(r"server replaced his old connection\s+yes", out)


def test_quick_run_sweeps_channel_sizes(quick_run):
    out = quick_run.stdout
    rows = re.findall(
        r"^\s+(\d+)\s+(\d+|n/a)\s+(\d+|n/a)\s+([\d.]+|n/a)\s+(\d+) ms/s\s+(\d+) ms/s\s+(holds|drops)(?: \(players' process saturated\))?$",
        out,
        re.MULTILINE,
    )
    assert [int(r[0]) for r in rows] == [2, 4, 6], out
    first = rows[0]
    assert first[1] != "n/a" and 20 < int(first[1]) < 2000  # loopback: the jitter buffer's 80 ms, and more
    assert int(rows[-1][4]) > int(first[4])  # six talkers to five listeners cost the server more than two
    assert re.search(r"quality (holds at every size tried|drops at \d+ players|did not hold)", out)


def test_quick_run_refuses_every_hostile_request_and_keeps_serving(quick_run):
    out = quick_run.stdout
    checks = re.findall(r"^  (.+?)\s+-> (\d{3})  (.+)$", out, re.MULTILINE)
    assert len(checks) == 10
    assert all(400 <= int(status) < 500 and verdict == "ok" for _, status, verdict in checks), checks
    kept = re.search(r"bob kept hearing alice meanwhile: (\d+) frames, (\d+)% of real time", out)
    assert kept and int(kept[1]) > 0 and int(kept[2]) >= 30
    assert "server still answering: yes" in out


def test_quick_run_writes_its_headlines(quick_run, headlines_file):
    scenario, mode, figures = read_headlines(headlines_file)
    assert (scenario, mode) == ("team-voice", "quick")
    by_metric = {h.metric.split(",")[0]: h for h in figures}
    delay = by_metric["mouth-to-ear delay"]
    assert delay.unit == "ms" and delay.target == 150 and delay.better == "lower" and "G.114" in delay.source
    assert 0 < delay.value < 2000
    recovery = next(h for h in figures if h.metric.startswith("recovery after"))
    assert recovery.target is None and 0 < recovery.value < 10_000
    players = by_metric["players per channel before quality drops"]
    assert players.better == "higher" and players.target is None
    assert math.isnan(players.value) or players.value in (2, 4, 6)
    assert 3 <= len(figures) <= 5


# --- command line --------------------------------------------------------------------------------------------


def test_help():
    result = sample_runner.run_sample(SAMPLE, "--help")
    assert result.returncode == 0
    for option in (
        "--full",
        "--sizes",
        "--seconds",
        "--slots",
        "--blackout",
        "--dead-after",
        "--profile",
        "--json",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--sizes", "1,4"],
        ["--sizes", "two"],
        ["--sizes", "2,4,6,8,10,12,14"],
        ["--seconds", "0.5"],
        ["--slots", "9"],
        ["--profile", "moon"],
        ["--blackout", "2", "--dead-after", "2"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    result = sample_runner.run_sample(SAMPLE, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("pyproject.toml", "exists"),  # somebody's file: never overwritten
        ("no/such/folder/x.json", "no directory"),
    ],
)
def test_a_bad_json_path_is_refused_before_the_run(path, message):
    result = sample_runner.run_sample(SAMPLE, "--json", path)
    assert result.returncode == 2 and result.stdout == ""  # refused before the server starts
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --json:" in errors[0] and message in errors[0]
    assert "Traceback" not in result.stderr


# --- tokens --------------------------------------------------------------------------------------------------

SECRET = b"k" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_token_round_trip_names_match_user_role_team_and_expiry():
    token = tokens.issue_token(SECRET, "m1", "alice", "player", "red", 60, now=1000)
    grant = tokens.verify_token(SECRET, token, "m1", now=1059)
    assert (grant.match, grant.user, grant.role, grant.team, grant.expires_at) == (
        "m1",
        "alice",
        "player",
        "red",
        1060,
    )


@pytest.mark.parametrize(
    ("mutate", "status", "message"),
    [
        (lambda t: t, 401, "expired"),  # checked at now=2000
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), 401, "signature"),
        (lambda t: "x" + t, 401, "signature"),
        (lambda t: t + "." + t, 401, "malformed"),
        (lambda t: t + "A" * 2000, 401, "malformed"),
    ],
)
def test_bad_tokens_are_refused(mutate, status, message):
    token = tokens.issue_token(SECRET, "m1", "alice", "player", "red", 60, now=1000)
    with pytest.raises(tokens.TokenError, match=message) as refused:
        tokens.verify_token(SECRET, mutate(token), "m1", now=2000)
    assert refused.value.status == status


def test_a_token_opens_one_match_and_needs_the_right_secret():
    token = tokens.issue_token(SECRET, "m1", "alice", "player", "red", 60)
    with pytest.raises(tokens.TokenError, match="another match") as refused:
        tokens.verify_token(SECRET, token, "m2")
    assert refused.value.status == 403
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(b"s" * 32, token, "m1")


def test_a_team_cannot_be_edited_without_the_secret():
    payload, signature = tokens.issue_token(SECRET, "m1", "bob", "player", "red", 60).split(".")
    claims = json.loads(_unb64(payload))
    claims["team"] = "blue"
    edited = _b64(json.dumps(claims).encode()) + "." + signature
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(SECRET, edited, "m1")


@pytest.mark.parametrize(
    ("claims", "status", "message"),
    [
        ({"match": "m1", "user": "alice", "role": "coach", "team": ""}, 403, "unknown role"),
        ({"user": "alice", "role": "player", "team": "red"}, 401, "malformed"),  # another service's token
        ({"match": "m1", "user": "bad user", "role": "player", "team": "red"}, 401, "malformed"),
        ({"match": "m1", "user": "alice", "role": "player", "team": "bad team"}, 401, "malformed"),
        ({"match": "m1", "user": "alice", "role": "player"}, 401, "malformed"),  # a player with no team
    ],
)
def test_signed_claims_are_still_checked(claims, status, message):
    """A token signed with the right secret must still carry this scenario's claims."""
    with pytest.raises(rtclab_tokens.TokenError, match=message) as refused:  # what the server catches
        tokens.verify_token(SECRET, rtclab_tokens.sign(SECRET, claims, 60), "m1")
    assert refused.value.status == status


def test_an_admin_token_opens_no_team():
    grant = tokens.verify_token(SECRET, tokens.issue_token(SECRET, "m1", "ref", "admin", "", 60), "m1")
    assert (grant.role, grant.team) == ("admin", "")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_strings_never_verify(text):
    with pytest.raises(tokens.TokenError):
        tokens.verify_token(SECRET, text, "m1")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": "coach"},
        {"user": "bad user"},
        {"team": ""},
        {"role": "admin", "team": "red"},
        {"ttl_s": 0},
        {"ttl_s": 6 * 3600 + 1},  # a match's token lives 6 h at most, less than rtclab.tokens allows
    ],
)
def test_issuing_checks_its_arguments(kwargs):
    args = {"match": "m1", "user": "alice", "role": "player", "team": "red", "ttl_s": 60} | kwargs
    with pytest.raises(ValueError):
        tokens.issue_token(SECRET, **args)


# --- channels: who may join what -----------------------------------------------------------------------------


def grant(role: str = "player", team: str = "red") -> object:
    return tokens.verify_token(SECRET, tokens.issue_token(SECRET, "m1", "u", role, team, 60), "m1")


@pytest.mark.parametrize(
    ("role", "team", "channel", "talking", "allowed"),
    [
        ("player", "red", "red", True, True),
        ("player", "red", "all", True, True),
        ("player", "red", "blue", False, False),
        ("player", "red", "blue", True, False),
        ("admin", "", "blue", False, True),
        ("admin", "", "red", True, False),
    ],
)
def test_channel_access(role, team, channel, talking, allowed):
    if allowed:
        channels.require_access(grant(role, team), channel, talking=talking)
    else:
        with pytest.raises(channels.ChannelError) as refused:
            channels.require_access(grant(role, team), channel, talking=talking)
        assert refused.value.status == 403


def test_a_match_has_a_channel_per_team_plus_all_chat_and_mutes_match_wide():
    match = channels.Match("m1", ("red", "blue"), slots=2, max_per_channel=2)
    assert set(match.channels) == {"red", "blue", "all"}
    assert match.channel("red").admit("a", talking=True) is False
    assert match.channel("red").admit("a", talking=True) is True  # the same player again: a rejoin
    match.channel("red").admit("b", talking=False)
    with pytest.raises(channels.ChannelError) as full:
        match.channel("red").admit("c", talking=False)
    assert full.value.status == 409
    with pytest.raises(channels.ChannelError) as unknown:
        match.channel("green")
    assert unknown.value.status == 404
    match.set_muted("a", True)
    assert not match.audible("a") and match.audible("b")
    for user, muted in [("a", "yes"), ("bad user", True), (None, True)]:
        with pytest.raises(channels.ChannelError) as bad:
            match.set_muted(user, muted)
        assert bad.value.status == 400


@pytest.mark.parametrize("teams", [(), ("red", "red"), ("all",), ("bad team",)])
def test_match_rules(teams):
    with pytest.raises(ValueError):
        channels.Match("m1", teams)


# --- the talk gate -------------------------------------------------------------------------------------------


class FakeMicrophone(MediaStreamTrack):
    """Hands out the given 20 ms frames at once, then ends."""

    kind = "audio"

    def __init__(self, frames: list[np.ndarray]) -> None:
        super().__init__()
        self.frames = list(frames)
        self.pts = 0

    async def recv(self) -> av.AudioFrame:
        if not self.frames:
            raise MediaStreamError
        pcm = np.round(np.clip(self.frames.pop(0), -1, 1) * 32767).astype(np.int16).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.pts, fractions.Fraction(1, 48000)
        self.pts += 960
        return frame


def speech(frames: int) -> list[np.ndarray]:
    from rtclab.signals import SpeechLikeSignal

    signal = SpeechLikeSignal(seed=4, level=0.4)
    return [signal.read(960) for _ in range(frames)]


def drain(gate: object) -> int:
    async def run() -> int:
        sent = 0
        try:
            while True:
                await gate.recv()
                sent += 1
        except MediaStreamError:
            return sent

    return asyncio.run(run())


def test_vad_passes_speech_and_swallows_silence():
    silence = [np.zeros(960, dtype=np.float32)] * 50
    assert drain(talk.TalkGate(FakeMicrophone(silence), "vad")) == 0
    voiced = speech(100)
    sent = drain(talk.TalkGate(FakeMicrophone(voiced), "vad", hangover_ms=0))
    assert 30 <= sent <= 100


def test_push_to_talk_sends_only_while_held_plus_the_hangover():
    gate = talk.TalkGate(FakeMicrophone(speech(40)), "ptt", hangover_ms=100)
    assert drain(gate) == 0 and gate.frames_in == 40  # never pressed: nothing goes out
    gate = talk.TalkGate(FakeMicrophone(speech(40)), "ptt", hangover_ms=100)
    gate.press()

    async def talk_then_release() -> int:
        for _ in range(10):
            await gate.recv()
        gate.release()
        sent = 10
        try:
            while True:
                await gate.recv()
                sent += 1
        except MediaStreamError:
            return sent

    assert asyncio.run(talk_then_release()) == 10 + 5  # 100 ms of hangover: five more frames
    assert drain(talk.TalkGate(FakeMicrophone(speech(20)), "open")) == 20
    assert drain(talk.TalkGate(FakeMicrophone(speech(20)), "off")) == 0
    with pytest.raises(ValueError):
        talk.TalkGate(FakeMicrophone([]), "shout")


# --- the router ----------------------------------------------------------------------------------------------


class Slot:
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def put(self, payload: bytes) -> None:
        self.packets.append(payload)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def router_with(listeners: list[str], slots: int, muted: set[str] | None = None):
    clock, muted = Clock(), muted if muted is not None else set()
    router = forward.TalkerRouter(lambda user: user not in muted, clock)
    tracks = {user: [Slot() for _ in range(slots)] for user in listeners}
    for user, mine in tracks.items():
        router.add_listener(user, mine)
    return router, tracks, clock, muted


def talk_for(router, clock, senders: dict, seconds: float, level: int = 30) -> None:
    for _ in range(int(seconds / 0.02)):
        clock.now += 0.02
        for on_packet in senders.values():
            on_packet(b"opus", level)


def heard(tracks: dict, listener: str) -> int:
    return sum(len(slot.packets) for slot in tracks[listener])


def test_the_router_forwards_to_the_others_and_never_back():
    router, tracks, clock, _ = router_with(["a", "b", "c"], slots=2)
    senders = {"a": router.add_talker("a")}
    talk_for(router, clock, senders, 1.0)
    assert heard(tracks, "a") == 0
    assert heard(tracks, "b") == heard(tracks, "c") == 50  # from the first packet on
    assert router.counters.forwarded == 50


def test_a_full_set_of_slots_keeps_its_talkers_until_one_goes_idle():
    router, tracks, clock, _ = router_with(["a", "b", "c", "d"], slots=1)
    senders = {"a": router.add_talker("a"), "b": router.add_talker("b")}
    talk_for(router, clock, {"a": senders["a"]}, 0.5)
    talk_for(router, clock, senders, 0.5, level=10)  # b is louder, but a holds d's only slot
    assert router.slots["d"] == ["a"]
    talk_for(router, clock, {"b": senders["b"]}, 1.5, level=10)  # a went quiet for over a second
    router.reselect()
    assert router.slots["d"] == ["b"]


def test_muted_flooding_and_oversized_packets_stop_at_the_router():
    router, tracks, clock, muted = router_with(["a", "b"], slots=1)
    on_a = router.add_talker("a")
    muted.add("a")
    talk_for(router, clock, {"a": on_a}, 1.0)
    assert heard(tracks, "b") == 0 and router.counters.dropped_muted == 50
    muted.clear()
    for _ in range(500):  # a modified client sends 500 packets at once
        on_a(b"opus", 30)
    assert router.counters.dropped_flood >= 450 and heard(tracks, "b") <= forward.PACKET_BURST
    clock.now += 1.0
    on_a(b"x" * (forward.MAX_OPUS_BYTES + 1), 30)
    assert router.counters.dropped_oversize == 1


# --- the server under hostile input --------------------------------------------------------------------------


class Server(sample_runner.ScenarioServer):
    """server.py in its own process on 127.0.0.1 (see sample_runner.ScenarioServer)."""

    def __init__(self) -> None:
        super().__init__(FOLDER / "server.py", "TEAM_VOICE")

    def token(self, user: str, team: str = "red", role: str = "player", match: str = "m1") -> str:
        return self.issue({"match": match, "user": user, "role": role, "team": team})


@pytest.fixture(scope="module")
def server():
    running = Server()
    status, _ = running.call("POST", "/v1/matches", running.key, {"match": "m1", "teams": ["red", "blue"]})
    assert status == 201
    yield running
    running.stop()


def offer(directions: list[str]) -> dict:
    head = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    section = "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
    return {"type": "offer", "sdp": head + "".join(f"{section}a={d}\r\n" for d in directions)}


def test_each_hostile_request_gets_its_4xx(server):
    red = "/v1/matches/m1/channels/red"
    alice, carol = server.token("alice"), server.token("carol", "blue")
    ref = server.token("ref", "", "admin")
    expired = tokens.issue_token(server.secret, "m1", "old", "player", "red", 5, now=time.time() - 60)
    elsewhere = server.token("alice", match="m9")
    cases = [
        (server.call("POST", f"{red}/join", body=offer(["recvonly"] * 3)), 401),
        (server.call("GET", red, expired), 401),
        (server.call("GET", red, alice[:-3] + "abc"), 401),
        (server.call("GET", red, elsewhere), 403),  # a token for another match
        (server.call("GET", red, carol), 403),  # blue's token on red's channel
        (server.call("GET", "/v1/matches/m1/channels/green", alice), 403),  # no team of hers
        (server.call("GET", "/v1/matches/m1/channels/green", ref), 404),  # an admin sees it does not exist
        (server.call("POST", f"{red}/join", alice, raw=b"{not json"), 400),
        (server.call("POST", f"{red}/join", alice, raw=b"[1, 2]"), 400),
        (server.call("POST", f"{red}/join", alice, raw=b'{"type": "offer", "sdp": "' + b"a" * 70_000 + b'"}'), 413),
        (server.call("POST", f"{red}/join", alice, body=offer(["recvonly"])), 400),  # the channel sends 3
        (server.call("POST", f"{red}/join", alice, body=offer(["sendrecv", "recvonly", "recvonly"])), 400),
        (server.call("POST", f"{red}/join", ref, body=offer(["sendonly"] + ["recvonly"] * 3)), 403),
        (server.call("POST", f"{red}/leave", alice), 403),  # not in the channel
        (server.call("POST", "/v1/matches/m1/mute", alice, {"user": "carol", "muted": True}), 403),
        (server.call("POST", "/v1/matches", alice, {"match": "m9", "teams": ["x"]}), 401),  # not the backend
        (server.call("POST", "/v1/tokens", None, {"match": "m1", "user": "x", "role": "admin"}), 401),
        (server.call("POST", "/v1/tokens", server.key, {"match": "m1", "user": "x", "role": "player", "team": "green"}), 400),
        (server.call("POST", "/v1/matches", server.key, {"match": "m1", "teams": ["red"]}), 409),
        (server.call("GET", "/v1/nowhere", server.key), 404),
    ]  # fmt: skip
    for index, ((status, body), expected) in enumerate(cases):
        assert status == expected, (index, body)
        assert isinstance(body.get("error"), str) and body["error"]
    assert server.call("GET", "/v1/health")[0] == 200


def test_a_flood_from_one_player_is_throttled_and_others_still_served(server):
    flooder, other = server.token("flood"), server.token("calm")
    statuses = [server.call("GET", "/v1/matches/m1/channels/red", flooder)[0] for _ in range(60)]
    assert set(statuses) <= {200, 429} and statuses.count(429) > 0
    assert server.call("GET", "/v1/matches/m1/channels/red", other)[0] == 200  # the limit is per player
    forged = [server.call("GET", "/v1/matches/m1/channels/red", "x.y")[0] for _ in range(60)]
    assert set(forged) <= {401, 429} and 429 in forged  # forged-token floods are throttled by address


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
        ).map(lambda value: json.dumps(value).encode()),
        st.fixed_dictionaries(
            {"type": st.just("offer"), "sdp": st.text(max_size=500).map(lambda s: "v=0\r\n" + s)}
        ).map(lambda value: json.dumps(value).encode()),
    ),
    path=st.sampled_from(["channels/red/join", "channels/all/join", "channels/red/leave", "mute"]),
)
def test_junk_bodies_get_4xx_never_5xx(server, body, path):
    token = server.token("fuzzer")  # a fresh token each time: no player joins from junk
    status, answer = server.call("POST", f"/v1/matches/m1/{path}", token, raw=body)
    assert 400 <= status < 500, answer
    time.sleep(0.1)  # stay under the per-player rate limit, so each body reaches the checks behind it


def test_during_a_flood_every_accepted_mute_is_applied(server):
    """The admin mutes and unmutes while another player floods: no accepted command is lost."""
    from concurrent.futures import ThreadPoolExecutor

    ref, flooder = server.token("ref2", "", "admin"), server.token("flood2")
    with ThreadPoolExecutor(max_workers=4) as pool:
        flood = pool.map(lambda _: server.call("GET", "/v1/matches/m1/channels/red", flooder)[0], range(80))
        for i in range(8):
            muted = i % 2 == 0
            status, answer = server.call("POST", "/v1/matches/m1/mute", ref, {"user": "dave", "muted": muted})
            assert status == 200 and answer["muted"] is muted
            _, state = server.call("GET", "/v1/matches/m1/channels/all", ref)
            assert ("dave" in state["muted"]) is muted
        statuses = list(flood)
    assert 429 in statuses and set(statuses) <= {200, 429}
    status, answer = server.call("POST", "/v1/matches/m1/mute", server.key, {"user": "dave", "muted": False})
    assert status == 200  # the game backend may mute too, with its key
    assert server.call("GET", "/v1/health")[0] == 200 and server.proc.poll() is None


def test_the_server_refuses_a_non_loopback_bind():
    result = subprocess.run(
        [sys.executable, str(FOLDER / "server.py"), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
