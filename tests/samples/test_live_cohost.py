"""The co-host live scenario: the quick run's report and headline figures, the token, role and layout rules, and
the media server under hostile input while a room is live."""

from __future__ import annotations

import asyncio
import base64
import importlib
import json
import math
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sample_runner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab.headlines import read_headlines
from rtclab.signals import color_bars, read_frame_counter

FOLDER = sample_runner.ROOT / "samples" / "scenarios" / "live_cohost"
SAMPLE = FOLDER / "live_cohost.py"
SIBLINGS = ("tokens", "compositor", "client", "measure", "server")


def load_sample_modules() -> dict:
    """Import the sample's modules, which import each other by plain name (``from tokens import ...``), without
    mixing them up with other samples' modules of the same names (voice_room and video_1v1 have a tokens.py)."""
    saved = {name: sys.modules.pop(name) for name in SIBLINGS if name in sys.modules}
    sys.path.insert(0, str(FOLDER))
    try:
        return {name: importlib.import_module(name) for name in SIBLINGS}
    finally:
        sys.path.remove(str(FOLDER))
        for name in SIBLINGS:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


modules = load_sample_modules()
tokens, compositor, client, measure, server_module = (modules[name] for name in SIBLINGS)


# --- the quick run ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def headlines_file(quick_run: subprocess.CompletedProcess[str]) -> Path:
    return sample_runner.page_headlines(SAMPLE)


@pytest.fixture(scope="module")
def quick_run() -> subprocess.CompletedProcess[str]:
    """The run the playbook page shows, which every test below reads (with its headline figures)."""
    return sample_runner.page_run(SAMPLE)


def number(text: str) -> float | None:
    return None if text == "n/a" else float(text)


def delay_rows(out: str) -> dict[str, list[float | None]]:
    """Section 2: network -> host->viewer, co-host->viewer, offset picture, offset voice, host->co-host, voice."""
    rows = re.findall(r"^   ([\w-]+)" + r"\s+(-?\d+|n/a)" * 6 + r"$", out, re.MULTILINE)
    return {row[0]: [number(v) for v in row[1:]] for row in rows}


def test_quick_run_joins_viewers_and_brings_the_cohost_on_stage(quick_run):
    out = quick_run.stdout
    assert quick_run.returncode == 0, quick_run.stderr[-3000:] + out[-3000:]
    joins = re.findall(r"^   (viewer\d)\s+(host alone|co-host on stage)\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert [j[0] for j in joins] == ["viewer1", "viewer2", "viewer3"]
    assert all(0 < float(picture) < 5000 and 0 < float(audio) < 5000 for _, _, picture, audio in joins)
    stage = re.findall(
        r"co-host on ([\w-]+): invite -> on the viewers' screen (\d+), removed -> empty seat (\d+)", out
    )
    assert [s[0] for s in stage] == ["loopback", "loadero-3g"]
    for _, on, off in stage:
        assert 0 < float(on) < 15_000 and 0 < float(off) < 10_000


def test_quick_run_shows_the_cohost_network_in_the_composite(quick_run):
    rows = delay_rows(quick_run.stdout)
    assert set(rows) == {"loopback", "loadero-3g"}, rows
    clean, slow = rows["loopback"], rows["loadero-3g"]
    for row in (clean, slow):
        assert all(v is not None and v > 0 for v in (row[0], row[1], row[4])), row
        assert row[0] < 5000  # host -> viewer: a few hundred ms here; the margin is for a loaded machine
    # Compare within each stint (co-host against host, same seconds, same load), never across stints: on a
    # loaded machine every absolute delay of one stint can be far above the other's.
    added = 250  # loadero-3g's uplink one-way delay: only the co-host's path crosses it
    assert slow[1] - slow[0] > clean[1] - clean[0] + 0.3 * added  # the co-host's picture arrives later...
    assert slow[2] > clean[2] + 0.6 * added  # ...so it runs behind the host's in the same composite frame
    assert abs(clean[2]) < 0.6 * added  # same path for both on loopback: no systematic offset
    if clean[3] is not None and slow[3] is not None:  # voices in a mix: found by correlation when they can be
        assert slow[3] > clean[3] + 0.6 * added


def test_quick_run_scores_the_composite(quick_run):
    rows = re.findall(
        r"^   ([\w-]+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$", quick_run.stdout, re.MULTILINE
    )
    assert {r[0] for r in rows} == {"loopback", "loadero-3g"}, rows
    for _, frames, whole, p10, host_tile, cohost_tile in rows:
        assert int(frames) > 0
        assert 0.5 < float(p10) <= float(whole) <= 1.0  # both tiles recognisably the sources, never identical
        assert 0.5 < float(host_tile) <= 1.0 and 0.5 < float(cohost_tile) <= 1.0
    cost = dict(
        (m[1], (float(m[2]), float(m[3]), float(m[4])))
        for m in re.finditer(r"^   ([\w-]+)\s+(\d+)\s+([\d.]+)\s+(\d+)$", quick_run.stdout, re.MULTILINE)
    )
    assert set(cost) == {"loopback", "loadero-3g"}, cost
    for server_cpu, layout_ms, people_cpu in cost.values():
        assert server_cpu > 0 and people_cpu > 0 and 0 < layout_ms < 1000 / 15  # layout fits in a frame


def test_quick_run_refuses_every_hostile_request_and_keeps_streaming(quick_run):
    out = quick_run.stdout
    checks = re.findall(r"^   (.+?)\s+-> (\d{3})  (.+)$", out, re.MULTILINE)
    assert len(checks) == 19, checks
    assert all(400 <= int(status) < 500 and verdict == "ok" for _, status, verdict in checks), checks
    assert "the viewers' stream kept flowing: yes" in out
    assert "server still answering: yes" in out


def test_quick_run_writes_its_headline_figures(quick_run, headlines_file):
    assert quick_run.returncode == 0, quick_run.stderr[-3000:]
    assert f"headline figures written to {headlines_file}" in quick_run.stdout
    scenario, mode, figures = read_headlines(headlines_file)
    assert (scenario, mode) == ("live-cohost", "quick") and len(figures) == 5
    by = {h.metric: h for h in figures}
    audience = by["host -> viewer delay (picture, median)"]
    assert audience.target == 800 and audience.unit == "ms" and audience.better == "lower"
    assert audience.value == pytest.approx(delay_rows(quick_run.stdout)["loopback"][0], abs=0.6)
    assert by["host -> co-host delay (picture, median)"].target == 400
    offset = by["co-host offset in the composite (picture, median)"]
    assert offset.target is None and not math.isnan(offset.value)
    quality = by["composite SSIM vs ideal (median)"]
    assert quality.target is None and quality.better == "higher" and 0.5 < quality.value <= 1.0
    join = by["viewer join: tap -> first picture (worst viewer)"]
    assert join.target == 5000 and 0 < join.value < 5000
    assert all("co-host on loopback" in h.conditions for h in figures)


# --- command line --------------------------------------------------------------------------------------------


def test_help():
    result = sample_runner.run_sample(SAMPLE, "--help")
    assert result.returncode == 0
    for option in ("--full", "--viewers", "--cohosts", "--seconds", "--layout", "--json"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args",
    [["--viewers", "0"], ["--cohosts", "moon"], ["--seconds", "1"], ["--layout", "grid"], ["--bogus"]],
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
    assert len(errors) == 1 and "exists" in errors[0] and "Traceback" not in result.stderr
    assert earlier.read_text(encoding="utf-8") == "somebody's earlier result\n"


# --- tokens --------------------------------------------------------------------------------------------------

SECRET = b"k" * 32


def test_token_round_trip_names_room_user_role_and_expiry():
    token = tokens.issue_token(SECRET, "stage", "alice", "cohost", 60, now=1000)
    grant = tokens.verify_token(SECRET, token, "stage", now=1059)
    assert (grant.room, grant.user, grant.role, grant.expires_at) == ("stage", "alice", "cohost", 1060)


@pytest.mark.parametrize(
    ("mutate", "room", "status", "message"),
    [
        (lambda t: t, "stage", 401, "expired"),  # checked at now=2000
        (lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"), "stage", 401, "signature"),
        (lambda t: t + "." + t, "stage", 401, "malformed"),
        (lambda t: t + "A" * 2000, "stage", 401, "malformed"),
    ],
)
def test_bad_tokens_are_refused(mutate, room, status, message):
    token = tokens.issue_token(SECRET, "stage", "alice", "audience", 60, now=1000)
    with pytest.raises(tokens.TokenError, match=message) as refused:
        tokens.verify_token(SECRET, mutate(token), room, now=2000)
    assert refused.value.status == status


def test_a_token_opens_one_room_and_a_role_cannot_be_edited():
    token = tokens.issue_token(SECRET, "stage", "bob", "audience", 60)
    with pytest.raises(tokens.TokenError, match="another room") as refused:
        tokens.verify_token(SECRET, token, "other")
    assert refused.value.status == 403
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "cohost"  # a viewer promoting themselves
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(SECRET, f"{edited}.{signature}", "stage")
    with pytest.raises(tokens.TokenError, match="signature"):
        tokens.verify_token(b"s" * 32, token, "stage")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_random_strings_never_verify(text):
    with pytest.raises(tokens.TokenError):
        tokens.verify_token(SECRET, text, "stage")


@pytest.mark.parametrize(
    "kwargs", [{"user": "bad user"}, {"room": ""}, {"role": "admin"}, {"ttl_s": 0}, {"ttl_s": True}]
)
def test_issuing_checks_its_arguments(kwargs):
    with pytest.raises(ValueError):
        tokens.issue_token(SECRET, **({"room": "stage", "user": "a", "role": "host", "ttl_s": 60} | kwargs))


# --- roles ---------------------------------------------------------------------------------------------------

AV = [("video", "sendrecv"), ("audio", "sendrecv")]
WATCH = [("video", "recvonly"), ("audio", "recvonly")]


def grant(role: str, user: str = "u") -> object:
    return tokens.Grant("stage", user, role, 0, "x")


def room(host: str | None = "h", cohost: str | None = None) -> object:
    return server_module.Room(
        "stage", compositor.Compositor(compositor.LAYOUTS["side-by-side"]), host, cohost
    )


@pytest.mark.parametrize(
    ("who", "action", "sections", "state", "status"),
    [
        (grant("audience"), "publish", AV, room(), 403),  # a viewer trying to go on stage
        (grant("audience"), "watch", AV, room(), 403),  # ...or to send media while watching
        (grant("audience"), "watch", WATCH[:1], room(), 400),
        (grant("cohost", "c"), "publish", AV, room(cohost="someone-else"), 403),  # a seat it does not hold
        (grant("cohost", "c"), "publish", AV, room(cohost=None), 403),  # removed: the token outlived the seat
        (grant("host", "h2"), "publish", AV, room(host="h"), 409),  # one host per room
        (grant("host"), "publish", WATCH, room(host=None), 400),
        (grant("host"), "publish", [*AV, ("video", "sendrecv")], room(host=None), 400),
    ],
)
def test_who_may_publish_and_watch(who, action, sections, state, status):
    with pytest.raises(server_module.Refused) as refused:
        server_module.check_offer(who, state, action, sections)
    assert refused.value.status == status


def test_the_allowed_offers_pass():
    server_module.check_offer(grant("audience"), room(), "watch", WATCH)
    server_module.check_offer(grant("host", "h"), room(host=None), "publish", AV)
    server_module.check_offer(grant("cohost", "c"), room(cohost="c"), "publish", AV)


@pytest.mark.parametrize(
    ("who", "invitee", "state", "status"),
    [
        (grant("audience"), "c", room(), 403),
        (grant("cohost", "c"), "d", room(cohost="c"), 403),
        (grant("host", "not-live"), "c", room(host="h"), 403),  # a host token, but not the live host
        (grant("host", "h"), "h", room(), 400),
        (grant("host", "h"), "bad name", room(), 400),
        (grant("host", "h"), 7, room(), 400),
        (grant("host", "h"), "d", room(cohost="c"), 409),
    ],
)
def test_only_the_live_host_invites(who, invitee, state, status):
    with pytest.raises(server_module.Refused) as refused:
        server_module.check_invite(who, state, invitee, server_module.Limits())
    assert refused.value.status == status
    assert server_module.check_invite(grant("host", "h"), room(), "guest", server_module.Limits()) == "guest"


def test_pending_invitations_are_bounded():
    live = room()
    limits = server_module.Limits(max_invitations=2)
    live.invited = {"a": time.monotonic() + 30, "b": time.monotonic() + 30, "old": time.monotonic() - 1}
    with pytest.raises(server_module.Refused) as refused:
        server_module.check_invite(grant("host", "h"), live, "c", limits)
    assert refused.value.status == 429 and "old" not in live.invited  # expired ones are forgotten first


# --- composition -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["side-by-side", "pip"])
def test_each_tile_keeps_its_source_counter_where_viewers_read_it(name):
    layout = compositor.LAYOUTS[name]
    picture = compositor.compose(layout, [color_bars(320, 240, 1234), color_bars(320, 240, 77)])
    assert picture.shape == (layout.size[1], layout.size[0], 3)
    found = [read_frame_counter(picture[y : y + h, x : x + w]) for x, y, w, h in layout.regions()]
    assert found == [1234, 77]
    empty = compositor.compose(layout, [color_bars(320, 240, 5), None])
    x, y, w, h = layout.regions()[1]
    assert read_frame_counter(empty[y : y + h, x : x + w]) is None  # an empty seat is a plain gray tile
    assert (empty[y : y + h, x : x + w] == compositor.PLACEHOLDER).all()


def test_viewers_hear_the_mix_and_each_stage_member_hears_the_other():
    import av

    mixer = compositor.Compositor(compositor.LAYOUTS["side-by-side"])
    mixer.add_member("host", 0)
    mixer.add_member("guest", 1)
    mixer.add_viewer("v")

    def frame(value: int) -> av.AudioFrame:
        pcm = np.full((1, 960), value, dtype=np.int16)
        made = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        made.sample_rate = 48_000
        return made

    mixer.on_audio("host", frame(1000))
    mixer.on_audio("guest", frame(3000))
    mixer.on_audio("stranger", frame(9000))  # not on stage: ignored
    mixer.audio_tick(1)

    def level(track: object) -> int:
        return int(track._queue[-1].to_ndarray()[0, 0])

    assert abs(level(mixer.viewers["v"][1]) - 4000) <= 1
    assert abs(level(mixer.members["host"].audio) - 3000) <= 1  # the host hears the guest only
    assert abs(level(mixer.members["guest"].audio) - 1000) <= 1


def test_a_standing_voice_backlog_is_drained_slowly():
    mixer = compositor.Compositor(compositor.LAYOUTS["side-by-side"])
    mixer.add_member("host", 0)
    voice = mixer.members["host"].voice
    voice.extend(np.zeros(960, dtype=np.float32) for _ in range(6))
    for tick in range(1, 51):  # one second: one frame in, one out, plus one dropped at the end
        voice.append(np.zeros(960, dtype=np.float32))
        mixer.audio_tick(tick)
    assert len(voice) == 5


def test_offsets_compare_the_capture_times_of_the_two_tiles():
    class Camera:
        def __init__(self, times: dict[int, float]) -> None:
            self.sent_times = list(times.items())

    host = Camera({10: 1.000, 11: 1.067})
    guest = Camera({3: 0.700, 4: 0.767})
    frames = [client.Seen(2.0, (11, 3)), client.Seen(2.1, (11, None)), client.Seen(9.0, (10, 4))]
    offsets = measure.picture_offsets(host, guest, frames, (0.0, 5.0))
    assert offsets == [pytest.approx(367.0)]  # the co-host's picture was taken 367 ms before the host's


# --- the server under hostile input --------------------------------------------------------------------------


class Server(sample_runner.ScenarioServer):
    """server.py in its own process on 127.0.0.1 (see sample_runner.ScenarioServer)."""

    def __init__(self) -> None:
        super().__init__(FOLDER / "server.py", "LIVE_COHOST")

    def token(self, room: str, user: str, role: str) -> str:
        return self.issue({"room": room, "user": user, "role": role})


@pytest.fixture(scope="module")
def server():
    running = Server()
    assert running.call("POST", "/v1/rooms", running.key, {"room": "r1"})[0] == 201
    yield running
    running.stop()


def fake_offer(
    direction: str, kinds: tuple[str, ...] = ("video", "audio"), address: str = "127.0.0.1"
) -> dict:
    """An offer that passes the shape checks but that no peer connection can negotiate."""
    head = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    section = "m={kind} 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na={direction}\r\n"
    candidate = f"a=candidate:1 1 udp 1 {address} 9 typ host\r\n"
    return {
        "type": "offer",
        "sdp": head + candidate + "".join(section.format(kind=k, direction=direction) for k in kinds),
    }


def test_each_hostile_request_gets_its_4xx(server):
    room_path = "/v1/rooms/r1"
    host, ann = server.token("r1", "host", "host"), server.token("r1", "ann", "audience")
    expired = tokens.issue_token(server.secret, "r1", "old", "audience", 5, now=time.time() - 60)
    forged = tokens.issue_token(b"x" * 32, "r1", "ann", "cohost", 60)
    other_room = server.token("r2", "host", "host")
    cases = [
        (server.call("POST", f"{room_path}/watch", body=fake_offer("recvonly")), 401),
        (server.call("GET", room_path, expired), 401),
        (server.call("GET", room_path, host[:-3] + "abc"), 401),
        (server.call("POST", f"{room_path}/publish", forged, fake_offer("sendrecv")), 401),
        (server.call("GET", room_path, other_room), 403),
        (server.call("GET", "/v1/rooms/r2", other_room), 404),  # a valid token for a room that does not exist
        (server.call("POST", f"{room_path}/watch", ann, raw=b"{not json"), 400),
        (server.call("POST", f"{room_path}/watch", ann, raw=b"[1, 2]"), 400),
        (server.call("POST", f"{room_path}/watch", ann, raw=b'{"sdp": "' + b"a" * 70_000 + b'"}'), 413),
        (server.call("POST", f"{room_path}/watch", ann, fake_offer("recvonly", ("audio",))), 400),
        (server.call("POST", f"{room_path}/watch", ann, fake_offer("sendonly")), 403),
        (server.call("POST", f"{room_path}/publish", ann, fake_offer("sendrecv")), 403),
        (server.call("POST", f"{room_path}/watch", ann, fake_offer("recvonly", address="8.8.8.8")), 422),
        (server.call("POST", f"{room_path}/invite", ann, {"user": "ann"}), 403),
        (server.call("POST", f"{room_path}/invite", host, {"user": "ann"}), 403),  # the host is not live yet
        (server.call("POST", f"{room_path}/accept", ann, {}), 403),  # no invitation
        (server.call("POST", f"{room_path}/remove", ann, {"user": "host"}), 403),
        (server.call("POST", f"{room_path}/leave", ann, {}), 404),
        (server.call("POST", "/v1/tokens", server.key, {"room": "r1", "user": "ann", "role": "cohost"}), 400),
        (server.call("POST", "/v1/tokens", server.key, {"room": "r1", "user": "a b", "role": "host"}), 400),
        (server.call("POST", "/v1/tokens", ann, {"room": "r1", "user": "x", "role": "host"}), 401),
        (server.call("POST", "/v1/rooms", server.key, {"room": "r1"}), 409),
        (server.call("POST", "/v1/rooms", server.key, {"room": "r5", "layout": "grid"}), 400),
    ]
    for (status, body), expected in cases:
        assert status == expected, body
        assert isinstance(body.get("error"), str) and body["error"]
    assert server.call("GET", "/v1/health")[0] == 200


def test_an_offer_that_passes_the_checks_but_cannot_be_negotiated_is_refused_cleanly(server):
    host = server.token("r1", "fakehost", "host")
    status, body = server.call("POST", "/v1/rooms/r1/publish", host, fake_offer("sendrecv"))
    assert status == 400 and "cannot negotiate" in body["error"]
    assert server.call("GET", "/v1/rooms/r1", host)[1]["live"] is False  # the failed host left no trace


def test_a_flood_from_one_user_is_throttled_and_others_still_served(server):
    flooder, calm = server.token("r1", "flood", "audience"), server.token("r1", "calm", "audience")
    statuses = [server.call("GET", "/v1/rooms/r1", flooder)[0] for _ in range(60)]
    assert set(statuses) <= {200, 429} and statuses.count(429) > 0
    assert server.call("GET", "/v1/rooms/r1", calm)[0] == 200  # the limit is per user


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
    path=st.sampled_from(["watch", "publish", "invite", "accept", "remove", "leave"]),
    role=st.sampled_from(["host", "audience"]),
)
def test_junk_bodies_get_4xx_never_5xx(server, body, path, role):
    # a fresh user each time, so the per-user rate limit never answers before the checks behind it
    token = server.token("r1", f"fz{secrets.token_hex(4)}", role)
    status, answer = server.call("POST", f"/v1/rooms/r1/{path}", token, raw=body)
    assert 400 <= status < 500, answer


def test_during_a_flood_the_invitation_goes_through_and_the_cohost_reaches_the_viewers(server):
    asyncio.run(_invite_during_a_flood(server))


async def _invite_during_a_flood(server: Server) -> None:
    from aiohttp import ClientSession

    assert server.call("POST", "/v1/rooms", server.key, {"room": "r3", "layout": "pip"})[0] == 201
    async with ClientSession() as http:
        api = client.Api(http, server.url, server.key, "r3")
        host = client.StageMember(api, "host", seed=1, noise=0)
        guest = client.StageMember(api, "guest", seed=2, noise=0)
        viewer = client.Viewer(api, "viewer", compositor.LAYOUTS["pip"], record_audio=False)
        flooder = await api.token("flood", "audience")
        try:
            host.token, guest.token = await api.token("host", "host"), await api.token("guest", "audience")
            viewer.token = await api.token("viewer", "audience")
            await host.publish()
            await viewer.watch()
            flood = asyncio.gather(
                *(api.room_call(action, flooder, {"user": "flood"}) for action in ["invite", "accept"] * 40)
            )
            assert (await api.room_call("invite", host.token, {"user": "guest"}))[0] == 202
            assert (await api.room_call("", guest.token, method="GET"))[1]["invited"] is True
            status, answer = await api.room_call("accept", guest.token)
            assert status == 200 and answer["role"] == "cohost"
            statuses = [status for status, _ in await flood]
            assert set(statuses) <= {403, 429} and 429 in statuses  # refused, then throttled: never accepted
            guest.token = answer["token"]
            await guest.publish()
            assert await viewer.wait_for(lambda: any(f.slots[1] is not None for f in viewer.frames), 20)
            assert await viewer.wait_for(
                lambda: any(c is not None for c, _ in guest.seen), 20
            )  # sees the host
            assert (await api.room_call("invite", guest.token, {"user": "x"}))[0] == 403  # a co-host cannot
            assert (await api.room_call("remove", host.token, {"user": "guest"}))[0] == 200
            assert (await api.room_call("publish", guest.token, fake_offer("sendrecv")))[0] == 403
        finally:
            guest.stop_media()
            await asyncio.gather(host.close(), guest.close(), viewer.close())
    assert server.call("GET", "/v1/health")[0] == 200 and server.proc.poll() is None


def test_the_server_refuses_a_non_loopback_bind():
    result = subprocess.run(
        [sys.executable, str(FOLDER / "server.py"), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "loopback" in result.stderr
