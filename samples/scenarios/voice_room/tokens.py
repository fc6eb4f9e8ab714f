"""Join tokens for the voice room: a token names one room, one user, one role and an expiry.

The signing is rtclab.tokens (HMAC-SHA256 under a secret that only the room service and the app's backend
hold, checked without a database lookup); this file adds what a voice room puts in a token and checks in
it. Revocation (a kicked user) needs state, so the server keeps a ban list beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclab.tokens import MAX_TOKEN_BYTES, MAX_TTL_S, TokenError, check_name, new_secret, sign, verify

__all__ = [
    "MAX_TOKEN_BYTES",
    "MAX_TTL_S",
    "ROLES",
    "JoinToken",
    "TokenError",
    "check_name",
    "issue_token",
    "new_secret",
    "verify_token",
]

ROLES = ("host", "speaker", "audience")
"""Who may do what is decided in rooms.py; the token only carries the role."""


@dataclass(frozen=True)
class JoinToken:
    """What a verified token grants.

    Attributes:
        room: The only room it opens.
        user: Who holds it.
        role: ``host``, ``speaker`` or ``audience``.
        expires_at: Unix time after which it is refused.
        token_id: A random id (for logs and audits; the ban list is per user).
    """

    room: str
    user: str
    role: str
    expires_at: int
    token_id: str


# --8<-- [start:issue]
def issue_token(
    secret: bytes, room: str, user: str, role: str, ttl_s: int, *, now: float | None = None
) -> str:
    """Sign a token that lets ``user`` join ``room`` as ``role`` for ``ttl_s`` seconds."""
    check_name(room, "room")
    check_name(user, "user")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    return sign(secret, {"room": room, "user": user, "role": role}, ttl_s, now=now)


def verify_token(secret: bytes, token: str, room: str, *, now: float | None = None) -> JoinToken:
    """The grant in ``token`` if it is signed with ``secret``, unexpired, and for a known role in ``room``."""
    claims = verify(secret, token, now=now)  # TokenError (401): malformed, forged or expired
    try:
        grant = JoinToken(
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


# --8<-- [end:issue]
