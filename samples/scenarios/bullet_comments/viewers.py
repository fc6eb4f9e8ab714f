"""Simulated viewers for the bullet-comment gateways (the load generator): many WebSocket viewers in one
process, some of them posting comments at a set rate, recording when each comment was sent and when each
viewer received it.

The runner (bullet_comments.py) starts one of these processes per gateway and drives it through standard
input and output: it writes the plan as one JSON line (with the viewers' tokens: the runner plays the app
backend that issues them), waits for ``{"event": "ready"}``, writes ``go``, and reads ``{"event": "done", ...}``
with the raw times. Times are CLOCK_MONOTONIC readings, one clock for every process on a Linux machine, so
the runner can subtract a send time taken in one viewers process from a receive time taken in the other.

    .venv/bin/python samples/scenarios/bullet_comments/viewers.py --help
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, TCPConnector, WSMsgType

__all__ = ["Client", "Plan", "comment_text", "now", "run_plan"]

NORMAL = [
    "666",
    "主播好!",
    "gg",
    "太强了",
    "前方高能",
    "hello from the back row",
    "lol",
    "这波可以",
    "nice shot",
]


def now() -> float:
    """Seconds on CLOCK_MONOTONIC: comparable between processes of one Linux machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def comment_text(rng: random.Random) -> str:
    """What a simulated viewer types: mostly ordinary comments, and a few that the limits must catch."""
    roll = rng.random()
    if roll < 0.05:
        return "you are so stupid"  # masked by the blocklist, still delivered
    if roll < 0.08:
        return "free skins at http://spam.example/win"  # rejected by the blocklist
    if roll < 0.11:
        return "啊" * 150  # over the 100-character limit
    return rng.choice(NORMAL)


# --8<-- [start:client]
class Client:
    """One viewer's WebSocket: connects with its token, posts, and records every frame it receives."""

    def __init__(self, session: ClientSession, url: str, token: str, sink: Recorder | None = None) -> None:
        self.session, self.url, self.token = session, url, token
        self.sink = sink or Recorder(keep_frames=True)
        self.welcome: dict | None = None
        self.resumed: dict | None = None
        self.acks: dict[str, tuple[str, float, bool]] = {}  # cid -> (comment id, time, masked)
        self.errors: list[dict] = []
        self.close_code: int | None = None
        self._ws = None
        self._reader: asyncio.Task | None = None
        self._welcomed = asyncio.Event()

    async def connect(self, since: str | None = None, timeout_s: float = 30) -> dict:
        self._ws = await self.session.ws_connect(self.url, autoping=True, compress=0, max_msg_size=1 << 20)
        hello = {"type": "hello", "token": self.token} | ({"since": since} if since else {})
        await self._ws.send_str(json.dumps(hello))
        self._reader = asyncio.ensure_future(self._read())
        await asyncio.wait_for(self._welcomed.wait(), timeout_s)
        if self.welcome is None:
            raise ConnectionError(f"refused with close code {self.close_code}")
        return self.welcome

    async def post(self, cid: str, text: str) -> float:
        """Send one comment; the time it was handed to the socket."""
        sent = now()
        await self._ws.send_str(json.dumps({"type": "comment", "cid": cid, "text": text}, ensure_ascii=False))
        return sent

    async def _read(self) -> None:
        ws = self._ws
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            received = now()
            frame = json.loads(message.data)
            kind = frame.get("type")
            if kind == "comment":
                self.sink.got(frame, received)
            elif kind == "batch":
                for comment in frame["comments"]:
                    self.sink.got(comment, received)
            elif kind == "ack":
                self.acks[frame["cid"]] = (frame["id"], received, frame.get("masked", False))
            elif kind == "error":
                self.errors.append(frame)
            elif kind == "welcome":
                self.welcome = frame
                self._welcomed.set()
            elif kind == "resumed":
                self.resumed = frame
        self.close_code = ws.close_code
        self._welcomed.set()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader


# --8<-- [end:client]


@dataclass
class Recorder:
    """What a viewer received: the comment ids it saw, and receive times per comment (by the sender's cid).

    A load generator's viewers share one ``times`` dict and keep no frames (100,000 small dicts would make
    Python's garbage collector pause, and those pauses would show up as delay); a single viewer that is
    inspected afterwards keeps its frames (``keep_frames``).
    """

    times: dict[str, list[float]] | None = None  # cid -> receive times, shared by a process's viewers
    room: str = ""
    must_not_see: tuple[str, ...] = ()
    keep_frames: bool = False
    seen: set[str] = field(default_factory=set)  # comment ids
    frames: dict[str, dict] = field(default_factory=dict)  # comment id -> frame, with keep_frames
    counts: Counter = field(default_factory=Counter)

    def got(self, frame: dict, received: float) -> None:
        comment_id = frame["id"]
        if comment_id in self.seen:
            self.counts["duplicates"] += 1
            return
        self.seen.add(comment_id)
        if self.keep_frames:
            self.frames[comment_id] = frame
        if self.room and frame.get("room") != self.room:
            self.counts["other_room"] += 1
        if self.must_not_see and any(w in frame.get("text", "").casefold() for w in self.must_not_see):
            self.counts["masked_word_seen"] += 1
        if self.times is not None:
            self.times.setdefault(frame["cid"], []).append(received)


@dataclass
class Plan:
    """What one viewers process does (written by the runner as one JSON line)."""

    url: str
    room: str
    users: list[str]
    tokens: list[str]
    posters: dict[str, float]  # user -> comments per second
    seconds: float
    uncounted: list[str] = field(default_factory=list)  # users whose receptions are not measured (flooders)
    seed: int = 1
    quiet_s: float = 1.5
    must_not_see: list[str] = field(default_factory=list)


# --8<-- [start:load]
async def run_plan(plan: Plan, go: asyncio.Event, ready: Callable[[dict], None]) -> dict:
    """Connect every viewer, report ready, post on ``go``, wait until deliveries stop, return the raw times."""
    received: dict[str, list[float]] = {}
    connector = TCPConnector(limit=0)
    async with ClientSession(connector=connector, timeout=ClientTimeout(total=None)) as session:
        uncounted = set(plan.uncounted)
        clients = {
            user: Client(
                session,
                plan.url,
                token,
                Recorder(None if user in uncounted else received, plan.room, tuple(plan.must_not_see)),
            )
            for user, token in zip(plan.users, plan.tokens, strict=True)
        }
        counted = [c for user, c in clients.items() if user not in uncounted]
        gate = asyncio.Semaphore(50)  # connect 50 at a time: a crowd arriving, not a SYN flood

        async def join(client: Client) -> None:
            async with gate:
                await client.connect()

        started = now()
        await asyncio.gather(*(join(c) for c in clients.values()))
        ready({"connected": len(clients), "connect_s": now() - started})
        await go.wait()
        # The load generator is the measuring instrument: keep its cycle-collector pauses out of the delays
        gc.freeze()
        gc.disable()
        cpu_start = time.process_time()

        sent: dict[str, float] = {}

        begin = now()

        async def poster(user: str, rate: float, rng: random.Random) -> None:
            client, interval = clients[user], 1 / rate
            start, k = begin + rng.uniform(0, interval), 0  # each poster at its own phase
            while (due := start + k * interval) < begin + plan.seconds:
                if now() - due > interval:  # this process fell behind: skip the slot rather than burst
                    k += 1
                    continue
                await asyncio.sleep(max(0.0, due - now()))
                cid = f"{user}.{k}"
                try:
                    sent[cid] = await client.post(cid, comment_text(rng))
                except ConnectionError:  # the gateway hung up on this viewer: it is counted as closed
                    return
                k += 1

        rng = random.Random(plan.seed)
        await asyncio.gather(
            *(poster(u, r, random.Random(rng.random())) for u, r in sorted(plan.posters.items()))
        )
        # wait until the room has been quiet for quiet_s: every comment in flight has arrived
        last, quiet_since, deadline = -1, now(), now() + 30
        while now() < deadline:
            total = sum(len(times) for times in received.values())
            if total != last:
                last, quiet_since = total, now()
            elif now() - quiet_since >= plan.quiet_s:
                break
            await asyncio.sleep(0.1)
        result = {
            "viewers": len(counted),
            "sent": sent,
            "acks": {cid: ack for c in clients.values() for cid, ack in c.acks.items()},
            "errors": dict(Counter(e["code"] for c in clients.values() for e in c.errors)),
            "received": received,
            "counts": dict(sum((c.sink.counts for c in counted), Counter())),
            "closed_early": sum(c.close_code is not None for c in counted),
            "uncounted_cut_off": sum(c.close_code is not None for u, c in clients.items() if u in uncounted),
            "cpu_s": time.process_time() - cpu_start,
        }
        gc.enable()
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)
    return result


# --8<-- [end:load]


async def _drive() -> int:
    loop = asyncio.get_running_loop()
    stdin = asyncio.StreamReader(limit=1 << 26)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    plan = Plan(**json.loads(await stdin.readline()))
    go = asyncio.Event()

    def ready(info: dict) -> None:
        print(json.dumps({"event": "ready"} | info), flush=True)

    async def wait_for_go() -> None:
        while (line := await stdin.readline()) and line.strip() != b"go":
            pass
        go.set()

    waiter = asyncio.ensure_future(wait_for_go())
    result = await run_plan(plan, go, ready)
    waiter.cancel()
    sys.stdout.write(json.dumps({"event": "done"} | result) + "\n")
    sys.stdout.flush()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Simulated bullet-comment viewers, driven by bullet_comments.py through stdin/stdout: "
        "a JSON plan line, then 'go'; prints a ready line and a done line with the raw times."
    )
    parser.parse_args(argv)
    return asyncio.run(_drive())


if __name__ == "__main__":
    sys.exit(main())
