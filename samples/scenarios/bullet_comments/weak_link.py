"""A weak mobile link for WebSocket viewers: a TCP relay on 127.0.0.1 that gives each connection through it its
own link, with an rtclab profile's one-way delay, rate cap and blackouts, per direction.

rtclab.impair works on UDP datagrams (the media path); bullet comments ride TCP. A TCP stream cannot lose a
packet from userspace, so the profile's loss is not applied: on a real link TCP turns loss into extra delay
(retransmission), which makes these numbers a best case. Jitter is not applied either (a byte stream stays in
order). Bytes wait while the link is busy (the rate cap) and during a blackout; beyond ``QUEUE_BYTES`` the
relay stops reading, so the sender feels back-pressure the way it would from a phone that cannot keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from dataclasses import dataclass

from rtclab.profiles import Link, Profile

__all__ = ["QUEUE_BYTES", "Pipe", "WeakLink"]

QUEUE_BYTES = 64 * 1024
"""Bytes a direction holds before it stops reading (a socket buffer plus a modem's queue)."""


@dataclass
class Pipe:
    """One direction of one connection: when each chunk written into it comes out."""

    link: Link
    blackouts: tuple[tuple[float, float], ...]  # (start, end) in seconds after the connection opened
    opened: float
    free_at: float = 0.0  # when the link finishes sending what it already holds

    def deliver_at(self, size: int, now: float) -> float:
        start = max(now, self.free_at)
        for begin, end in self.blackouts:  # nothing leaves during a blackout
            if self.opened + begin <= start < self.opened + end:
                start = self.opened + end
        sending = size * 8 / (self.link.rate_kbps * 1000) if self.link.rate_kbps else 0.0
        self.free_at = start + sending
        return self.free_at + self.link.delay_ms / 1000


# --8<-- [start:relay]
class WeakLink:
    """Relay connections to ``target`` through the profile's uplink (client -> target) and downlink."""

    def __init__(self, profile: Profile, target: tuple[str, int]) -> None:
        self.profile, self.target = profile, target
        self.server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def _relay(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        opened = time.monotonic()
        blackouts = tuple((b.start_s, b.start_s + b.duration_s) for b in self.profile.blackouts)
        up = Pipe(self.profile.uplink, blackouts, opened)
        down = Pipe(self.profile.downlink, blackouts, opened)
        await asyncio.gather(
            self._pump(client_r, server_w, up), self._pump(server_r, client_w, down), return_exceptions=True
        )
        for writer in (client_w, server_w):
            writer.close()

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pipe: Pipe) -> None:
        queue: deque[tuple[float, bytes]] = deque()
        queued, ready, room = 0, asyncio.Event(), asyncio.Event()
        room.set()

        async def read() -> None:
            nonlocal queued
            while chunk := await reader.read(4096):
                await room.wait()  # back-pressure: the sender's socket fills up behind us
                queue.append((pipe.deliver_at(len(chunk), time.monotonic()), chunk))
                queued += len(chunk)
                if queued >= QUEUE_BYTES:
                    room.clear()
                ready.set()
            queue.append((0.0, b""))  # end of stream
            ready.set()

        reading = asyncio.ensure_future(read())
        try:
            while True:
                await ready.wait()
                ready.clear()
                while queue:
                    due, chunk = queue.popleft()
                    if not chunk:
                        with contextlib.suppress(OSError):
                            writer.write_eof()
                        return
                    await asyncio.sleep(max(0.0, due - time.monotonic()))
                    writer.write(chunk)
                    await writer.drain()
                    queued -= len(chunk)
                    if queued < QUEUE_BYTES:
                        room.set()
        finally:
            reading.cancel()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


# --8<-- [end:relay]
