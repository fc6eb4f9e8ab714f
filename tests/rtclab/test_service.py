"""rtclab.service: every refusal is a 4xx JSON body, bodies and rates are limited, secrets come from the
environment (a fresh backend key is printed, a bad secret is one line)."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer

from rtclab.service import (
    Refused,
    RequestLimits,
    Throttle,
    json_refusals,
    read_json,
    server_secrets,
)

LIMITS = RequestLimits(max_body_bytes=64, burst=20, per_second=0.001)
FLOOD = RequestLimits(max_body_bytes=64, burst=2, per_second=0.001)  # a burst of 2, then nothing


class RoomError(ValueError):
    """A scenario's own error type: it carries a status, and json_refusals answers it like Refused."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def app(refused: list[int], limits: RequestLimits) -> web.Application:
    throttle = Throttle(limits)

    @web.middleware
    async def authenticate(request: web.Request, handler):
        if request.headers.get("Authorization") != "Bearer ok":
            throttle.stranger(request)
            raise Refused("token required", 401)
        throttle.user("user:ana")
        return await handler(request)

    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await read_json(request))

    async def room(request: web.Request) -> web.Response:
        raise RoomError("no such room", 404)

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    application = web.Application(
        client_max_size=limits.max_body_bytes,
        middlewares=[json_refusals(limits, on_refusal=lambda: refused.append(1)), authenticate],
    )
    application.router.add_post("/echo", echo)
    application.router.add_get("/room", room)
    application.router.add_get("/broken", broken)
    return application


async def exchange(
    requests: list[tuple[str, str, dict, object]], limits: RequestLimits = LIMITS
) -> tuple[list[tuple[int, str, dict]], int]:
    refused: list[int] = []
    server = TestServer(app(refused, limits), host="127.0.0.1")
    await server.start_server()
    results = []
    try:
        async with ClientSession() as session:
            for method, path, headers, body in requests:
                async with session.request(
                    method, server.make_url(path), headers=headers, data=body
                ) as reply:
                    results.append((reply.status, await reply.text(), dict(reply.headers)))
    finally:
        await server.close()
    return results, len(refused)


OK = {"Authorization": "Bearer ok"}
JSON = {**OK, "Content-Type": "application/json"}


def test_a_good_request_passes_and_each_refusal_is_json_with_its_status():
    (good, wrong_type, bad_json, not_object, too_big, no_token, unknown, room), refused = asyncio.run(
        exchange(
            [
                ("POST", "/echo", JSON, b'{"a": 1}'),
                ("POST", "/echo", {**OK, "Content-Type": "text/plain"}, b"{}"),
                ("POST", "/echo", JSON, b"{nope"),
                ("POST", "/echo", JSON, b"[1]"),
                ("POST", "/echo", JSON, b"{" + b" " * 100 + b"}"),
                ("GET", "/room", {}, None),
                ("GET", "/nothing-here", OK, None),
                ("GET", "/room", OK, None),
            ]
        )
    )
    assert good[:2] == (200, '{"a": 1}')
    answers = [wrong_type, bad_json, not_object, too_big, no_token, unknown, room]
    assert [(status, json.loads(text)["error"]) for status, text, _ in answers] == [
        (415, "send application/json"),
        (400, "the body is not valid JSON"),
        (400, "the body must be a JSON object"),
        (413, "body larger than 64 bytes"),
        (401, "token required"),
        (404, "Not Found"),
        (404, "no such room"),
    ]
    assert refused == len(answers)


def test_a_flood_gets_429_with_retry_after_per_user_and_per_stranger():
    flood = [("GET", "/room", OK, None)] * 3 + [("GET", "/room", {}, None)] * 3
    results, _ = asyncio.run(exchange(flood, FLOOD))
    statuses = [status for status, _, _ in results]
    assert statuses == [404, 404, 429, 401, 401, 429]  # a burst of 2 each, then empty buckets
    assert results[2][2]["Retry-After"] == "1" and results[5][2]["Retry-After"] == "1"


def test_a_bug_is_not_turned_into_a_refusal():
    (broken,), refused = asyncio.run(exchange([("GET", "/broken", OK, None)]))
    assert broken[0] == 500 and refused == 0


def test_secrets_come_from_the_environment_or_are_made_fresh(monkeypatch, capsys):
    monkeypatch.setenv("DEMO_SECRET", "ab" * 32)
    monkeypatch.setenv("DEMO_BACKEND_KEY", "k" * 24)
    assert server_secrets("DEMO_SECRET", "DEMO_BACKEND_KEY") == (bytes.fromhex("ab" * 32), "k" * 24)
    assert capsys.readouterr().out == ""

    monkeypatch.delenv("DEMO_SECRET")
    monkeypatch.delenv("DEMO_BACKEND_KEY")
    secret, key = server_secrets("DEMO_SECRET", "DEMO_BACKEND_KEY")
    assert len(secret) == 32 and len(key) >= 24
    assert capsys.readouterr().out == f"backend key (send as Authorization: Bearer ...): {key}\n"


def test_a_secret_that_is_not_hex_is_one_line(monkeypatch):
    monkeypatch.setenv("DEMO_SECRET", "not hex")
    with pytest.raises(SystemExit, match=r"^error: DEMO_SECRET must be hex"):
        server_secrets("DEMO_SECRET", "DEMO_BACKEND_KEY")


def test_a_server_binds_loopback_only_and_a_port_in_range(capsys):
    import argparse

    from rtclab.service import add_bind_options

    parser = argparse.ArgumentParser(prog="server.py")
    add_bind_options(parser)
    assert vars(parser.parse_args([])) == {"host": "127.0.0.1", "port": 0}
    for argv, message in (
        (["--port", "70000"], "argument --port: must be from 0 to 65535, got 70000"),
        (["--host", "0.0.0.0"], "argument --host:"),
    ):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_the_client_gets_status_and_a_json_object_whatever_the_server_answers():
    from rtclab.service import JsonClient

    async def run() -> list[tuple[int, dict]]:
        async def an_object(request: web.Request) -> web.Response:
            return web.json_response({"token": request.headers["Authorization"]})

        async def a_list(request: web.Request) -> web.Response:
            return web.json_response([1, 2])

        async def text(request: web.Request) -> web.Response:
            return web.Response(text="oops " * 100, status=502)

        application = web.Application()
        application.router.add_get("/object", an_object)
        application.router.add_get("/list", a_list)
        application.router.add_get("/text", text)
        server = TestServer(application, host="127.0.0.1")
        await server.start_server()
        try:
            async with ClientSession() as http:
                api = JsonClient(http, str(server.make_url("")), backend_key="k")
                return [
                    await api.backend("GET", "/object"),
                    await api.call("GET", "/list"),
                    await api.call("GET", "/text"),
                ]
        finally:
            await server.close()

    assert asyncio.run(run()) == [
        (200, {"token": "Bearer k"}),
        (200, {"body": [1, 2]}),
        (502, {"error": ("oops " * 40)}),
    ]
