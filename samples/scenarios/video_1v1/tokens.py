"""Tokens for the 1v1 matchmaking service: a token names one user and an expiry.

The signing is rtclab.tokens (HMAC-SHA256 under a secret that only the matchmaker and the app's backend hold,
checked without a database lookup); this file adds what the matchmaker puts in a token and checks in it.
Roles in a call (caller, callee) are not in the token: the matchmaker assigns them when it pairs two users,
and enforces them on every signaling message.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclab.tokens import MAX_TOKEN_BYTES, MAX_TTL_S, TokenError, check_name, sign, verify

__all__ = ["MAX_TOKEN_BYTES", "MAX_TTL_S", "Grant", "TokenError", "check_name", "issue_token", "verify_token"]


@dataclass(frozen=True)
class Grant:
    """What a verified token grants: ``user`` may use the service until ``expires_at`` (Unix time)."""

    user: str
    expires_at: int
    token_id: str


# --8<-- [start:tokens]
def issue_token(secret: bytes, user: str, ttl_s: int, *, now: float | None = None) -> str:
    """Sign a token that lets ``user`` look for a partner and call for ``ttl_s`` seconds."""
    check_name(user, "user")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be an integer between 1 and {MAX_TTL_S}")
    return sign(secret, {"user": user}, ttl_s, now=now)


def verify_token(secret: bytes, token: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is signed with ``secret``, unexpired and names a user."""
    claims = verify(secret, token, now=now)  # TokenError (401): malformed, forged or expired
    try:
        return Grant(check_name(claims["user"], "user"), int(claims["exp"]), str(claims["jti"]))
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None


# --8<-- [end:tokens]
