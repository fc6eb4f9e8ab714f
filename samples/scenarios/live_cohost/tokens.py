"""Signed, expiring tokens for a co-host live room: a token names one room, one user, one role (host, cohost or
audience) and an expiry, signed with HMAC-SHA256 under a secret that only the media server and the app's backend
hold.

A token is ``<payload>.<signature>``, both base64url without padding; the payload is compact JSON. Anyone can
read a token, nobody without the secret can make or change one, and the server checks it without a database
lookup. Your backend issues host and audience tokens; a co-host token is minted only by the media server, when
an audience member accepts the host's invitation, and lives a short time.
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
MAX_TTL_S = 24 * 3600
"""Longest lifetime a token may be issued with."""
MAX_TOKEN_BYTES = 1024
"""A longer token is refused before any parsing."""
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_secret() -> bytes:
    """A fresh 32-byte signing secret (one per run here; in production, from a secret store)."""
    return secrets.token_bytes(32)


class TokenError(ValueError):
    """A token was refused; ``status`` is the HTTP status to answer with (401 or 403)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What a verified token grants: ``user`` may act as ``role`` in ``room`` until ``expires_at``."""

    room: str
    user: str
    role: str
    expires_at: int
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_name(value: object, what: str) -> str:
    """``value`` if it is a room or user name (1-64 letters, digits, ``_`` or ``-``), else ValueError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_' or '-'")
    return value


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
    issued = int(time.time() if now is None else now)
    claims = {"room": room, "user": user, "role": role, "exp": issued + ttl_s, "jti": secrets.token_hex(8)}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify_token(secret: bytes, token: str, room: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is well formed, signed with ``secret``, unexpired and for ``room``."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 1:
        raise TokenError("malformed token")
    payload, signature = token.split(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):  # constant time, before parsing
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(payload))
        grant = Grant(
            room=check_name(claims["room"], "room"),
            user=check_name(claims["user"], "user"),
            role=claims["role"] if claims["role"] in ROLES else "",
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise TokenError("malformed token") from None
    if not grant.role:
        raise TokenError("unknown role", 403)
    if (time.time() if now is None else now) >= grant.expires_at:
        raise TokenError("token expired")
    if grant.room != room:
        raise TokenError("token is for another room", 403)
    return grant


# --8<-- [end:tokens]
