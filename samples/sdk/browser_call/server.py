"""The signaling server of the browser call: it serves the call page and relays the browser's offer to the bot.

An aiohttp app for 127.0.0.1 with two routes, `GET /` (the page) and `POST /offer` (a JSON offer in, a JSON
answer out). Signaling decides who may talk to the bot, so every request must present the run's random
token, a posted offer may be at most `MAX_OFFER_BYTES`, and malformed input gets a 4xx status with a JSON
`{"error": ...}` body a person can read, never a traceback. `browser_call.py` in this folder runs it:

    .venv/bin/python samples/sdk/browser_call/browser_call.py
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

__all__ = ["MAX_OFFER_BYTES", "PAGE", "make_app"]

PAGE = Path(__file__).with_name("page.html")
"""The call page: getUserMedia, an RTCPeerConnection with no ICE servers, the offer, getStats."""
MAX_OFFER_BYTES = 64 * 1024
"""Largest request body accepted; Chromium's audio+video offer is well under it."""

Answerer = Callable[[str], Awaitable[str]]
"""Takes the browser's offer SDP, returns the bot's answer SDP; raises ValueError for an offer it refuses."""


def _refuse(status: type[web.HTTPException], message: str) -> web.HTTPException:
    """An HTTP error whose body is ``{"error": message}``."""
    return status(text=json.dumps({"error": message}), content_type="application/json")


def _too_large(size: int) -> web.HTTPException:
    message = f"the offer is larger than {MAX_OFFER_BYTES} bytes"
    return web.HTTPRequestEntityTooLarge(
        max_size=MAX_OFFER_BYTES,
        actual_size=size,
        text=json.dumps({"error": message}),
        content_type="application/json",
    )


# --8<-- [start:token]
def _presented_token(request: web.Request) -> str | None:
    """The token from ``Authorization: Bearer <token>``, or from ``?token=`` (a page load cannot set headers)."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header.removeprefix("Bearer ")
    return request.query.get("token")


def _require_token(token: str) -> Callable:
    @web.middleware
    async def check(request: web.Request, handler: Callable) -> web.StreamResponse:
        presented = _presented_token(request)
        if not presented:
            raise _refuse(web.HTTPUnauthorized, "missing token: send Authorization: Bearer <token>")
        if not hmac.compare_digest(presented.encode(), token.encode()):  # constant time
            raise _refuse(web.HTTPForbidden, "wrong token")
        return await handler(request)

    return check


# --8<-- [end:token]


# --8<-- [start:offer]
async def _read_offer(request: web.Request) -> str:
    """The offer SDP from a request body ``{"type": "offer", "sdp": "v=0..."}``, or a 4xx error."""
    if request.content_type != "application/json":
        raise _refuse(web.HTTPUnsupportedMediaType, "send the offer as application/json")
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        raise _too_large(request.content_length)
    try:
        body = json.loads(await request.read())  # read() enforces client_max_size for chunked bodies too
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(MAX_OFFER_BYTES + 1) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _refuse(web.HTTPBadRequest, "the body is not valid JSON") from None
    if not isinstance(body, dict) or body.get("type") != "offer":
        raise _refuse(web.HTTPBadRequest, 'expected {"type": "offer", "sdp": "..."}')
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise _refuse(web.HTTPBadRequest, "sdp must be a session description starting with v=0")
    return sdp


async def _relay_offer(request: web.Request) -> web.Response:
    sdp = await _read_offer(request)
    state = request.app[_STATE]
    if state["answered"]:  # one bot, one call: a second offer would renegotiate a call in progress
        raise _refuse(web.HTTPConflict, "this bot is already in a call")
    state["answered"] = True
    try:
        answer = await request.app[_ANSWERER](sdp)
    except ValueError as error:  # the bot refused the offer (for example, no 127.0.0.1 candidate)
        state["answered"] = False
        raise _refuse(web.HTTPUnprocessableEntity, str(error)) from None
    return web.json_response({"type": "answer", "sdp": answer})


# --8<-- [end:offer]


async def _serve_page(request: web.Request) -> web.Response:
    return web.Response(
        text=PAGE.read_text(encoding="utf-8"),
        content_type="text/html",
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},  # the URL holds the token
    )


_ANSWERER = web.AppKey("answerer", Callable)
_STATE = web.AppKey("state", dict)


def make_app(token: str, answerer: Answerer) -> web.Application:
    """The signaling app; serve it on 127.0.0.1 only.

    Args:
        token: The secret every request must present (make one per run with ``secrets.token_urlsafe``).
        answerer: What turns the browser's offer into the bot's answer.

    Returns:
        An ``aiohttp.web.Application`` with ``GET /`` and ``POST /offer``.

    Raises:
        ValueError: If the token is shorter than 16 characters.
    """
    if len(token) < 16:
        raise ValueError("use a token of at least 16 characters (secrets.token_urlsafe(16))")
    app = web.Application(client_max_size=MAX_OFFER_BYTES, middlewares=[_require_token(token)])
    app[_ANSWERER] = answerer
    app[_STATE] = {"answered": False}
    app.router.add_get("/", _serve_page)
    app.router.add_post("/offer", _relay_offer)
    return app
