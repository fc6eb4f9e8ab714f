"""The co-host live media server: aiohttp signaling and aiortc media in one process, on 127.0.0.1 only.

Your app's backend creates rooms and issues host and audience tokens (with the backend key). The host publishes
a camera and a microphone; viewers watch one composed stream (both stage members' pictures side by side or
picture-in-picture, their voices mixed, see compositor.py). Only the host invites a co-host; the invited
viewer accepts and gets a short-lived co-host token from this server, then publishes too. Every request is
checked: the token's signature, expiry, room and role; the body's size, type and shape; a per-user request
rate. A refusal is a 4xx JSON body ``{"error": ...}``; nothing a client sends stops the server serving the others.

    .venv/bin/python samples/scenarios/live_cohost/server.py --port 8767    # prints its backend key

live_cohost.py in this folder starts it, puts a host, co-hosts and viewers on it and measures them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from compositor import LAYOUTS, Compositor
from tokens import Grant, TokenError, check_name, issue_token, verify_token

from rtclab.arguments import number
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

__all__ = ["Limits", "LiveServer", "Refused", "Room", "make_app", "offer_sections"]

SECRET_ENV = "LIVE_COHOST_SECRET"  # hex; the token signing secret
BACKEND_KEY_ENV = "LIVE_COHOST_BACKEND_KEY"  # what the app's backend presents to create rooms and tokens


@dataclass(frozen=True)
class Limits(RequestLimits):
    """The body size and request rates of every server (rtclab.service), and this one's counts.

    Attributes:
        max_rooms: Rooms one server holds.
        max_viewers: Viewers one room holds (each costs one video and one audio encode here).
        invite_ttl_s: How long an invitation waits for the invitee to accept.
        cohost_ttl_s: Lifetime of the co-host token minted on accept.
        max_invitations: Pending invitations per room.
    """

    max_rooms: int = 100
    max_viewers: int = 50
    invite_ttl_s: float = 30.0
    cohost_ttl_s: int = 600
    max_invitations: int = 8


@dataclass
class Session:
    """A user's media on the server: their peer connection and the tasks that drain what they send."""

    pc: RTCPeerConnection
    role: str  # "host", "cohost" or "viewer"
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.pc.close()


@dataclass
class Room:
    """A live room: who is on stage, who is invited, who watches."""

    name: str
    compositor: Compositor
    host: str | None = None  # the user publishing as host
    cohost: str | None = None  # the user holding the co-host seat (accepted an invitation)
    invited: dict[str, float] = field(default_factory=dict)  # user -> invitation expiry (monotonic)
    viewers: set[str] = field(default_factory=set)

    def snapshot(self, user: str) -> dict:
        return {
            "room": self.name,
            "live": self.host is not None,
            "host": self.host,
            "cohost": self.cohost,
            "viewers": len(self.viewers),
            "layout": self.compositor.layout.name,
            "invited": self.invited.get(user, 0) > time.monotonic(),
        }


_SECTION = re.compile(r"^(audio|video) ")
_DIRECTION = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.MULTILINE)


def offer_sections(sdp: str) -> list[tuple[str, str]]:
    """``(kind, direction)`` of each m= section of an offer, in order."""
    sections = sdp.split("\nm=")[1:]
    if not sections:
        raise ValueError("the offer has no media section")
    found = []
    for section in sections:
        kind = _SECTION.match(section)
        if kind is None:
            raise ValueError("a live room carries audio and video only")
        direction = _DIRECTION.findall(section)
        found.append((kind.group(1), direction[0] if direction else "sendrecv"))
    return found


# --8<-- [start:roles]
def check_offer(grant: Grant, room: Room, action: str, sections: list[tuple[str, str]]) -> None:
    """Who may publish or watch, with which offer; raises `Refused` (403 for a role, 409 for a state)."""
    if sorted(kind for kind, _ in sections) != ["audio", "video"]:
        raise Refused("offer one audio and one video section", 400)
    directions = {direction for _, direction in sections}
    if action == "watch":
        if directions != {"recvonly"}:  # a viewer trying to send media into the room
            raise Refused("viewers do not publish: offer recvonly audio and video", 403)
        return
    if grant.role == "audience":
        raise Refused("only the host or an invited co-host publishes", 403)
    if directions != {"sendrecv"}:
        raise Refused("stage members offer sendrecv audio and video", 400)
    if grant.role == "host":
        if room.host is not None:
            raise Refused("this room is already live", 409)
    elif room.cohost != grant.user:  # a co-host token outlives a removal: the seat decides
        raise Refused("you do not hold the co-host seat: ask the host for an invitation", 403)


def check_invite(grant: Grant, room: Room, invitee: object, limits: Limits) -> str:
    """The user the host may invite now; raises `Refused` otherwise."""
    if grant.role != "host" or room.host != grant.user:
        raise Refused("only the live host invites a co-host", 403)
    try:
        user = check_name(invitee, "user")
    except ValueError as error:
        raise Refused(str(error), 400) from None
    if user == grant.user:
        raise Refused("the host cannot invite themselves", 400)
    if room.cohost is not None:
        raise Refused("the co-host seat is taken: remove the co-host first", 409)
    now = time.monotonic()
    room.invited = {u: t for u, t in room.invited.items() if t > now}
    if user not in room.invited and len(room.invited) >= limits.max_invitations:
        raise Refused("too many pending invitations", 429)
    return user


# --8<-- [end:roles]


class LiveServer:
    """All rooms of this process, their members' peer connections, and the rules around them."""

    def __init__(self, secret: bytes, backend_key: str, limits: Limits, fps: float = 15.0) -> None:
        self.secret, self.backend_key, self.limits, self.fps = secret, backend_key, limits, fps
        self.rooms: dict[str, Room] = {}
        self.sessions: dict[tuple[str, str], Session] = {}
        self.throttle = Throttle(limits)
        self.refused = 0

    # --- requests: authentication, rate limit, body ---------------------------------------------------

    # --8<-- [start:guard]
    @web.middleware
    async def guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Authenticate and rate-limit every request; what it refuses, rtclab.service answers as 4xx JSON."""
        room = request.match_info.get("room")
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if request.path == "/v1/health":
            return await handler(request)
        if room is None:  # backend endpoints: create rooms, issue tokens, metrics
            if not secrets.compare_digest(presented.encode(), self.backend_key.encode()):
                self.throttle.stranger(request)
                raise Refused("backend key required", 401)
            return await handler(request)
        if not presented:
            self.throttle.stranger(request)
            raise TokenError("missing token: send Authorization: Bearer <token>")
        try:
            grant = verify_token(self.secret, presented, room)
        except TokenError:
            self.throttle.stranger(request)  # forged-token floods get 429 too
            raise
        self.throttle.user(f"user:{room}/{grant.user}")
        request["grant"] = grant
        return await handler(request)

    # --8<-- [end:guard]

    def count_refusal(self) -> None:
        self.refused += 1

    def room_of(self, request: web.Request) -> tuple[Room, Grant]:
        grant: Grant = request["grant"]
        room = self.rooms.get(grant.room)
        if room is None:
            raise Refused("no such room", 404)
        return room, grant

    # --- backend endpoints ----------------------------------------------------------------------------

    async def create_room(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            name = check_name(body.get("room"), "room")
        except ValueError as error:
            raise Refused(str(error), 400) from None
        layout = body.get("layout", "side-by-side")
        if layout not in LAYOUTS:
            raise Refused(f"layout must be one of {', '.join(LAYOUTS)}", 400)
        if name in self.rooms:
            raise Refused("the room exists", 409)
        if len(self.rooms) >= self.limits.max_rooms:
            raise Refused("this server holds its maximum of rooms", 409)
        room = self.rooms[name] = Room(name, Compositor(LAYOUTS[layout], self.fps))
        room.compositor.start()
        return web.json_response(room.snapshot(""), status=201)

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        role = body.get("role")
        if role == "cohost":
            raise Refused("co-host tokens come only from an accepted invitation", 400)
        if role not in ("host", "audience"):
            raise Refused("role must be host or audience", 400)
        try:
            token = issue_token(
                self.secret, body.get("room"), body.get("user"), role, body.get("ttl_s", 3600)
            )
        except (ValueError, TypeError) as error:
            raise Refused(str(error), 400) from None
        return web.json_response({"token": token})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "cpu_s": time.process_time(),  # user + system time of every thread of this process
                "rooms": len(self.rooms),
                "viewers": sum(len(r.viewers) for r in self.rooms.values()),
                "frames_composed": sum(r.compositor.frames_composed for r in self.rooms.values()),
                "compose_s": sum(r.compositor.compose_s for r in self.rooms.values()),
                "refused": self.refused,
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # --- room endpoints -------------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.Response:
        room, grant = self.room_of(request)
        return web.json_response(room.snapshot(grant.user))

    # --8<-- [start:invite]
    async def invite(self, request: web.Request) -> web.Response:
        """The host invites a viewer onto the stage; the invitation waits ``invite_ttl_s`` for an accept."""
        room, grant = self.room_of(request)
        user = check_invite(grant, room, (await read_json(request)).get("user"), self.limits)
        room.invited[user] = time.monotonic() + self.limits.invite_ttl_s
        return web.json_response({"invited": user, "expires_in_s": self.limits.invite_ttl_s}, status=202)

    async def accept(self, request: web.Request) -> web.Response:
        """The invitee takes the seat and gets a short-lived co-host token, minted here and nowhere else."""
        room, grant = self.room_of(request)
        if room.invited.pop(grant.user, 0) <= time.monotonic():
            raise Refused("no invitation for you (or it expired)", 403)
        if room.cohost is not None:
            raise Refused("the co-host seat is taken", 409)
        room.cohost = grant.user
        token = issue_token(self.secret, room.name, grant.user, "cohost", self.limits.cohost_ttl_s)
        return web.json_response({"token": token, "role": "cohost"})

    async def remove(self, request: web.Request) -> web.Response:
        """The host takes the co-host off the stage; their co-host token opens nothing any more."""
        room, grant = self.room_of(request)
        if grant.role != "host" or room.host != grant.user:
            raise Refused("only the live host removes a co-host", 403)
        user = (await read_json(request)).get("user")
        if user is None or user != room.cohost:
            raise Refused("that user is not the co-host", 404)
        room.cohost = None
        await self._drop(room, user)
        return web.json_response({"removed": user})

    # --8<-- [end:invite]

    async def leave(self, request: web.Request) -> web.Response:
        room, grant = self.room_of(request)
        if (room.name, grant.user) not in self.sessions:
            raise Refused("you are not connected to this room", 404)
        if room.cohost == grant.user:
            room.cohost = None
        await self._drop(room, grant.user)
        return web.json_response({"left": grant.user})

    # --8<-- [start:connect]
    async def connect(self, request: web.Request) -> web.Response:
        """Publish (host, co-host) or watch (anyone with a token for the room): an offer in, an answer out."""
        room, grant = self.room_of(request)
        action = request.match_info["action"]
        body = await read_json(request)
        sdp = body.get("sdp")
        if body.get("type") != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise Refused('expected {"type": "offer", "sdp": "v=0..."}', 400)
        try:
            sections = offer_sections(sdp)
            check_loopback_sdp(sdp)  # this lab answers loopback candidates only
        except ValueError as error:
            raise Refused(str(error), 422) from None
        check_offer(grant, room, action, sections)
        if (room.name, grant.user) in self.sessions:
            raise Refused("you are already connected: leave first", 409)
        if action == "watch" and len(room.viewers) >= self.limits.max_viewers:
            raise Refused("the room is full", 429)
        role = "viewer" if action == "watch" else grant.role
        if role == "host":
            room.host = grant.user
        elif role == "viewer":
            room.viewers.add(grant.user)
        try:
            answer = await self._negotiate(room, grant.user, role, sdp)
        except Exception as error:  # a bad SDP that passed the checks above: refuse it, keep serving
            await self._drop(room, grant.user)
            raise Refused(f"cannot negotiate this offer: {type(error).__name__}", 400) from None
        return web.json_response({"type": "answer", "sdp": answer, "role": role})

    async def _negotiate(self, room: Room, user: str, role: str, sdp: str) -> str:
        pc = RTCPeerConnection(rtc_configuration())
        session = self.sessions[(room.name, user)] = Session(pc, role)
        compositor = room.compositor
        if role == "viewer":
            feed = compositor.add_viewer(user)
        else:
            feed = compositor.add_member(user, slot=0 if role == "host" else 1)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            transceiver.sender.replaceTrack(feed[0] if transceiver.kind == "video" else feed[1])
            transceiver.direction = "sendonly" if role == "viewer" else "sendrecv"
            if role != "viewer":  # what the stage member sends goes into the composite
                on_frame = compositor.on_video if transceiver.kind == "video" else compositor.on_audio
                session.tasks.append(
                    asyncio.ensure_future(_drain(transceiver.receiver.track, user, on_frame))
                )
        with loopback_only():
            await pc.setLocalDescription(await pc.createAnswer())
        check_loopback_sdp(pc.localDescription.sdp)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.sessions.get((room.name, user)) is session:
                await self._drop(room, user)

        return pc.localDescription.sdp

    # --8<-- [end:connect]

    async def _drop(self, room: Room, user: str) -> None:
        room.compositor.remove(user)
        room.viewers.discard(user)
        if room.host == user:
            room.host = None
        session = self.sessions.pop((room.name, user), None)
        if session is not None:
            await session.close()

    async def stop(self, app: web.Application) -> None:
        for room in self.rooms.values():
            await room.compositor.stop()
        await asyncio.gather(*(s.close() for s in self.sessions.values()), return_exceptions=True)
        self.sessions.clear()


async def _drain(track: MediaStreamTrack, user: str, on_frame: Callable[[str, object], None]) -> None:
    """Hand a stage member's decoded frames to the compositor until their track ends."""
    with contextlib.suppress(MediaStreamError):
        while True:
            on_frame(user, await track.recv())


def make_app(server: LiveServer) -> web.Application:
    """The HTTP API of ``server``; bind it to 127.0.0.1."""
    app = guarded_app(server.limits, server.guard, on_refusal=server.count_refusal)
    app.router.add_get("/v1/health", server.health)
    app.router.add_get("/v1/metrics", server.metrics)
    app.router.add_post("/v1/rooms", server.create_room)
    app.router.add_post("/v1/tokens", server.issue)
    app.router.add_get("/v1/rooms/{room}", server.show)
    app.router.add_post("/v1/rooms/{room}/{action:publish|watch}", server.connect)
    app.router.add_post("/v1/rooms/{room}/invite", server.invite)
    app.router.add_post("/v1/rooms/{room}/accept", server.accept)
    app.router.add_post("/v1/rooms/{room}/remove", server.remove)
    app.router.add_post("/v1/rooms/{room}/leave", server.leave)
    app.on_shutdown.append(server.stop)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the co-host live media server on loopback.")
    add_bind_options(parser)
    parser.add_argument("--fps", type=number(1, 30), default=15.0, help="composite frame rate (default 15)")
    args = parser.parse_args(argv)
    secret, backend_key = server_secrets(SECRET_ENV, BACKEND_KEY_ENV)
    server = LiveServer(secret, backend_key, Limits(), args.fps)
    asyncio.run(serve_until_stopped(make_app(server), args.host, args.port, shutdown_timeout=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
