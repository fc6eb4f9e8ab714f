"""Signed, expiring tokens for the scenario servers: who may join what, checked without a database.

Every real-time service hands clients a short-lived token from the app's backend (Agora's token, LiveKit's
access token, Twilio's access token): the backend, which knows the user, signs what they may do; the media
or signaling server, which must not trust the client, checks the signature and the expiry and then enforces
what the token says. This is the smallest honest version of that: a JSON claims object and an HMAC-SHA256
signature, both base64url, joined by a dot (the shape of a JWT, without its algorithm negotiation, which is
a classic source of bugs).

    secret = new_secret()                                          # one per deployment, from a secret store
    token = sign(secret, {"room": "r1", "user": "ana", "role": "host"}, ttl_s=600)
    claims = verify(secret, token)                                  # TokenError if forged, expired, malformed
    room = check_name(claims.get("room"), "room")                  # then check the claims you rely on

Anyone can read a token, nobody without the secret can make or change one. Revoking one before it expires
(a kicked user) needs state: keep a ban list beside it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from typing import Any

__all__ = ["MAX_TOKEN_BYTES", "MAX_TTL_S", "TokenError", "check_name", "new_secret", "sign", "verify"]

MAX_TTL_S = 24 * 3600
"""Longest lifetime a token may be issued with."""
MAX_TOKEN_BYTES = 1024
"""A longer token is refused before any parsing or hashing."""
_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class TokenError(ValueError):
    """A token was refused; ``status`` is the HTTP status to answer with (401: who are you; 403: not this)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


def new_secret() -> bytes:
    """A fresh 32-byte signing secret (one per run in the samples; in production, from a secret store)."""
    return secrets.token_bytes(32)


def check_name(value: object, what: str) -> str:
    """`value` if it is a name (1-64 letters, digits, ``_`` or ``-``), else ValueError naming `what`.

    Names end up in logs, URLs and Redis channel names: allowing only these characters keeps them safe there.
    """
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValueError(f"{what} must be 1-64 letters, digits, '_' or '-'")
    return value


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(secret: bytes, payload: str) -> str:
    return _b64(hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest())


# --8<-- [start:sign]
def sign(secret: bytes, claims: dict[str, Any], ttl_s: int, *, now: float | None = None) -> str:
    """A token carrying `claims` plus ``exp`` (expiry, Unix time) and ``jti`` (a random id for logs), valid
    for `ttl_s` seconds.

    Raises:
        ValueError: `ttl_s` is not between 1 and MAX_TTL_S, `claims` sets ``exp`` or ``jti`` itself, or the
            token would be longer than MAX_TOKEN_BYTES.
    """
    if not 1 <= ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}")
    if {"exp", "jti"} & claims.keys():
        raise ValueError("claims must not set 'exp' or 'jti': sign() adds them")
    issued = int(time.time() if now is None else now)
    body = {**claims, "exp": issued + ttl_s, "jti": secrets.token_hex(8)}
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    token = f"{payload}.{_signature(secret, payload)}"
    if len(token) > MAX_TOKEN_BYTES:
        raise ValueError(f"the token would be {len(token)} bytes; the limit is {MAX_TOKEN_BYTES}")
    return token


def verify(secret: bytes, token: object, *, now: float | None = None) -> dict[str, Any]:
    """The claims of `token` if it is well formed, signed with `secret` and unexpired.

    The signature is compared in constant time before the payload is parsed, so a forged token never
    reaches the JSON parser. What the claims allow (this room, this role) is the caller's to check.

    Raises:
        TokenError: malformed, forged or expired (status 401).
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES or token.count(".") != 1:
        raise TokenError("malformed token")
    payload, signature = token.split(".")
    try:
        expected = _signature(secret, payload)
    except UnicodeEncodeError:
        raise TokenError("malformed token") from None
    if not hmac.compare_digest(signature.encode("utf-8", "replace"), expected.encode("ascii")):
        raise TokenError("bad token signature")
    try:
        claims = json.loads(_unb64(payload))
        expires_at = int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        raise TokenError("malformed token") from None
    if not isinstance(claims, dict):
        raise TokenError("malformed token")
    if (time.time() if now is None else now) >= expires_at:
        raise TokenError("token expired")
    return claims


# --8<-- [end:sign]
