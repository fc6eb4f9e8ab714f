"""What every scenario server does the same way: refusals as 4xx JSON, body and rate limits, read_json, and the
two secrets it reads from its environment. A server keeps only its own rules: who may call which route.

    limits = RequestLimits()
    throttle = Throttle(limits)
    app = web.Application(
        client_max_size=limits.max_body_bytes,
        middlewares=[json_refusals(limits, on_refusal=count), authenticate],  # outer first
    )

`authenticate` (the server's own middleware) raises `Refused`, or any error with a ``status``, and
`json_refusals` answers ``{"error": "..."}`` with that status; nothing a client sends gets a 5xx or a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, web

from rtclab.arguments import whole_number
from rtclab.loopback import loopback_address
from rtclab.ratelimit import RateLimiter

__all__ = [
    "Handler",
    "JsonClient",
    "Refused",
    "RequestLimits",
    "Throttle",
    "add_bind_options",
    "error_response",
    "guarded_app",
    "json_refusals",
    "read_json",
    "server_secrets",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
"""What an aiohttp middleware calls next: a route's handler, or the next middleware."""


class Refused(Exception):
    """A request refused with an HTTP status (4xx) and a message the client may read."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RequestLimits:
    """The sizes and rates every server enforces (a scenario's Limits adds its own fields).

    Attributes:
        max_body_bytes: Largest request body (an SDP offer with a few media sections is a few KB).
        burst: Requests a user (or, before authentication, an address) may send at once.
        per_second: Sustained requests per second after the burst.
    """

    max_body_bytes: int = 16 * 1024
    burst: int = 20
    per_second: float = 10.0


def error_response(status: int, message: str, **headers: str) -> web.Response:
    """The one shape of every refusal: ``{"error": message}`` with `status`."""
    return web.json_response({"error": message}, status=status, headers=headers)


class Throttle:
    """One token bucket per authenticated user and one per address that has not authenticated yet.

    Strangers are limited by address so that floods of forged or missing tokens get 429s too."""

    def __init__(self, limits: RequestLimits) -> None:
        self.users = RateLimiter(limits.burst, limits.per_second)
        self.strangers = RateLimiter(limits.burst, limits.per_second)

    def user(self, key: str) -> None:
        """Count one request of the user `key`; Refused(429) when their bucket is empty."""
        if not self.users.allow(key):
            raise Refused("too many requests: slow down", 429)

    def stranger(self, request: web.Request) -> None:
        """Count one unauthenticated request from the request's address; Refused(429) when over."""
        if not self.strangers.allow(f"addr:{request.remote}"):
            raise Refused("too many requests: slow down", 429)


def json_refusals(limits: RequestLimits, on_refusal: Callable[[], None] = lambda: None):
    """The outermost middleware: an oversized body, a `Refused`, any error with an HTTP ``status`` attribute
    (a token or room error) and aiohttp's own 4xx (no such route) all become a JSON 4xx.
    `on_refusal` is called for each one (servers count them for /v1/metrics)."""
    too_large = f"body larger than {limits.max_body_bytes} bytes"

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if request.content_length is not None and request.content_length > limits.max_body_bytes:
                raise Refused(too_large, 413)
            return await handler(request)
        except web.HTTPRequestEntityTooLarge:  # a chunked body that grew past client_max_size
            on_refusal()
            return error_response(413, too_large)
        except web.HTTPException as refusal:
            if refusal.status < 400:
                raise
            on_refusal()
            return error_response(refusal.status, refusal.reason)
        except Exception as refusal:
            status = getattr(refusal, "status", None)
            if not (isinstance(status, int) and 400 <= status < 500):
                raise  # a bug, not a refusal: aiohttp answers 500 and logs it
            on_refusal()
            headers = {"Retry-After": "1"} if status == 429 else {}
            return error_response(status, str(refusal), **headers)

    return middleware


def guarded_app(
    limits: RequestLimits, guard: Callable, on_refusal: Callable[[], None] = lambda: None
) -> web.Application:
    """An aiohttp application whose requests pass `json_refusals`, then the server's own `guard` middleware."""
    return web.Application(
        client_max_size=limits.max_body_bytes,  # aiohttp's own stop for chunked bodies
        middlewares=[json_refusals(limits, on_refusal), guard],
    )


def add_bind_options(parser: argparse.ArgumentParser) -> None:
    """``--host`` (a loopback address only, 127.0.0.1 by default) and ``--port`` (0: any free port)."""
    parser.add_argument("--host", type=loopback_address, default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=whole_number(0, 65535), default=0, help="port (0: any free port)")


async def read_json(request: web.Request) -> dict:
    """The request body as a JSON object, or Refused (415 for another content type, 400 for bad JSON)."""
    if request.content_type != "application/json":
        raise Refused("send application/json", 415)
    raw = await request.read()  # aiohttp stops at client_max_size, chunked or not
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refused("the body is not valid JSON", 400) from None
    if not isinstance(body, dict):
        raise Refused("the body must be a JSON object", 400)
    return body


def server_secrets(secret_env: str, backend_key_env: str) -> tuple[bytes, str]:
    """The token-signing secret (hex in `secret_env`) and the backend key (`backend_key_env`).

    Either one missing is made fresh for this run, never written to disk; a fresh backend key is printed,
    since the app's backend must present it. In production both come from a secret store."""
    secret_hex = os.environ.get(secret_env)
    try:
        secret = bytes.fromhex(secret_hex) if secret_hex else secrets.token_bytes(32)
    except ValueError:
        raise SystemExit(f"error: {secret_env} must be hex (for example: openssl rand -hex 32)") from None
    backend_key = os.environ.get(backend_key_env)
    if not backend_key:
        backend_key = secrets.token_urlsafe(24)
        print(f"backend key (send as Authorization: Bearer ...): {backend_key}", flush=True)
    return secret, backend_key


class JsonClient:
    """HTTP calls to a scenario server, as its clients and the app's backend make them: every answer comes back as
    (status, JSON object); an answer that is not JSON as ``{"error": <its first 200 characters>}``.

    `raw` sends bytes as they are (labelled JSON), for the tests and the hostile-input runs."""

    def __init__(self, http: ClientSession, base_url: str, backend_key: str) -> None:
        self.http, self.base_url, self.backend_key = http, base_url, backend_key

    async def call(
        self, method: str, path: str, *, token: str | None = None, body: Any = None, raw: bytes | None = None
    ) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        if raw is not None:
            headers["Content-Type"] = "application/json"
        async with self.http.request(
            method, self.base_url + path, headers=headers, json=body if raw is None else None, data=raw
        ) as response:
            try:
                data = await response.json(content_type=None)
            except ValueError:
                data = {"error": (await response.text())[:200]}
            return response.status, data if isinstance(data, dict) else {"body": data}

    async def backend(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        """A call with the backend key: what the app's own server does, never a client."""
        return await self.call(method, path, token=self.backend_key, body=body)
