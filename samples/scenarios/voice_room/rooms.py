"""Room state and the rules of who may do what: seats (on/off mic), mute, kick, and the three roles.

Pure state, no network: the server asks `Room` before it acts, and every refusal is a `RoomError` carrying
the HTTP status to answer with. One room lives in one server process (its members' media meets there);
tokens can be checked anywhere, but the ban list and the seats are this object's memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["MODES", "Member", "Room", "RoomError", "may_publish"]

MODES = ("forward", "mix")
"""forward: the server relays the top-K speakers' packets untouched; mix: it decodes, sums and re-encodes."""


class RoomError(Exception):
    """An action was refused; ``status`` is the HTTP status (403 forbidden, 404 unknown, 409 conflict)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --8<-- [start:roles]
def may_publish(role: str) -> bool:
    """Host and speakers may send audio (speakers only while seated); the audience only listens."""
    return role in ("host", "speaker")


def require_host(role: str, action: str) -> None:
    """Seats, mute and kick belong to the host."""
    if role != "host":
        raise RoomError(f"only the host may {action}", 403)


# --8<-- [end:roles]


@dataclass
class Member:
    """Someone in the room.

    Attributes:
        user: The user id from their token.
        role: ``host``, ``speaker`` or ``audience``.
        seat: Seat number while on mic, None while off mic.
        muted: Muted by the host (the server drops their audio).
    """

    user: str
    role: str
    seat: int | None = None
    muted: bool = False

    @property
    def audible(self) -> bool:
        """Whether the server passes this member's audio on: a publisher, seated and not muted."""
        return may_publish(self.role) and self.seat is not None and not self.muted


@dataclass
class Room:
    """One voice room.

    Attributes:
        name: The room id tokens name.
        mode: ``forward`` or ``mix``.
        seats: Number of seats (the host takes seat 0 on joining).
        top_k: How many speakers a listener gets at once in forward mode.
        max_members: Joins beyond this are refused with 409.
        members: Who is in, by user id.
        banned: Users kicked from this room: their tokens no longer open it.
    """

    name: str
    mode: str = "forward"
    seats: int = 8
    top_k: int = 2
    max_members: int = 50
    members: dict[str, Member] = field(default_factory=dict)
    banned: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        if not 1 <= self.seats <= 32 or not 1 <= self.top_k <= 8 or not 1 <= self.max_members <= 500:
            raise ValueError("seats 1-32, top_k 1-8, max_members 1-500")

    @property
    def slots(self) -> int:
        """Audio streams the server sends each member: top_k when forwarding, one mix when mixing."""
        return self.top_k if self.mode == "forward" else 1

    def check_allowed(self, user: str) -> None:
        """Refuse a kicked user, whatever token they present."""
        if user in self.banned:
            raise RoomError("you were removed from this room", 403)

    def admit(self, user: str, role: str, publishing: bool) -> Member:
        """Add a member who offers to publish (or not); the host is seated on seat 0."""
        self.check_allowed(user)
        if publishing and not may_publish(role):
            raise RoomError("the audience cannot publish audio: offer receive-only transceivers", 403)
        if user in self.members:
            raise RoomError(f"{user} is already in the room", 409)
        if len(self.members) >= self.max_members:
            raise RoomError("the room is full", 409)
        member = Member(user, role)
        if role == "host":
            if any(m.role == "host" for m in self.members.values()):
                raise RoomError("the room already has a host", 409)
            member.seat = 0 if self._seat_holder(0) is None else self._free_seat()
        self.members[user] = member
        return member

    def leave(self, user: str) -> None:
        """Remove a member (no-op if absent)."""
        self.members.pop(user, None)

    def _target(self, user: object) -> Member:
        if not isinstance(user, str) or user not in self.members:
            raise RoomError(f"no member {user!r} in this room", 404)
        return self.members[user]

    def _seat_holder(self, seat: int) -> Member | None:
        return next((m for m in self.members.values() if m.seat == seat), None)

    def _free_seat(self) -> int:
        for seat in range(self.seats):
            if self._seat_holder(seat) is None:
                return seat
        raise RoomError("no free seat", 409)

    # --8<-- [start:moderation]
    def set_seat(self, actor: str, user: object, seat: object) -> Member:
        """Host only: put ``user`` on ``seat`` (on mic), or take them off (``seat`` None)."""
        require_host(self.members[actor].role, "assign seats")
        target = self._target(user)
        if seat is None:
            target.seat = None
            return target
        if not isinstance(seat, int) or isinstance(seat, bool) or not 0 <= seat < self.seats:
            raise RoomError(f"seat must be an integer from 0 to {self.seats - 1}, or null", 400)
        if not may_publish(target.role):
            raise RoomError(f"{target.user} is audience: give them a speaker token first", 409)
        holder = self._seat_holder(seat)
        if holder is not None and holder is not target:
            raise RoomError(f"seat {seat} is taken by {holder.user}", 409)
        target.seat = seat
        return target

    def set_muted(self, actor: str, user: object, muted: object) -> Member:
        """Host only: mute or unmute ``user``; the server then drops or passes their audio."""
        require_host(self.members[actor].role, "mute")
        if not isinstance(muted, bool):
            raise RoomError("muted must be true or false", 400)
        target = self._target(user)
        target.muted = muted
        return target

    def kick(self, actor: str, user: object) -> Member:
        """Host only: remove ``user`` and refuse their tokens for this room from now on."""
        require_host(self.members[actor].role, "kick")
        target = self._target(user)
        if target.user == actor:
            raise RoomError("the host cannot kick themselves", 409)
        self.banned.add(target.user)
        del self.members[target.user]
        return target

    # --8<-- [end:moderation]

    def snapshot(self) -> dict[str, object]:
        """The room as JSON-ready data (what ``GET /v1/rooms/<room>`` shows)."""
        return {
            "room": self.name,
            "mode": self.mode,
            "slots": self.slots,
            "seats": self.seats,
            "members": [
                {"user": m.user, "role": m.role, "seat": m.seat, "muted": m.muted}
                for m in sorted(self.members.values(), key=lambda m: m.user)
            ],
        }
