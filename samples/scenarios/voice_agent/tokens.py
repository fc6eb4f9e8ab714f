"""Signed, expiring session tokens for the voice agent: a token names one agent session, one user, one role
and an expiry, signed with HMAC-SHA256 under a secret only the agent service and the app's backend hold.

A token is ``<payload>.<signature>`` (base64url, no padding; the payload is compact JSON). The server checks
it without a database. Roles: ``caller`` may talk to the agent (post an offer); ``observer`` may only read
the session's turn timings (a dashboard, a support engineer).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from dataclasses import dataclass

__all__ = ["MAX_TTL_S", "ROLES", "Grant", "TokenError", "check_name", "issue_token", "verify_token"]

ROLES = ("caller", "observer")
MAX_TTL_S = 3600
MAX_TOKEN_BYTES = 1024
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class TokenError(ValueError):
    """A refused token; ``status`` is the HTTP status to answer with (401 or 403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What a verified token grants: one session, one user, one role, until ``expires_at`` (Unix time)."""

    session: str
    user: str
    role: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_name(value: object, what: str) -> str:
    """``value`` if it is 1-64 letters, digits, ``_`` or ``-``, else ValueError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_' or '-'")
    return value


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
    issued = int(time.time() if now is None else now)
    claims = {"sid": session, "sub": user, "role": role, "exp": issued + ttl_s, "jti": secrets.token_hex(8)}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())}"


def verify_token(secret: bytes, token: str, session: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is well formed, signed with ``secret``, unexpired and for ``session``."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 1:
        raise TokenError("malformed token")
    payload, signature = token.split(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):  # constant time, before parsing
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(payload))
        grant = Grant(
            session=check_name(claims["sid"], "session"),
            user=check_name(claims["sub"], "user"),
            role=claims["role"] if claims["role"] in ROLES else "",
            expires_at=int(claims["exp"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if not grant.role:
        raise TokenError("unknown role", 403)
    if (time.time() if now is None else now) >= grant.expires_at:
        raise TokenError("token expired")
    if grant.session != session:
        raise TokenError("token is for another session", 403)
    return grant


# --8<-- [end:tokens]
