"""A bullet-comment (弹幕) gateway: viewers keep a WebSocket open to it, post short comments and receive every
comment of their room. Run several (each its own process and port): they share rooms through Redis pub/sub
(fanout.py), so a comment posted on one gateway reaches the viewers of all of them.

Every connection starts with ``{"type": "hello", "token": "..."}`` (a signed viewer token, tokens.py; not in
the URL, where it would end up in access logs). After that a viewer sends
``{"type": "comment", "cid": "<its own id>", "text": "..."}`` and gets ``ack`` (with the comment's id) or
``error`` (with a code); everyone in the room gets ``{"type": "comment", "id": ..., "user": ..., "text": ...}``.
Refusals that end the connection use WebSocket close codes: 4401 bad token, 4403 token for another room,
4408 no hello in time, 4429 too many connections or frames, 1003 binary frame, 1007 invalid UTF-8,
1009 frame too big, 1013 the gateway lost Redis (reconnect and resume).

    BULLET_TOKEN_SECRET=<hex> BULLET_REDIS_URL=redis://:<password>@127.0.0.1:<port>/0 \\
        .venv/bin/python samples/scenarios/bullet_comments/gateway.py --port 8801 --name A
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import itertools
import json
import os
import re
import secrets
import sys
import time
from collections import Counter, deque
from dataclasses import asdict, dataclass

from aiohttp import WSCloseCode, WSMsgType, web
from fanout import Fanout, parse_id
from moderation import Moderator, load_moderator, with_deadline
from redis.exceptions import RedisError
from tokens import CLOSE_UNAUTHORIZED, TokenError, ViewerGrant, close_code, verify_token

from rtclab.loopback import serve_until_stopped
from rtclab.ratelimit import RateLimiter
from rtclab.service import add_bind_options

SECRET_ENV, REDIS_ENV, OPS_KEY_ENV = "BULLET_TOKEN_SECRET", "BULLET_REDIS_URL", "BULLET_OPS_KEY"
CLOSE_BAD_HELLO, CLOSE_HELLO_TIMEOUT, CLOSE_TOO_MANY = 4400, 4408, 4429
_CID = re.compile(r"[A-Za-z0-9_.-]{1,40}")


# --8<-- [start:limits]
@dataclass(frozen=True)
class Limits:
    """What one viewer may do; every refusal is answered, never silently dropped."""

    max_frame_bytes: int = 2048  # a bigger WebSocket message closes the connection (1009)
    max_text_chars: int = 100  # a longer comment is refused (error too_long)
    rate_per_s: float = 1.0  # comments per second per user, on average...
    burst: int = 3  # ...with this many at once (a token bucket)
    frames_per_s: float = 10.0  # any frame, per connection: beyond this it is a flood, not a chat...
    frame_burst: int = 20  # ...once this many came at once, the gateway hangs up (4429)
    connections_per_user: int = 3  # per gateway: more tabs than this is a script
    hello_timeout_s: float = 2.0  # an unauthenticated socket may not sit here longer (4408)
    queue_frames: int = 500  # frames waiting for a slow viewer; beyond, the oldest are dropped
    moderation_s: float = 0.05  # deadline for the moderation hook


# --8<-- [end:limits]


class Refusal(Exception):
    """A comment frame that is answered with an error frame; the connection stays open."""

    def __init__(self, code: str, message: str, **extra: object) -> None:
        super().__init__(message)
        self.code, self.extra = code, extra


# --8<-- [start:viewer]
class Viewer:
    """One open WebSocket: its grant, and a bounded queue drained by its own sender task, so that one slow
    phone on 2G delays nobody else in the room."""

    def __init__(self, ws: web.WebSocketResponse, grant: ViewerGrant, gateway: Gateway) -> None:
        self.ws, self.grant, self.gateway = ws, grant, gateway
        self.queue: deque[tuple[tuple[int, int], str]] = deque()
        self.ready = asyncio.Event()
        self.floor = (0, 0)  # comments up to this id were already sent (a resume replayed them)
        self.key = f"conn:{next(gateway.serial)}"  # its bucket of frames (gateway.frames)
        self.sender: asyncio.Task | None = None

    def offer(self, comment_id: tuple[int, int], frame: str) -> None:
        if len(self.queue) >= self.gateway.limits.queue_frames:
            self.queue.popleft()  # bullet comments are ephemeral: a slow viewer loses the oldest
            self.gateway.stats["dropped_slow"] += 1
        self.queue.append((comment_id, frame))
        self.ready.set()

    async def send_loop(self, batch_s: float) -> None:
        with contextlib.suppress(ConnectionError):
            while True:
                await self.ready.wait()
                self.ready.clear()
                if batch_s:
                    await asyncio.sleep(batch_s)  # let comments gather: one frame instead of many
                frames = [frame for key, frame in self.queue if key > self.floor]
                self.queue.clear()
                if not frames:
                    continue
                if batch_s and len(frames) > 1:
                    await self.ws.send_str('{"type":"batch","comments":[' + ",".join(frames) + "]}")
                else:
                    for frame in frames:
                        await self.ws.send_str(frame)
                self.gateway.stats["frames_out"] += 1 if batch_s and len(frames) > 1 else len(frames)
                self.gateway.stats["comments_out"] += len(frames)


# --8<-- [end:viewer]


class Gateway:
    """The WebSocket endpoint of one gateway process."""

    def __init__(
        self,
        name: str,
        secret: bytes,
        redis_url: str,
        ops_key: str,
        limits: Limits,
        moderator: Moderator,
        batch_ms: float = 0,
    ) -> None:
        self.name, self.secret, self.ops_key, self.limits = name, secret, ops_key, limits
        self.moderate = with_deadline(moderator, limits.moderation_s)
        self.batch_s = batch_ms / 1000
        self.fanout = Fanout(redis_url, self.redis_lost)
        self.viewers: set[Viewer] = set()
        self.per_user: Counter[str] = Counter()
        self.comments = RateLimiter(limits.burst, limits.rate_per_s)  # a bucket per user
        self.frames = RateLimiter(limits.frame_burst, limits.frames_per_s)  # a bucket per connection
        self.serial = itertools.count()
        self.stats: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self.closed: Counter[int] = Counter()
        self.redis_ok = True

    # --8<-- [start:hello]
    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        # compress=False: permessage-deflate would compress every frame once per viewer, the costliest part
        # of a fan-out; max_msg_size makes aiohttp close an oversized frame with 1009 before we read it
        ws = web.WebSocketResponse(max_msg_size=self.limits.max_frame_bytes, compress=False, heartbeat=30)
        await ws.prepare(request)
        room = request.match_info["room"]
        try:
            hello = await ws.receive(timeout=self.limits.hello_timeout_s)
        except TimeoutError:
            return await self.close(ws, CLOSE_HELLO_TIMEOUT, "send hello within the time limit")
        if hello.type == WSMsgType.BINARY:
            return await self.close(ws, WSCloseCode.UNSUPPORTED_DATA, "text frames only")
        if hello.type != WSMsgType.TEXT:
            return await self.close(ws, ws.close_code or WSCloseCode.OK, "")  # closed, or too big / bad UTF-8
        try:
            frame = json.loads(hello.data)
        except ValueError:
            return await self.close(ws, CLOSE_BAD_HELLO, "the hello is not JSON")
        if not isinstance(frame, dict) or frame.get("type") != "hello":
            return await self.close(ws, CLOSE_UNAUTHORIZED, 'send {"type": "hello", "token": ...} first')
        try:
            grant = verify_token(self.secret, frame.get("token"), room)
            since = frame.get("since")
            if since is not None:
                parse_id(str(since))
        except TokenError as refusal:
            return await self.close(ws, close_code(refusal), str(refusal))
        except ValueError as error:
            return await self.close(ws, CLOSE_BAD_HELLO, str(error))
        if not self.redis_ok:
            return await self.close(ws, WSCloseCode.TRY_AGAIN_LATER, "this gateway lost Redis: try another")
        if self.per_user[grant.user] >= self.limits.connections_per_user:
            return await self.close(ws, CLOSE_TOO_MANY, "too many connections for this user")
        await self.serve(ws, grant, since)
        return ws

    # --8<-- [end:hello]

    async def serve(self, ws: web.WebSocketResponse, grant: ViewerGrant, since: str | None) -> None:
        viewer = Viewer(ws, grant, self)
        self.viewers.add(viewer)
        self.per_user[grant.user] += 1
        self.stats["connections"] += 1
        try:
            try:
                await self.fanout.join(grant.room, viewer)  # live comments queue up from here on
                limits = {"max_text_chars": self.limits.max_text_chars, "rate_per_s": self.limits.rate_per_s}
                await ws.send_json(
                    {"type": "welcome", "gateway": self.name, "room": grant.room, "user": grant.user}
                    | {"can_post": grant.can_post, "limits": limits}
                )
                if since is not None:
                    await self.resume(viewer, since)
            except (TimeoutError, RedisError):  # Redis slow or gone: say so, the client retries
                await self.close(ws, WSCloseCode.TRY_AGAIN_LATER, "cannot reach the room: try again")
                return
            viewer.sender = asyncio.ensure_future(viewer.send_loop(self.batch_s))
            await self.read_loop(viewer)
        except ConnectionError:  # the viewer went away
            pass
        finally:
            if viewer.sender is not None:
                viewer.sender.cancel()
            self.viewers.discard(viewer)
            self.per_user[grant.user] -= 1
            if self.per_user[grant.user] <= 0:
                del self.per_user[grant.user]
            with contextlib.suppress(Exception):
                await self.fanout.leave(grant.room, viewer)

    # --8<-- [start:resume]
    async def resume(self, viewer: Viewer, since: str) -> None:
        """Send what the viewer missed while it was away, from the room's history in Redis."""
        frames, gap = await self.fanout.since(viewer.grant.room, since)
        for frame in frames:
            await viewer.ws.send_str(frame)
        if frames:
            viewer.floor = parse_id(json.loads(frames[-1])["id"])  # live copies of these are skipped
        else:
            viewer.floor = parse_id(since)
        self.stats["replayed"] += len(frames)
        await viewer.ws.send_json({"type": "resumed", "replayed": len(frames), "gap": gap})

    # --8<-- [end:resume]

    async def read_loop(self, viewer: Viewer) -> None:
        ws = viewer.ws
        while True:
            message = await ws.receive()
            if message.type == WSMsgType.TEXT:
                self.stats["frames_in"] += 1
                if not self.frames.allow(viewer.key):  # a flood of frames, valid or not: hang up
                    await self.close(ws, CLOSE_TOO_MANY, "too many frames: slow down")
                    return
                try:
                    await self.on_comment(viewer, message.data)
                except Refusal as refusal:
                    self.refused[refusal.code] += 1
                    await ws.send_json(
                        {"type": "error", "code": refusal.code, "message": str(refusal)} | refusal.extra
                    )
            elif message.type == WSMsgType.BINARY:
                await self.close(ws, WSCloseCode.UNSUPPORTED_DATA, "text frames only")
                return
            else:  # CLOSE, CLOSED, or ERROR (aiohttp has already closed with 1007 or 1009)
                return

    # --8<-- [start:comment]
    async def on_comment(self, viewer: Viewer, data: str) -> None:
        """Check one comment frame, moderate it, publish it; raises Refusal with the reason."""
        grant = viewer.grant
        try:
            frame = json.loads(data)
        except ValueError:
            raise Refusal("bad_json", "the frame is not JSON") from None
        if not isinstance(frame, dict) or frame.get("type") != "comment":
            raise Refusal("bad_frame", 'expected {"type": "comment", "cid": "...", "text": "..."}')
        cid, text = frame.get("cid"), frame.get("text")
        if not isinstance(cid, str) or not _CID.fullmatch(cid):
            raise Refusal("bad_frame", "cid: 1-40 letters, digits, '.', '_' or '-'")
        if frame.get("room", grant.room) != grant.room:
            raise Refusal("wrong_room", "your token is for another room", cid=cid)
        if not grant.can_post:
            raise Refusal("forbidden", "this token may watch but not post", cid=cid)
        if not isinstance(text, str) or not text.strip():
            raise Refusal("bad_frame", "text: a non-empty string", cid=cid)
        if len(text) > self.limits.max_text_chars:
            raise Refusal("too_long", f"at most {self.limits.max_text_chars} characters", cid=cid)
        if not self.comments.allow(f"user:{grant.user}"):  # after the cheap checks, before the costly ones
            retry_after_ms = round(1000 / self.limits.rate_per_s)  # by then the bucket has a token again
            raise Refusal("rate_limited", "slow down", cid=cid, retry_after_ms=retry_after_ms)
        verdict = await self.moderate(grant.room, grant.user, text)  # the moderation hook
        if verdict.action == "reject":
            raise Refusal("moderated", verdict.reason, cid=cid)
        body = {"room": grant.room, "user": grant.user, "cid": cid, "text": verdict.text}
        if verdict.action == "mask":
            body["masked"] = True
        try:
            comment_id = await self.fanout.publish(grant.room, body)
        except Exception:  # Redis down or slow: not accepted, and the sender knows it
            raise Refusal("unavailable", "could not publish: try again", cid=cid) from None
        self.stats["accepted"] += 1
        self.stats["masked"] += verdict.action == "mask"
        await viewer.ws.send_json({"type": "ack", "cid": cid, "id": comment_id, "masked": "masked" in body})

    # --8<-- [end:comment]

    async def close(self, ws: web.WebSocketResponse, code: int, reason: str) -> web.WebSocketResponse:
        if not ws.closed:
            await ws.close(code=code, message=reason.encode()[:120])
        self.closed[int(code)] += 1
        return ws

    async def redis_lost(self) -> None:
        """The subscriber connection failed: some comments may be lost. Say so loudly instead of serving a
        silent gap: close every viewer with 1013 (they reconnect, to another gateway, and resume)."""
        self.redis_ok = False
        await asyncio.gather(
            *(
                self.close(v.ws, WSCloseCode.TRY_AGAIN_LATER, "gateway lost Redis: resume")
                for v in self.viewers
            ),
            return_exceptions=True,
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"ok": self.redis_ok, "gateway": self.name}, status=200 if self.redis_ok else 503
        )

    async def metrics(self, request: web.Request) -> web.Response:
        if not secrets.compare_digest(request.headers.get("Authorization", ""), f"Bearer {self.ops_key}"):
            return web.json_response({"error": "send Authorization: Bearer <ops key>"}, status=401)
        return web.json_response(
            {
                "gateway": self.name,
                "cpu_s": time.process_time(),
                "viewers": len(self.viewers),
                "rooms": len(self.fanout.rooms),
                "published": self.fanout.published,
                "received_from_redis": self.fanout.received,
                "refused": dict(self.refused),
                "closed": {str(code): n for code, n in self.closed.items()},
                "limits": asdict(self.limits),
            }
            | dict(self.stats)
        )

    async def start(self, app: web.Application) -> None:
        await self.fanout.start()

    async def stop(self, app: web.Application) -> None:
        await asyncio.gather(
            *(
                self.close(v.ws, WSCloseCode.GOING_AWAY, "gateway restarting: resume")
                for v in list(self.viewers)
            ),
            return_exceptions=True,
        )
        await self.fanout.stop()


def make_app(gateway: Gateway) -> web.Application:
    app = web.Application()
    app.router.add_get("/v1/rooms/{room:[A-Za-z0-9_-]{1,64}}/ws", gateway.websocket)
    app.router.add_get("/v1/health", gateway.health)
    app.router.add_get("/v1/metrics", gateway.metrics)
    app.on_startup.append(gateway.start)
    app.on_shutdown.append(gateway.stop)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one bullet-comment gateway on loopback.")
    add_bind_options(parser)
    parser.add_argument("--name", default="A", help="this gateway's name in acks and metrics")
    parser.add_argument(
        "--batch-ms", type=float, default=0, help="gather comments this long per frame (0: off)"
    )
    parser.add_argument("--moderator", default="moderation:blocklist", help="module:factory of the hook")
    parser.add_argument("--max-text", type=int, default=Limits.max_text_chars, help="characters per comment")
    parser.add_argument("--rate", type=float, default=Limits.rate_per_s, help="comments per second per user")
    parser.add_argument("--burst", type=int, default=Limits.burst, help="comments at once per user")
    args = parser.parse_args(argv)
    if not 0 <= args.batch_ms <= 1000 or args.max_text < 1 or args.rate <= 0 or args.burst < 1:
        parser.error("--batch-ms 0-1000, --max-text >= 1, --rate > 0, --burst >= 1")
    if not os.environ.get(SECRET_ENV) or not os.environ.get(REDIS_ENV):
        parser.error(
            f"set {SECRET_ENV} (hex signing secret) and {REDIS_ENV} (redis://...) in the environment"
        )
    redis_host = re.match(r"rediss?://(?:[^@/]*@)?([^:/]+)", os.environ[REDIS_ENV])
    try:
        if redis_host is None or not ipaddress.ip_address(redis_host[1]).is_loopback:
            raise ValueError
    except ValueError:
        parser.error(f"{REDIS_ENV} must point at a loopback address in this lab")
    try:
        moderator = load_moderator(args.moderator)
        secret = bytes.fromhex(os.environ[SECRET_ENV])
    except ValueError as error:
        parser.error(str(error))
    ops_key = os.environ.get(OPS_KEY_ENV)
    if not ops_key:
        ops_key = secrets.token_urlsafe(24)
        print(f"ops key (for /v1/metrics, send as Authorization: Bearer ...): {ops_key}", flush=True)
    limits = Limits(max_text_chars=args.max_text, rate_per_s=args.rate, burst=args.burst)
    gateway = Gateway(args.name, secret, os.environ[REDIS_ENV], ops_key, limits, moderator, args.batch_ms)
    asyncio.run(serve_until_stopped(make_app(gateway), args.host, args.port, backlog=2048))
    return 0


if __name__ == "__main__":
    sys.exit(main())
