"""The 1v1 matchmaker and signaling server: aiohttp on 127.0.0.1, no media (the two users' media goes peer to
peer; in production through a TURN relay or an SFU edge when a direct path fails).

Your app's backend asks for tokens (with the backend key); a user with a token asks to be matched, waits
(long poll) until another user is waiting too, and gets a call id and a role: the first in the queue calls,
the second is called. The two then exchange offer, answer, accept and hangup through per-user mailboxes.
Every request is checked: the token's signature and expiry; membership of the call and the role that may
send each message type; the body's size, type and shape; a per-user request rate; a bounded mailbox. A
refusal is a 4xx JSON body ``{"error": ...}``; nothing a client sends stops the server serving the others.

    .venv/bin/python samples/scenarios/video_1v1/server.py --port 8766    # prints its backend key
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import sys
from dataclasses import dataclass, field

from aiohttp import web
from tokens import Grant, TokenError, issue_token, verify_token

from rtclab.loopback import check_loopback_sdp, serve_until_stopped
from rtclab.service import (
    Handler,
    Refused,
    RequestLimits,
    Throttle,
    add_bind_options,
    guarded_app,
    read_json,
    server_secrets,
)

__all__ = ["Call", "Limits", "Matchmaker", "make_app"]

SECRET_ENV = "VIDEO_1V1_SECRET"  # hex; the token signing secret
BACKEND_KEY_ENV = "VIDEO_1V1_BACKEND_KEY"  # what the app's backend presents to get tokens
SENDERS = {"offer": "caller", "answer": "callee", "accept": "callee", "hangup": "either"}
"""Which role may send each message type."""


@dataclass(frozen=True)
class Limits(RequestLimits):
    """The body size and request rates of every server (rtclab.service), and this one's queues and waits.

    Attributes:
        mailbox: Messages waiting for one user before the sender gets 429.
        max_wait_s: Longest long poll (match or next message).
        max_calls: Calls one server holds at once.
    """

    mailbox: int = 16
    max_wait_s: float = 10.0
    max_calls: int = 1000


@dataclass
class Call:
    """Two matched users, their roles and their mailboxes."""

    call_id: str
    caller: str
    callee: str
    mailboxes: dict[str, asyncio.Queue] = field(default_factory=dict)
    sent: set[str] = field(default_factory=set)  # message types already sent (offer, answer, accept once)
    state: str = "ringing"  # ringing -> accepted -> ended

    def role_of(self, user: str) -> str:
        if user == self.caller:
            return "caller"
        if user == self.callee:
            return "callee"
        raise Refused("you are not in this call", 403)

    def peer_of(self, user: str) -> str:
        return self.callee if user == self.caller else self.caller


# --8<-- [start:rules]
def check_message(call: Call, user: str, body: dict, max_sdp: int) -> dict:
    """The message to deliver to the peer, or a refusal: who may send what, in which order, in which shape."""
    role = call.role_of(user)  # 403 for anyone else
    kind = body.get("type")
    if kind not in SENDERS:
        raise Refused(f"type must be one of {', '.join(SENDERS)}", 400)
    if SENDERS[kind] not in (role, "either"):
        raise Refused(f"only the {SENDERS[kind]} sends {kind}", 403)
    if call.state == "ended":
        raise Refused("the call has ended", 409)
    if kind in call.sent and kind != "hangup":
        raise Refused(f"{kind} was already sent", 409)
    if kind == "answer" and "offer" not in call.sent:
        raise Refused("answer before offer", 409)
    message: dict = {"type": kind, "from": user}
    if kind in ("offer", "answer"):
        sdp = body.get("sdp")
        if not isinstance(sdp, str) or not sdp.startswith("v=0") or len(sdp) > max_sdp:
            raise Refused(f'{kind} needs "sdp": "v=0..." (at most {max_sdp} characters)', 400)
        try:
            check_loopback_sdp(sdp)  # this lab relays loopback candidates only
        except ValueError as error:
            raise Refused(str(error), 422) from None
        message["sdp"] = sdp
    return message


# --8<-- [end:rules]


class Matchmaker:
    """The waiting queue, the calls of this process, and the rules around them."""

    def __init__(self, secret: bytes, backend_key: str, limits: Limits) -> None:
        self.secret, self.backend_key, self.limits = secret, backend_key, limits
        self.waiting: dict[str, asyncio.Future] = {}  # user -> future of their match (insertion order)
        self.calls: dict[str, Call] = {}
        self.in_call: dict[str, str] = {}  # user -> call id
        self.throttle = Throttle(limits)
        self.refused = 0
        self.delivered = 0

    # --8<-- [start:guard]
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate and rate-limit every request; what it refuses, rtclab.service answers as 4xx JSON."""
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if request.path == "/v1/health":
            return await handler(request)
        if request.path in ("/v1/tokens", "/v1/metrics"):  # the app's backend only
            if not secrets.compare_digest(presented.encode(), self.backend_key.encode()):
                self.throttle.stranger(request)
                raise Refused("backend key required", 401)
            return await handler(request)
        if not presented:
            self.throttle.stranger(request)
            raise TokenError("missing token: send Authorization: Bearer <token>")
        try:
            grant = verify_token(self.secret, presented)
        except TokenError:
            self.throttle.stranger(request)  # forged-token floods get 429 too
            raise
        self.throttle.user(f"user:{grant.user}")
        request["grant"] = grant
        return await handler(request)

    # --8<-- [end:guard]

    def count_refusal(self) -> None:
        self.refused += 1

    def _wait_s(self, value: object) -> float:
        if value is None:
            return self.limits.max_wait_s
        try:
            wait = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise Refused("wait_s must be a number", 400) from None
        if not 0 <= wait <= self.limits.max_wait_s:
            raise Refused(f"wait_s must be between 0 and {self.limits.max_wait_s:g}", 400)
        return wait

    # --- backend endpoints ----------------------------------------------------------------------------

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            token = issue_token(self.secret, body.get("user"), body.get("ttl_s", 3600))
        except (ValueError, TypeError) as error:
            raise Refused(str(error), 400) from None
        return web.json_response({"token": token})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "waiting": len(self.waiting),
                "calls": len(self.calls),
                "refused": self.refused,
                "delivered": self.delivered,
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # --- user endpoints -------------------------------------------------------------------------------

    # --8<-- [start:match]
    async def match(self, request: web.Request) -> web.Response:
        """Pair the caller with whoever has waited longest; or wait (long poll) to be paired."""
        grant: Grant = request["grant"]
        wait = self._wait_s((await read_json(request)).get("wait_s"))
        user = grant.user
        if user in self.in_call:
            raise Refused("you are already in a call: hang up first", 409)
        if user in self.waiting:
            raise Refused("you are already waiting for a match", 409)
        partner = next((u for u, f in self.waiting.items() if not f.done()), None)
        if partner is not None:
            if len(self.calls) >= self.limits.max_calls:
                raise Refused("the server is full: try again later", 429)
            call = self._new_call(caller=partner, callee=user)
            self.waiting.pop(partner).set_result(call)
            return web.json_response(self._pairing(call, user))
        future = self.waiting[user] = asyncio.get_running_loop().create_future()
        try:
            call = await asyncio.wait_for(asyncio.shield(future), wait)
        except TimeoutError:
            return web.json_response({"error": "no partner yet: ask again"}, status=408)
        finally:
            if self.waiting.get(user) is future:
                del self.waiting[user]
        return web.json_response(self._pairing(call, user))

    # --8<-- [end:match]

    def _new_call(self, caller: str, callee: str) -> Call:
        call = Call(secrets.token_urlsafe(12), caller, callee)
        for user in (caller, callee):
            call.mailboxes[user] = asyncio.Queue(self.limits.mailbox)
            self.in_call[user] = call.call_id
        self.calls[call.call_id] = call
        return call

    def _pairing(self, call: Call, user: str) -> dict:
        return {"call": call.call_id, "role": call.role_of(user), "peer": call.peer_of(user)}

    def call_of(self, request: web.Request) -> tuple[Call, str]:
        grant: Grant = request["grant"]
        call = self.calls.get(request.match_info["call"])
        if call is None:
            raise Refused("no such call", 404)
        call.role_of(grant.user)  # 403 unless one of the two
        return call, grant.user

    async def send(self, request: web.Request) -> web.Response:
        call, user = self.call_of(request)
        body = await read_json(request)
        message = check_message(call, user, body, self.limits.max_body_bytes)
        box = call.mailboxes[call.peer_of(user)]
        if box.full():
            raise Refused("the peer's mailbox is full: slow down", 429)
        kind = message["type"]
        call.sent.add(kind)
        box.put_nowait(message)
        self.delivered += 1
        if kind == "accept":
            call.state = "accepted"
        elif kind == "hangup":
            self._end(call)
        return web.json_response({"queued": kind}, status=202)

    async def next_message(self, request: web.Request) -> web.Response:
        """The next message for this user in this call (long poll); ``{"type": "idle"}`` if none came."""
        call, user = self.call_of(request)
        wait = self._wait_s(request.query.get("wait_s"))
        with contextlib.suppress(TimeoutError):
            return web.json_response(await asyncio.wait_for(call.mailboxes[user].get(), wait))
        return web.json_response({"type": "idle"})

    def _end(self, call: Call) -> None:
        call.state = "ended"
        for user in (call.caller, call.callee):
            if self.in_call.get(user) == call.call_id:
                del self.in_call[user]
        # the call stays readable until both mailboxes drain; a real server would expire it after a while

    async def stop(self, app: web.Application) -> None:
        for future in self.waiting.values():
            future.cancel()


def make_app(server: Matchmaker) -> web.Application:
    """The HTTP API of ``server``; bind it to 127.0.0.1."""
    app = guarded_app(server.limits, server.guard, on_refusal=server.count_refusal)
    app.router.add_get("/v1/health", server.health)
    app.router.add_get("/v1/metrics", server.metrics)
    app.router.add_post("/v1/tokens", server.issue)
    app.router.add_post("/v1/match", server.match)
    app.router.add_post("/v1/calls/{call}/send", server.send)
    app.router.add_get("/v1/calls/{call}/next", server.next_message)
    app.on_shutdown.append(server.stop)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the 1v1 matchmaking and signaling server on loopback.")
    add_bind_options(parser)
    args = parser.parse_args(argv)
    secret, backend_key = server_secrets(SECRET_ENV, BACKEND_KEY_ENV)
    server = Matchmaker(secret, backend_key, Limits())
    asyncio.run(serve_until_stopped(make_app(server), args.host, args.port, shutdown_timeout=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
