"""Join tokens for in-game team voice: a token names one match, one user, a role and, for a player, their team;
it opens the channels that team may hear and nothing else.

The signing is rtclab.tokens (HMAC-SHA256 under a secret that only the voice server and the game backend hold,
checked without a database lookup); this file adds what a match puts in a token and checks in it. Which
channels a token opens follows from the role and the team (see channels.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclab.tokens import MAX_TOKEN_BYTES, TokenError, check_name, new_secret, sign, verify

__all__ = [
    "MAX_TOKEN_BYTES",
    "MAX_TTL_S",
    "ROLES",
    "Grant",
    "TokenError",
    "check_name",
    "issue_token",
    "new_secret",
    "verify_token",
]

ROLES = ("player", "admin")
"""A player talks and listens in their team's channel and in all-chat; a match admin listens anywhere and mutes."""
MAX_TTL_S = 6 * 3600
"""Longest lifetime a token may be issued with (a long match plus its lobby; rtclab.tokens allows a day)."""


@dataclass(frozen=True)
class Grant:
    """What a verified token grants.

    Attributes:
        match: The only match it opens.
        user: Who holds it.
        role: ``player`` or ``admin``.
        team: The player's team ("" for an admin).
        expires_at: Unix time after which it is refused.
        token_id: A random id, for logs and audits.
    """

    match: str
    user: str
    role: str
    team: str
    expires_at: int
    token_id: str


# --8<-- [start:issue]
def issue_token(
    secret: bytes, match: str, user: str, role: str, team: str, ttl_s: int, *, now: float | None = None
) -> str:
    """Sign a token that lets ``user`` into ``match`` as ``role`` (a player of ``team``) for ``ttl_s`` s."""
    check_name(match, "match")
    check_name(user, "user")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if role == "player":
        check_name(team, "team")
    elif team:
        raise ValueError("an admin belongs to no team")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}")
    return sign(secret, {"match": match, "user": user, "role": role, "team": team}, ttl_s, now=now)


def verify_token(secret: bytes, token: str, match: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is signed with ``secret``, unexpired, and for a known role in ``match``."""
    claims = verify(secret, token, now=now)  # TokenError (401): malformed, forged or expired
    try:
        grant = Grant(
            match=check_name(claims["match"], "match"),
            user=check_name(claims["user"], "user"),
            role=claims["role"],
            team=check_name(claims["team"], "team") if claims["role"] == "player" else "",
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if grant.role not in ROLES:
        raise TokenError("unknown role", 403)
    if grant.match != match:
        raise TokenError("token is for another match", 403)
    return grant


# --8<-- [end:issue]
