"""Hostile input for a bullet-comment gateway: the bad frames, bad tokens and floods a public WebSocket meets,
each with the answer the gateway must give (a close code, or an error frame on a connection that stays open).

The runner sends them while the load runs, so the same measurement shows that the gateway answered every one,
stayed up and kept delivering everyone else's comments.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import ClientSession, WSMsgType
from tokens import issue_token

__all__ = ["Check", "Probe", "hostile_checks", "probe"]


@dataclass
class Probe:
    """What one raw connection saw: the frames the gateway sent, and how it ended."""

    frames: list[dict] = field(default_factory=list)
    close_code: int | None = None

    def codes(self, kind: str) -> list[str]:
        return [f.get("code", "") for f in self.frames if f.get("type") == kind]

    def answer(self) -> str:
        """A one-line summary, e.g. ``close 4401`` or ``error bad_json`` or ``3 ack, 37 rate_limited, close 4429``."""
        acks = [f for f in self.frames if f.get("type") == "ack"]
        errors = self.codes("error")
        parts = []
        if acks:
            masked = " (masked)" if any(f.get("masked") for f in acks) else ""
            parts.append(f"ack{masked}" if len(acks) == 1 else f"{len(acks)} ack")
        for code in dict.fromkeys(errors):
            parts.append(f"error {code}" if errors.count(code) == 1 else f"{errors.count(code)} {code}")
        if self.close_code is not None:
            parts.append(f"close {self.close_code}")
        return ", ".join(parts) or "nothing"


async def probe(
    session: ClientSession, url: str, sends: list[str | bytes | tuple[bytes, WSMsgType]], wait_s: float = 2.0
) -> Probe:
    """Open a raw WebSocket, send ``sends`` in order (text, binary, or raw (payload, opcode)), and collect
    what comes back until the gateway closes or ``wait_s`` of silence after the last send."""
    result = Probe()
    async with session.ws_connect(url, autoclose=True, max_msg_size=1 << 20) as ws:
        for item in sends:
            if ws.closed:
                break
            if isinstance(item, tuple):
                await ws.send_frame(*item)
            elif isinstance(item, bytes):
                await ws.send_bytes(item)
            else:
                await ws.send_str(item)
        while True:
            try:
                message = await ws.receive(timeout=wait_s)
            except TimeoutError:
                break
            if message.type == WSMsgType.TEXT:
                result.frames.append(json.loads(message.data))
            elif message.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                break
        result.close_code = ws.close_code if ws.closed else None
    return result


@dataclass(frozen=True)
class Check:
    """One hostile input, what the gateway answered, and whether that is what it must answer."""

    what: str
    answer: str
    ok: bool
    acked_ids: tuple[str, ...] = ()


def _hello(token: str) -> str:
    return json.dumps({"type": "hello", "token": token})


def _comment(cid: str, text: str, **extra: str) -> str:
    return json.dumps({"type": "comment", "cid": cid, "text": text} | extra, ensure_ascii=False)


# --8<-- [start:hostile]
async def hostile_checks(
    session: ClientSession, base_ws: str, secret: bytes, room: str, other_room: str, hello_timeout_s: float
) -> list[Check]:
    """Every hostile input at once against one gateway (``base_ws`` = ws://host:port), each as its own user."""
    url = f"{base_ws}/v1/rooms/{room}/ws"

    def token(user: str, **kwargs) -> str:
        return issue_token(secret, kwargs.pop("room", room), user, 600, **kwargs)

    good = token("mallory")
    forged = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    expired = issue_token(secret, room, "late", 60, now=time.time() - 3600)

    def closes(code: int) -> Callable[[Probe], bool]:
        return lambda p: p.close_code == code

    def errors(code: str) -> Callable[[Probe], bool]:
        return lambda p: p.codes("error") == [code] and p.close_code is None

    def flood_ok(p: Probe) -> bool:
        return p.close_code == 4429 and 1 <= len(p.codes("ack")) <= 5 and "rate_limited" in p.codes("error")

    cases: list[tuple[str, list, Callable[[Probe], bool]]] = [
        ("no hello within the time limit", [], closes(4408)),
        ("comment before hello", [_comment("c1", "hi")], closes(4401)),
        ("hello without a token", [json.dumps({"type": "hello"})], closes(4401)),
        ("forged token (signature changed)", [_hello(forged)], closes(4401)),
        ("expired token", [_hello(expired)], closes(4401)),
        ("token for another room", [_hello(token("tourist", room=other_room))], closes(4403)),
        ("binary frame", [_hello(token("bin")), b"\x00\x01\x02"], closes(1003)),
        (
            "invalid UTF-8 in a text frame",
            [_hello(token("utf")), (b"\xff\xfe\xfd", WSMsgType.TEXT)],
            closes(1007),
        ),
        ("64 KB frame", [_hello(token("big")), "x" * 65536], closes(1009)),
        ("not JSON", [_hello(token("nj")), "hello?"], errors("bad_json")),
        ("JSON, but not a comment", [_hello(token("nc")), "[1, 2]"], errors("bad_frame")),
        (
            "comment naming another room",
            [_hello(token("wr")), _comment("c1", "hi", room=other_room)],
            errors("wrong_room"),
        ),
        (
            "read-only token posts",
            [_hello(token("ro", can_post=False)), _comment("c1", "hi")],
            errors("forbidden"),
        ),
        (
            "text over the length limit",
            [_hello(token("long")), _comment("c1", "x" * 101)],
            errors("too_long"),
        ),
        (
            "a link (moderation rejects)",
            [_hello(token("spam")), _comment("c1", "win at http://spam.example")],
            errors("moderated"),
        ),
        (
            "a masked word (moderation masks)",
            [_hello(token("rude")), _comment("c1", "you IDIOT")],
            lambda p: p.answer() == "ack (masked)",
        ),
        (
            "flood: 60 comments at once",
            [_hello(token("flood"))] + [_comment(f"f{i}", "spam") for i in range(60)],
            flood_ok,
        ),
    ]
    probes = [probe(session, url, sends, wait_s=hello_timeout_s + 2.0) for _, sends, _ in cases]
    probes.append(_too_many_connections(session, url, token("tabs")))
    results = await asyncio.gather(*probes)
    checks = [
        Check(what, p.answer(), judge(p), tuple(f["id"] for f in p.frames if f.get("type") == "ack"))
        for (what, _, judge), p in zip(cases, results[:-1], strict=True)
    ]
    checks.append(Check("4th connection for one user", results[-1].answer(), results[-1].close_code == 4429))
    return checks


# --8<-- [end:hostile]


async def _too_many_connections(session: ClientSession, url: str, token: str) -> Probe:
    """Three connections for one user are fine; the fourth is refused (the limit is per gateway)."""
    held = []
    try:
        for _ in range(3):
            ws = await session.ws_connect(url)
            await ws.send_str(_hello(token))
            welcome = await ws.receive(timeout=10)
            assert welcome.type == WSMsgType.TEXT, welcome
            held.append(ws)
        return await probe(session, url, [_hello(token)])
    finally:
        await asyncio.gather(*(ws.close() for ws in held), return_exceptions=True)
