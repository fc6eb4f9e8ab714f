"""The voice agent service: aiohttp signaling plus one aiortc agent per session, on 127.0.0.1 only.

The app's backend asks for session tokens with the backend key; a caller posts its SDP offer with a
``caller`` token and gets the agent's answer; an ``observer`` token may only read the session's turn
timings. Every request is checked: the token's signature, expiry, session and role; the body's size, type
and shape; a request rate per user and, before authentication, per address. A refusal is a 4xx JSON body
``{"error": ...}``; nothing a client sends stops the server serving the others.

    .venv/bin/python samples/scenarios/voice_agent/server.py --port 8765     # prints its backend key

By default the agent talks to a STAND-IN responder started in this process (llm_standin.py); pass
``--llm-url http://127.0.0.1:PORT/v1`` to use another OpenAI-compatible endpoint (loopback only in this lab).
voice_agent.py in this folder starts this server, calls the agent and measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agent import Agent, AgentConfig
from aiohttp import web
from llm_standin import LABEL, StandIn, start
from tokens import TokenError, issue_token, verify_token

from rtclab.loopback import serve_until_stopped
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

__all__ = ["AgentServer", "Limits", "make_app"]

SECRET_ENV = "VOICE_AGENT_SECRET"
BACKEND_KEY_ENV = "VOICE_AGENT_BACKEND_KEY"
PAGE = Path(__file__).with_name("page.html")


@dataclass(frozen=True)
class Limits(RequestLimits):
    """The body size and request rates of every server (rtclab.service), and at most ``max_sessions`` agents at
    a time."""

    max_body_bytes: int = 32 * 1024
    max_sessions: int = 20


LIMITS = Limits()


class AgentServer:
    def __init__(self, secret: bytes, backend_key: str, config: AgentConfig) -> None:
        self.secret, self.backend_key, self.config = secret, backend_key, config
        self.agents: dict[str, Agent] = {}
        self.throttle = Throttle(LIMITS)
        self.refused = 0

    # --8<-- [start:guard]
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Token, role and rate checks; what it refuses, rtclab.service answers as 4xx JSON."""
        if request.path in ("/", "/v1/health"):
            return await handler(request)
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        session = request.match_info.get("session")
        if session is None:  # backend endpoint: tokens
            if not secrets.compare_digest(presented.encode(), self.backend_key.encode()):
                self.throttle.stranger(request)
                raise Refused("backend key required", 401)
            return await handler(request)
        if not presented:
            self.throttle.stranger(request)
            raise Refused("missing token: send Authorization: Bearer <token>", 401)
        try:
            grant = verify_token(self.secret, presented, session)
        except TokenError:
            self.throttle.stranger(request)  # forged-token floods get 429 too
            raise
        self.throttle.user(f"user:{session}/{grant.user}")
        request["grant"] = grant
        return await handler(request)

    # --8<-- [end:guard]

    def count_refusal(self) -> None:
        self.refused += 1

    def require(self, request: web.Request, *roles: str):
        grant = request["grant"]
        if grant.role not in roles:
            raise Refused(f"a {grant.role} token cannot do this", 403)
        return grant

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "sessions": len(self.agents), "refused": self.refused})

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE.read_text(encoding="utf-8"), content_type="text/html")

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            ttl = body.get("ttl_s", 600)
            if not isinstance(ttl, int) or isinstance(ttl, bool):
                raise ValueError("ttl_s must be an integer")
            token = issue_token(self.secret, body.get("session"), body.get("user"), body.get("role"), ttl)
        except (ValueError, TypeError) as error:
            raise Refused(str(error), 400) from None
        return web.json_response({"token": token})

    # --8<-- [start:offer]
    async def offer(self, request: web.Request) -> web.Response:
        grant = self.require(request, "caller")
        body = await read_json(request)
        sdp = body.get("sdp")
        if body.get("type") != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise Refused('expected {"type": "offer", "sdp": "v=0..."}', 400)
        if grant.session in self.agents:
            raise Refused("this session already has an agent in a call", 409)
        if len(self.agents) >= LIMITS.max_sessions:
            raise Refused("the server is full", 429)
        agent = self.agents[grant.session] = Agent(self.config)
        try:
            answer = await agent.answer(sdp)
        except Exception as error:  # a bad SDP: refuse it, keep serving
            self.agents.pop(grant.session, None)
            await agent.close()
            raise Refused(
                f"cannot negotiate this offer: {str(error)[:120] or type(error).__name__}", 422
            ) from None

        @agent.pc.on("connectionstatechange")
        async def on_state() -> None:
            if agent.pc.connectionState in ("failed", "closed") and self.agents.get(grant.session) is agent:
                self.agents.pop(grant.session, None)
                await agent.close()

        return web.json_response({"type": "answer", "sdp": answer})

    # --8<-- [end:offer]

    async def turns(self, request: web.Request) -> web.Response:
        grant = self.require(request, "caller", "observer")
        agent = self.agents.get(grant.session)
        if agent is None:
            raise Refused("no agent in this session", 404)
        return web.json_response(agent.report())

    async def hangup(self, request: web.Request) -> web.Response:
        grant = self.require(request, "caller")
        agent = self.agents.pop(grant.session, None)
        if agent is None:
            raise Refused("no agent in this session", 404)
        report = agent.report()
        await agent.close()
        return web.json_response(report)

    async def stop(self, app: web.Application) -> None:
        await asyncio.gather(*(a.close() for a in self.agents.values()), return_exceptions=True)
        self.agents.clear()


def make_app(server: AgentServer) -> web.Application:
    app = guarded_app(LIMITS, server.guard, on_refusal=server.count_refusal)
    app.router.add_get("/", server.page)
    app.router.add_get("/v1/health", server.health)
    app.router.add_post("/v1/tokens", server.issue)
    app.router.add_post("/v1/sessions/{session}/offer", server.offer)
    app.router.add_get("/v1/sessions/{session}/turns", server.turns)
    app.router.add_post("/v1/sessions/{session}/hangup", server.hangup)
    app.on_shutdown.append(server.stop)
    return app


def _loopback_url(text: str) -> str:
    host = urlsplit(text).hostname or ""
    if urlsplit(text).scheme not in ("http", "https") or host not in ("127.0.0.1", "localhost", "::1"):
        raise argparse.ArgumentTypeError(
            "this lab talks to loopback endpoints only (http://127.0.0.1:PORT/v1)"
        )
    return text.rstrip("/")


async def serve(args: argparse.Namespace, secret: bytes, backend_key: str) -> None:
    llm_runner = None
    llm_url = args.llm_url
    if not llm_url:
        llm_runner, llm_url = await start(StandIn(args.first_token_ms))
        print(f"LLM: {LABEL}, first token after {args.first_token_ms:g} ms, on {llm_url}", flush=True)
    config = AgentConfig(
        hangover_ms=args.hangover_ms,
        onset_ms=args.onset_ms,
        llm_url=llm_url,
        preempt_after_ms=None if args.no_preempt else args.preempt_after_ms,
        jitter_buffer=args.jitter_buffer,
        profile=args.profile,
    )
    try:
        await serve_until_stopped(make_app(AgentServer(secret, backend_key, config)), args.host, args.port)
    finally:
        if llm_runner is not None:
            await llm_runner.cleanup()


def add_agent_options(parser: argparse.ArgumentParser) -> None:
    """Options the runner shares: end-of-turn hangover, preemptive reply, onset, stand-in delay, endpoint,
    jitter buffer."""
    parser.add_argument("--hangover-ms", type=int, default=500, help="silence that ends the user's turn (ms)")
    parser.add_argument(
        "--preempt-after-ms",
        type=int,
        default=100,
        help="silence after which the reply starts, held until the turn ends (ms, below --hangover-ms)",
    )
    parser.add_argument(
        "--no-preempt", action="store_true", help="start the reply only once the hangover has ended the turn"
    )
    parser.add_argument(
        "--jitter-buffer",
        choices=["adaptive", "aiortc"],
        default="adaptive",
        help="what plays received audio: rtclab's adaptive buffer, or aiortc's fixed one (+80 ms)",
    )
    parser.add_argument(
        "--onset-ms", type=int, default=80, help="speech needed to start a turn or barge in (ms)"
    )
    parser.add_argument(
        "--first-token-ms", type=float, default=300.0, help="stand-in LLM's first-token delay (ms)"
    )
    parser.add_argument(
        "--llm-url", type=_loopback_url, help="an OpenAI-compatible base URL instead of the stand-in"
    )
    parser.add_argument(
        "--profile", help="lab only: an rtclab network profile on both directions of the call"
    )


def check_agent_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.profile:
        from rtclab.profiles import load_profiles

        if args.profile not in load_profiles():
            parser.error(f"--profile: unknown profile {args.profile!r} (see `rtclab profiles`)")
    if not 100 <= args.hangover_ms <= 3000:
        parser.error("--hangover-ms must be between 100 and 3000")
    if not args.no_preempt and not 20 <= args.preempt_after_ms < args.hangover_ms:
        parser.error("--preempt-after-ms must be at least 20 and below --hangover-ms")
    if not 20 <= args.onset_ms <= 1000:
        parser.error("--onset-ms must be between 20 and 1000")
    if not 0 <= args.first_token_ms <= 5000:
        parser.error("--first-token-ms must be between 0 and 5000")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the voice agent service on loopback.")
    add_bind_options(parser)
    add_agent_options(parser)
    args = parser.parse_args(argv)
    check_agent_options(parser, args)
    secret, backend_key = server_secrets(SECRET_ENV, BACKEND_KEY_ENV)
    asyncio.run(serve(args, secret, backend_key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
