"""Tokens for a co-host live room: a token names one room, one user, one role (host, cohost or audience) and an
expiry.

The signing is rtclab.tokens (HMAC-SHA256 under a secret that only the media server and the app's backend hold,
checked without a database lookup); this file adds what a live room puts in a token and checks in it. Your
backend issues host and audience tokens; a co-host token is minted only by the media server, when an audience
member accepts the host's invitation, and lives a short time.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclab.tokens import MAX_TOKEN_BYTES, MAX_TTL_S, TokenError, check_name, new_secret, sign, verify

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

ROLES = ("host", "cohost", "audience")
"""What a role may do is decided in server.py; the token only carries it."""


@dataclass(frozen=True)
class Grant:
    """What a verified token grants: ``user`` may act as ``role`` in ``room`` until ``expires_at``."""

    room: str
    user: str
    role: str
    expires_at: int
    token_id: str


# --8<-- [start:tokens]
def issue_token(
    secret: bytes, room: str, user: str, role: str, ttl_s: int, *, now: float | None = None
) -> str:
    """Sign a token that lets ``user`` into ``room`` as ``role`` for ``ttl_s`` seconds."""
    check_name(room, "room")
    check_name(user, "user")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be an integer between 1 and {MAX_TTL_S}")
    return sign(secret, {"room": room, "user": user, "role": role}, ttl_s, now=now)


def verify_token(secret: bytes, token: str, room: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is signed with ``secret``, unexpired, and for a known role in ``room``."""
    claims = verify(secret, token, now=now)  # TokenError (401): malformed, forged or expired
    try:
        grant = Grant(
            room=check_name(claims["room"], "room"),
            user=check_name(claims["user"], "user"),
            role=claims["role"],
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if grant.role not in ROLES:
        raise TokenError("unknown role", 403)
    if grant.room != room:
        raise TokenError("token is for another room", 403)
    return grant


# --8<-- [end:tokens]
