"""Matches and their voice channels, and the rules of who may join, talk and mute: pure state, no network.

A match has one channel per team plus all-chat. A player may hear and talk in their own team's channel and
in all-chat; a match admin (a referee, an observer, the game's own moderation) may listen to every channel
and mute a player in the whole match, but never talks. The server asks these objects before it acts; every
refusal is a `ChannelError` carrying the HTTP status to answer with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokens import Grant, check_name

__all__ = ["ALL_CHAT", "Channel", "ChannelError", "Match", "require_access"]

ALL_CHAT = "all"
"""The channel every player of the match shares (a team may not be called this)."""


class ChannelError(Exception):
    """An action was refused; ``status`` is the HTTP status (403 forbidden, 404 unknown, 409 conflict)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# --8<-- [start:access]
def require_access(grant: Grant, channel: str, *, talking: bool) -> None:
    """Players: their team's channel and all-chat. Admins: any channel, listening only."""
    if grant.role == "admin":
        if talking:
            raise ChannelError("a match admin listens only: offer receive-only audio", 403)
        return
    if channel not in (grant.team, ALL_CHAT):
        raise ChannelError(f"your token opens '{grant.team}' and '{ALL_CHAT}', not '{channel}'", 403)


# --8<-- [end:access]


@dataclass
class Channel:
    """One voice channel of a match.

    Attributes:
        name: A team name, or ``all``.
        slots: Audio streams the server sends each member (the loudest talkers, see forward.py).
        max_members: Joins beyond this are refused with 409.
        members: user -> whether they joined with a talking (sendonly) section.
    """

    name: str
    slots: int
    max_members: int
    members: dict[str, bool] = field(default_factory=dict)

    def admit(self, user: str, talking: bool) -> bool:
        """Add ``user``; True if they were in already (a rejoin after a network change replaces them)."""
        rejoin = user in self.members
        if not rejoin and len(self.members) >= self.max_members:
            raise ChannelError(f"channel '{self.name}' is full ({self.max_members})", 409)
        self.members[user] = talking
        return rejoin

    def leave(self, user: str) -> None:
        """Remove a member (no-op if absent)."""
        self.members.pop(user, None)


@dataclass
class Match:
    """One match: its teams' channels, all-chat, and who is muted.

    Attributes:
        name: The match id tokens name.
        teams: Team names; each gets a channel.
        slots: Streams per member in every channel (1-8).
        max_per_channel: Members per channel (2-64).
        muted: Users whose audio the server drops in every channel of the match.
    """

    name: str
    teams: tuple[str, ...]
    slots: int = 3
    max_per_channel: int = 16
    muted: set[str] = field(default_factory=set)
    channels: dict[str, Channel] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_name(self.name, "match")
        if not 1 <= len(self.teams) <= 8 or len(set(self.teams)) != len(self.teams):
            raise ValueError("teams: 1-8 distinct names")
        for team in self.teams:
            check_name(team, "team")
            if team == ALL_CHAT:
                raise ValueError(f"a team may not be called '{ALL_CHAT}'")
        if not 1 <= self.slots <= 8 or not 2 <= self.max_per_channel <= 64:
            raise ValueError("slots 1-8, max_per_channel 2-64")
        for name in (*self.teams, ALL_CHAT):
            self.channels[name] = Channel(name, self.slots, self.max_per_channel)

    def channel(self, name: str) -> Channel:
        """The channel called ``name``, or 404."""
        if name not in self.channels:
            raise ChannelError(f"match '{self.name}' has no channel '{name}'", 404)
        return self.channels[name]

    def set_muted(self, user: object, muted: object) -> bool:
        """Mute or unmute ``user`` in every channel of the match; the server then drops their packets."""
        if not isinstance(muted, bool):
            raise ChannelError("muted must be true or false", 400)
        try:
            check_name(user, "user")
        except ValueError as error:
            raise ChannelError(str(error), 400) from None
        if muted:
            self.muted.add(str(user))
        else:
            self.muted.discard(str(user))
        return muted

    def audible(self, user: str) -> bool:
        """Whether the server forwards this user's audio."""
        return user not in self.muted

    def snapshot(self) -> dict[str, object]:
        """The match as JSON-ready data."""
        return {
            "match": self.name,
            "teams": list(self.teams),
            "slots": self.slots,
            "muted": sorted(self.muted),
            "channels": {name: sorted(c.members) for name, c in self.channels.items()},
        }
