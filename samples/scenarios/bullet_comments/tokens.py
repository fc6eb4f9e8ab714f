"""Viewer tokens for the bullet-comment gateways: a token names one room, one user, whether that user may post,
and an expiry.

The signing is rtclab.tokens (HMAC-SHA256 under a secret that only the app's backend and the gateways hold):
every gateway checks a token without a database lookup, so a viewer can land on any gateway. This file adds
what a viewer token carries and checks in it, and the WebSocket close code each refusal answers with. The
secret comes from the environment (one per run here, from a secret store in production), never from the
repository.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclab.tokens import MAX_TOKEN_BYTES, MAX_TTL_S, TokenError, check_name, new_secret, sign, verify

__all__ = [
    "CLOSE_UNAUTHORIZED",
    "MAX_TOKEN_BYTES",
    "MAX_TTL_S",
    "TokenError",
    "ViewerGrant",
    "check_name",
    "close_code",
    "issue_token",
    "new_secret",
    "verify_token",
]

CLOSE_UNAUTHORIZED = 4401
"""WebSocket close code for a missing, malformed, forged or expired token (HTTP 401 + 4000)."""


def close_code(refusal: TokenError) -> int:
    """The WebSocket close code for a refused token, its HTTP status plus 4000: 4401 (missing, malformed,
    forged or expired) or 4403 (a valid token for another room)."""
    return 4000 + refusal.status


@dataclass(frozen=True)
class ViewerGrant:
    """What a verified token grants.

    Attributes:
        room: The only room it opens.
        user: Who holds it.
        can_post: False for a read-only viewer (muted by a moderator, or not logged in).
        expires_at: Unix time after which it is refused.
        token_id: A random id, for logs and audits.
    """

    room: str
    user: str
    can_post: bool
    expires_at: int
    token_id: str


# --8<-- [start:tokens]
def issue_token(
    secret: bytes, room: str, user: str, ttl_s: int, *, can_post: bool = True, now: float | None = None
) -> str:
    """Sign a token that lets ``user`` watch (and, with ``can_post``, comment on) ``room`` for ``ttl_s`` s."""
    check_name(room, "room")
    check_name(user, "user")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be an integer between 1 and {MAX_TTL_S}")
    return sign(secret, {"room": room, "user": user, "post": bool(can_post)}, ttl_s, now=now)


def verify_token(secret: bytes, token: object, room: str, *, now: float | None = None) -> ViewerGrant:
    """The grant in ``token`` if it is signed with ``secret``, unexpired and for ``room``."""
    if not isinstance(token, str) or not token:
        raise TokenError('missing token: send {"type": "hello", "token": "..."} first')
    claims = verify(secret, token, now=now)  # TokenError (401, closes 4401): malformed, forged or expired
    try:
        grant = ViewerGrant(
            room=check_name(claims["room"], "room"),
            user=check_name(claims["user"], "user"),
            can_post=claims["post"] is True,
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if grant.room != room:
        raise TokenError("token is for another room", 403)  # closes 4403
    return grant


# --8<-- [end:tokens]
