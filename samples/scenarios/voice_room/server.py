"""The voice room server: aiohttp signaling and aiortc media in one process, on 127.0.0.1 only.

Your app's backend creates rooms and asks for join tokens (with the backend key); clients join a room with
their token and an SDP offer, and get an answer whose audio streams the server feeds (forwarded or mixed,
per room). The host moderates over the same API. Every request is checked: the token's signature, expiry,
room and role; the body's size, type and shape; a per-user request rate. A refusal is a 4xx JSON body
``{"error": ...}``; nothing a client sends can stop the server serving the others.

    .venv/bin/python samples/scenarios/voice_room/server.py --port 8765    # prints its backend key

voice_room.py in this folder starts it, fills rooms with simulated clients and measures them.
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
from aiortc.mediastreams import MediaStreamError
from media import ForwardRouter, Mixer, PacketTrack, intercept_rtp
from rooms import Room, RoomError
from tokens import ROLES, JoinToken, TokenError, check_name, issue_token, verify_token

from rtclab.jitter import AdaptiveConfig, AdaptivePlayout
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

__all__ = ["Limits", "RoomServer", "make_app"]

SECRET_ENV = "VOICE_ROOM_SECRET"  # hex; the token signing secret
BACKEND_KEY_ENV = "VOICE_ROOM_BACKEND_KEY"  # what the app's backend presents to create rooms and tokens


@dataclass(frozen=True)
class Limits(RequestLimits):
    """The body size and request rates of every server (rtclab.service), and how many rooms this one holds."""

    max_rooms: int = 100


@dataclass
class Session:
    """A member's media on the server: their peer connection and what feeds or drains it."""

    pc: RTCPeerConnection
    tracks: list[PacketTrack] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    playout: AdaptivePlayout | None = None  # mix mode: the buffer that plays the speaker into the mixer

    async def close(self) -> None:
        for track in self.tracks:
            track.stop()
        for task in self.tasks:
            task.cancel()
        if self.playout is not None:
            await self.playout.stop()
        await self.pc.close()


# The mixer's receive buffer: deep enough for the worst transit seen in the last 5 s (quantile 1.0), so a
# frame is never late for the mix on a clean network (every late frame is a concealed gap in every
# listener's mix: the 0.95 default cost up to a whole PESQ point here); one frame deep at the start,
# because starting deeper means shrinking later, and every shrink skips a frame of speech.
MIXER_BUFFER = AdaptiveConfig(start_delay_ms=20, quantile=1.0)

_DIRECTION = re.compile(r"^a=(sendrecv|sendonly|recvonly|inactive)\s*$", re.MULTILINE)


def offer_sections(sdp: str) -> list[str]:
    """The direction of each m= section of an offer, in order; only audio sections are accepted."""
    sections = sdp.split("\nm=")[1:]
    if not sections:
        raise ValueError("the offer has no media section")
    directions = []
    for section in sections:
        if not section.startswith("audio "):
            raise ValueError("a voice room carries audio only")
        found = _DIRECTION.findall(section)
        directions.append(found[0] if found else "sendrecv")
    return directions


class RoomServer:
    """All rooms of this process, their members' peer connections, and the rules around them."""

    def __init__(
        self,
        secret: bytes,
        backend_key: str,
        limits: Limits,
        downlink: object = None,
        mixer_buffer: str = "adaptive",
    ) -> None:
        self.secret, self.backend_key, self.limits = secret, backend_key, limits
        self.downlink = downlink  # an rtclab Impairment for what the server sends (lab only), or None
        self.mixer_buffer = mixer_buffer  # "adaptive" (rtclab.jitter) or "aiortc" (its fixed 80 ms buffer)
        self.rooms: dict[str, Room] = {}
        self.routers: dict[str, ForwardRouter] = {}
        self.mixers: dict[str, Mixer] = {}
        self.sessions: dict[tuple[str, str], Session] = {}
        self.throttle = Throttle(limits)
        self.refused = 0
        self._selector: asyncio.Task[None] | None = None

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
        if room in self.rooms and grant.user in self.rooms[room].banned:  # kicked: refused before anything
            self.throttle.stranger(request)
            raise RoomError("you were removed from this room", 403)
        self.throttle.user(f"user:{room}/{grant.user}")
        request["grant"] = grant
        return await handler(request)

    # --8<-- [end:guard]

    def count_refusal(self) -> None:
        self.refused += 1

    def room_of(self, request: web.Request) -> tuple[Room, JoinToken]:
        grant: JoinToken = request["grant"]
        room = self.rooms.get(grant.room)
        if room is None:
            raise RoomError("no such room", 404)
        room.check_allowed(grant.user)  # a kicked user's still-valid token opens nothing
        return room, grant

    def member_of(self, request: web.Request) -> tuple[Room, JoinToken]:
        room, grant = self.room_of(request)
        if grant.user not in room.members:
            raise RoomError("join the room first", 403)
        return room, grant

    # --- backend endpoints ----------------------------------------------------------------------------

    async def create_room(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            name = check_name(body.get("room"), "room")
            room = Room(
                name,
                mode=body.get("mode", "forward"),
                seats=int(body.get("seats", 8)),
                top_k=int(body.get("top_k", 2)),
                max_members=int(body.get("max_members", 50)),
            )
        except (ValueError, TypeError) as error:
            raise RoomError(str(error), 400) from None
        if name in self.rooms:
            raise RoomError("the room exists", 409)
        if len(self.rooms) >= self.limits.max_rooms:
            raise RoomError("this server holds its maximum of rooms", 409)
        self.rooms[name] = room
        if room.mode == "forward":
            self.routers[name] = ForwardRouter(room.top_k, self._audible(room))
        else:
            self.mixers[name] = Mixer(self._audible(room))
            self.mixers[name].start()
        return web.json_response(room.snapshot(), status=201)

    async def issue(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            ttl = body.get("ttl_s", 3600)
            if not isinstance(ttl, int) or isinstance(ttl, bool):
                raise ValueError("ttl_s must be an integer")
            role = body.get("role")
            if role not in ROLES:
                raise ValueError(f"role must be one of {', '.join(ROLES)}")
            token = issue_token(self.secret, body.get("room"), body.get("user"), role, ttl)
        except (ValueError, TypeError) as error:
            raise RoomError(str(error), 400) from None
        return web.json_response({"token": token})

    async def metrics(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "cpu_s": time.process_time(),  # user + system time of every thread of this process
                "rooms": len(self.rooms),
                "members": sum(len(r.members) for r in self.rooms.values()),
                "refused": self.refused,
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    # --- member endpoints -----------------------------------------------------------------------------

    async def show(self, request: web.Request) -> web.Response:
        room, grant = self.room_of(request)
        state = room.snapshot()
        router, mixer = self.routers.get(room.name), self.mixers.get(room.name)
        state["speaking"] = (router or mixer).speaking() if (router or mixer) else []
        if router and grant.user in router.slots:
            state["your_slots"] = list(router.slots[grant.user])
        return web.json_response(state)

    # --8<-- [start:join]
    async def join(self, request: web.Request) -> web.Response:
        room, grant = self.room_of(request)
        body = await read_json(request)
        sdp = body.get("sdp")
        if body.get("type") != "offer" or not isinstance(sdp, str) or not sdp.startswith("v=0"):
            raise RoomError('expected {"type": "offer", "sdp": "v=0..."}', 400)
        try:
            directions = offer_sections(sdp)
            check_loopback_sdp(sdp)  # this lab answers loopback candidates only
        except ValueError as error:
            raise RoomError(str(error), 422) from None
        if directions.count("sendonly") > 1 or set(directions) - {"sendonly", "recvonly"}:
            raise RoomError("offer at most one sendonly audio section and recvonly ones", 400)
        if directions.count("recvonly") != room.slots:
            raise RoomError(f"this room sends {room.slots} audio stream(s): offer that many recvonly", 400)
        publishing = "sendonly" in directions
        room.admit(grant.user, grant.role, publishing)  # audience + sendonly: 403
        try:
            answer = await self._connect(room, grant.user, sdp, directions)
        except Exception as error:  # a bad SDP that passed the checks above: refuse it, keep serving
            room.leave(grant.user)
            await self._drop(room, grant.user)
            raise RoomError(f"cannot negotiate this offer: {type(error).__name__}", 400) from None
        member = room.members[grant.user]
        return web.json_response({"type": "answer", "sdp": answer, "seat": member.seat, "slots": room.slots})

    async def _connect(self, room: Room, user: str, sdp: str, directions: list[str]) -> str:
        pc = RTCPeerConnection(rtc_configuration())
        session = self.sessions[(room.name, user)] = Session(pc)
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
        self._attach_media(room, user, session, incoming)

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState in ("failed", "closed") and self.sessions.get((room.name, user)) is session:
                room.leave(user)
                await self._drop(room, user)

        return pc.localDescription.sdp

    def _attach_media(self, room: Room, user: str, session: Session, incoming: object) -> None:
        if room.mode == "forward":
            router = self.routers[room.name]
            router.add_listener(user, session.tracks)
            if incoming is not None:
                intercept_rtp(incoming, router.add_speaker(user))  # packets in, never decoded
            router.reselect()
        else:
            mixer = self.mixers[room.name]
            mixer.add_listener(user, session.tracks[0], speaks=incoming is not None)
            if incoming is not None:
                if self.mixer_buffer == "adaptive":  # aiortc's own buffer would hold 80 ms before the mix
                    session.playout = AdaptivePlayout.attach(incoming, MIXER_BUFFER)
                on_frame = mixer.add_speaker(user)
                session.tasks.append(asyncio.ensure_future(_drain(incoming.track, on_frame)))

    # --8<-- [end:join]

    async def leave(self, request: web.Request) -> web.Response:
        room, grant = self.member_of(request)
        room.leave(grant.user)
        await self._drop(room, grant.user)
        return web.json_response({"left": grant.user})

    # --8<-- [start:moderate]
    async def moderate(self, request: web.Request) -> web.Response:
        room, grant = self.member_of(request)
        action = request.match_info["action"]
        body = await read_json(request)
        if action == "seat":
            member = room.set_seat(grant.user, body.get("user"), body.get("seat"))
        elif action == "mute":
            member = room.set_muted(grant.user, body.get("user"), body.get("muted"))
        else:  # kick: out now, and their token no longer opens this room
            member = room.kick(grant.user, body.get("user"))
            await self._drop(room, member.user)
        if room.name in self.routers:
            self.routers[room.name].reselect()  # a muted or unseated speaker leaves every slot at once
        return web.json_response({"user": member.user, "seat": member.seat, "muted": member.muted})

    # --8<-- [end:moderate]

    # --- media housekeeping ---------------------------------------------------------------------------

    def _audible(self, room: Room) -> Callable[[str], bool]:
        return lambda user: user in room.members and room.members[user].audible

    async def _drop(self, room: Room, user: str) -> None:
        if room.name in self.routers:
            self.routers[room.name].remove(user)
        if room.name in self.mixers:
            self.mixers[room.name].remove(user)
        session = self.sessions.pop((room.name, user), None)
        if session is not None:
            await session.close()

    async def _select_speakers(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            for router in self.routers.values():
                router.reselect()

    async def start(self, app: web.Application) -> None:
        self._selector = asyncio.ensure_future(self._select_speakers())

    async def stop(self, app: web.Application) -> None:
        if self._selector:
            self._selector.cancel()
        for mixer in self.mixers.values():
            await mixer.stop()
        await asyncio.gather(*(s.close() for s in self.sessions.values()), return_exceptions=True)
        self.sessions.clear()


async def _drain(track: object, on_frame: Callable) -> None:
    """Feed a speaker's decoded frames to the mixer until their track ends."""
    with contextlib.suppress(MediaStreamError):
        while True:
            on_frame(await track.recv())


def make_app(server: RoomServer) -> web.Application:
    """The HTTP API of ``server``; bind it to 127.0.0.1."""
    app = guarded_app(server.limits, server.guard, on_refusal=server.count_refusal)
    app.router.add_get("/v1/health", server.health)
    app.router.add_get("/v1/metrics", server.metrics)
    app.router.add_post("/v1/rooms", server.create_room)
    app.router.add_post("/v1/tokens", server.issue)
    app.router.add_get("/v1/rooms/{room}", server.show)
    app.router.add_post("/v1/rooms/{room}/join", server.join)
    app.router.add_post("/v1/rooms/{room}/leave", server.leave)
    app.router.add_post("/v1/rooms/{room}/{action:seat|mute|kick}", server.moderate)
    app.on_startup.append(server.start)
    app.on_shutdown.append(server.stop)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the voice room server on loopback.")
    add_bind_options(parser)
    parser.add_argument("--profile", help="lab only: impair everything the server sends (an rtclab profile)")
    parser.add_argument(
        "--mixer-buffer",
        choices=["adaptive", "aiortc"],
        default="adaptive",
        help="mix mode: how speakers' audio is buffered before the mix (aiortc's fixed buffer adds 80 ms)",
    )
    args = parser.parse_args(argv)
    downlink = None
    if args.profile:
        from rtclab.profiles import get_profile

        try:
            downlink = get_profile(args.profile).downlink_impairment(seed=1)
        except (ValueError, OSError) as error:
            parser.error(f"--profile: {error}")
    secret, backend_key = server_secrets(SECRET_ENV, BACKEND_KEY_ENV)
    server = RoomServer(secret, backend_key, Limits(), downlink, args.mixer_buffer)
    asyncio.run(serve_until_stopped(make_app(server), args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
