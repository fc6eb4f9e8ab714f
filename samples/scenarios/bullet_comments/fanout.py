"""Fan-out between gateways through Redis: an accepted comment is appended to its room's short history (a Redis
Stream) and published on the room's channel in one atomic script; each gateway subscribes to the channels of
the rooms it has viewers in and hands every message to those viewers.

Redis pub/sub delivers at most once: a gateway that is not subscribed at that instant (starting, reconnecting)
never sees the message. The history is what makes that recoverable: a viewer that reconnects says which
comment it saw last and gets what it missed, from any gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

__all__ = ["HISTORY", "Fanout", "Sink", "channel", "comment_frame", "history_key", "parse_id"]

HISTORY = 500
"""Comments kept per room for viewers that resume (a few seconds of a busy room, minutes of a quiet one)."""

# One round trip and atomic: the comment gets its id (a stream id, increasing per room) and is published with it
PUBLISH = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'c', ARGV[1])
redis.call('PUBLISH', KEYS[2], id .. ' ' .. ARGV[1])
return id
"""


def channel(room: str) -> str:
    return f"bc:{{{room}}}:live"  # {room}: a hash tag, so both keys of a room share a Redis Cluster slot


def history_key(room: str) -> str:
    return f"bc:{{{room}}}:history"


def parse_id(comment_id: str) -> tuple[int, int]:
    """A stream id ``"<ms>-<seq>"`` as a tuple that sorts like Redis sorts ids; ValueError if malformed."""
    ms, _, seq = comment_id.partition("-")
    if not ms.isdigit() or not seq.isdigit() or len(comment_id) > 41:
        raise ValueError(f"not a comment id: {comment_id!r}")
    return int(ms), int(seq)


def comment_frame(comment_id: str, body: str, replay: bool = False) -> str:
    """The frame viewers get: the stored body (a JSON object) with the type and id put in front."""
    head = f'{{"type":"comment","id":"{comment_id}",' + ('"replay":true,' if replay else "")
    return head + body[1:]


class Sink(Protocol):
    """A local viewer, as the fan-out sees it."""

    def offer(self, comment_id: tuple[int, int], frame: str) -> None:
        """Take one comment frame; must not block (a slow viewer must not hold up the room)."""


# --8<-- [start:fanout]
class Fanout:
    """This gateway's side of the Redis fan-out: publish comments, subscribe rooms, feed local viewers."""

    def __init__(self, redis_url: str, on_lost: Callable[[], Awaitable[None]]) -> None:
        self.redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        # No silent reconnects on the subscriber: a reconnect would skip whatever was published meanwhile.
        # Better fail loudly (on_lost closes every viewer) and let the viewers resume from the history.
        self.listener = aioredis.Redis.from_url(redis_url, decode_responses=True, retry=Retry(NoBackoff(), 0))
        self.pubsub = self.listener.pubsub()
        self.publish_script = self.redis.register_script(PUBLISH)
        self.on_lost = on_lost
        self.rooms: dict[str, set[Sink]] = {}
        self.room_of: dict[str, str] = {}  # channel name -> room
        self.confirmed: dict[str, asyncio.Event] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.published = self.received = 0
        self._reader: asyncio.Task | None = None

    async def start(self) -> None:
        await self.pubsub.subscribe("bc:gateways")  # always subscribed, so the reader always has a stream
        self._reader = asyncio.ensure_future(self._read())

    async def publish(self, room: str, body: dict) -> str:
        """Store and publish one accepted comment; its id once Redis has it (the comment is then accepted)."""
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        comment_id = await self.publish_script(keys=[history_key(room), channel(room)], args=[text, HISTORY])
        self.published += 1
        return comment_id

    async def join(self, room: str, sink: Sink) -> None:
        """Deliver ``room`` to ``sink`` from now on; the first local viewer of a room subscribes this gateway,
        and joining returns only once Redis has confirmed it (before that, comments would be missed)."""
        async with self.locks.setdefault(room, asyncio.Lock()):
            if room not in self.rooms:
                self.confirmed[room] = asyncio.Event()
                self.room_of[channel(room)] = room
                await self.pubsub.subscribe(channel(room))
                await asyncio.wait_for(self.confirmed[room].wait(), timeout=10)
                self.rooms[room] = set()
            self.rooms[room].add(sink)

    async def leave(self, room: str, sink: Sink) -> None:
        async with self.locks.setdefault(room, asyncio.Lock()):
            viewers = self.rooms.get(room)
            if viewers is None:
                return
            viewers.discard(sink)
            if not viewers:  # the last local viewer left: stop receiving this room
                del self.rooms[room]
                with contextlib.suppress(aioredis.RedisError, OSError):
                    await self.pubsub.unsubscribe(channel(room))

    async def _read(self) -> None:
        try:
            while True:
                message = await self.pubsub.get_message(timeout=None)
                if message is None:
                    continue
                room = self.room_of.get(message["channel"], "")
                if message["type"] == "subscribe" and room in self.confirmed:
                    self.confirmed[room].set()
                elif message["type"] == "message" and room in self.rooms:
                    self.received += 1
                    comment_id, _, body = message["data"].partition(" ")
                    try:
                        frame, key = comment_frame(comment_id, body), parse_id(comment_id)
                    except ValueError:  # not ours: skip it, keep the room going
                        continue
                    for sink in self.rooms[room]:
                        sink.offer(key, frame)  # never awaits: each viewer has its own bounded queue
        except asyncio.CancelledError:
            raise
        except (aioredis.RedisError, OSError):
            self.rooms.clear()
            await self.on_lost()

    # --8<-- [end:fanout]

    # --8<-- [start:history]
    async def since(self, room: str, last_seen: str, limit: int = HISTORY) -> tuple[list[str], bool]:
        """Frames of the comments after ``last_seen`` (oldest first, at most the newest ``limit``), and whether
        some may be missing: trimmed from the history already, or more than ``limit``."""
        key = history_key(room)
        newest = await self.redis.xrevrange(key, max="+", min=f"({last_seen}", count=limit + 1)
        oldest = await self.redis.xrange(key, count=1)
        trimmed = bool(oldest) and parse_id(oldest[0][0]) > parse_id(last_seen)
        frames = [comment_frame(entry_id, fields["c"], replay=True) for entry_id, fields in newest[:limit]]
        return frames[::-1], trimmed or len(newest) > limit

    # --8<-- [end:history]

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        with contextlib.suppress(aioredis.RedisError, OSError):
            await self.pubsub.aclose()
        await self.listener.aclose()
        await self.redis.aclose()
