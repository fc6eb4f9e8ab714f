"""The bullet-comment gateways: the quick run's report and headlines, tokens, limits and moderation, and live
gateways over Redis under fuzzed hostile frames, a lost Redis, and bad command lines."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import sample_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab import tokens as rtclab_tokens
from rtclab.headlines import read_headlines

FOLDER = sample_runner.ROOT / "samples" / "scenarios" / "bullet_comments"
SAMPLE = FOLDER / "bullet_comments.py"
SIBLINGS = ("tokens", "moderation", "fanout", "gateway", "redis_server", "viewers", "hostile", "weak_link")
HAS_REDIS = subprocess.run(["sh", "-c", "command -v redis-server"], capture_output=True).returncode == 0
needs_redis = pytest.mark.skipif(not HAS_REDIS, reason="redis-server is not installed")


def load_sample_modules() -> SimpleNamespace:
    """Import the sample's files the way they import each other (bare names from their folder), without
    letting another scenario's ``tokens`` or ``gateway`` module stand in for ours, or ours for theirs."""
    saved = {name: sys.modules.pop(name) for name in SIBLINGS if name in sys.modules}
    sys.path.insert(0, str(FOLDER))
    try:
        modules = {name: importlib.import_module(name) for name in SIBLINGS}
    finally:
        sys.path.remove(str(FOLDER))
        for name in SIBLINGS:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
    return SimpleNamespace(**modules)


m = load_sample_modules()


# --- the quick run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headlines_file(quick_run: subprocess.CompletedProcess[str]) -> Path:
    return sample_runner.page_headlines(SAMPLE)


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    """The run the playbook page shows, which every test below reads (with its headline figures)."""
    if not HAS_REDIS:
        pytest.skip("redis-server is not installed")
    return sample_runner.page_run(SAMPLE)


def row(out: str, label: str) -> list[str]:
    """The cells of a report row after its label (40 wide) and target (28 wide)."""
    line = next(line for line in out.splitlines() if line.startswith(label))
    return line[69:].split()


def test_quick_run_delivers_every_accepted_comment_on_both_gateways(quick_run):
    out = quick_run.stdout
    assert quick_run.returncode == 0, (out[-3000:], quick_run.stderr[-3000:])
    assert "viewers: 1000 in room live-1 (500 on A, 500 on B)" in out
    sent, accepted = (int(n) for n in re.search(r"comments sent / accepted\s+(\d+) / (\d+)", out).groups())
    assert 50 < accepted < sent  # the flooders and the moderation refused some
    cells = row(out, "deliveries: got / accepted x viewers")
    for cell, viewers in zip(cells, (500, 500, 1000), strict=True):
        got, expected = (int(n) for n in cell.split("/"))
        assert got == expected == accepted * viewers, cell
    assert row(out, "delivery rate") == ["100.00%", "100.00%", "100.00%"]
    assert row(out, "duplicates / other rooms' / masked words") == ["0/0/0", "0/0/0"]
    assert row(out, "viewers cut off / comments never acked") == ["0/0", "0/0"]


def test_quick_run_measures_delays_that_make_sense(quick_run):
    out = quick_run.stdout
    p50 = [float(v) for v in row(out, "delay send -> receive, p50")[-3:]]
    p99 = [float(v) for v in row(out, "delay send -> receive, p99")[-3:]]
    high = [float(v) for v in row(out, "delay send -> receive, max")[-3:]]
    for low, mid, top in zip(p50, p99, high, strict=True):
        # loopback through two processes and Redis takes more than nothing; a loaded machine may take long
        assert 0.05 < low <= mid <= top < 60_000, (low, mid, top)
    cpu = [int(v) for v in row(out, "gateway CPU per 1,000 deliveries")[-2:]]
    assert all(0 < v < 1000 for v in cpu)  # each delivery costs something, and well under a millisecond


def test_quick_run_reports_what_the_limits_refused(quick_run):
    out = quick_run.stdout
    refused = dict(
        re.findall(r"^  (rate_limited|moderated|too_long|\(masked, then delivered\))\s+(\d+)$", out, re.M)
    )
    assert int(refused["rate_limited"]) > 0  # the flooders try four times the limit
    assert int(refused["(masked, then delivered)"]) > 0
    sent, accepted = (int(n) for n in re.search(r"comments sent / accepted\s+(\d+) / (\d+)", out).groups())
    assert sent - accepted == sum(int(refused[k]) for k in ("rate_limited", "moderated", "too_long"))


def test_quick_run_answers_every_hostile_input_and_keeps_serving(quick_run):
    out = quick_run.stdout
    checks = re.findall(r"^  (.+?)\s+-> (.+?)\s+(ok|UNEXPECTED)$", out, re.MULTILINE)
    assert len(checks) == 18, checks
    assert all(verdict == "ok" for _, _, verdict in checks), checks
    answers = dict((what, answer) for what, answer, _ in checks)
    assert answers["forged token (signature changed)"] == "close 4401"
    assert answers["token for another room"] == "close 4403"
    assert answers["64 KB frame"] == "close 1009"
    assert re.search(
        r"witness on B lost 0, got 0 it should not have; masked text delivered as \['you \*+'\]", out
    )
    assert "gateways still answering: A yes, B yes" in out


def test_quick_run_measures_viewers_behind_a_weak_link(quick_run):
    out = quick_run.stdout
    assert "20 more viewers on gateway B behind a weak link, profile atc-2g-developing-urban:" in out
    found = re.search(r"delivery rate ([\d.]+)%; delay send -> receive p50 ([\d.]+) ms, p99 ([\d.]+) ms", out)
    assert found, out[-2000:]
    rate, p50, p99 = (float(v) for v in found.groups())
    assert 0 < rate <= 100
    # 650 ms each way on that profile: nothing arrives sooner than the link's own delay
    assert 650 <= p50 <= p99, (p50, p99)


def test_quick_run_resumes_a_dropped_viewer_from_the_history(quick_run):
    found = re.search(
        r"replayed from the room's history: (\d+); still missing: (\d+) of (\d+); duplicates: (\d+); "
        r"gap reported: (\w+)",
        quick_run.stdout,
    )
    assert found, quick_run.stdout[-2000:]
    replayed, missing, owed, duplicates, gap = found.groups()
    assert int(replayed) > 0 and int(missing) == 0 and int(owed) > 0 and int(duplicates) == 0
    assert gap == "False"


def test_quick_run_writes_its_headlines(quick_run, headlines_file):
    assert quick_run.returncode == 0
    scenario, mode, figures = read_headlines(headlines_file)
    assert (scenario, mode) == ("live-cohost", "quick")
    by_metric = {f.metric: f for f in figures}
    p50 = by_metric["bullet comment delay p50, send -> receive"]
    p99 = by_metric["bullet comment delay p99, send -> receive"]
    assert p50.unit == p99.unit == "ms" and p50.target == p99.target == 100 and p50.better == "lower"
    assert 0 < p50.value <= p99.value and "Agora" in p50.source
    rate = by_metric["bullet comment delivery rate"]
    assert (rate.value, rate.unit, rate.target, rate.better) == (100.0, "%", None, "higher")
    assert by_metric["bullet comment viewers"].value == 1000


# --- command line --------------------------------------------------------------------------------------------


def test_help():
    result = sample_runner.run_sample(SAMPLE, "--help")
    assert result.returncode == 0
    for option in (
        "--full",
        "--viewers",
        "--posters",
        "--rate",
        "--seconds",
        "--batch-ms",
        "--json",
        "--weak-profile",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["--viewers", "x"],
        ["--viewers", "5"],
        ["--rate", "9"],
        ["--seconds", "1"],
        ["--viewers", "20", "--posters", "21"],
        ["--batch-ms", "-1"],
        ["--weak-profile", "moon"],
        ["--weak-viewers", "1000"],
    ],
)
def test_bad_arguments_exit_2_with_one_line(args):
    result = sample_runner.run_sample(SAMPLE, *args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr


def test_an_existing_json_file_is_never_overwritten(tmp_path):
    earlier = tmp_path / "earlier.json"
    earlier.write_text("somebody's result")
    result = sample_runner.run_sample(SAMPLE, "--json", str(earlier))
    assert result.returncode == 2 and result.stdout == ""  # refused before Redis and the gateways start
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --json:" in errors[0] and "exists" in errors[0]
    assert "Traceback" not in result.stderr
    assert earlier.read_text() == "somebody's result"


def test_a_json_file_in_a_missing_folder_is_refused_before_the_run(tmp_path):
    result = sample_runner.run_sample(SAMPLE, "--json", str(tmp_path / "missing" / "headlines.json"))
    assert result.returncode == 2 and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "argument --json: no directory" in errors[0]
    assert not (tmp_path / "missing").exists()


def test_without_redis_server_it_says_how_to_install_it(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SAMPLE.relative_to(sample_runner.ROOT)), "--seconds", "3"],
        cwd=sample_runner.ROOT,
        env={**os.environ, "PATH": str(tmp_path)},  # no redis-server on this PATH
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [m.redis_server.INSTALL_HINT]


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--host", "0.0.0.0"], {}, "loopback"),
        ([], {"BULLET_REDIS_URL": "redis://:pw@10.0.0.8:6379/0"}, "loopback"),
        ([], {"BULLET_TOKEN_SECRET": ""}, "BULLET_TOKEN_SECRET"),
        (["--moderator", "moderation:nothing_here"], {}, "nothing_here"),
    ],
)
def test_the_gateway_refuses_a_bad_setup(args, env, message):
    base = {"BULLET_TOKEN_SECRET": "ab" * 32, "BULLET_REDIS_URL": "redis://:pw@127.0.0.1:1/0"}
    result = subprocess.run(
        [sys.executable, str(FOLDER / "gateway.py"), *args],
        env={**os.environ, **base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and message in result.stderr, result.stderr


# --- tokens ----------------------------------------------------------------------------------------------------

SECRET = b"k" * 32


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_token_round_trip_names_room_user_posting_and_expiry():
    token = m.tokens.issue_token(SECRET, "r1", "alice", 60, now=1000)
    grant = m.tokens.verify_token(SECRET, token, "r1", now=1059)
    assert (grant.room, grant.user, grant.can_post, grant.expires_at) == ("r1", "alice", True, 1060)
    quiet = m.tokens.issue_token(SECRET, "r1", "bob", 60, can_post=False)
    assert m.tokens.verify_token(SECRET, quiet, "r1").can_post is False


@pytest.mark.parametrize(
    ("mutate", "code", "message"),
    [
        (lambda t: t, 4401, "expired"),  # checked at now=2000
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), 4401, "signature"),
        (lambda t: "x" + t, 4401, "signature"),
        (lambda t: t + "." + t, 4401, "malformed"),
        (lambda t: t + "A" * 2000, 4401, "malformed"),
        (lambda t: None, 4401, "missing"),
        (lambda t: 42, 4401, "missing"),
    ],
)
def test_bad_tokens_are_refused_with_a_close_code(mutate, code, message):
    token = m.tokens.issue_token(SECRET, "r1", "alice", 60, now=1000)
    with pytest.raises(m.tokens.TokenError, match=message) as refused:
        m.tokens.verify_token(SECRET, mutate(token), "r1", now=2000)
    assert m.tokens.close_code(refused.value) == code


def test_a_token_opens_one_room_and_needs_the_right_secret():
    token = m.tokens.issue_token(SECRET, "r1", "alice", 60)
    with pytest.raises(m.tokens.TokenError, match="another room") as refused:
        m.tokens.verify_token(SECRET, token, "r2")
    assert m.tokens.close_code(refused.value) == 4403
    with pytest.raises(m.tokens.TokenError, match="signature"):
        m.tokens.verify_token(b"s" * 32, token, "r1")


def test_a_payload_cannot_be_edited_without_the_secret():
    payload, signature = m.tokens.issue_token(SECRET, "r1", "bob", 60, can_post=False).split(".")
    claims = json.loads(_unb64(payload))
    claims["post"] = True
    edited = _b64(json.dumps(claims).encode()) + "." + signature
    with pytest.raises(m.tokens.TokenError, match="signature"):
        m.tokens.verify_token(SECRET, edited, "r1")


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"user": "alice", "post": True}, 4401),  # another service's token: no room
        ({"room": "r1", "user": "bad user", "post": True}, 4401),
        ({"room": "r1", "user": "alice"}, 4401),  # nothing says whether they may post
    ],
)
def test_signed_claims_are_still_checked(claims, code):
    """A token signed with the right secret must still carry a viewer token's claims."""
    with pytest.raises(rtclab_tokens.TokenError, match="malformed") as refused:  # what the gateway catches
        m.tokens.verify_token(SECRET, rtclab_tokens.sign(SECRET, claims, 60), "r1")
    assert m.tokens.close_code(refused.value) == code


def test_only_a_true_post_claim_lets_a_viewer_post():
    for post in (False, 1, "yes", None):
        token = rtclab_tokens.sign(SECRET, {"room": "r1", "user": "alice", "post": post}, 60)
        assert m.tokens.verify_token(SECRET, token, "r1").can_post is False


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_strings_never_verify(text):
    with pytest.raises(m.tokens.TokenError):
        m.tokens.verify_token(SECRET, text, "r1")


@pytest.mark.parametrize(
    "kwargs",
    [{"user": "bad user"}, {"room": ""}, {"ttl_s": 0}, {"ttl_s": 10**9}, {"ttl_s": 1.5}, {"ttl_s": True}],
)
def test_issuing_checks_its_arguments(kwargs):
    args = {"room": "r1", "user": "alice", "ttl_s": 60} | kwargs
    with pytest.raises(ValueError):
        m.tokens.issue_token(SECRET, **args)


# --- limits and moderation -------------------------------------------------------------------------------------


def test_the_gateway_limits_comments_per_user_and_frames_per_connection():
    gateway = m.gateway.Gateway("A", SECRET, "redis://127.0.0.1:1/0", "ops", m.gateway.Limits(), None)
    limits = gateway.limits
    assert (gateway.comments.burst, gateway.comments.per_second) == (limits.burst, limits.rate_per_s)
    assert (gateway.frames.burst, gateway.frames.per_second) == (limits.frame_burst, limits.frames_per_s)
    grant = m.tokens.verify_token(SECRET, m.tokens.issue_token(SECRET, "r1", "alice", 60), "r1")
    first, second = (m.gateway.Viewer(None, grant, gateway) for _ in range(2))
    assert first.key != second.key  # two tabs of one user: a frame budget each
    for _ in range(limits.burst):  # alice's burst is spent...
        assert gateway.comments.allow("user:alice")
    with pytest.raises(m.gateway.Refusal, match="slow down") as refused:  # ...before moderation or Redis
        run(gateway.on_comment(first, json.dumps({"type": "comment", "cid": "c1", "text": "hi"})))
    assert refused.value.code == "rate_limited"
    assert refused.value.extra == {"cid": "c1", "retry_after_ms": round(1000 / limits.rate_per_s)}


def run(coro):
    return asyncio.run(coro)


@pytest.mark.parametrize(
    ("text", "action", "published"),
    [
        ("nice shot", "allow", "nice shot"),
        ("you are STUPID", "mask", "you are ******"),
        ("ｓｔｕｐｉｄ", "mask", "******"),  # full-width letters fold into ASCII
        ("主播是笨蛋", "mask", "主播是**"),
        ("free gifts at https://spam.example", "reject", ""),
        ("加 微信 abc123", "reject", ""),
        ("HTTP://SHOUTING.example", "reject", ""),
    ],
)
def test_the_blocklist_masks_and_rejects(text, action, published):
    verdict = run(m.moderation.blocklist()("r1", "u1", text))
    assert (verdict.action, verdict.text) == (action, published)


def test_a_slow_moderation_service_is_cut_off_by_the_deadline():
    async def slow(room, user, text):
        await asyncio.sleep(5)
        return m.moderation.Verdict("allow", text)

    closed = run(m.moderation.with_deadline(slow, 0.05)("r1", "u1", "hi"))
    opened = run(m.moderation.with_deadline(slow, 0.05, on_timeout="allow")("r1", "u1", "hi"))
    assert (closed.action, opened.action, opened.text) == ("reject", "allow", "hi")


def test_a_moderator_is_loaded_by_name():
    sys.path.insert(0, str(FOLDER))
    try:
        moderator = m.moderation.load_moderator("moderation:blocklist")
        assert run(moderator("r", "u", "idiot")).action == "mask"
        for bad in ("blocklist", "moderation:", "no_such_module:x", "moderation:MASKED_WORDS"):
            with pytest.raises(ValueError):
                m.moderation.load_moderator(bad)
    finally:
        sys.path.remove(str(FOLDER))


def test_the_weak_link_delays_queues_at_its_rate_and_holds_through_a_blackout():
    from rtclab.profiles import Link

    link = Link(rate_kbps=32.0, delay_ms=500.0, jitter_ms=0.0, loss=0.0)
    pipe = m.weak_link.Pipe(link, blackouts=((10.0, 12.0),), opened=100.0)
    assert pipe.deliver_at(4000, now=100.0) == pytest.approx(100.0 + 1.0 + 0.5)  # 32 kbit at 32 kbit/s
    assert pipe.deliver_at(4000, now=100.0) == pytest.approx(100.0 + 2.0 + 0.5)  # queued behind the first
    assert pipe.deliver_at(0, now=110.5) == pytest.approx(112.0 + 0.5)  # waits out the blackout


def test_comment_ids_sort_like_redis_stream_ids():
    assert m.fanout.parse_id("1700000000000-10") > m.fanout.parse_id("1700000000000-9")
    assert m.fanout.parse_id("1700000000001-0") > m.fanout.parse_id("1700000000000-99")
    for bad in ("", "12", "a-1", "1-", "-1", "1-2-3", "9" * 50 + "-1"):
        with pytest.raises(ValueError):
            m.fanout.parse_id(bad)
    frame = json.loads(m.fanout.comment_frame("5-1", '{"room":"r","text":"hi"}', replay=True))
    assert frame == {"type": "comment", "id": "5-1", "replay": True, "room": "r", "text": "hi"}


# --- live gateways over Redis ------------------------------------------------------------------------------------


class Gateways:
    """A private redis-server and two gateway processes on 127.0.0.1, for the tests below."""

    def __init__(self) -> None:
        self.redis = run(m.redis_server.start_redis())
        self.secret, self.ops_key = secrets.token_bytes(32), secrets.token_urlsafe(16)
        env = {
            **os.environ,
            "BULLET_TOKEN_SECRET": self.secret.hex(),
            "BULLET_REDIS_URL": self.redis.url,
            "BULLET_OPS_KEY": self.ops_key,
        }
        self.procs, self.urls = [], []
        for name in ("A", "B"):
            proc = subprocess.Popen(
                [sys.executable, str(FOLDER / "gateway.py"), "--port", "0", "--name", name],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            line = proc.stdout.readline().strip()
            assert line.startswith("listening on http://127.0.0.1:"), line
            self.procs.append(proc)
            self.urls.append(line.removeprefix("listening on http://"))

    def ws(self, index: int, room: str) -> str:
        return f"ws://{self.urls[index]}/v1/rooms/{room}/ws"

    def token(self, room: str, user: str, **kwargs) -> str:
        return m.tokens.issue_token(self.secret, room, user, 600, **kwargs)

    def health(self, index: int) -> int:
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://{self.urls[index]}/v1/health", timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.wait(timeout=30)
        self.redis.stop()


@pytest.fixture(scope="module")
def gateways():
    if not HAS_REDIS:
        pytest.skip("redis-server is not installed")
    running = Gateways()
    yield running
    running.stop()


ERROR_CODES = {"bad_json", "bad_frame", "wrong_room", "forbidden", "too_long", "rate_limited", "moderated"}
CLOSE_CODES = {1003, 1007, 1009, 4429}
MARKER = json.dumps({"type": "comment", "cid": "marker", "text": ""})  # always bad_frame: "end of my frames"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
frames = st.one_of(
    st.binary(max_size=200).map(lambda b: ("binary", b)),
    st.text(max_size=300).map(lambda t: ("text", t)),
    json_values.map(lambda v: ("text", json.dumps(v))),
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["comment", "hello", "ack", 7]),
            "cid": st.text(max_size=12) | st.integers(),
        },
        optional={"text": st.text(max_size=150) | json_values, "room": st.sampled_from(["fuzz", "other", 3])},
    ).map(lambda d: ("text", json.dumps(d, ensure_ascii=False))),
    st.integers(2049, 9000).map(lambda n: ("text", "x" * n)),
)


@needs_redis
def test_fuzzed_frames_get_clear_answers_and_no_accepted_comment_is_lost(gateways):
    """Random frames on gateway A, each from a fresh user: every one is answered with a known error code or
    closed with a known close code, never an internal error; a witness on gateway B gets every comment that
    was acked, and nothing else."""
    from aiohttp import WSMsgType

    loop = asyncio.new_event_loop()
    session = loop.run_until_complete(_session())
    witness = m.viewers.Client(session, gateways.ws(1, "fuzz"), gateways.token("fuzz", "witness"))
    loop.run_until_complete(witness.connect())
    acked: set[str] = set()
    counter = iter(range(10**6))

    async def one(kind: str, payload) -> tuple[list[dict], int | None]:
        async with session.ws_connect(gateways.ws(0, "fuzz"), max_msg_size=1 << 20) as ws:
            await ws.send_str(
                json.dumps({"type": "hello", "token": gateways.token("fuzz", f"fz{next(counter)}")})
            )
            welcome = await ws.receive(timeout=10)
            assert json.loads(welcome.data)["type"] == "welcome"
            await (ws.send_bytes(payload) if kind == "binary" else ws.send_str(payload))
            closing = kind == "binary" or len(payload.encode()) > 2048  # gateway.Limits.max_frame_bytes
            if not closing:  # (sending after a frame that closes would race the close)
                await ws.send_str(MARKER)
            answers = []
            while True:
                message = await ws.receive(timeout=10)
                if message.type != WSMsgType.TEXT:
                    break
                frame = json.loads(message.data)
                if frame["type"] == "comment":
                    continue  # other examples' comments in the room
                answers.append(frame)
                if frame.get("cid") == "marker" and frame.get("code") == "bad_frame":
                    break  # the gateway answers in order: everything about the fuzzed frame came before
            return answers, ws.close_code if ws.closed else None

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(frame=frames)
    def example(frame):
        answers, close_code = loop.run_until_complete(one(*frame))
        for answer in answers:
            assert answer["type"] in ("ack", "error"), answer
            if answer["type"] == "error":
                assert answer["code"] in ERROR_CODES and answer["message"], answer
            else:
                acked.add(answer["id"])
        if close_code is not None:
            assert close_code in CLOSE_CODES, (frame, close_code)

    try:
        example()
        loop.run_until_complete(asyncio.sleep(1.0))  # the last acked comments cross to gateway B
        assert acked <= witness.sink.seen, "an acked comment never reached the other gateway"
        assert witness.sink.seen <= acked, "the witness got a comment nobody was told was accepted"
        assert gateways.health(0) == gateways.health(1) == 200
    finally:
        loop.run_until_complete(witness.close())
        loop.run_until_complete(session.close())
        loop.close()


async def _session():
    from aiohttp import ClientSession

    return ClientSession()  # created inside a running loop, as aiohttp wants


@needs_redis
def test_a_viewer_that_resumes_gets_what_it_missed_and_a_gap_when_history_ran_out(gateways):
    async def scenario() -> None:
        async with await _session() as session:
            poster = m.viewers.Client(session, gateways.ws(0, "resume"), gateways.token("resume", "poster"))
            await poster.connect()
            await poster.post("p0", "before")
            await asyncio.sleep(0.3)
            last_seen = poster.acks["p0"][0]
            for i in (1, 2):  # two comments while the viewer is away (within the per-user burst)
                await poster.post(f"p{i}", f"while away {i}")
            await asyncio.sleep(0.3)
            viewer = m.viewers.Client(session, gateways.ws(1, "resume"), gateways.token("resume", "roamer"))
            await viewer.connect(since=last_seen)
            await asyncio.sleep(0.3)
            texts = [f["text"] for f in viewer.sink.frames.values()]
            assert texts == ["while away 1", "while away 2"], texts
            assert all(f["replay"] for f in viewer.sink.frames.values())
            assert viewer.resumed == {"type": "resumed", "replayed": 2, "gap": False}
            late = m.viewers.Client(session, gateways.ws(1, "resume"), gateways.token("resume", "late"))
            await late.connect(since="1-0")  # older than anything the history holds
            await asyncio.sleep(0.3)
            assert late.resumed["gap"] is True and late.resumed["replayed"] == 3
            await asyncio.gather(poster.close(), viewer.close(), late.close())

    run(scenario())


@needs_redis
def test_a_gateway_that_loses_redis_closes_its_viewers_with_1013():
    """Pub/sub would silently skip what was published during a reconnect: the gateway says so instead."""
    lone = Gateways()
    try:

        async def scenario() -> int | None:
            async with await _session() as session:
                viewer = m.viewers.Client(session, lone.ws(0, "r"), lone.token("r", "v"))
                await viewer.connect()
                lone.redis.stop()
                for _ in range(100):
                    if viewer.close_code is not None:
                        break
                    await asyncio.sleep(0.1)
                return viewer.close_code

        assert run(scenario()) == 1013
        assert lone.health(0) == 503
    finally:
        lone.stop()
