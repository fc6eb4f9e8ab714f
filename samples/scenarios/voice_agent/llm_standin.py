"""A STAND-IN for a language model: an aiohttp server on 127.0.0.1 that answers OpenAI-style
``POST /v1/chat/completions`` with ``"stream": true`` in the same server-sent-events format
(``data: {"choices": [{"delta": {"content": ...}}]}`` lines, then ``data: [DONE]``).

It does not understand anything: it waits a configurable first-token delay (what a real model's
time to first token costs), then streams a canned reply word by word at a configurable rate. It exists so
the agent's streaming path, its timings and its barge-in can be measured offline; point the agent at a real
OpenAI-compatible endpoint with ``--llm-url`` to measure a real model.

    .venv/bin/python samples/scenarios/voice_agent/llm_standin.py --port 8766 --first-token-ms 300
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from aiohttp import web

__all__ = ["LABEL", "StandIn", "make_app"]

LABEL = "STAND-IN responder (canned text, not a language model)"
REPLIES = {
    "weather": (
        "Here is the forecast for Lagos. It will be warm and humid, with a high of thirty one degrees. "
        "Clouds build up in the afternoon, and there is a good chance of a short thunderstorm after four. "
        "Tomorrow looks drier, so plan your walk for the morning."
    ),
    "stop": "Okay, I stopped. What would you like to know?",
}


class StandIn:
    """Timing knobs of the stand-in: delay before the first token, then one word every ``word_ms``."""

    def __init__(self, first_token_ms: float = 300.0, word_ms: float = 25.0) -> None:
        self.first_token_ms, self.word_ms = first_token_ms, word_ms
        self.requests = 0
        self.abandoned = 0  # streams the agent closed before the end

    def reply_for(self, messages: list) -> str:
        """The agent sends no transcript (no speech recognition here): answer by the conversation's state."""
        said = next(
            (str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "assistant"), ""
        )
        return REPLIES["stop"] if said.endswith("[interrupted by the user]") else REPLIES["weather"]

    # --8<-- [start:sse]
    async def completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = json.loads(await request.read())
            messages = body["messages"]
            assert isinstance(messages, list) and body.get("stream") is True
        except (ValueError, KeyError, TypeError, AssertionError):
            return web.json_response({"error": {"message": "expected a streaming chat request"}}, status=400)
        self.requests += 1
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        await asyncio.sleep(self.first_token_ms / 1000)  # what a model's time to first token costs
        try:
            for i, word in enumerate(self.reply_for(messages).split(" ")):
                chunk = {
                    "object": "chat.completion.chunk",
                    "model": "stand-in",
                    "choices": [{"index": 0, "delta": {"content": (" " if i else "") + word}}],
                }
                await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
                await asyncio.sleep(self.word_ms / 1000)
            await response.write(b"data: [DONE]\n\n")
        except ConnectionResetError:  # the agent hung up: a barge-in, or a preemptive reply it threw away
            self.abandoned += 1
        return response

    # --8<-- [end:sse]


def make_app(stand_in: StandIn) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app.router.add_post("/v1/chat/completions", stand_in.completions)
    return app


async def start(stand_in: StandIn, host: str = "127.0.0.1", port: int = 0) -> tuple[web.AppRunner, str]:
    """Serve the stand-in on ``host``; returns the runner and the base URL (``http://127.0.0.1:PORT/v1``)."""
    runner = web.AppRunner(make_app(stand_in), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner, f"http://{host}:{runner.addresses[0][1]}/v1"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Serve the stand-in chat-completions responder on 127.0.0.1."
    )
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--first-token-ms", type=float, default=300.0)
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535 or not 0 <= args.first_token_ms <= 10000:
        parser.error("--port 0-65535, --first-token-ms 0-10000")

    async def serve() -> None:
        runner, url = await start(StandIn(args.first_token_ms), port=args.port)
        print(f"{LABEL} on {url}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
