"""Signed, expiring tokens for the 1v1 matchmaking service: a token names one user and an expiry, signed with
HMAC-SHA256 under a secret that only the matchmaker and the app's backend hold.

A token is ``<payload>.<signature>``, both base64url without padding; the payload is compact JSON. Anyone can
read a token, nobody without the secret can make or change one, and the server checks it without a database
lookup. Roles in a call (caller, callee) are not in the token: the matchmaker assigns them when it pairs two
users, and enforces them on every signaling message.
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

__all__ = ["MAX_TOKEN_BYTES", "MAX_TTL_S", "Grant", "TokenError", "check_name", "issue_token", "verify_token"]

MAX_TTL_S = 24 * 3600
"""Longest lifetime a token may be issued with."""
MAX_TOKEN_BYTES = 1024
"""A longer token is refused before any parsing."""
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class TokenError(ValueError):
    """A token was refused; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What a verified token grants: ``user`` may use the service until ``expires_at`` (Unix time)."""

    user: str
    expires_at: int
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_name(value: object, what: str) -> str:
    """``value`` if it is a user name (1-64 letters, digits, ``_`` or ``-``), else ValueError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_' or '-'")
    return value


# --8<-- [start:tokens]
def issue_token(secret: bytes, user: str, ttl_s: int, *, now: float | None = None) -> str:
    """Sign a token that lets ``user`` look for a partner and call for ``ttl_s`` seconds."""
    check_name(user, "user")
    if isinstance(ttl_s, bool) or not isinstance(ttl_s, int) or not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be an integer between 1 and {MAX_TTL_S}")
    issued = int(time.time() if now is None else now)
    claims = {"user": user, "exp": issued + ttl_s, "jti": secrets.token_hex(8)}
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify_token(secret: bytes, token: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is well formed, signed with ``secret`` and unexpired."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 1:
        raise TokenError("malformed token")
    payload, signature = token.split(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):  # constant time, before parsing
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(payload))
        grant = Grant(check_name(claims["user"], "user"), int(claims["exp"]), str(claims["jti"]))
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if (time.time() if now is None else now) >= grant.expires_at:
        raise TokenError("token expired")
    return grant


# --8<-- [end:tokens]
