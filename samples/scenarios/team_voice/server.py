"""The team voice server: aiohttp signaling and an aiortc SFU in one process, on 127.0.0.1 only.

The game backend creates a match (its teams) and asks for join tokens with the backend key; a player joins a
channel (their team's, or all-chat) with their token and an SDP offer, and gets an answer whose receive slots
the server fills with the channel's loudest talkers. A match admin, or the backend itself, mutes a player in
the whole match. Every request is checked: the token's signature, expiry, match and channel; the body's size,
type and shape; a per-user request rate. A refusal is a 4xx JSON body ``{"error": ...}``; nothing a client
sends can stop the server serving the others.

    .venv/bin/python samples/scenarios/team_voice/server.py --port 8766    # prints its backend key

team_voice.py in this folder starts it, fills channels with simulated players and measures them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import secrets
import sys
import time
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from channels import Match, require_access
from forward import PacketTrack, TalkerRouter, intercept_rtp
from tokens import ROLES, Grant, TokenError, check_name, issue_token, verify_token

from rtclab.loopback import (
    check_loopback_sdp,
    loopback_only,
    rtc_configuration,
    serve_until_stopped,
)
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

__all__ = ["Limits", "VoiceServer", "make_app"]

SECRET_ENV = "TEAM_VOICE_SECRET"  # hex; the token signing secret
BACKEND_KEY_ENV = "TEAM_VOICE_BACKEND_KEY"  # what the game backend presents to create matches and tokens


@dataclass(frozen=True)
class Limits(RequestLimits):
    """The body size and request rates of every server (rtclab.service), and how many matches this one holds."""

    max_matches: int = 200


@dataclass
class Session:
    """A member's connection to one channel: their peer connection and the tracks the server sends on it."""

    pc: RTCPeerConnection
    tracks: list[PacketTrack] = field(default_factory=list)

    async def close(self) -> None:
        for track in self.tracks:
            track.stop()
        await self.pc.close()


_DIRECTION = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.MULTILINE)


def offer_sections(sdp: str) -> list[str]:
    """The direction of each m= section of an offer, in order; only audio sections are accepted."""
    sections = sdp.split("\nm=")[1:]
    if not sections:
        raise ValueError("the offer has no media section")
    directions = []
    for section in sections:
        if not section.startswith("audio "):
            raise ValueError("team voice carries audio only")
        found = _DIRECTION.findall(section)
        directions.append(found[0] if found else "sendrecv")
    return directions


class VoiceServer:
    """All matches of this process, their channels' routers and members' connections, and the rules."""

    def __init__(self, secret: bytes, backend_key: str, limits: Limits, downlink: object = None) -> None:
        self.secret, self.backend_key, self.limits = secret, backend_key, limits
        self.downlink = downlink  # an rtclab Impairment for what the server sends (lab only), or None
        self.matches: dict[str, Match] = {}
        self.routers: dict[tuple[str, str], TalkerRouter] = {}
        self.sessions: dict[tuple[str, str, str], Session] = {}
        self.throttle = Throttle(limits)
        self.refused = 0
        self.rejoins = 0
        self._selector: asyncio.Task[None] | None = None

    # --- requests: authentication, rate limit, body ---------------------------------------------------

    # --8<-- [start:guard]
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate and rate-limit every request; what it refuses, rtclab.service answers as 4xx JSON."""
        if request.path == "/v1/health":
            return await handler(request)
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        is_backend = secrets.compare_digest(presented.encode(), self.backend_key.encode())
        match = request.match_info.get("match")
        if match is None or (is_backend and "channel" not in request.match_info):
            if not is_backend:  # backend endpoints: matches, tokens, metrics; and muting
                self.throttle.stranger(request)
                raise Refused("backend key required", 401)
            request["grant"] = None
            return await handler(request)
        if not presented:
            self.throttle.stranger(request)
            raise TokenError("missing token: send Authorization: Bearer <token>")
        try:
            grant = verify_token(self.secret, presented, match)
        except TokenError:
            self.throttle.stranger(request)  # forged-token floods get 429 too
            raise
        self.throttle.user(f"user:{match}/{grant.user}")
        channel = request.match_info.get("channel")
        if channel is not None:  # the token must open this channel before anything else happens
            require_access(grant, channel, talking=False)
        request["grant"] = grant
        return await handler(request)

    # --8<-- [end:guard]

    def count_refusal(self) -> None:
        self.refused += 1

    def match_of(self, request: web.Request) -> Match:
        match = self.matches.get(request.match_info["match"])
        if match is None:
            raise Refused("no such match", 404)
        return match

    # --- backend endpoints ----------------------------------------------------------------------------

    async def create_match(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            teams = body.get("teams")
            if not isinstance(teams, list) or not all(isinstance(t, str) for t in teams):
                raise ValueError("teams must be a list of names")
            for key in ("slots", "max_per_channel"):
                if key in body and (not isinstance(body[key], int) or isinstance(body[key], bool)):
                    raise ValueError(f"{key} must be an integer")
            match = Match(
                check_name(body.get("match"), "match"),
                tuple(teams),
                slots=body.get("slots", 3),
                max_per_channel=body.get("max_per_channel", 16),
            )
        except ValueError as error:
            raise Refused(str(error), 400) from None
        if match.name in self.matches:
            raise Refused("the match exists", 409)
        if len(self.matches) >= self.limits.max_matches:
            raise Refused("this server holds its maximum of matches", 409)
        self.matches[match.name] = match
        for channel in match.channels:
            self.routers[(match.name, channel)] = TalkerRouter(match.audible)
        return web.json_response(match.snapshot(), status=201)

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            ttl = body.get("ttl_s", 3600)
            if not isinstance(ttl, int) or isinstance(ttl, bool):
                raise ValueError("ttl_s must be an integer")
            role, team = body.get("role"), body.get("team", "")
            if role not in ROLES:
                raise ValueError(f"role must be one of {', '.join(ROLES)}")
            match = self.matches.get(str(body.get("match")))
            if match is not None and role == "player" and team not in match.teams:
                raise ValueError(f"team must be one of {', '.join(match.teams)}")
            token = issue_token(self.secret, body.get("match"), body.get("user"), role, team, ttl)
        except (ValueError, TypeError) as error:
            raise Refused(str(error), 400) from None
        return web.json_response({"token": token})

    async def metrics(self, request: web.Request) -> web.Response:
        media = [dataclasses.asdict(r.counters) for r in self.routers.values()]
        return web.json_response(
            {
                "cpu_s": time.process_time(),  # user + system time of every thread of this process
                "matches": len(self.matches),
                "connections": len(self.sessions),
                "refused": self.refused,
                "rejoins": self.rejoins,
                "media": {key: sum(m[key] for m in media) for key in media[0]} if media else {},
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # --8<-- [start:mute]
    async def mute(self, request: web.Request) -> web.Response:
        """The backend key, or a match admin's token: mute a player in every channel of the match."""
        match = self.match_of(request)
        grant: Grant | None = request["grant"]
        if grant is not None and grant.role != "admin":
            raise Refused("only a match admin (or the game backend) may mute", 403)
        body = await read_json(request)
        muted = match.set_muted(body.get("user"), body.get("muted"))
        for (name, _), router in self.routers.items():
            if name == match.name:
                router.reselect()  # a muted talker leaves every listener's slots at once
        return web.json_response({"user": body["user"], "muted": muted})

    # --8<-- [end:mute]

    # --- member endpoints -----------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.Response:
        match, grant = self.match_of(request), request["grant"]
        channel = match.channel(request.match_info["channel"])
        router = self.routers[(match.name, channel.name)]
        return web.json_response(
            {
                "match": match.name,
                "channel": channel.name,
                "slots": channel.slots,
                "members": sorted(channel.members),
                "talking": router.talking(),
                "your_slots": list(router.slots.get(grant.user, [])),
                "muted": sorted(match.muted),
            }
        )

    # --8<-- [start:join]
    async def join(self, request: web.Request) -> web.Response:
        match, grant = self.match_of(request), request["grant"]
        channel = match.channel(request.match_info["channel"])
        body = await read_json(request)
        sdp = body.get("sdp")
        if body.get("type") != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise Refused('expected {"type": "offer", "sdp": "v=0..."}', 400)
        try:
            directions = offer_sections(sdp)
            check_loopback_sdp(sdp)  # this lab answers loopback candidates only
        except ValueError as error:
            raise Refused(str(error), 422) from None
        if directions.count("sendonly") > 1 or set(directions) - {"sendonly", "recvonly"}:
            raise Refused("offer at most one sendonly audio section and recvonly ones", 400)
        if directions.count("recvonly") != channel.slots:
            raise Refused(f"this channel sends {channel.slots} stream(s): offer that many recvonly", 400)
        talking = "sendonly" in directions
        require_access(grant, channel.name, talking=talking)  # an admin offering to talk: 403
        key = (match.name, channel.name, grant.user)
        if channel.admit(grant.user, talking):  # the same player again: a new network, a fresh connection
            self.rejoins += 1
            await self._drop(key)
        try:
            answer = await self._connect(key, sdp, directions)
        except Exception as error:  # a bad SDP that passed the checks above: refuse it, keep serving
            channel.leave(grant.user)
            await self._drop(key)
            raise Refused(f"cannot negotiate this offer: {type(error).__name__}", 400) from None
        return web.json_response({"type": "answer", "sdp": answer, "slots": channel.slots})

    async def _connect(self, key: tuple[str, str, str], sdp: str, directions: list[str]) -> str:
        pc = RTCPeerConnection(rtc_configuration())
        session = self.sessions[key] = Session(pc)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        incoming = None
        for transceiver, direction in zip(pc.getTransceivers(), directions, strict=True):
            if direction == "recvonly":  # the client listens here: the server sends on it
                track = PacketTrack()
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
                session.tracks.append(track)
            else:
                incoming = transceiver.receiver
        with loopback_only():
            await pc.setLocalDescription(await pc.createAnswer())
        if self.downlink is not None:
            from rtclab.impair import impair_connection

            impair_connection(pc, self.downlink)
        check_loopback_sdp(pc.localDescription.sdp)
        match, channel, user = key
        router = self.routers[(match, channel)]
        if incoming is not None:
            intercept_rtp(incoming, router.add_talker(user))  # packets in, never decoded
        router.add_listener(user, session.tracks)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.sessions.get(key) is session:
                self.matches[match].channel(channel).leave(user)
                await self._drop(key)

        return pc.localDescription.sdp

    # --8<-- [end:join]

    async def leave(self, request: web.Request) -> web.Response:
        match, grant = self.match_of(request), request["grant"]
        channel = match.channel(request.match_info["channel"])
        if grant.user not in channel.members:
            raise Refused("join the channel first", 403)
        channel.leave(grant.user)
        await self._drop((match.name, channel.name, grant.user))
        return web.json_response({"left": grant.user})

    # --- media housekeeping ---------------------------------------------------------------------------

    async def _drop(self, key: tuple[str, str, str]) -> None:
        match, channel, user = key
        router = self.routers.get((match, channel))
        if router is not None:
            router.remove(user)
        session = self.sessions.pop(key, None)
        if session is not None:
            await session.close()

    async def _select_talkers(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            for router in self.routers.values():
                router.reselect()

    async def start(self, app: web.Application) -> None:
        self._selector = asyncio.ensure_future(self._select_talkers())

    async def stop(self, app: web.Application) -> None:
        if self._selector:
            self._selector.cancel()
        await asyncio.gather(*(s.close() for s in self.sessions.values()), return_exceptions=True)
        self.sessions.clear()


def make_app(server: VoiceServer) -> web.Application:
    """The HTTP API of ``server``; bind it to 127.0.0.1."""
    app = guarded_app(server.limits, server.guard, on_refusal=server.count_refusal)
    app.router.add_get("/v1/health", server.health)
    app.router.add_get("/v1/metrics", server.metrics)
    app.router.add_post("/v1/matches", server.create_match)
    app.router.add_post("/v1/tokens", server.issue)
    app.router.add_post("/v1/matches/{match}/mute", server.mute)
    app.router.add_get("/v1/matches/{match}/channels/{channel}", server.show)
    app.router.add_post("/v1/matches/{match}/channels/{channel}/join", server.join)
    app.router.add_post("/v1/matches/{match}/channels/{channel}/leave", server.leave)
    app.on_startup.append(server.start)
    app.on_shutdown.append(server.stop)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the team voice server on loopback.")
    add_bind_options(parser)
    parser.add_argument("--profile", help="lab only: impair everything the server sends (an rtclab profile)")
    args = parser.parse_args(argv)
    downlink = None
    if args.profile:
        from rtclab.profiles import get_profile

        try:
            downlink = get_profile(args.profile).downlink_impairment(seed=1)
        except (ValueError, OSError, KeyError) as error:
            parser.error(f"--profile: {error}")
    secret, backend_key = server_secrets(SECRET_ENV, BACKEND_KEY_ENV)
    server = VoiceServer(secret, backend_key, Limits(), downlink)
    asyncio.run(serve_until_stopped(make_app(server), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
