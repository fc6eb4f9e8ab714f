"""Keep aiortc calls on loopback: ICE host candidates on 127.0.0.1 only, no STUN server, and an SDP check.
aioice itself skips loopback, so without this a "local" call goes out over the machine's real interfaces.
The lab's servers share the rest: an argparse type for ``--host`` and an aiohttp loop bound to loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import re
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import aioice.ice
from aiortc import RTCConfiguration

if TYPE_CHECKING:
    from aiohttp import web

__all__ = [
    "LOOPBACK_ADDRESS",
    "candidate_addresses",
    "check_loopback_sdp",
    "keep_loopback_candidates",
    "loopback_address",
    "loopback_only",
    "rtc_configuration",
    "serve_until_stopped",
]

LOOPBACK_ADDRESS = "127.0.0.1"
"""The only address a loopback call gathers by default."""

# a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ <type> ...
_CANDIDATE_LINE = re.compile(r"^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ ", re.MULTILINE)
_CANDIDATE_TRANSPORT_ADDRESS = re.compile(r"^a=candidate:\S+ \d+ (\S+) \d+ (\S+) \d+ typ ", re.IGNORECASE)


def rtc_configuration() -> RTCConfiguration:
    """Return a configuration that never contacts a STUN or TURN server.

    aiortc adds a public STUN server when ``iceServers`` is left out; with no internet (or a DNS that hangs)
    that costs seconds of gathering, and it sends packets off the machine.

    Returns:
        ``RTCConfiguration(iceServers=[])``.
    """
    return RTCConfiguration(iceServers=[])


def _check_loopback(addresses: Sequence[str]) -> tuple[str, ...]:
    if isinstance(addresses, str):
        addresses = (addresses,)
    if not addresses:
        raise ValueError("at least one loopback address is needed")
    for address in addresses:
        if not ipaddress.ip_address(address).is_loopback:
            raise ValueError(f"{address} is not a loopback address")
    return tuple(addresses)


# Addresses of every loopback_only() block now open, keyed by a token per block. Blocks of concurrent calls
# may close in any order, so the original function comes back only when the last one closes.
_active: dict[object, tuple[str, ...]] = {}
_original: Callable[[bool, bool], list[str]] | None = None
_lock = threading.Lock()


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    wanted = {4} if use_ipv4 else set()
    if use_ipv6:
        wanted.add(6)
    addresses = dict.fromkeys(a for block in list(_active.values()) for a in block)
    return [a for a in addresses if ipaddress.ip_address(a).version in wanted]


@contextmanager
def loopback_only(addresses: Sequence[str] = (LOOPBACK_ADDRESS,)) -> Iterator[None]:
    """Make every aiortc peer gather host candidates on loopback addresses only, while the block runs.

    aiortc gathers candidates in ``setLocalDescription()``, so that call (for both peers) must run inside the
    block. Candidates already gathered keep working after the block ends. The patch replaces
    ``aioice.ice.get_host_addresses``, the name aioice's ``Connection.gather_candidates`` looks up at call
    time, so it applies to every connection in the process. Blocks may be nested or overlap (two calls
    negotiating at once); while several are open, peers gather the addresses of all of them.

    Args:
        addresses: Loopback addresses to gather, ``("127.0.0.1",)`` by default. ``"::1"`` is used only
            where aioice asks for IPv6 candidates.

    Yields:
        Nothing; the patch is undone when the last open block exits, even on error.

    Raises:
        ValueError: If ``addresses`` is empty or holds a non-loopback address.

    Example:
        ```python
        with loopback_only():
            await caller.setLocalDescription(await caller.createOffer())
        ```
    """
    global _original
    token = object()
    with _lock:
        _active[token] = _check_loopback(addresses)
        if _original is None:
            _original = aioice.ice.get_host_addresses
            aioice.ice.get_host_addresses = _loopback_host_addresses
    try:
        yield
    finally:
        with _lock:
            del _active[token]
            if not _active and _original is not None:
                aioice.ice.get_host_addresses = _original
                _original = None


def candidate_addresses(sdp: str) -> list[str]:
    """List the connection address of every ``a=candidate`` line in an SDP, in order.

    Args:
        sdp: A session description, for example ``pc.localDescription.sdp``.

    Returns:
        The addresses as written in the SDP (IP literals, or mDNS host names).
    """
    return _CANDIDATE_LINE.findall(sdp)


# --8<-- [start:filter]
def keep_loopback_candidates(sdp: str) -> tuple[str, list[str], list[str]]:
    """Drop every ``a=candidate`` line that is not UDP on 127.0.0.1, before a peer applies a browser's offer.

    Chromium offers a host candidate on every interface (and TCP ones); aiortc would check them all. Keeping
    only UDP on 127.0.0.1 means the peer never sends a connectivity check anywhere else.

    Args:
        sdp: The remote peer's description (a browser's offer).

    Returns:
        The offer without the other candidates, the candidate lines kept, and the lines dropped.
    """
    kept: list[str] = []
    dropped: list[str] = []
    lines = []
    for line in sdp.splitlines():
        match = _CANDIDATE_TRANSPORT_ADDRESS.match(line)
        if match:
            transport, address = match.groups()
            if transport.lower() == "udp" and address == LOOPBACK_ADDRESS:
                kept.append(line)
            else:
                dropped.append(line)
                continue
        lines.append(line)
    return "\r\n".join(lines) + "\r\n", kept, dropped


# --8<-- [end:filter]


def check_loopback_sdp(sdp: str) -> None:
    """Refuse an SDP that offers any candidate outside loopback, or no candidate at all.

    Call it on each description before handing it to the other peer: nothing has been sent yet, so a
    mistake is caught before any packet leaves loopback.

    Args:
        sdp: A session description.

    Raises:
        ValueError: If the SDP has no candidate, or one that is not a loopback IP address.
    """
    addresses = candidate_addresses(sdp)
    if not addresses:
        raise ValueError("the SDP has no ICE candidate (was loopback_only() active in setLocalDescription?)")
    bad = []
    for address in addresses:
        try:
            loopback = ipaddress.ip_address(address).is_loopback
        except ValueError:  # an mDNS name such as abcd.local: cannot tell where it points
            loopback = False
        if not loopback:
            bad.append(address)
    if bad:
        raise ValueError(f"non-loopback ICE candidates in SDP: {', '.join(sorted(set(bad)))}")


def loopback_address(text: str) -> str:
    """Accept a loopback IP address and nothing else: an argparse ``type`` for a server's ``--host``.

    Only an IP literal counts: a name such as ``localhost`` is refused, since what it resolves to is up to
    the machine.

    Args:
        text: The option's value, for example ``"127.0.0.1"`` or ``"::1"``.

    Returns:
        ``text`` unchanged.

    Raises:
        argparse.ArgumentTypeError: If ``text`` is not a loopback IP address; argparse prints the message,
            which names the value, as a one-line usage error (exit status 2).

    Example:
        ```python
        parser.add_argument("--host", type=loopback_address, default="127.0.0.1")
        ```
    """
    try:
        if ipaddress.ip_address(text).is_loopback:
            return text
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a loopback address (this lab serves 127.0.0.1 only)")


async def serve_until_stopped(
    app: web.Application,
    host: str = LOOPBACK_ADDRESS,
    port: int = 0,
    *,
    shutdown_timeout: float = 60.0,
    backlog: int = 128,
) -> None:
    """Serve an aiohttp application on a loopback address until the process gets SIGTERM or SIGINT.

    Prints ``listening on http://HOST:PORT`` (the port actually bound, so ``port=0`` picks a free one) and
    flushes it: the lab's runners read that line to find the server, so its text must not change. The
    application's startup and shutdown hooks run as usual; on a signal the server shuts down cleanly and the
    coroutine returns. aiohttp is not a dependency of rtclab's core, so it is imported on call.

    Args:
        app: The ``aiohttp.web.Application`` to serve.
        host: A loopback IP address to bind.
        port: The TCP port, 0 for any free one.
        shutdown_timeout: Seconds to let open requests finish on shutdown (aiohttp's default is 60); a server
            with long-polling requests wants a short one.
        backlog: The listening socket's backlog (aiohttp's default is 128); raise it for a server that takes
            many connections at once.

    Raises:
        ValueError: If ``host`` is not a loopback IP address; checked before anything binds.

    Example:
        ```python
        asyncio.run(serve_until_stopped(make_app(server), args.host, args.port))
        ```
    """
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"{host!r} is not a loopback address (this lab serves 127.0.0.1 only)")
    from aiohttp import web  # imported on use: rtclab's core does not depend on aiohttp

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    try:
        for sig in stop_signals:  # before the listening line, so a parent may signal as soon as it reads it
            loop.add_signal_handler(sig, stop.set)
        await web.TCPSite(runner, host, port, backlog=backlog).start()
        print(f"listening on http://{host}:{runner.addresses[0][1]}", flush=True)
        await stop.wait()
    finally:
        for sig in stop_signals:
            loop.remove_signal_handler(sig)
        await runner.cleanup()
