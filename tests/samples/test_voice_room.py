"""The voice room scenario: the quick run's report, the token and room rules, and a server under hostile input."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest
import sample_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab import tokens as rtclab_tokens
from rtclab.headlines import read_headlines

FOLDER = sample_runner.ROOT / "samples" / "scenarios" / "voice_room"
SAMPLE = FOLDER / "voice_room.py"


def load(name: str) -> ModuleType:
    """Import a module of the sample that imports no sibling, under a name no other test uses."""
    spec = importlib.util.spec_from_file_location(f"voice_room_{name}", FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


tokens = load("tokens")
rooms = load("rooms")
client = load("client")


# --- the quick run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headlines_file(quick_run: subprocess.CompletedProcess[str]) -> Path:
    return sample_runner.page_headlines(SAMPLE)


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    """The run the playbook page shows, which every test below reads (with its headline figures)."""
    return sample_runner.page_run(SAMPLE)


def cells(out: str, label: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith(label))
    return line[34:].split()[-2:]  # the forward and mix columns


def test_quick_run_measures_both_modes(quick_run):
    out = quick_run.stdout
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    assert "1 host + 1 speaker(s) + 2 audience" in out
    join = [float(v) for v in cells(out, "join: token -> first audio")]
    assert all(0 < v < 5000 for v in join)  # the published target, with the whole margin of a loaded machine
    pesq = [float(v) for v in cells(out, "host's voice, PESQ-WB")]
    assert all(3.0 <= v <= 4.64 for v in pesq), pesq  # clean loopback: Opus alone cannot push it below 3
    delay = [float(v) for v in cells(out, "delay via server")]
    assert all(0 < v < 1000 for v in delay)
    forward_cpu, mix_cpu = (float(v) for v in cells(out, "server CPU"))
    assert 0 < forward_cpu < mix_cpu  # decoding, summing and re-encoding costs more than copying packets
    assert re.search(r"^muted speakers still heard\s.*\s0 frames\s+n/a$", out, re.MULTILINE)


def test_the_mixer_buffer_is_what_mix_mode_adds(quick_run):
    assert "mix mode buffers each speaker with adaptive" in quick_run.stdout
    fixed = sample_runner.run_sample(SAMPLE, "--modes", "mix", "--mixer-buffer", "aiortc", "--seconds", "3")
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert "mix mode buffers each speaker with aiortc" in fixed.stdout
    adaptive_delay = float(cells(quick_run.stdout, "delay via server")[1])
    fixed_delay = float(cells(fixed.stdout, "delay via server")[1])
    # aiortc's buffer holds four 20 ms frames before it decodes; the adaptive one about as much as the jitter
    assert fixed_delay - adaptive_delay >= 30, (adaptive_delay, fixed_delay)


def test_quick_run_refuses_every_hostile_request_and_keeps_serving(quick_run):
    out = quick_run.stdout
    checks = re.findall(r"^  (.+?)\s+-> (\d{3})  (.+)$", out, re.MULTILINE)
    assert len(checks) == 9
    assert all(400 <= int(status) < 500 and verdict == "ok" for _, status, verdict in checks), checks
    kept = re.search(r"kept its audio: (\d+) frames, (\d+)% of real time", out)
    assert kept and int(kept[1]) > 0 and int(kept[2]) >= 50
    assert "server still answering: yes" in out


def test_quick_run_writes_its_headline_figures(quick_run, headlines_file):
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    assert f"headline figures written to {headlines_file}" in quick_run.stdout
    scenario, mode, figures = read_headlines(headlines_file)
    assert (scenario, mode) == ("voice-room", "quick") and 3 <= len(figures) <= 5
    by = {h.metric: h for h in figures}
    join = by["join: token request -> first audio"]
    assert join.unit == "ms" and join.target == 5000 and join.better == "lower" and 0 < join.value < 5000
    for column, mode_name in enumerate(("forward", "mix")):  # the JSON says what the table printed
        pesq = by[f"host's voice, PESQ-WB ({mode_name})"]
        delay = by[f"delay through the server ({mode_name})"]
        assert pesq.target is None and pesq.better == "higher" and 1.0 <= pesq.value <= 4.64  # the scale
        assert delay.target == 150 and delay.unit == "ms" and 0 < delay.value < 1000
        assert abs(pesq.value - float(cells(quick_run.stdout, "host's voice, PESQ-WB")[column])) <= 0.006
        assert abs(delay.value - float(cells(quick_run.stdout, "delay via server")[column])) <= 0.6
    assert all(h.source for h in figures) and "loopback" in by["delay through the server (mix)"].conditions


# --- command line --------------------------------------------------------------------------------------------


def test_help():
    result = sample_runner.run_sample(SAMPLE, "--help")
    assert result.returncode == 0
    options = (
        "--full",
        "--speakers",
        "--audience",
        "--seconds",
        "--top-k",
        "--modes",
        "--profile",
        "--mixer-buffer",
    )
    for option in options:
        assert option in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--seconds", "0.5"],
        ["--audience", "x"],
        ["--modes", "broadcast"],
        ["--profile", "moon"],
        ["--speakers", "0"],
        ["--mixer-buffer", "none"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    result = sample_runner.run_sample(SAMPLE, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr


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


# --- tokens --------------------------------------------------------------------------------------------------

SECRET = b"k" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_token_round_trip_names_room_user_role_and_expiry():
    token = tokens.issue_token(SECRET, "r1", "alice", "speaker", 60, now=1000)
    grant = tokens.verify_token(SECRET, token, "r1", now=1059)
    assert (grant.room, grant.user, grant.role, grant.expires_at) == ("r1", "alice", "speaker", 1060)


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
    token = tokens.issue_token(SECRET, "r1", "alice", "host", 60, now=1000)
    with pytest.raises(tokens.TokenError, match=message) as refused:
        tokens.verify_token(SECRET, mutate(token), "r1", now=2000)
    assert refused.value.status == status


def test_a_token_opens_one_room_and_needs_the_right_secret():
    token = tokens.issue_token(SECRET, "r1", "alice", "host", 60)
    with pytest.raises(tokens.TokenError, match="another room") as refused:
        tokens.verify_token(SECRET, token, "r2")
    assert refused.value.status == 403
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(b"s" * 32, token, "r1")


def test_a_payload_cannot_be_edited_without_the_secret():
    payload, signature = tokens.issue_token(SECRET, "r1", "bob", "audience", 60).split(".")
    claims = json.loads(_unb64(payload))
    claims["role"] = "host"
    edited = _b64(json.dumps(claims).encode()) + "." + signature
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(SECRET, edited, "r1")


@pytest.mark.parametrize(
    ("claims", "status", "message"),
    [
        ({"room": "r1", "user": "alice", "role": "admin"}, 403, "unknown role"),
        ({"user": "alice", "role": "host"}, 401, "malformed"),  # another service's token: no room
        ({"room": "r1", "user": "bad user", "role": "host"}, 401, "malformed"),
    ],
)
def test_signed_claims_are_still_checked(claims, status, message):
    """A token signed with the right secret must still carry this scenario's claims."""
    with pytest.raises(rtclab_tokens.TokenError, match=message) as refused:  # what the servers catch
        tokens.verify_token(SECRET, rtclab_tokens.sign(SECRET, claims, 60), "r1")
    assert refused.value.status == status


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_strings_never_verify(text):
    with pytest.raises(tokens.TokenError):
        tokens.verify_token(SECRET, text, "r1")


@pytest.mark.parametrize(
    "kwargs", [{"role": "admin"}, {"user": "bad user"}, {"room": ""}, {"ttl_s": 0}, {"ttl_s": 10**9}]
)
def test_issuing_checks_its_arguments(kwargs):
    args = {"room": "r1", "user": "alice", "role": "host", "ttl_s": 60} | kwargs
    with pytest.raises(ValueError):
        tokens.issue_token(SECRET, **args)


# --- roles and moderation ------------------------------------------------------------------------------------


def full_room() -> object:
    room = rooms.Room("r1")
    room.admit("host", "host", publishing=True)
    room.admit("sam", "speaker", publishing=True)
    room.admit("ann", "audience", publishing=False)
    return room


def test_the_host_sits_on_seat_0_and_seats_speakers():
    room = full_room()
    assert room.members["host"].seat == 0 and room.members["host"].audible
    assert not room.members["sam"].audible  # off mic until seated
    room.set_seat("host", "sam", 3)
    assert room.members["sam"].audible
    room.set_muted("host", "sam", True)
    assert not room.members["sam"].audible


@pytest.mark.parametrize(
    ("actor", "action"),
    [("sam", "kick"), ("ann", "kick"), ("sam", "mute"), ("ann", "mute"), ("sam", "seat"), ("ann", "seat")],
)
def test_only_the_host_moderates(actor, action):
    room = full_room()
    act = {
        "kick": lambda: room.kick(actor, "host"),
        "mute": lambda: room.set_muted(actor, "host", True),
        "seat": lambda: room.set_seat(actor, actor, 2),
    }[action]
    with pytest.raises(rooms.RoomError, match="only the host") as refused:
        act()
    assert refused.value.status == 403


def test_the_audience_cannot_publish_or_sit():
    room = full_room()
    with pytest.raises(rooms.RoomError) as refused:
        room.admit("eve", "audience", publishing=True)
    assert refused.value.status == 403
    with pytest.raises(rooms.RoomError) as refused:
        room.set_seat("host", "ann", 1)
    assert refused.value.status == 409


def test_kicked_users_stay_out():
    room = full_room()
    room.kick("host", "ann")
    assert "ann" not in room.members
    with pytest.raises(rooms.RoomError) as refused:
        room.admit("ann", "audience", publishing=False)
    assert refused.value.status == 403


def test_seat_conflicts_and_bad_values():
    room = full_room()
    room.admit("sue", "speaker", publishing=True)
    room.set_seat("host", "sam", 1)
    for user, seat, status in [("sue", 1, 409), ("sue", 99, 400), ("sue", "1", 400), ("nobody", 2, 404)]:
        with pytest.raises(rooms.RoomError) as refused:
            room.set_seat("host", user, seat)
        assert refused.value.status == status


# --- the server under hostile input --------------------------------------------------------------------------


class Server(sample_runner.ScenarioServer):
    """server.py in its own process on 127.0.0.1 (see sample_runner.ScenarioServer)."""

    def __init__(self) -> None:
        super().__init__(FOLDER / "server.py", "VOICE_ROOM")

    def token(self, room: str, user: str, role: str) -> str:
        return self.issue({"room": room, "user": user, "role": role})


@pytest.fixture(scope="module")
def server():
    running = Server()
    assert running.call("POST", "/v1/rooms", running.key, {"room": "r1", "mode": "forward"})[0] == 201
    yield running
    running.stop()


def offer(directions: list[str]) -> dict:
    head = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    section = "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
    return {"type": "offer", "sdp": head + "".join(f"{section}a={d}\r\n" for d in directions)}


def test_each_hostile_request_gets_its_4xx(server):
    join = "/v1/rooms/r1/join"
    host = server.token("r1", "host", "host")
    speaker, audience = server.token("r1", "sam", "speaker"), server.token("r1", "ann", "audience")
    expired = tokens.issue_token(server.secret, "r1", "old", "speaker", 5, now=time.time() - 60)
    other_room = server.token("r2", "host", "host")
    cases = [
        (server.call("POST", join, body=offer(["recvonly"] * 2)), 401),
        (server.call("GET", "/v1/rooms/r1", expired), 401),
        (server.call("GET", "/v1/rooms/r1", host[:-3] + "abc"), 401),
        (server.call("GET", "/v1/rooms/r1", other_room), 403),
        (server.call("POST", join, host, raw=b"{not json"), 400),
        (server.call("POST", join, host, raw=b"[1, 2]"), 400),
        (server.call("POST", join, host, raw=b'{"type": "offer", "sdp": "' + b"a" * 70_000 + b'"}'), 413),
        (server.call("POST", join, audience, body=offer(["sendonly", "recvonly", "recvonly"])), 403),
        (server.call("POST", join, host, body=offer(["recvonly"])), 400),  # the room sends 2 streams
        (server.call("POST", join, host, body=offer(["sendrecv", "recvonly"])), 400),
        (server.call("POST", "/v1/rooms", speaker, {"room": "r9"}), 401),  # a member is not the backend
        (server.call("POST", "/v1/tokens", None, {"room": "r1", "user": "x", "role": "host"}), 401),
        (server.call("POST", "/v1/rooms/r1/kick", speaker, {"user": "host"}), 403),  # not even a member
    ]
    for (status, body), expected in cases:
        assert status == expected, body
        assert isinstance(body.get("error"), str) and body["error"]
    assert server.call("GET", "/v1/health")[0] == 200


def test_a_flood_from_one_user_is_throttled_and_others_still_served(server):
    flooder, other = server.token("r1", "flood", "audience"), server.token("r1", "calm", "audience")
    statuses = [server.call("GET", "/v1/rooms/r1", flooder)[0] for _ in range(60)]
    assert set(statuses) <= {200, 429} and statuses.count(429) > 0
    assert server.call("GET", "/v1/rooms/r1", other)[0] == 200  # the limit is per user


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
    path=st.sampled_from(["join", "seat", "mute", "kick", "leave"]),
)
def test_junk_bodies_get_4xx_never_5xx(server, body, path):
    # a fresh user each time: no member joins from junk, and the per-user rate limit never answers first,
    # so each body reaches the checks behind it
    token = server.token("r1", f"fz{secrets.token_hex(4)}", "speaker")
    status, answer = server.call("POST", f"/v1/rooms/r1/{path}", token, raw=body)
    assert 400 <= status < 500, answer


def test_during_a_flood_every_accepted_command_is_applied_and_audio_flows(server):
    asyncio.run(_flood_while_moderating(server))


async def _flood_while_moderating(server: Server) -> None:
    from aiohttp import ClientSession

    from rtclab.signals import SpeechLikeAudioTrack

    assert server.call("POST", "/v1/rooms", server.key, {"room": "r3", "mode": "mix"})[0] == 201
    async with ClientSession() as http:
        api = client.Api(http, server.url, server.key)
        host = client.Participant(api, "r3", "host", "host", SpeechLikeAudioTrack(seed=1))
        sam = client.Participant(api, "r3", "sam", "speaker", SpeechLikeAudioTrack(seed=2))
        flooder = client.Participant(api, "r3", "flood", "audience")
        try:
            await host.join()
            await sam.join()
            assert await sam.wait_for_audio(15)  # sam hears the host's mix-minus
            assert (await host.request("POST", "seat", {"user": "sam", "seat": 1}))[0] == 200
            flooder.token = await flooder.get_token()
            before = time.monotonic()
            flood = asyncio.gather(*(flooder.request("GET", "") for _ in range(80)))
            for i in range(8):  # the host's commands, interleaved with the flood: each accepted one sticks
                muted = i % 2 == 0
                status, answer = await host.request("POST", "mute", {"user": "sam", "muted": muted})
                assert status == 200 and answer["muted"] is muted
                _, state = await host.request("GET", "")
                assert next(m for m in state["members"] if m["user"] == "sam")["muted"] is muted
            statuses = [status for status, _ in await flood]
            assert 429 in statuses and set(statuses) <= {200, 429}
            await asyncio.sleep(1.0)
            heard = sam.frames_since(before) * 0.020 / (time.monotonic() - before)
            assert heard > 0.5, heard  # sam kept hearing the host all along
        finally:
            await asyncio.gather(host.close(), sam.close())
    assert server.call("GET", "/v1/health")[0] == 200 and server.proc.poll() is None


def test_the_server_refuses_a_non_loopback_bind():
    result = subprocess.run(
        [sys.executable, str(FOLDER / "server.py"), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
