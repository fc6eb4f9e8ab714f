"""Session tokens for the voice agent: a token names one agent session, one user, one role and an expiry.

The signing is rtclab.tokens (HMAC-SHA256 under a secret only the agent service and the app's backend hold,
checked without a database); this file adds what the agent service puts in a token and checks in it. Roles:
``caller`` may talk to the agent (post an offer); ``observer`` may only read the session's turn timings (a
dashboard, a support engineer).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtclab.tokens import TokenError, check_name, sign, verify

__all__ = ["MAX_TTL_S", "ROLES", "Grant", "TokenError", "check_name", "issue_token", "verify_token"]

ROLES = ("caller", "observer")
MAX_TTL_S = 3600
"""An agent session is short: its tokens live an hour at most (rtclab.tokens allows a day)."""


@dataclass(frozen=True)
class Grant:
    """What a verified token grants: one session, one user, one role, until ``expires_at`` (Unix time)."""

    session: str
    user: str
    role: str
    expires_at: int


# --8<-- [start:tokens]
def issue_token(
    secret: bytes, session: str, user: str, role: str, ttl_s: int, *, now: float | None = None
) -> str:
    """Sign a token that lets ``user`` into agent ``session`` as ``role`` for ``ttl_s`` seconds."""
    check_name(session, "session")
    check_name(user, "user")
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}")
    return sign(secret, {"sid": session, "sub": user, "role": role}, ttl_s, now=now)


def verify_token(secret: bytes, token: str, session: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is signed with ``secret``, unexpired, and for a known role in ``session``."""
    claims = verify(secret, token, now=now)  # TokenError (401): malformed, forged or expired
    try:
        grant = Grant(
            session=check_name(claims["sid"], "session"),
            user=check_name(claims["sub"], "user"),
            role=claims["role"],
            expires_at=int(claims["exp"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if grant.role not in ROLES:
        raise TokenError("unknown role", 403)
    if grant.session != session:
        raise TokenError("token is for another session", 403)
    return grant


# --8<-- [end:tokens]
