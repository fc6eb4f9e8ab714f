"""In-game team voice (游戏语音), measured: a voice server with team channels and all-chat, push-to-talk and
open mic with VAD, channel permissions from signed expiring tokens, rate limits and server-side mute, forwarding
each talker's packets to the others in the channel (an SFU); filled with simulated players.

It starts the server (server.py in this folder) as its own process on 127.0.0.1 with a fresh signing secret,
then runs three scenes:

1. a match with two teams: who hears what on the team channels and all-chat, push-to-talk and VAD on the
   uplink, an admin muting a player; hostile requests sent meanwhile;
2. a handover: a listener's network goes dark for 3 s (Wi-Fi -> 4G); the client notices, and rejoins with a
   fresh peer connection once the network is back: the time from the end of the outage to audio heard again;
3. a channel filled with 2, 4, 6 players (quick) who all talk: mouth-to-ear delay of one talker as the others
   hear it, freezes, and CPU, to find how many players a channel holds before quality drops.

    .venv/bin/python samples/scenarios/team_voice/team_voice.py            # quick: channels of 2, 4, 6
    .venv/bin/python samples/scenarios/team_voice/team_voice.py --full     # or LMA_MODE=full: 2, 4, 8, 12
    .venv/bin/python samples/scenarios/team_voice/team_voice.py --profile philippines-mobile
    .venv/bin/python samples/scenarios/team_voice/team_voice.py --json build/team_voice.json
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from aiohttp import ClientSession, ClientTimeout
from client import Api, ChannelLink, Player, Rejoin
from talk import TalkGate
from tokens import issue_token

from rtclab.arguments import number, whole_number
from rtclab.headlines import Headline, new_json_path, write_headlines
from rtclab.impair import Blackout
from rtclab.latency import G114_TRANSPARENT_MS, mouth_to_ear_ms
from rtclab.signals import SpeechLikeAudioTrack

HERE = Path(__file__).resolve().parent
FREEZE_GAP_S = 0.200  # Agora: audio freezes when rendering pauses for more than 200 ms
FREEZE_LIMIT = 0.03  # this sample's rule for "quality holds": at most 3 % of the time frozen
SATURATED_MS_PER_S = 800.0  # the players' one process near a whole core: they, not the server, fall behind
SETTLE_S = 0.4  # key release hangover (0.2 s) and the listener's jitter buffer (80 ms), with room to spare
HANDOVER_AT_S = 1.5  # on loopback, the outage starts this long after the listener joins


@dataclass(frozen=True)
class Size:
    """How big and long a run is."""

    sizes: tuple[int, ...]  # players per channel, one channel each
    seconds: float  # measured audio per channel size
    scene_s: float  # length of each step of the match scene
    slots: int  # streams each player receives (the loudest talkers)
    blackout_s: float
    dead_after_s: float
    path_s: float = 0.0  # round trip the network profile adds (0 on plain loopback)

    @property
    def settle_s(self) -> float:
        """After a change (key released, mute), skip what was in flight and in jitter buffers."""
        return SETTLE_S + self.path_s

    @property
    def handover_at_s(self) -> float:
        """The outage starts this long after the listener joins: after ICE, DTLS and some audio."""
        return HANDOVER_AT_S + 6 * self.path_s


QUICK = Size(sizes=(2, 4, 6), seconds=2.0, scene_s=1.2, slots=3, blackout_s=3.0, dead_after_s=1.5)
FULL = Size(sizes=(2, 4, 8, 12), seconds=6.0, scene_s=3.0, slots=3, blackout_s=3.0, dead_after_s=1.5)


@dataclass
class Expectation:
    """One line of the match scene: what a listener got while something happened."""

    what: str
    hears: bool
    frames: int

    @property
    def ok(self) -> bool:
        return self.frames > 0 if self.hears else self.frames == 0


@dataclass
class MatchResult:
    expectations: list[Expectation] = field(default_factory=list)
    ptt_sent: tuple[int, int] = (0, 0)  # frames sent, frames the microphone made
    vad_share: float = float("nan")  # of the frames made while open mic was on
    muted_dropped: int = 0
    checks: list[tuple[str, int, str]] = field(default_factory=list)
    kept: tuple[int, float] = (0, 0.0)


@dataclass
class Handover:
    """What scene 2 measured; times are ``time.monotonic()`` seconds."""

    rejoin: Rejoin
    outage: tuple[float, float]
    last_heard: float | None  # bob's last frame before his network went
    replaced: int  # connections the server replaced by a rejoin

    @property
    def valid(self) -> bool:
        """The client noticed the outage while it lasted (not a stall before it, not after it)."""
        detected = self.rejoin.detected_at
        return detected is not None and self.outage[0] <= detected < self.outage[1]

    @property
    def recovery_ms(self) -> float:
        """Outage end -> first audio on the new connection."""
        if not self.valid or self.rejoin.first_audio_at is None:
            return float("nan")
        return (self.rejoin.first_audio_at - self.outage[1]) * 1000


@dataclass
class ChannelResult:
    players: int
    delays_ms: list[float] = field(default_factory=list)
    freeze: list[float] = field(default_factory=list)
    server_cpu_ms_per_s: float = float("nan")
    players_cpu_ms_per_s: float = float("nan")

    @property
    def delay_ms(self) -> float:
        return statistics.median(self.delays_ms) if self.delays_ms else float("nan")

    @property
    def delay_p95_ms(self) -> float:
        return float(np.percentile(self.delays_ms, 95)) if self.delays_ms else float("nan")

    @property
    def freeze_rate(self) -> float:
        return statistics.median(self.freeze) if self.freeze else float("nan")

    @property
    def holds(self) -> bool:
        return self.delay_ms < G114_TRANSPARENT_MS and self.freeze_rate <= FREEZE_LIMIT


# --- the server process --------------------------------------------------------------------------------------


async def start_server(
    secret: bytes, backend_key: str, profile: str | None
) -> tuple[asyncio.subprocess.Process, str]:
    """Start server.py on a free loopback port; the secrets go through its environment, never its arguments."""
    env = {**os.environ, "TEAM_VOICE_SECRET": secret.hex(), "TEAM_VOICE_BACKEND_KEY": backend_key}
    command = [sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", "0"]
    if profile:
        command += ["--profile", profile]
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


async def create_match(api: Api, match: str, teams: list[str], slots: int) -> None:
    status, data = await api.backend("POST", "/v1/matches", {"match": match, "teams": teams, "slots": slots})
    if status != 201:
        raise RuntimeError(f"cannot create {match}: {status} {data}")


async def connected(links: list[ChannelLink], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while any(link.pc.connectionState != "connected" for link in links):
        if time.monotonic() > deadline:
            raise RuntimeError("connections did not come up in time")
        await asyncio.sleep(0.02)


def fake_offer(sending: bool, slots: int) -> dict:
    """A syntactically plausible offer (loopback candidate, audio sections) to test the rules, not to connect."""
    head = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    section = "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
    directions = (["sendonly"] if sending else []) + ["recvonly"] * slots
    return {"type": "offer", "sdp": head + "".join(f"{section}a={d}\r\n" for d in directions)}


# --- scene 1: a match ----------------------------------------------------------------------------------------


# --8<-- [start:hostile]
async def hostile(api: Api, secret: bytes, bob: Player, carol: Player, ref: Player, slots: int) -> list:
    """Bad requests a match meets, each with the status it got: (what, status, expected)."""
    base = f"/v1/matches/{bob.match}/channels"
    forged = carol.token[:-4] + ("AAAA" if not carol.token.endswith("AAAA") else "BBBB")
    expired = issue_token(secret, bob.match, "late", "player", "red", 60, now=time.time() - 3600)
    other_match = issue_token(secret, "another-match", "bob", "player", "red", 600)
    checks = [
        ("no token", await api.call("POST", f"{base}/red/join", body=fake_offer(True, slots)), "401"),
        ("forged token (signature changed)", await api.call("GET", f"{base}/blue", token=forged), "401"),
        ("expired token", await api.call("GET", f"{base}/red", token=expired), "401"),
        ("red player's token on blue's channel", await bob.request("GET", "/channels/blue"), "403"),
        ("token for another match", await api.call("GET", f"{base}/red", token=other_match), "403"),
        ("malformed JSON", await api.call("POST", f"{base}/blue/join", token=carol.token, raw=b'{"type":'), "400"),
        ("oversized body (64 KB)", await api.call("POST", f"{base}/blue/join", token=carol.token, raw=b" " * 65536), "413"),
        ("a player tries to mute", await bob.request("POST", "/mute", {"user": "alice", "muted": True}), "403"),
        ("the admin offers to talk", await ref.request("POST", "/channels/red/join", fake_offer(True, slots)), "403"),
    ]  # fmt: skip
    flood = await asyncio.gather(*(carol.request("GET", "/channels/blue") for _ in range(60)))
    throttled = next((r for r in flood if r[0] == 429), flood[-1])
    checks.append(("flood: 60 requests at once", throttled, "429"))
    return [(what, status, expected) for what, (status, _), expected in checks]


# --8<-- [end:hostile]


# --8<-- [start:match]
async def run_match(api: Api, secret: bytes, size: Size, uplink) -> tuple[MatchResult, list[Player]]:
    await create_match(api, "m1", ["red", "blue"], size.slots)
    alice = Player(api, "m1", "alice", "red", uplink=uplink)
    bob = Player(api, "m1", "bob", "red", uplink=uplink)
    carol = Player(api, "m1", "carol", "blue", uplink=uplink)
    ref = Player(api, "m1", "ref", "", role="admin")  # the match admin: mutes, never talks
    on_red = TalkGate(SpeechLikeAudioTrack(seed=1), "ptt")
    on_all = TalkGate(SpeechLikeAudioTrack(seed=2), "off")
    await alice.join("red", on_red)
    await alice.join("all", on_all)
    await asyncio.gather(bob.join("red"), bob.join("all"), carol.join("blue"), carol.join("all"))
    await ref.get_token()
    await connected([link for p in (alice, bob, carol) for link in p.links.values()])
    result = MatchResult()

    on_red.press()  # alice talks to her team; hostile requests arrive meanwhile
    t0 = time.monotonic()
    result.checks = await hostile(api, secret, bob, carol, ref, size.slots)
    await asyncio.sleep(max(0.0, t0 + size.scene_s - time.monotonic()))
    t1 = time.monotonic()
    on_red.release()
    heard = bob.links["red"].frames_between(t0 + size.settle_s, t1)
    result.kept = (heard, heard * 0.020 / (t1 - t0 - size.settle_s))
    result.expectations += [
        Expectation("bob (red) while alice holds push-to-talk on red", True, heard),
        Expectation("carol (blue) on all-chat meanwhile", False, carol.links["all"].frames_between(t0, t1)),
    ]

    on_all.mode = "vad"  # then she talks to everyone, open mic
    before = (on_all.frames_sent, on_all.frames_in)
    t2 = time.monotonic()
    await asyncio.sleep(size.scene_s)
    t3 = time.monotonic()
    result.expectations += [
        Expectation("carol (blue) on all-chat, alice open mic (VAD)", True, carol.links["all"].frames_between(t2 + size.settle_s, t3)),
        Expectation("bob on red meanwhile", False, bob.links["red"].frames_between(t2 + size.settle_s, t3)),
    ]  # fmt: skip

    dropped = (await api.backend("GET", "/v1/metrics"))[1]["media"]["dropped_muted"]
    status, answer = await ref.request("POST", "/mute", {"user": "alice", "muted": True})
    if status != 200:
        raise RuntimeError(f"the admin could not mute: {status} {answer}")
    t4 = time.monotonic()
    await asyncio.sleep(size.scene_s)  # alice keeps talking; the server drops her packets
    t5 = time.monotonic()
    silent = sum(p.links["all"].frames_between(t4 + size.settle_s, t5) for p in (bob, carol))
    result.expectations.append(
        Expectation("bob and carol on all-chat after the admin mutes alice", False, silent)
    )
    result.muted_dropped = (await api.backend("GET", "/v1/metrics"))[1]["media"]["dropped_muted"] - dropped
    result.ptt_sent = (on_red.frames_sent, on_red.frames_in)  # over the whole scene: the key was held once
    made = on_all.frames_in - before[1]  # open mic since t2, through the mute (her client still sends)
    result.vad_share = (on_all.frames_sent - before[0]) / made if made else float("nan")
    return result, [alice, bob, carol, ref]


# --8<-- [end:match]


# --- scene 2: a handover -------------------------------------------------------------------------------------


# --8<-- [start:handover]
async def run_handover(api: Api, size: Size, uplink) -> Handover:
    await create_match(api, "m2", ["red"], size.slots)
    alice = Player(api, "m2", "alice", "red", uplink=uplink)
    bob = Player(api, "m2", "bob", "red", uplink=uplink)
    talk = TalkGate(SpeechLikeAudioTrack(seed=3), "ptt")
    talk.press()  # alice keeps talking through bob's outage
    try:
        await alice.join("red", talk)
        old = await bob.join("red", blackout=Blackout(start_s=size.handover_at_s, duration_s=size.blackout_s))
        replaced = (await api.backend("GET", "/v1/metrics"))[1]["rejoins"]
        rejoin = await bob.stay_connected(
            "red", dead_after_s=size.dead_after_s, give_up_s=size.blackout_s + 20
        )
        replaced = (await api.backend("GET", "/v1/metrics"))[1]["rejoins"] - replaced
        outage = bob.network.outages[0]
        await asyncio.sleep(0.3)
    finally:
        await asyncio.gather(alice.close(), bob.close())
    return Handover(rejoin, outage, old.last_frame_before(outage[0] + 0.5), replaced)


# --8<-- [end:handover]


# --- scene 3: how many players a channel holds ---------------------------------------------------------------


def freeze_rate(recorder, since: float, until: float) -> float:
    """Share of [since, until] spent in gaps longer than FREEZE_GAP_S between decoded frames."""
    arrivals = recorder.arrival_s
    times = np.concatenate([[since], arrivals[(arrivals > since) & (arrivals < until)], [until]])
    gaps = np.diff(times)
    return float(gaps[gaps > FREEZE_GAP_S].sum() / (until - since))


# --8<-- [start:channel]
async def run_channel(api: Api, players: int, size: Size, uplink) -> ChannelResult:
    """``players`` in one channel, all talking: p0 holds push-to-talk, the others talk with open mic + VAD."""
    match = f"squad-of-{players}"
    await create_match(api, match, ["squad"], size.slots)
    probe = SpeechLikeAudioTrack(seed=100, level=0.3)
    gates = [TalkGate(probe, "ptt")] + [
        TalkGate(SpeechLikeAudioTrack(seed=100 + i, level=0.12), "vad") for i in range(1, players)
    ]
    gates[0].press()
    squad = [Player(api, match, f"p{i}", "squad", uplink=uplink) for i in range(players)]
    result = ChannelResult(players)
    try:
        links = await asyncio.gather(*(p.join("squad", g) for p, g in zip(squad, gates, strict=True)))
        await connected(list(links))
        warmup_until = time.monotonic() + max(0.8, size.seconds / 4)
        while any(link.first_audio_at is None for link in links[1:]) and time.monotonic() < warmup_until + 15:
            await asyncio.sleep(0.02)
        await asyncio.sleep(max(0.0, warmup_until - time.monotonic()))
        cpu_server = (await api.backend("GET", "/v1/metrics"))[1]["cpu_s"]
        cpu_players, t_start = time.process_time(), time.monotonic()
        await asyncio.sleep(size.seconds)
        t_end = time.monotonic()
        cpu_players = time.process_time() - cpu_players
        cpu_server = (await api.backend("GET", "/v1/metrics"))[1]["cpu_s"] - cpu_server
        slots = [(await p.request("GET", "/channels/squad"))[1].get("your_slots", []) for p in squad[1:]]
    finally:
        await asyncio.gather(*(p.close() for p in squad))
    result.server_cpu_ms_per_s = cpu_server * 1000 / (t_end - t_start)
    result.players_cpu_ms_per_s = cpu_players * 1000 / (t_end - t_start)
    for link, mine in zip(links[1:], slots, strict=True):  # where each listener gets p0's voice
        if "p0" not in mine:
            result.freeze.append(1.0)  # never given a slot: p0 was not heard at all
            continue
        recorder = link.recorders[mine.index("p0")]
        delays = mouth_to_ear_ms(recorder, probe, clock_offset_s=0.0, after_s=t_start)
        result.delays_ms += [d for d in delays if d < 5000]
        result.freeze.append(freeze_rate(recorder, t_start, t_end))
    return result


# --8<-- [end:channel]


# --- report --------------------------------------------------------------------------------------------------


def _fmt(value: float, spec: str) -> str:
    return "n/a" if value is None or math.isnan(value) else format(value, spec)


def capacity(results: list[ChannelResult]) -> tuple[float, str]:
    """The largest channel size up to which every size tried held, and a sentence saying so."""
    best = float("nan")
    for result in results:  # ascending sizes
        if not result.holds:
            break
        best = result.players
    if math.isnan(best):
        return best, f"quality did not hold even at {results[0].players} players"
    if best == results[-1].players:
        return best, f"quality holds at every size tried (up to {best} players)"
    dropped = next(r.players for r in results if not r.holds)
    return best, f"quality drops at {dropped} players: holds up to {best}"


def report(
    size: Size,
    match: MatchResult,
    handover: Handover,
    results: list[ChannelResult],
    healthy: bool,
) -> str:
    lines = ["Channels, talk modes and mute (match m1: red = alice, bob; blue = carol; all-chat = everyone)"]
    lines.append(f"  {'what':<54} {'expected':>8} {'frames':>7}  result")
    for e in match.expectations:
        verdict = "ok" if e.ok else "UNEXPECTED"
        lines.append(f"  {e.what:<54} {'hears' if e.hears else 'silent':>8} {e.frames:>7}  {verdict}")
    sent, made = match.ptt_sent
    lines.append(
        f"  alice on red, push-to-talk: {sent} of {made} microphone frames sent (key held {size.scene_s:g} s)"
    )
    lines.append(
        f"  alice on all-chat, open mic with VAD: {_fmt(100 * match.vad_share, '.0f')} % of frames sent (speech-like voice)"
    )
    lines.append(f"  packets of the muted player the server dropped: {match.muted_dropped}")
    lines.append("")

    lines.append(f"Handover: bob's network drops for {size.blackout_s:g} s (Wi-Fi -> 4G); his client rejoins")
    (start, end), rejoin = handover.outage, handover.rejoin

    def row(what: str, a: float | None, b: float | None, note: str = "") -> None:
        value = "n/a" if a is None or b is None else f"{(b - a) * 1000:.0f} ms"
        lines.append(f"  {what:<47} {value:>8}{note}")

    lines.append(f"  {'heard alice before the outage':<47} {'yes' if handover.last_heard else 'no':>8}")
    row("outage noticed after", start, rejoin.detected_at, f"   (no packet for {size.dead_after_s:g} s)")
    lines.append(f"  {'rejoin attempts refused, network still down':<47} {rejoin.refused_while_down:>8}")
    row("network back -> rejoin request sent", end, rejoin.request_at)
    row("rejoin request -> answer (signaling, offer)", rejoin.request_at, rejoin.answer_at)
    row("answer -> first audio (ICE, DTLS, jitter buf.)", rejoin.answer_at, rejoin.first_audio_at)
    recovery = _fmt(handover.recovery_ms, ".0f")
    lines.append(f"  {'recovery: outage end -> audio heard again':<47} {recovery + ' ms':>8}")
    row("silence bob heard in all", handover.last_heard, rejoin.first_audio_at)
    lines.append(
        f"  {'server replaced his old connection':<47} {'yes' if handover.replaced == 1 else 'no':>8}"
    )
    lines.append("")

    lines.append(
        f"Players per channel (everyone talks: p0 holds push-to-talk, the others open mic + VAD; {size.slots} slots)"
    )
    lines.append(
        f"  {'players':>7} {'p0 mouth-to-ear ms':>19} {'p95':>6} {'freeze %':>9} {'server CPU':>11} {'players CPU':>12}  quality"
    )
    for r in results:
        lines.append(
            f"  {r.players:>7} {_fmt(r.delay_ms, '.0f'):>19} {_fmt(r.delay_p95_ms, '.0f'):>6} "
            f"{_fmt(100 * r.freeze_rate, '.1f'):>9} {_fmt(r.server_cpu_ms_per_s, '.0f'):>8} ms/s "
            f"{_fmt(r.players_cpu_ms_per_s, '.0f'):>8} ms/s  {'holds' if r.holds else 'drops'}"
            + (" (players' process saturated)" if r.players_cpu_ms_per_s >= SATURATED_MS_PER_S else "")
        )
    lines.append(f"  {capacity(results)[1]}")
    lines.append(f"  (holds = median delay < {G114_TRANSPARENT_MS:.0f} ms (G.114) and freeze <= {100 * FREEZE_LIMIT:.0f} %; "
                 "all players run in this one process, the server in its own)")  # fmt: skip
    lines.append("")

    lines.append("Hostile requests while alice talks to her team")
    for what, status, expected in match.checks:
        verdict = "ok" if str(status) == expected else f"expected {expected}"
        lines.append(f"  {what:<40} -> {status}  {verdict}")
    frames, share = match.kept
    lines.append(f"  bob kept hearing alice meanwhile: {frames} frames, {share:.0%} of real time")
    lines.append(f"  server still answering: {'yes' if healthy else 'NO'}")
    return "\n".join(lines)


# --- main ----------------------------------------------------------------------------------------------------


async def run(size: Size, profile: str | None, full: bool, json_path: Path | None) -> int:
    secret, backend_key = secrets.token_bytes(32), secrets.token_urlsafe(24)  # new every run, never on disk
    uplink = None
    if profile:
        from rtclab.profiles import get_profile

        uplink, downlink = (
            get_profile(profile).uplink_impairment(seed=2),
            get_profile(profile).downlink_impairment(seed=1),
        )
        jitter = 3 * (uplink.jitter_ms + downlink.jitter_ms)
        size = replace(size, path_s=(uplink.delay_ms + downlink.delay_ms + jitter) / 1000)
    proc, base_url = await start_server(secret, backend_key, profile)
    print(
        f"Team voice on {base_url}: channels of {', '.join(map(str, size.sizes))} players, {size.slots} slots each"
    )
    print(f"mode: {'full' if full else 'quick'}; network: {profile or 'loopback, unimpaired'}")
    print()
    try:
        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            api = Api(http, base_url, backend_key)
            match, players = await run_match(api, secret, size, uplink)
            await asyncio.gather(*(p.close() for p in players))
            # scipy (for scoring) takes seconds to import on a busy machine: import it while scene 2 waits
            warm_up = asyncio.get_running_loop().run_in_executor(None, _import_scoring)
            handover = await run_handover(api, size, uplink)
            await warm_up
            results = [await run_channel(api, n, size, uplink) for n in size.sizes]
            healthy = (await api.call("GET", "/v1/health"))[0] == 200
    finally:
        proc.terminate()
        await proc.wait()
    print(report(size, match, handover, results, healthy))
    if json_path is not None:
        write_headlines(
            json_path,
            "team-voice",
            "full" if full else "quick",
            headlines(handover, results, size, profile),
        )
    ok = (
        healthy
        and all(e.ok for e in match.expectations)
        and all(str(s) == e for _, s, e in match.checks)
        and not math.isnan(handover.recovery_ms)
        and handover.replaced == 1
        and any(r.delays_ms for r in results)
    )
    return 0 if ok else 1


def headlines(
    handover: Handover, results: list[ChannelResult], size: Size, profile: str | None
) -> list[Headline]:
    network = profile or "loopback"
    smallest, largest = results[0], results[-1]
    held, _ = capacity(results)
    return [
        Headline(
            "mouth-to-ear delay, talker -> server -> listener", smallest.delay_ms, "ms", G114_TRANSPARENT_MS,
            "lower", "ITU-T G.114: < 150 ms one-way",
            f"{network}; {smallest.players} players in the channel; aiortc's 80 ms jitter buffer included",
        ),
        Headline(
            f"recovery after a {size.blackout_s:g} s handover blackout", handover.recovery_ms, "ms", None, "lower", "",
            f"{network}; outage end -> audio heard again; fresh peer connection, retries every 0.25 s",
        ),
        Headline(
            "players per channel before quality drops", held, "players", None, "higher", "",
            f"sizes {', '.join(map(str, size.sizes))} tried, everyone talking; holds = median delay < 150 ms and "
            f"freeze <= {100 * FREEZE_LIMIT:.0f} %; all players in one process",
        ),
        Headline(
            "audio freeze rate (gaps > 200 ms)", 100 * largest.freeze_rate, "%", None, "lower",
            "Agora Call Inspector: audio freeze = rendering pause > 200 ms",
            f"{network}; {largest.players} players in the channel, p0's stream",
        ),
    ]  # fmt: skip


def _import_scoring() -> None:
    import scipy.signal  # noqa: F401


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not 1 <= len(sizes) <= 6 or not all(2 <= n <= 16 for n in sizes):
        raise argparse.ArgumentTypeError("1 to 6 channel sizes, each from 2 to 16 players")
    return tuple(sorted(set(sizes)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run in-game team voice on loopback and measure it.")
    parser.add_argument("--full", action="store_true", help="bigger channels, longer (also LMA_MODE=full)")
    parser.add_argument("--sizes", type=_sizes, help="players per channel to try, e.g. 2,4,6 (2-16 each)")
    parser.add_argument("--seconds", type=number(1, 60), help="measured audio per channel size")
    parser.add_argument(
        "--slots", type=whole_number(1, 8), help="streams each player receives (loudest talkers)"
    )
    parser.add_argument("--blackout", type=number(1, 10), help="handover outage in seconds (3)")
    parser.add_argument("--dead-after", type=number(0.5, 5), help="silence that means 'reconnect' (1.5 s)")
    parser.add_argument(
        "--profile", help="an rtclab network profile for every player's link (e.g. chrome-3g)"
    )
    parser.add_argument(
        "--json", type=new_json_path, metavar="PATH", help="also write the headline figures here (a new file)"
    )
    args = parser.parse_args(argv)
    if args.profile:
        from rtclab.profiles import load_profiles

        if args.profile not in load_profiles():
            parser.error(f"--profile: unknown profile {args.profile!r} (see `rtclab profiles`)")
    full = args.full or os.environ.get("LMA_MODE") == "full"
    base = FULL if full else QUICK
    size = Size(
        sizes=args.sizes or base.sizes,
        seconds=args.seconds or base.seconds,
        scene_s=base.scene_s,
        slots=args.slots or base.slots,
        blackout_s=args.blackout or base.blackout_s,
        dead_after_s=args.dead_after or base.dead_after_s,
    )
    if size.dead_after_s >= size.blackout_s:
        parser.error(
            "--dead-after must be shorter than --blackout (else the old connection comes back first)"
        )
    return asyncio.run(run(size, args.profile, full, args.json))


if __name__ == "__main__":
    sys.exit(main())
