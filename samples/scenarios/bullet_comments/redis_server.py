"""A private redis-server for one run: Debian's redis-server bound to 127.0.0.1 on a free port, no disk
persistence, a random password, started by the runner and stopped at the end.

The configuration goes in through the server's standard input (``redis-server -``), so the password never
shows on a command line that ``ps`` could list. Child processes here die with their parent (Linux
``PR_SET_PDEATHSIG``), so a run that is killed leaves no server behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import secrets
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass

import redis.asyncio as aioredis

__all__ = ["INSTALL_HINT", "RedisMissingError", "RedisServer", "die_with_parent", "free_port", "start_redis"]

INSTALL_HINT = "redis-server is not installed: sudo apt-get install redis-server"


class RedisMissingError(RuntimeError):
    """redis-server is not on PATH."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def die_with_parent() -> None:
    """In a child, before exec: ask Linux to send SIGTERM when the parent dies (no-op elsewhere)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass
class RedisServer:
    """A running private redis-server."""

    process: subprocess.Popen
    port: int
    password: str
    version: str = ""

    @property
    def url(self) -> str:
        """Where clients connect, password included: pass it through the environment, not argv."""
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def client(self) -> aioredis.Redis:
        return aioredis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    async def cpu_s(self) -> float:
        """CPU seconds the server has used so far (user + system)."""
        client = self.client()
        try:
            info = await client.info("cpu")
            return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
        finally:
            await client.aclose()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# --8<-- [start:start]
async def start_redis(timeout_s: float = 20) -> RedisServer:
    """Start redis-server on a free loopback port and wait until it answers PING.

    Raises:
        RedisMissingError: redis-server is not installed.
        RuntimeError: it did not answer in time.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise RedisMissingError(INSTALL_HINT)
    port, password = free_port(), secrets.token_urlsafe(24)
    config = "\n".join(
        [
            "bind 127.0.0.1",  # loopback only
            f"port {port}",
            "protected-mode yes",
            f"requirepass {password}",
            'save ""',  # bullet comments are ephemeral: no snapshots...
            "appendonly no",  # ...and no append-only file
            "",
        ]
    )
    process = subprocess.Popen(
        [binary, "-"],  # "-": read the configuration from standard input
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    assert process.stdin is not None
    process.stdin.write(config.encode())
    process.stdin.close()
    server = RedisServer(process, port, password)
    client = server.client()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                await client.ping()
                server.version = (await client.info("server"))["redis_version"]
                return server
            except (aioredis.ConnectionError, OSError):
                if process.poll() is not None or asyncio.get_running_loop().time() > deadline:
                    server.stop()
                    raise RuntimeError(f"redis-server did not start on 127.0.0.1:{port}") from None
                await asyncio.sleep(0.05)
    finally:
        await client.aclose()


# --8<-- [end:start]
