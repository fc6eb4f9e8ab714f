"""The 1v1 video scenario: the quick run's report, the token and call rules, and the matchmaker under hostile input."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest
import sample_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab import tokens as rtclab_tokens
from rtclab.headlines import read_headlines

FOLDER = sample_runner.ROOT / "samples" / "scenarios" / "video_1v1"
SAMPLE = FOLDER / "video_1v1.py"


def load(name: str) -> ModuleType:
    """Import a module of the sample under a name no other test uses (server.py imports tokens.py)."""
    sys.path.insert(0, str(FOLDER))
    try:
        spec = importlib.util.spec_from_file_location(f"video_1v1_{name}", FOLDER / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(FOLDER))


tokens = load("tokens")
server_module = load("server")


# --- the quick run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headlines_file(quick_run: subprocess.CompletedProcess[str]) -> Path:
    return sample_runner.page_headlines(SAMPLE)


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    """The run the playbook page shows, which every test below reads (with its headline figures)."""
    return sample_runner.page_run(SAMPLE)


def test_quick_run_measures_the_filter(quick_run):
    out = quick_run.stdout
    assert quick_run.returncode == 0, quick_run.stderr[-3000:] + out[-3000:]
    rows = dict(
        (m[1], (float(m[2]), float(m[3]), float(m[4])))
        for m in re.finditer(r"^   (360p|720p)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", out, re.MULTILINE)
    )
    assert set(rows) == {"360p", "720p"}
    assert rows["720p"][0] > 1.5 * rows["360p"][0] > 0  # four times the pixels: clearly more CPU
    for _, before, after in rows.values():
        assert after < 0.7 * before  # the skin got smoother


def connect_rows(out: str) -> dict[tuple[str, str], tuple[float, float, str]]:
    found = re.findall(
        r"^   ([\w-]+)\s+(on-accept|pre-connect|early-media)\s+([\d.]+)\s+([\d.]+)\s+(\d+/\d+)$",
        out,
        re.MULTILINE,
    )
    return {(p, w): (float(a), float(b), ring) for p, w, a, b, ring in found}


def test_quick_run_pre_connecting_beats_connecting_on_accept(quick_run):
    rows = connect_rows(quick_run.stdout)
    assert {p for p, _ in rows} == {"chrome-fast-4g", "chrome-3g"} and len(rows) == 6
    for profile in ("chrome-fast-4g", "chrome-3g"):
        on_accept, pre = rows[(profile, "on-accept")], rows[(profile, "pre-connect")]
        early = rows[(profile, "early-media")]
        assert on_accept[2] == "0/1" and pre[2] == "1/1"  # only pre-connecting finishes during the ring
        assert pre[1] < on_accept[1]  # the caller sees the callee sooner: no handshake after the tap
        assert early[0] <= pre[0]  # early media: the caller's video was already on the callee's screen
    slow, fast = rows[("chrome-3g", "on-accept")], rows[("chrome-fast-4g", "on-accept")]
    assert slow[1] > fast[1] + 0.8 * (400 - 60)  # the handshake costs round trips: 3G's RTT shows


def test_quick_run_steps_down_the_ladder_under_a_small_cap(quick_run):
    out = quick_run.stdout
    rows = re.findall(r"^   (\d+)\s{2,}(\d+)p (\d+)%.*?\s([\d.]+)\s+(\d+)  (.+)$", out, re.MULTILINE)
    by_cap = {int(cap): (int(height), float(fps), steps) for cap, height, _, fps, _, steps in rows}
    assert set(by_cap) == {2000, 600, 250}, rows
    assert "180p" in by_cap[250][2]  # the sender stepped down to the bottom rung on 250 kbit/s
    assert by_cap[250][0] == 180 and by_cap[250][1] > 3  # and the picture kept moving there
    assert by_cap[2000][0] >= by_cap[600][0] >= by_cap[250][0]  # more bandwidth, never a smaller picture
    assert by_cap[2000][0] >= 360


def test_quick_run_refuses_every_hostile_request_and_keeps_serving(quick_run):
    out = quick_run.stdout
    checks = re.findall(r"^   (.+?)\s+-> (\d{3})  (.+)$", out, re.MULTILINE)
    assert len(checks) == 11
    assert all(400 <= int(status) < 500 and verdict == "ok" for _, status, verdict in checks), checks
    assert "accepted and delivered in order: yes" in out
    assert "server still answering: yes" in out


def test_quick_run_writes_its_headline_figures(quick_run, headlines_file):
    out = quick_run.stdout
    assert quick_run.returncode == 0, quick_run.stderr[-3000:] + out[-3000:]
    assert f"headline figures written to {headlines_file}" in out
    scenario, mode, figures = read_headlines(headlines_file)
    assert (scenario, mode) == ("video-1v1", "quick") and 3 <= len(figures) <= 5
    by = {h.metric: h for h in figures}
    on_accept, pre = by["first frame after accept (on-accept)"], by["first frame after accept (pre-connect)"]
    rows = connect_rows(out)  # the JSON says what the table printed: the caller's side on the last profile
    assert abs(on_accept.value - rows[("chrome-3g", "on-accept")][1]) <= 0.6
    assert abs(pre.value - rows[("chrome-3g", "pre-connect")][1]) <= 0.6
    assert (
        0 < pre.value < on_accept.value and on_accept.target is None and "chrome-3g" in on_accept.conditions
    )
    small, large = by["beauty filter CPU per frame (360p)"], by["beauty filter CPU per frame (720p)"]
    assert small.target == large.target == pytest.approx(1000 / 15, abs=0.05)  # the 15 fps frame budget
    assert 0 < small.value < large.value and all(h.unit == "ms" and h.better == "lower" for h in figures)


# --- command line --------------------------------------------------------------------------------------------


def test_help():
    result = sample_runner.run_sample(SAMPLE, "--help")
    assert result.returncode == 0
    for option in ("--full", "--profiles", "--runs", "--caps"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args", [["--caps", "10"], ["--caps", "x"], ["--profiles", "moon"], ["--runs", "0"], ["--bogus"]]
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
    assert result.returncode == 2 and result.stdout == ""  # refused before the filter or the server start
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


def test_token_round_trip():
    grant = tokens.verify_token(SECRET, tokens.issue_token(SECRET, "alice", 60, now=1000), now=1059)
    assert (grant.user, grant.expires_at) == ("alice", 1060)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda t: t, "expired"),  # checked at now=2000
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "signature"),
        (lambda t: t + "." + t, "malformed"),
        (lambda t: t + "A" * 2000, "malformed"),
    ],
)
def test_bad_tokens_are_refused(mutate, message):
    token = tokens.issue_token(SECRET, "alice", 60, now=1000)
    with pytest.raises(tokens.TokenError, match=message) as refused:
        tokens.verify_token(SECRET, mutate(token), now=2000)
    assert refused.value.status == 401


def test_a_payload_cannot_be_edited_without_the_secret():
    payload, signature = tokens.issue_token(SECRET, "bob", 60).split(".")
    claims = json.loads(_unb64(payload))
    claims["user"] = "alice"
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(SECRET, _b64(json.dumps(claims).encode()) + "." + signature)
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(b"s" * 32, tokens.issue_token(SECRET, "bob", 60))


@pytest.mark.parametrize(
    ("claims", "status", "message"),
    [
        ({"name": "alice"}, 401, "malformed"),  # another service's token: no user
        ({"user": "bad user"}, 401, "malformed"),
    ],
)
def test_signed_claims_are_still_checked(claims, status, message):
    """A token signed with the right secret must still carry this scenario's claims."""
    with pytest.raises(rtclab_tokens.TokenError, match=message) as refused:  # what the servers catch
        tokens.verify_token(SECRET, rtclab_tokens.sign(SECRET, claims, 60))
    assert refused.value.status == status


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_strings_never_verify(text):
    with pytest.raises(tokens.TokenError):
        tokens.verify_token(SECRET, text)


@pytest.mark.parametrize("kwargs", [{"user": "bad user"}, {"user": ""}, {"ttl_s": 0}, {"ttl_s": 10**9}])
def test_issuing_checks_its_arguments(kwargs):
    with pytest.raises(ValueError):
        tokens.issue_token(SECRET, **({"user": "alice", "ttl_s": 60} | kwargs))


# --- call rules ----------------------------------------------------------------------------------------------

SDP = "v=0\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"


@pytest.mark.parametrize(
    ("user", "body", "status"),
    [
        ("eve", {"type": "hangup"}, 403),  # not in the call
        ("bob", {"type": "offer", "sdp": SDP}, 403),  # only the caller offers
        ("ann", {"type": "accept"}, 403),  # only the callee accepts
        ("ann", {"type": "answer", "sdp": SDP}, 403),
        ("bob", {"type": "answer", "sdp": SDP}, 409),  # no offer yet
        ("ann", {"type": "dance"}, 400),
        ("ann", {"type": "offer"}, 400),
        ("ann", {"type": "offer", "sdp": "v=0\r\na=candidate:1 1 udp 1 8.8.8.8 9 typ host\r\n"}, 422),
    ],
)
def test_only_the_right_role_sends_each_message(user, body, status):
    call = server_module.Call("c1", caller="ann", callee="bob")
    with pytest.raises(server_module.Refused) as refused:
        server_module.check_message(call, user, body, 16_000)
    assert refused.value.status == status


def test_a_call_goes_offer_answer_accept_and_each_only_once():
    call = server_module.Call("c1", caller="ann", callee="bob")
    for user, kind in (("ann", "offer"), ("bob", "answer"), ("bob", "accept")):
        body = {"type": kind} | ({"sdp": SDP} if kind in ("offer", "answer") else {})
        assert server_module.check_message(call, user, body, 16_000)["type"] == kind
        call.sent.add(kind)
    with pytest.raises(server_module.Refused) as refused:
        server_module.check_message(call, "ann", {"type": "offer", "sdp": SDP}, 16_000)
    assert refused.value.status == 409


# --- the server under hostile input --------------------------------------------------------------------------


class Server(sample_runner.ScenarioServer):
    """server.py in its own process on 127.0.0.1 (see sample_runner.ScenarioServer)."""

    def __init__(self) -> None:
        super().__init__(FOLDER / "server.py", "VIDEO_1V1")

    def token(self, user: str) -> str:
        return self.issue({"user": user})

    def pair(self, caller: str, callee: str) -> tuple[str, str, str]:
        """Match two users; returns (call id, caller token, callee token)."""
        a, b = self.token(caller), self.token(callee)
        first: dict = {}
        waiter = threading.Thread(
            target=lambda: first.update(r=self.call("POST", "/v1/match", a, {"wait_s": 5}))
        )
        waiter.start()
        while self.call("GET", "/v1/metrics", self.key)[1]["waiting"] == 0:
            time.sleep(0.02)
        status, second = self.call("POST", "/v1/match", b, {"wait_s": 5})
        waiter.join()
        assert status == 200 and first["r"][0] == 200, (second, first)
        assert first["r"][1]["role"] == "caller" and second["role"] == "callee"
        return second["call"], a, b


@pytest.fixture(scope="module")
def server():
    running = Server()
    yield running
    running.stop()


def test_each_hostile_request_gets_its_4xx(server):
    call, ann, bob = server.pair("ann", "bob")
    send = f"/v1/calls/{call}/send"
    eve = server.token("eve")
    expired = tokens.issue_token(server.secret, "old", 5, now=time.time() - 60)
    cases = [
        (server.call("POST", "/v1/match", None, {}), 401),
        (server.call("POST", "/v1/match", expired, {}), 401),
        (server.call("POST", "/v1/match", ann[:-3] + "abc", {}), 401),
        (server.call("POST", "/v1/match", ann, {}), 409),  # already in a call
        (server.call("POST", "/v1/match", eve, {"wait_s": 99}), 400),
        (server.call("POST", send, ann, raw=b"{not json"), 400),
        (server.call("POST", send, ann, raw=b"[1, 2]"), 400),
        (server.call("POST", send, ann, raw=b'{"type": "offer", "sdp": "' + b"a" * 70_000 + b'"}'), 413),
        (server.call("POST", send, bob, {"type": "offer", "sdp": SDP}), 403),
        (server.call("POST", send, eve, {"type": "hangup"}), 403),
        (server.call("GET", f"/v1/calls/{call}/next?wait_s=0", eve), 403),
        (server.call("GET", f"/v1/calls/{call}/next?wait_s=abc", ann), 400),
        (server.call("POST", "/v1/calls/nope/send", ann, {"type": "hangup"}), 404),
        (server.call("POST", "/v1/tokens", ann, {"user": "x"}), 401),  # a user is not the backend
    ]
    for (status, body), expected in cases:
        assert status == expected, body
        assert isinstance(body.get("error"), str) and body["error"]
    assert server.call("GET", "/v1/health")[0] == 200


def test_a_flood_from_one_user_is_throttled_and_others_still_served(server):
    flooder, calm = server.token("flood"), server.token("calm")
    statuses = [server.call("POST", "/v1/match", flooder, {"wait_s": 0})[0] for _ in range(60)]
    assert set(statuses) <= {408, 409, 429} and statuses.count(429) > 0
    assert server.call("POST", "/v1/match", calm, {"wait_s": 0})[0] == 408  # the limit is per user


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
            {"type": st.sampled_from(["offer", "answer", "accept", "x"]), "sdp": st.text(max_size=300)}
        ).map(lambda value: json.dumps(value).encode()),
    ),
    path=st.sampled_from(["/v1/match", "/v1/calls/{call}/send", "/v1/tokens"]),
)
def test_junk_bodies_get_4xx_never_5xx(server, body, path):
    token = server.token(f"fz{secrets.token_hex(4)}")  # a fresh user each time: no rate limit, no match
    if path == "/v1/match":
        body = without_long_poll(body)
    status, answer = server.call("POST", path.format(call="c" + secrets.token_hex(4)), token, raw=body)
    assert 400 <= status < 500, answer


def without_long_poll(body: bytes) -> bytes:
    """Any JSON object is a valid match request and waits up to 10 s for a partner (then 408): ask for 0 s."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict) and data.get("wait_s") is None:
        return json.dumps(data | {"wait_s": 0}).encode()
    return body


def test_during_a_flood_every_accepted_message_arrives_in_order(server):
    call, ann, bob = server.pair("alice2", "bob2")
    send, inbox = f"/v1/calls/{call}/send", f"/v1/calls/{call}/next?wait_s=2"
    results: list[int] = []

    def flood() -> None:
        results.extend(server.call("POST", send, bob, {"type": "accept"})[0] for _ in range(40))

    flooder = threading.Thread(target=flood)
    flooder.start()
    accepted = [server.call("POST", send, ann, {"type": "offer", "sdp": SDP})[0]]
    flooder.join()
    assert results.count(202) == 1 and set(results) <= {202, 409, 429}  # accept once, then refused
    time.sleep(2.5)  # let bob's rate-limit bucket refill
    got = server.call("GET", inbox, bob)[1]
    assert accepted == [202] and got["type"] == "offer" and got["sdp"] == SDP
    assert server.call("GET", inbox, ann)[1]["type"] == "accept"  # the one accepted accept arrived
    assert server.call("GET", "/v1/health")[0] == 200 and server.proc.poll() is None


def test_the_server_refuses_a_non_loopback_bind():
    result = subprocess.run(
        [sys.executable, str(FOLDER / "server.py"), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
