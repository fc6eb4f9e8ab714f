"""Bullet comments (弹幕) for co-host live streaming, measured: two WebSocket gateways (each its own process on
127.0.0.1) fanning comments out through a private Redis, 1,000 simulated viewers split between them, a subset
of them posting, and the hostile input a public endpoint meets, all at once.

It starts redis-server (redis_server.py), two gateways (gateway.py) with a fresh token secret in their
environment, and one load generator per gateway (viewers.py) with 500 viewers each. Then, for a few seconds,
posters comment at a set rate while two extra flooders try far more than the per-user limit allows; meanwhile
this runner sends hostile frames to gateway A (hostile.py), one extra viewer drops its connection and resumes
on the other gateway, and 20 more watch through a weak mobile link (weak_link.py). It reports, per gateway:
the delivery rate (comments delivered to every viewer over comments accepted), the delay from send to receive
(p50/p99, one machine, one clock), what the limits refused, each hostile input's answer, what the weak-link
viewers got, and what the resumed viewer recovered.

    .venv/bin/python samples/scenarios/bullet_comments/bullet_comments.py            # quick: 1,000 viewers
    .venv/bin/python samples/scenarios/bullet_comments/bullet_comments.py --full     # or LMA_MODE=full: 2,000
    .venv/bin/python samples/scenarios/bullet_comments/bullet_comments.py --batch-ms 100 --weak-profile chrome-3g
    .venv/bin/python samples/scenarios/bullet_comments/bullet_comments.py --json headlines.json

Needs redis-server (Debian: sudo apt-get install redis-server); the sample starts and stops its own.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout
from fanout import parse_id
from hostile import Check, hostile_checks
from moderation import MASKED_WORDS
from redis_server import INSTALL_HINT, RedisMissingError, RedisServer, die_with_parent, start_redis
from tokens import issue_token, new_secret
from viewers import Client, Recorder, now
from weak_link import WeakLink

from rtclab.arguments import number, whole_number
from rtclab.headlines import Headline, new_json_path, write_headlines
from rtclab.profiles import Profile, get_profile, load_profiles

HERE = Path(__file__).resolve().parent
ROOM, SIDE_ROOM = "live-1", "live-2"
FLOOD_RATE = 4.0  # comments per second a flooder tries: four times the per-user limit
HELLO_TIMEOUT_S = 2.0  # gateway.Limits.hello_timeout_s
AGORA_TARGET_MS = 100.0  # Agora Signaling: average latency within a region under 100 ms


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    viewers: int  # in the main room, split evenly between the two gateways
    posters: int  # viewers who comment at `rate`
    rate: float  # comments per second per poster
    flooders: int  # extra users who try FLOOD_RATE comments per second (their deliveries are not measured)
    seconds: float  # how long they post


@dataclass(frozen=True)
class Options:
    """How to run it, besides its size."""

    batch_ms: float = 0.0
    json_path: Path | None = None
    full: bool = False
    seed: int = 1
    weak: Profile | None = None  # the link of the weak viewers
    weak_viewers: int = 20


QUICK = Size(viewers=1000, posters=100, rate=0.1, flooders=2, seconds=8.0)
FULL = Size(viewers=2000, posters=200, rate=0.1, flooders=4, seconds=30.0)


@dataclass
class Gateway:
    """A running gateway process."""

    name: str
    proc: asyncio.subprocess.Process
    http: str  # http://127.0.0.1:port

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://", 1)


# --- processes -----------------------------------------------------------------------------------------------


async def start_gateway(
    name: str, secret: bytes, redis: RedisServer, ops_key: str, batch_ms: float
) -> Gateway:
    """gateway.py on a free loopback port; secrets go through its environment, never its arguments."""
    env = {**os.environ, "BULLET_TOKEN_SECRET": secret.hex(), "BULLET_REDIS_URL": redis.url}
    env["BULLET_OPS_KEY"] = ops_key
    command = [
        sys.executable,
        str(HERE / "gateway.py"),
        "--port",
        "0",
        "--name",
        name,
        "--batch-ms",
        str(batch_ms),
    ]
    proc = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.PIPE, preexec_fn=die_with_parent
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"gateway {name} did not start: {line!r}")
    return Gateway(name, proc, line.removeprefix("listening on "))


async def start_viewers(plan: dict) -> asyncio.subprocess.Process:
    """viewers.py with its plan on stdin; its result line can be megabytes, hence the large limit."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "viewers.py"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 28,
        preexec_fn=die_with_parent,
    )
    assert proc.stdin is not None
    proc.stdin.write((json.dumps(plan) + "\n").encode())
    await proc.stdin.drain()
    return proc


async def read_event(proc: asyncio.subprocess.Process, event: str, timeout_s: float) -> dict:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), timeout_s)
    data = json.loads(line) if line else {}
    if data.get("event") != event:
        raise RuntimeError(f"viewers process: expected {event!r}, got {line[:200]!r}")
    return data


async def metrics(http: ClientSession, gateway: Gateway, ops_key: str) -> dict:
    headers = {"Authorization": f"Bearer {ops_key}"}
    async with http.get(f"{gateway.http}/v1/metrics", headers=headers) as response:
        return await response.json()


async def healthy(http: ClientSession, gateway: Gateway) -> bool:
    try:
        async with http.get(f"{gateway.http}/v1/health") as response:
            return response.status == 200 and gateway.proc.returncode is None
    except OSError:
        return False


# --- the run -------------------------------------------------------------------------------------------------


def plans(size: Size, gateways: list[Gateway], secret: bytes, seed: int) -> list[dict]:
    """One plan per gateway: half the viewers each, posters spread over both, and the flooders (extra users
    whose own deliveries are not measured: the gateway may hang up on them) split between them."""
    users = [f"v{i:05d}" for i in range(size.viewers)]
    posters = {users[i * size.viewers // size.posters]: size.rate for i in range(size.posters)}
    flooders = [f"f{i:03d}" for i in range(size.flooders)]
    result = []
    for index, gateway in enumerate(gateways):
        half = len(users) // len(gateways)
        mine = (
            users[index * half : (index + 1) * half] if index < len(gateways) - 1 else users[index * half :]
        )
        my_flooders = flooders[index :: len(gateways)]
        result.append(
            {
                "url": f"{gateway.ws}/v1/rooms/{ROOM}/ws",
                "room": ROOM,
                "users": mine + my_flooders,
                "tokens": [issue_token(secret, ROOM, user, 600) for user in mine + my_flooders],
                "posters": {u: r for u, r in posters.items() if u in set(mine)}
                | {u: FLOOD_RATE for u in my_flooders},
                "uncounted": my_flooders,
                "seconds": size.seconds,
                "seed": seed + index,
                "must_not_see": list(MASKED_WORDS),
            }
        )
    return result


# --8<-- [start:resume]
async def drop_and_resume(
    http: ClientSession, gateways: list[Gateway], secret: bytes, after_s: float, offline_s: float
) -> dict:
    """A viewer on gateway B loses its connection (a handover, a tunnel) and comes back on gateway A with the
    id of the last comment it saw; the gateway replays what it missed from the room's history in Redis."""
    token = issue_token(secret, ROOM, "roamer", 600)
    url = f"/v1/rooms/{ROOM}/ws"
    seen = Recorder(room=ROOM, keep_frames=True)
    first = Client(http, gateways[1].ws + url, token, seen)
    await first.connect()
    await asyncio.sleep(after_s)
    await first.close()
    last_seen = max(seen.seen, key=parse_id) if seen.seen else "0-0"
    await asyncio.sleep(offline_s)  # comments keep flowing meanwhile: pub/sub will not keep them for us
    second = Client(http, gateways[0].ws + url, token, seen)
    await second.connect(since=last_seen)
    return {"client": second, "recorder": seen, "first_id": min(seen.seen, key=parse_id, default=None)}


# --8<-- [end:resume]


# --8<-- [start:weak]
async def connect_weak_viewers(
    http: ClientSession, gateway: Gateway, profile: Profile, count: int, secret: bytes
) -> tuple[WeakLink, list[Client], dict[str, list[float]], float]:
    """``count`` extra viewers that reach ``gateway`` through a relay with the profile's link, each on its own
    link (phones on that network): the relay, the viewers, their receive times by cid, and the connect time."""
    host, port = gateway.http.removeprefix("http://").split(":")
    link = WeakLink(profile, (host, int(port)))
    relay = await link.start()
    times: dict[str, list[float]] = {}
    url = f"ws://127.0.0.1:{relay}/v1/rooms/{ROOM}/ws"
    clients = [
        Client(
            http, url, issue_token(secret, ROOM, f"w{i:04d}", 600), Recorder(times, ROOM, tuple(MASKED_WORDS))
        )
        for i in range(count)
    ]
    started = now()
    await asyncio.gather(*(c.connect(timeout_s=120) for c in clients))
    return link, clients, times, now() - started


# --8<-- [end:weak]


async def quiet(times: dict[str, list[float]], quiet_s: float, limit_s: float) -> None:
    """Wait until no comment has arrived for ``quiet_s`` (or ``limit_s`` has passed)."""
    last, since, deadline = -1, now(), now() + limit_s
    while now() < deadline:
        total = sum(len(t) for t in times.values())
        if total != last:
            last, since = total, now()
        elif now() - since >= quiet_s:
            return
        await asyncio.sleep(0.1)


async def run(size: Size, options: Options) -> int:
    secret, ops_key = new_secret(), secrets.token_urlsafe(24)  # new every run, never on disk
    redis = await start_redis()
    gateways: list[Gateway] = []
    loads: list[asyncio.subprocess.Process] = []
    try:
        gateways = list(
            await asyncio.gather(*(start_gateway(n, secret, redis, ops_key, options.batch_ms) for n in "AB"))
        )
        async with ClientSession(timeout=ClientTimeout(total=120)) as http:
            loads = [await start_viewers(plan) for plan in plans(size, gateways, secret, options.seed)]
            weak_task = None
            if options.weak is not None and options.weak_viewers:
                weak_task = asyncio.ensure_future(
                    connect_weak_viewers(http, gateways[1], options.weak, options.weak_viewers, secret)
                )
            readies = await asyncio.gather(*(read_event(p, "ready", 240) for p in loads))
            weak = await weak_task if weak_task is not None else None
            witness = Client(
                http,
                f"{gateways[1].ws}/v1/rooms/{SIDE_ROOM}/ws",
                issue_token(secret, SIDE_ROOM, "witness", 600),
            )
            await witness.connect()
            before = [await metrics(http, g, ops_key) for g in gateways]
            redis_before = await redis.cpu_s()

            for proc in loads:  # both load generators start posting now
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            hostile_task = asyncio.ensure_future(
                hostile_checks(http, gateways[0].ws, secret, SIDE_ROOM, ROOM, HELLO_TIMEOUT_S)
            )
            resume_task = asyncio.ensure_future(
                drop_and_resume(http, gateways, secret, size.seconds * 0.3, min(1.5, size.seconds * 0.2))
            )
            results = await asyncio.gather(*(read_event(p, "done", size.seconds + 120) for p in loads))
            if weak is not None:  # a slow link is still delivering what queued up for it
                await quiet(weak[2], quiet_s=2.0, limit_s=60)
            checks = await hostile_task
            resumed = await resume_task
            redis_cpu_s = await redis.cpu_s() - redis_before
            after = [await metrics(http, g, ops_key) for g in gateways]
            alive = [await healthy(http, g) for g in gateways]
            await asyncio.sleep(0.3)  # the last side-room comments reach the witness
            await asyncio.gather(witness.close(), resumed["client"].close())
            if weak is not None:
                await asyncio.gather(*(c.close() for c in weak[1]), return_exceptions=True)
                await weak[0].stop()
    finally:
        for proc in [*loads, *(g.proc for g in gateways)]:
            if proc.returncode is None:
                proc.terminate()
        for proc in [*loads, *(g.proc for g in gateways)]:
            await proc.wait()
        redis.stop()

    summary = summarize(size, results, readies, before, after, redis_cpu_s)
    side = side_room(checks, witness)
    roam = roaming(resumed, results)
    slow = weak_summary(weak, results, options) if weak is not None else None
    print(report(size, options, redis.version, summary, checks, side, roam, slow, alive))
    if options.json_path is not None:
        write_json(options.json_path, summary, options)
    ok = (
        summary["delivery_rate"] == 1.0
        and summary["anomalies"] == 0
        and all(check.ok for check in checks)
        and side["lost"] == 0
        and side["leaked"] == 0
        and roam["lost"] == 0
        and all(alive)
    )
    return 0 if ok else 1


# --- analysis ------------------------------------------------------------------------------------------------


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarize(size: Size, results, readies, before, after, redis_cpu_s) -> dict:
    """Delivery rate and delays per gateway, from the raw send and receive times of both load generators."""
    sent = {cid: t for r in results for cid, t in r["sent"].items()}
    acks = {cid: ack for r in results for cid, ack in r["acks"].items()}  # cid -> (comment id, time, masked)
    per_gateway = []
    for result, ready, b, a in zip(results, readies, before, after, strict=True):
        delays = [
            (t - sent[cid]) * 1000 for cid, times in result["received"].items() if cid in acks for t in times
        ]
        delivered = len(delays)
        expected = len(acks) * result["viewers"]
        unexpected = sum(len(times) for cid, times in result["received"].items() if cid not in acks)
        per_gateway.append(
            {
                "name": a["gateway"],
                "viewers": result["viewers"],
                "connect_s": ready["connect_s"],
                "delivered": delivered,
                "expected": expected,
                "delays": delays,
                "anomalies": unexpected + result["closed_early"] + sum(result["counts"].values()),
                "counts": result["counts"],
                "unexpected": unexpected,
                "closed_early": result["closed_early"],
                "flooders_cut_off": result["uncounted_cut_off"],
                "cpu_s": a["cpu_s"] - b["cpu_s"],
                "comments_out": a.get("comments_out", 0) - b.get("comments_out", 0),
                "frames_out": a.get("frames_out", 0) - b.get("frames_out", 0),
                "dropped": a.get("dropped_slow", 0) - b.get("dropped_slow", 0),
                "load_cpu_s": result["cpu_s"],
            }
        )
    errors: dict[str, int] = {}
    for result in results:
        for code, n in result["errors"].items():
            errors[code] = errors.get(code, 0) + n
    all_delays = [d for g in per_gateway for d in g["delays"]]
    delivered, expected = sum(g["delivered"] for g in per_gateway), sum(g["expected"] for g in per_gateway)
    return {
        "gateways": per_gateway,
        "sent": len(sent),
        "accepted": len(acks),
        "masked": sum(1 for ack in acks.values() if ack[2]),
        "errors": errors,
        "delivered": delivered,
        "expected": expected,
        "delivery_rate": delivered / expected if expected else float("nan"),
        "p50": _percentile(all_delays, 50),
        "p99": _percentile(all_delays, 99),
        "max": max(all_delays, default=float("nan")),
        "anomalies": sum(g["anomalies"] for g in per_gateway),
        "redis_cpu_s": redis_cpu_s,
        "viewers": sum(g["viewers"] for g in per_gateway),
        "offered_rate": size.posters * size.rate,
    }


def side_room(checks: list[Check], witness: Client) -> dict:
    """The hostile side room: every comment a probe got acked reached the witness on the other gateway, and
    nothing that was refused did."""
    acked = {cid for check in checks for cid in check.acked_ids}
    got = set(witness.sink.seen)
    masked = [f["text"] for f in witness.sink.frames.values() if f.get("masked")]
    return {"acked": len(acked), "lost": len(acked - got), "leaked": len(got - acked), "masked": masked}


def roaming(resumed: dict, results) -> dict:
    """What the viewer that dropped and resumed recovered, against every comment accepted in the room."""
    recorder: Recorder = resumed["recorder"]
    client: Client = resumed["client"]
    first = resumed["first_id"]
    accepted = {ack[0] for r in results for ack in r["acks"].values()}
    owed = {i for i in accepted if first is not None and parse_id(i) >= parse_id(first)}
    replayed = (client.resumed or {}).get("replayed", 0)
    return {
        "replayed": replayed,
        "gap": (client.resumed or {}).get("gap"),
        "owed": len(owed),
        "lost": len(owed - set(recorder.seen)),
        "duplicates": recorder.counts["duplicates"],
    }


# --- report --------------------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "n/a" if value != value else f"{value:.1f}"


def weak_summary(weak, results, options: Options) -> dict:
    """Delivery and delay for the viewers behind the weak link."""
    _, clients, times, connect_s = weak
    sent = {cid: t for r in results for cid, t in r["sent"].items()}
    accepted = {cid for r in results for cid in r["acks"]}
    delays = [(t - sent[cid]) * 1000 for cid, ts in times.items() if cid in accepted for t in ts]
    expected = len(accepted) * len(clients)
    return {
        "profile": options.weak,
        "viewers": len(clients),
        "connect_s": connect_s,
        "delivered": len(delays),
        "expected": expected,
        "p50": _percentile(delays, 50),
        "p99": _percentile(delays, 99),
        "closed": sum(c.close_code is not None for c in clients),
    }


def _link(link) -> str:
    rate = f"{link.rate_kbps:g} kbit/s" if link.rate_kbps else "no cap"
    return f"{rate} and {link.delay_ms:g} ms"


def report(size, options, redis_version, s, checks, side, roam, slow, alive) -> str:
    full, batch_ms = options.full, options.batch_ms
    a, b = s["gateways"]
    lines = [
        f"Bullet comments on 127.0.0.1: 2 gateways + Redis {redis_version} pub/sub; mode: {'full' if full else 'quick'}",
        f"viewers: {s['viewers']} in room {ROOM} ({a['viewers']} on A, {b['viewers']} on B), "
        f"all connected in {max(a['connect_s'], b['connect_s']):.1f} s",
        f"load: {size.posters} of them post {size.rate:g} comments/s each, {size.flooders} extra flooders try "
        f"{FLOOD_RATE:g}/s each, for {size.seconds:g} s",
        f"frames: {'one per comment' if not batch_ms else f'batched every {batch_ms:g} ms'}",
        "",
    ]
    header = f"{'metric':<40} {'published target':<28}{'gateway A':>17}{'gateway B':>17}{'both':>17}"
    lines += [header, "-" * len(header)]

    def row(name: str, target: str, cells: list[str]) -> None:
        lines.append(f"{name:<40} {target:<28}" + "".join(f"{c:>17}" for c in cells))

    def rate(g: dict) -> str:
        return f"{100 * g['delivered'] / g['expected']:.2f}%" if g["expected"] else "n/a"

    row("comments sent / accepted", "", ["", "", f"{s['sent']} / {s['accepted']}"])
    row(
        "deliveries: got / accepted x viewers",
        "",
        [f"{g['delivered']}/{g['expected']}" for g in (a, b)] + [f"{s['delivered']}/{s['expected']}"],
    )
    row("delivery rate", "none published", [rate(a), rate(b), f"{100 * s['delivery_rate']:.2f}%"])
    for label, q in (("delay send -> receive, p50 (ms)", 50), ("delay send -> receive, p99 (ms)", 99)):
        key = "p50" if q == 50 else "p99"
        row(
            label,
            "< 100 avg in region (Agora)",
            [_ms(_percentile(a["delays"], q)), _ms(_percentile(b["delays"], q)), _ms(s[key])],
        )
    row(
        "delay send -> receive, max (ms)",
        "",
        [
            _ms(max(a["delays"], default=float("nan"))),
            _ms(max(b["delays"], default=float("nan"))),
            _ms(s["max"]),
        ],
    )

    def seen(g: dict) -> str:
        c = g["counts"]
        return f"{c.get('duplicates', 0)}/{c.get('other_room', 0)}/{c.get('masked_word_seen', 0)}"

    row("duplicates / other rooms' / masked words", "none", [seen(a), seen(b), ""])
    row(
        "viewers cut off / comments never acked",
        "none",
        [f"{g['closed_early']}/{g['unexpected']}" for g in (a, b)] + [""],
    )
    row("comments dropped for slow viewers", "", [str(a["dropped"]), str(b["dropped"]), ""])
    per_frame = [f"{g['comments_out'] / g['frames_out']:.2f}" if g["frames_out"] else "n/a" for g in (a, b)]
    row("comments per WebSocket frame", "", [*per_frame, ""])
    per_k = [
        f"{1000 * 1000 * g['cpu_s'] / g['comments_out']:.0f}" if g["comments_out"] else "n/a" for g in (a, b)
    ]
    row("gateway CPU per 1,000 deliveries (ms)", "lower is better", [*per_k, ""])
    per_k = [
        f"{1000 * 1000 * g['load_cpu_s'] / g['delivered']:.0f}" if g["delivered"] else "n/a" for g in (a, b)
    ]
    row("viewers' CPU per 1,000 receptions (ms)", "the measuring side", [*per_k, ""])
    row("Redis CPU during the load (ms)", "", ["", "", f"{1000 * s['redis_cpu_s']:.0f}"])
    lines.append("")
    lines.append("Refused by the limits during the load (sent - accepted)")
    for code in ("rate_limited", "moderated", "too_long"):
        lines.append(f"  {code:<36} {s['errors'].get(code, 0):>6}")
    lines.append(f"  {'(masked, then delivered)':<36} {s['masked']:>6}")
    cut_off = sum(g["flooders_cut_off"] for g in (a, b))
    lines.append(f"  {'(flooders hung up on, 4429)':<36} {cut_off:>6}")
    others = {k: v for k, v in s["errors"].items() if k not in ("rate_limited", "moderated", "too_long")}
    for code, n in sorted(others.items()):
        lines.append(f"  {code:<36} {n:>6}")
    lines.append("")
    lines.append("Hostile input to gateway A while the load runs")
    for check in checks:
        lines.append(f"  {check.what:<34} -> {check.answer:<37} {'ok' if check.ok else 'UNEXPECTED'}")
    lines.append(
        f"  side room: {side['acked']} acked comments, witness on B lost {side['lost']}, "
        f"got {side['leaked']} it should not have; masked text delivered as {side['masked'][:1]}"
    )
    lines.append(
        f"  gateways still answering: A {'yes' if alive[0] else 'NO'}, B {'yes' if alive[1] else 'NO'}"
    )
    lines.append("")
    if slow is not None:
        profile = slow["profile"]
        blackouts = (
            ", ".join(f"{b.start_s:g}-{b.start_s + b.duration_s:g} s" for b in profile.blackouts) or "none"
        )
        lines.append(
            f"{slow['viewers']} more viewers on gateway B behind a weak link, profile {profile.name}:"
        )
        lines.append(
            f"  down {_link(profile.downlink)}, up {_link(profile.uplink)} (one way), blackouts {blackouts} "
            "(a TCP relay: loss and jitter not applied)"
        )
        rate = 100 * slow["delivered"] / slow["expected"] if slow["expected"] else float("nan")
        lines.append(
            f"  connected in {slow['connect_s']:.1f} s; delivery rate {rate:.2f}%; delay send -> receive "
            f"p50 {_ms(slow['p50'])} ms, p99 {_ms(slow['p99'])} ms; disconnected: {slow['closed']}"
        )
        lines.append("")
    lines.append("A viewer drops off gateway B and resumes on gateway A with the last id it saw")
    lines.append(
        f"  replayed from the room's history: {roam['replayed']}; still missing: {roam['lost']} "
        f"of {roam['owed']}; duplicates: {roam['duplicates']}; gap reported: {roam['gap']}"
    )
    return "\n".join(lines)


def write_json(path: Path, s: dict, options: Options) -> None:
    conditions = (
        f"loopback, 2 gateways + Redis + load generators on one machine; {s['viewers']} viewers, "
        f"{s['offered_rate']:g} comments/s offered"
        + (f", batched {options.batch_ms:g} ms" if options.batch_ms else "")
    )
    source = "Agora Signaling: average latency within a region < 100 ms"
    write_headlines(
        path,
        "live-cohost",
        "full" if options.full else "quick",
        [
            Headline(
                "bullet comment delay p50, send -> receive",
                s["p50"],
                "ms",
                AGORA_TARGET_MS,
                "lower",
                source,
                conditions,
            ),
            Headline(
                "bullet comment delay p99, send -> receive",
                s["p99"],
                "ms",
                AGORA_TARGET_MS,
                "lower",
                source,
                conditions,
            ),
            Headline(
                "bullet comment delivery rate",
                100 * s["delivery_rate"],
                "%",
                None,
                "higher",
                "",
                "delivered / (accepted x viewers), both gateways",
            ),
            Headline(
                "bullet comment viewers", float(s["viewers"]), "viewers", None, "higher", "", conditions
            ),
        ],
    )


# --- main ----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run two bullet-comment gateways over Redis on loopback, load them with viewers, measure."
    )
    parser.add_argument("--full", action="store_true", help="2,000 viewers for 30 s (also LMA_MODE=full)")
    parser.add_argument(
        "--viewers", type=whole_number(10, 5000), help="viewers in the room, split over 2 gateways"
    )
    parser.add_argument("--posters", type=whole_number(1, 1000), help="viewers who comment")
    parser.add_argument("--rate", type=number(0.01, 2.0), help="comments per second per poster")
    parser.add_argument("--seconds", type=number(3, 300), help="how long they post")
    parser.add_argument("--batch-ms", type=number(0, 1000), default=0.0, help="gateway batching window")
    parser.add_argument(
        "--seed", type=whole_number(0, 2**31), default=1, help="seed for who posts what, and when"
    )
    parser.add_argument(
        "--weak-profile",
        default="atc-2g-developing-urban",
        help="rtclab network profile of the weak viewers' link (`rtclab profiles`; 'none': no weak viewers)",
    )
    parser.add_argument(
        "--weak-viewers", type=whole_number(0, 200), default=20, help="viewers behind that link"
    )
    parser.add_argument(
        "--json", type=new_json_path, metavar="PATH", help="write the headline figures here (a new file)"
    )
    args = parser.parse_args(argv)
    full = args.full or os.environ.get("LMA_MODE") == "full"
    base = FULL if full else QUICK
    size = Size(
        viewers=base.viewers if args.viewers is None else args.viewers,
        posters=base.posters if args.posters is None else args.posters,
        rate=base.rate if args.rate is None else args.rate,
        flooders=base.flooders,
        seconds=base.seconds if args.seconds is None else args.seconds,
    )
    if size.posters > size.viewers:
        parser.error("--posters: at most the number of viewers")
    weak = None
    if args.weak_profile != "none":
        if args.weak_profile not in load_profiles():
            parser.error(f"--weak-profile: unknown profile {args.weak_profile!r} (see `rtclab profiles`)")
        weak = get_profile(args.weak_profile)
    options = Options(args.batch_ms, args.json, full, args.seed, weak, args.weak_viewers)
    try:
        return asyncio.run(run(size, options))
    except RedisMissingError:
        print(INSTALL_HINT, file=sys.stderr)
        return 2
    except (RuntimeError, OSError, TimeoutError) as error:  # a process that did not start or answer
        print(f"bullet_comments: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
