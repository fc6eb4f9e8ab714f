"""Signed, expiring join tokens for in-game team voice: a token names one match, one user, a role and, for a
player, their team; it opens the channels that team may hear and nothing else.

A token is ``<payload>.<signature>``, both base64url without padding; the payload is compact JSON signed with
HMAC-SHA256 under a secret that only the voice server and the game backend hold. The server checks a token
without a database lookup; which channels it opens follows from the role and the team (see channels.py).
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

ROLES = ("player", "admin")
"""A player talks and listens in their team's channel and in all-chat; a match admin listens anywhere and mutes."""
MAX_TTL_S = 6 * 3600
"""Longest lifetime a token may be issued with (a long match plus its lobby)."""
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def check_name(value: object, what: str) -> str:
    """``value`` if it is a match, user, team or channel name (1-64 of ``A-Za-z0-9_-``), else ValueError."""
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_' or '-'")
    return value


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
    issued = int(time.time() if now is None else now)
    claims = {"match": match, "user": user, "role": role, "team": team, "exp": issued + ttl_s}
    claims["jti"] = secrets.token_hex(8)
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def verify_token(secret: bytes, token: str, match: str, *, now: float | None = None) -> Grant:
    """The grant in ``token`` if it is well formed, signed with ``secret``, unexpired and for ``match``."""
    if len(token) > MAX_TOKEN_BYTES or token.count(".") != 1:
        raise TokenError("malformed token")
    payload, signature = token.split(".")
    expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(signature.encode(), expected.encode()):  # constant time, before parsing
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(payload))
        grant = Grant(
            match=check_name(claims["match"], "match"),
            user=check_name(claims["user"], "user"),
            role=claims["role"] if claims["role"] in ROLES else "",
            team=str(claims["team"]),
            expires_at=int(claims["exp"]),
            token_id=str(claims["jti"]),
        )
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if not grant.role:
        raise TokenError("unknown role", 403)
    if (time.time() if now is None else now) >= grant.expires_at:
        raise TokenError("token expired")
    if grant.match != match:
        raise TokenError("token is for another match", 403)
    return grant


# --8<-- [end:issue]
