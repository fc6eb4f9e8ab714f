"""Collect rtcstats traces: browsers running @jitsi/rtcstats send their WebRTC calls and getStats over a WebSocket,
and this stores one dump file per session in the line format rtcstats-server writes (one JSON array per line).

Each session's file starts with one JSON object (the connection's details, its ``userAgent`` and the client's
identity data), then one line per entry, ``[method, pcId, payload, timestamp, seq]``. The collector takes a token, binds 127.0.0.1 only, limits message
size, bytes per session and sessions at once, and never overwrites a file. Run it with a token of your own:

    export RTCSTATS_TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe())')
    .venv/bin/python samples/support/rtcstats_collector.py --out dumps/ --port 8090

and point the page's rtcstats at ``ws://127.0.0.1:8090/<token>`` (a browser's WebSocket cannot send headers, so
the token is the path's first segment; other clients may send ``Authorization: Bearer <token>`` instead).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import os
import re
import time
import uuid
from pathlib import Path

from aiohttp import WSMsgType, web

from rtclab.loopback import serve_until_stopped
from rtclab.service import add_bind_options

TOKEN_ENV = "RTCSTATS_TOKEN"
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what rtcstats-server accepts, and safe as a file name


def open_new_file(out: Path, session_id: str):
    """``<out>/<id>.rtcstats``, or ``<id>_1.rtcstats``... if taken: a reconnect never overwrites a dump."""
    for n in range(100):
        path = out / (f"{session_id}.rtcstats" if n == 0 else f"{session_id}_{n}.rtcstats")
        try:
            return path.open("x", encoding="utf-8")
        except FileExistsError:
            continue
    raise FileExistsError(f"too many dumps named {session_id}")


def entry_line(message: dict) -> str | None:
    """The dump line of one client message, or None for keepalives and other types that store nothing."""
    if message.get("type") == "identity":  # the client sends identity data as an array, not a string
        entry = message.get("data")
    elif message.get("type") == "stats-entry":
        entry = json.loads(message.get("data") or "null")  # [method, pcId, payload, timestamp, seq]
    else:
        return None
    if not isinstance(entry, list) or len(entry) < 4 or not isinstance(entry[0], str):
        raise ValueError("an entry must be [method, pcId, payload, timestamp(, seq)]")
    if isinstance(entry[2], str) and entry[2][:1] in ("{", "["):  # some clients send the payload as JSON text
        with contextlib.suppress(ValueError):  # else it is a plain string that happens to start so
            entry[2] = json.loads(entry[2])
    return json.dumps(entry, separators=(",", ":"))


def make_app(token: str, out: Path, max_message: int, max_session: int, max_sessions: int) -> web.Application:
    """The collector: every GET path is a WebSocket endpoint whose first segment (or header) is the token."""
    open_sessions = [0]

    async def session(request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        if "Authorization" in request.headers:
            presented = request.headers["Authorization"].removeprefix("Bearer ")
        else:
            presented, _, path = path.partition("/")  # the token is never stored with the path
        if not hmac.compare_digest(presented.encode(), token.encode()):  # constant time
            raise web.HTTPForbidden(text="wrong or missing token\n")
        if open_sessions[0] >= max_sessions:
            raise web.HTTPServiceUnavailable(text="too many sessions at once\n")
        asked = request.query.get("statsSessionId", "")
        session_id = asked if SAFE_ID.fullmatch(asked) else uuid.uuid4().hex
        # The client names its protocol ("3.1_STANDARD"); a browser drops the socket unless the server echoes it.
        offered = [
            p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
        ]
        ws = web.WebSocketResponse(protocols=offered[:1], max_msg_size=max_message, heartbeat=60)
        await ws.prepare(request)
        origin = request.headers.get("Origin", "")
        info = {  # rtcstats-server's first line, as a JSON object; the identity entry's data joins it
            "statsSessionId": session_id,
            "path": "/" + path,
            "origin": origin,
            "url": origin + "/" + path,
            "userAgent": request.headers.get("User-Agent", ""),
            "clientProtocol": ws.ws_protocol or "",
            "startTime": int(time.time() * 1000),
        }
        entries, size, why = 0, 0, "closed by client"
        open_sessions[0] += 1
        try:
            with open_new_file(out, session_id) as dump:
                # @jitsi/rtcstats buffers everything until the server says which sequence number it has seen.
                await ws.send_json({"type": "sn", "body": {"value": 0, "state": "initial"}})
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:  # aiohttp closes with 1009 a message over max_msg_size
                        why = f"refused: {ws.exception() or msg.type.name}"
                        break
                    size += len(msg.data)
                    if size > max_session:
                        why = f"cut: more than {max_session} bytes in the session"
                        await ws.close(code=1009, message=b"session too large")
                        break
                    try:
                        message = json.loads(msg.data)
                        line = entry_line(message)
                    except (ValueError, AttributeError) as error:
                        why = f"refused a malformed message ({error})"
                        await ws.close(code=1003, message=b"malformed message")
                        break
                    if line is not None:
                        if info is not None:  # the metadata line, once, before the first entry
                            if message.get("type") == "identity":
                                info["identity"] = json.loads(line)[2]
                            dump.write(json.dumps(info, separators=(",", ":")) + "\n")
                            info = None
                        dump.write(line + "\n")
                        entries += 1
                    if message.get("type") == "close":
                        break
                if info is not None:  # no entry came: the file still says who connected
                    dump.write(json.dumps(info, separators=(",", ":")) + "\n")
        finally:
            open_sessions[0] -= 1
        print(f"session {session_id}: {entries} entries, {size} bytes, {why} -> {dump.name}", flush=True)
        return ws

    app = web.Application()
    app.router.add_get("/{path:.*}", session)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Store rtcstats traces sent over WebSocket, one file per session."
    )
    add_bind_options(parser)
    parser.add_argument("--out", type=Path, default=Path("rtcstats-dumps"), help="folder for the dump files")
    parser.add_argument("--token-file", type=Path, help=f"file holding the token (else ${TOKEN_ENV})")
    parser.add_argument("--max-message-bytes", type=int, default=1 << 20, help="largest message (1 MiB)")
    parser.add_argument(
        "--max-session-bytes", type=int, default=50 << 20, help="most bytes per session (50 MiB)"
    )
    parser.add_argument("--max-sessions", type=int, default=100, help="most sessions open at once")
    args = parser.parse_args(argv)
    try:
        token = args.token_file.read_text().strip() if args.token_file else os.environ.get(TOKEN_ENV, "")
    except OSError as error:
        parser.error(f"cannot read the token file: {error.strerror}")
    if len(token) < 16:
        parser.error(f"give a token of at least 16 characters in ${TOKEN_ENV} or --token-file")
    args.out.mkdir(parents=True, exist_ok=True)
    limits = (args.max_message_bytes, args.max_session_bytes, args.max_sessions)
    asyncio.run(
        serve_until_stopped(make_app(token, args.out, *limits), args.host, args.port, shutdown_timeout=5)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
