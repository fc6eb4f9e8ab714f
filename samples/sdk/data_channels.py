"""Game messages over WebRTC data channels and over a WebSocket, on the same lossy link: what arrives, and when.

Two aiortc peers on 127.0.0.1 open one data channel per delivery mode (reliable ordered, reliable unordered,
unordered with maxRetransmits=0, unordered with a maxPacketLifeTime), each on its own peer connection. A
WebSocket client talks to a small aiohttp server on 127.0.0.1 (which checks the Origin and a token) through a
TCP relay. Every mode gets the same timestamped game-state messages at the same moments, at a game-like rate,
and the sample prints, per mode, how many arrived, the one-way latency percentiles and the out-of-order count.

The data channels' datagrams go through `rtclab.impair` (delay, jitter, random loss) in both directions. TCP
cannot lose a byte, so the relay *models* TCP under loss: a segment that the link would lose arrives one
retransmission timeout later (the timeout doubles if the resend is lost too), and everything behind it waits.

Run it (10 s of sending with the defaults, plus setup and a short wait for late messages):

    .venv/bin/python samples/sdk/data_channels.py
    .venv/bin/python samples/sdk/data_channels.py --loss 0 --delay-ms 100
    .venv/bin/python samples/sdk/data_channels.py --loss 10 --lifetime-ms 150
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import math
import random
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.rtcsctptransport import USERDATA_MAX_LENGTH

from rtclab.arguments import number, whole_number
from rtclab.impair import ImpairedPeer, Impairment, Link, impair_connection
from rtclab.loopback import LOOPBACK_ADDRESS, check_loopback_sdp, loopback_only, rtc_configuration

SETUP_TIMEOUT_S = 15.0  # ICE + DTLS + SCTP + the channel's open handshake, with delay but no loss
DRAIN_MAX_S = 6.0  # how long to wait after the last send for reliable modes to deliver everything
MAX_RESENDS = 6  # the TCP model stops drawing losses for a chunk after this many resends
TCP_RTO_MIN_MS = 200.0  # Linux's lower bound on TCP's retransmission timeout (TCP_RTO_MIN, HZ/5)
LIMITS = {
    "seconds": (1.0, 60.0),
    "rate": (1.0, 100.0),
    "delay-ms": (0.0, 500.0),
    "jitter-ms": (0.0, 100.0),
    "loss": (0.0, 50.0),
    "lifetime-ms": (1.0, 65535.0),
}


# --8<-- [start:modes]
@dataclass(frozen=True)
class Mode:
    """One way to send: a row of the table, and the createDataChannel() options that make it."""

    name: str
    options: dict[str, Any]


def data_channel_modes(lifetime_ms: int) -> list[Mode]:
    """The four delivery modes, from 'everything, in order' to 'send once and forget'."""
    return [
        Mode("reliable, ordered (default)", {}),  # like TCP: a lost message holds back the ones after it
        Mode("reliable, unordered", {"ordered": False}),  # resent until it arrives, blocks nothing
        Mode("unordered, maxRetransmits=0", {"ordered": False, "maxRetransmits": 0}),  # sent once
        Mode(
            f"unordered, maxPacketLifeTime={lifetime_ms}",  # resent only while younger than the lifetime
            {"ordered": False, "maxPacketLifeTime": lifetime_ms},
        ),
    ]


# --8<-- [end:modes]


@dataclass
class Tally:
    """What one receiver saw: latency of every message that arrived, and how many came out of order."""

    latencies_ms: list[float] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    highest: int = -1
    out_of_order: int = 0

    def received(self, text: str) -> None:
        """Record one message (the JSON written by `game_message`)."""
        now = time.perf_counter()
        message = json.loads(text)
        seq = message["seq"]
        if seq in self.seen:  # a data channel never duplicates; count it as an error if it did
            raise RuntimeError(f"message {seq} delivered twice")
        self.seen.add(seq)
        self.latencies_ms.append((now - message["sent"]) * 1000)
        if seq < self.highest:
            self.out_of_order += 1
        self.highest = max(self.highest, seq)


def game_message(seq: int, rng: random.Random) -> str:
    """A small game-state update: sequence number, send time, a position and a velocity."""
    position = [round(rng.uniform(-500, 500), 2) for _ in range(3)]
    velocity = [round(rng.uniform(-10, 10), 3) for _ in range(3)]
    return json.dumps({"seq": seq, "sent": time.perf_counter(), "pos": position, "vel": velocity})


# --8<-- [start:negotiate]
@dataclass
class ChannelPair:
    """Two peers joined by one data channel; `directions` impair what each peer sends."""

    sender: RTCPeerConnection
    receiver: RTCPeerConnection
    channel: RTCDataChannel
    directions: list[ImpairedPeer]
    offer: str
    answer: str


async def open_channel(mode: Mode, setup: Impairment, tally: Tally) -> ChannelPair:
    """Connect two loopback peers and open one data channel in ``mode``; messages land in ``tally``."""
    sender = RTCPeerConnection(configuration=rtc_configuration())
    receiver = RTCPeerConnection(configuration=rtc_configuration())
    channel = sender.createDataChannel(mode.name, **mode.options)  # before the offer: it adds m=application
    sender_open, receiver_open = asyncio.Event(), asyncio.Event()
    channel.on("open", sender_open.set)

    @receiver.on("datachannel")
    def on_datachannel(remote: RTCDataChannel) -> None:
        remote.on("message", tally.received)
        receiver_open.set()

    with loopback_only():
        await sender.setLocalDescription(await sender.createOffer())
        up = impair_connection(sender, setup)  # no await before this: ICE has not sent anything yet
        check_loopback_sdp(sender.localDescription.sdp)
        await receiver.setRemoteDescription(sender.localDescription)
        await receiver.setLocalDescription(await receiver.createAnswer())
        down = impair_connection(receiver, setup)
        check_loopback_sdp(receiver.localDescription.sdp)
        await sender.setRemoteDescription(receiver.localDescription)
    await asyncio.wait_for(asyncio.gather(sender_open.wait(), receiver_open.wait()), SETUP_TIMEOUT_S)
    return ChannelPair(
        sender, receiver, channel, [up, down], sender.localDescription.sdp, receiver.localDescription.sdp
    )


def start_loss(directions: list[ImpairedPeer], impairment: Impairment, seed: int) -> list[Link]:
    """From now on, send each direction's datagrams through a lossy link (one seeded link per direction).

    The setup ran with delay only: a lost DTLS or SCTP handshake packet costs a 1-3 s timer, which would
    make the run's length a lottery and is not what this sample measures.
    """
    loop = asyncio.get_running_loop()
    links = []
    for index, direction in enumerate(directions):
        settings = Impairment(
            delay_ms=impairment.delay_ms,
            jitter_ms=impairment.jitter_ms,
            loss=impairment.loss,
            seed=seed * 10 + index,
        )
        link = Link(settings, start_s=loop.time())
        for transport in direction.transports:
            transport.link = link
        links.append(link)
    return links


# --8<-- [end:negotiate]


# --8<-- [start:websocket]
async def start_game_server(origin: str, token: str, tally: Tally) -> tuple[web.AppRunner, int]:
    """A WebSocket endpoint on 127.0.0.1 that talks only to clients with our Origin and token."""

    async def game_socket(request: web.Request) -> web.StreamResponse:
        # Browsers always send Origin and a page cannot forge it: checking it stops other web sites from
        # opening a socket with the player's cookies (RFC 6455, section 10.2). Any non-browser client can
        # write any Origin, so the token is what actually says who is talking.
        presented = request.headers.get("Authorization", "")
        if request.headers.get("Origin") != origin or not hmac.compare_digest(presented, f"Bearer {token}"):
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                tally.received(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/game", game_socket)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK_ADDRESS, 0)  # loopback only, any free port
    await site.start()
    return runner, runner.addresses[0][1]


# --8<-- [end:websocket]


# --8<-- [start:tcp-model]
class TcpLossModel:
    """One direction of a TCP path under loss, as a model: when is each chunk of bytes delivered?

    A chunk the link would lose is resent after the retransmission timeout (RTO), and again after twice
    that if the resend is lost too. TCP hands bytes to the application in order, so no chunk is delivered
    before the one in front of it: a retransmission holds back everything sent after it.
    """

    def __init__(self, impairment: Impairment, rto_ms: float, seed: int) -> None:
        self.impairment = impairment
        self.rto_s = rto_ms / 1000
        self.lossy = False  # switched on with the data channels' loss, when the measurement starts
        self.retransmissions = 0
        self._rng = random.Random(f"{seed}/tcp")
        self._last_delivery = -math.inf

    def deliver_at(self, now: float) -> float:
        """The loop time at which a chunk written at ``now`` reaches the other end."""
        imp = self.impairment
        wait, timeout = 0.0, self.rto_s
        resends = 0
        while self.lossy and resends < MAX_RESENDS and self._rng.random() < imp.loss:
            resends += 1
            self.retransmissions += 1
            wait, timeout = wait + timeout, timeout * 2
        delay = max(0.0, self._rng.gauss(imp.delay_ms, imp.jitter_ms)) if imp.jitter_ms else imp.delay_ms
        delivery = max(now + wait + delay / 1000, self._last_delivery)  # in order, like TCP
        self._last_delivery = delivery
        return delivery


def tcp_rto_ms(delay_ms: float, jitter_ms: float) -> float:
    """The model's first retransmission timeout: RFC 6298's SRTT + 4 x RTTVAR for a steady path (RTT =
    2 x delay, variation about the jitter), never below Linux's 200 ms floor."""
    return max(TCP_RTO_MIN_MS, 2 * delay_ms + 4 * jitter_ms)


# --8<-- [end:tcp-model]


class TcpRelay:
    """A TCP relay on 127.0.0.1 that holds each chunk it reads until the model's delivery time."""

    def __init__(self, target_port: int, upstream: TcpLossModel, downstream: TcpLossModel) -> None:
        self.target_port = target_port
        self.models = (upstream, downstream)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._connected, LOOPBACK_ADDRESS, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _connected(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(LOOPBACK_ADDRESS, self.target_port)
        upstream, downstream = self.models
        for pump in (self._pump(client_r, server_w, upstream), self._pump(server_r, client_w, downstream)):
            task = asyncio.create_task(pump)
            self._tasks.add(task)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, model: TcpLossModel
    ) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                at, chunk = item
                await asyncio.sleep(max(0.0, at - loop.time()))
                writer.write(chunk)
                await writer.drain()
            writer.close()

        delivering = asyncio.create_task(deliver())
        self._tasks.add(delivering)
        try:
            while chunk := await reader.read(65536):
                queue.put_nowait((model.deliver_at(loop.time()), chunk))
        except ConnectionError:
            pass
        finally:
            queue.put_nowait(None)  # deliver what is queued, then close the other side


def sctp_lines(sdp: str) -> list[str]:
    """The lines of an SDP that describe its data channel transport."""
    keep = ("m=application", "a=sctp-port:", "a=max-message-size:")
    return [line for line in sdp.splitlines() if line.startswith(keep)]


def max_message_size(sdp: str) -> int:
    """The a=max-message-size a peer declared (RFC 8841 says 64 KiB when the line is missing)."""
    found = re.search(r"^a=max-message-size:(\d+)", sdp, re.MULTILINE)
    return int(found.group(1)) if found else 65536


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (share in 0-1) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def table(rows: list[tuple[str, Tally]], sent: int) -> str:
    """The result table: delivery, one-way latency percentiles and reordering, one row per mode."""
    width = max(len(name) for name, _ in rows)
    header = f"{'mode':<{width}}  delivered  p50 ms  p95 ms  p99 ms  max ms  out of order"
    lines = [header]
    for name, tally in rows:
        got = tally.latencies_ms
        share = f"{100 * len(got) / sent:7.1f} %"
        if got:
            stats = "".join(f"{percentile(got, q):8.1f}" for q in (0.5, 0.95, 0.99, 1.0))
        else:
            stats = "".join(f"{'-':>8}" for _ in range(4))
        lines.append(f"{name:<{width}}  {share}{stats}  {tally.out_of_order:12d}")
    return "\n".join(lines)


def channel_sender(channel: RTCDataChannel) -> Callable[[str], Awaitable[None]]:
    """An async send() for a data channel, so that it looks like the WebSocket's send_str()."""

    async def send(text: str) -> None:
        channel.send(text)  # queues the message; aiortc's SCTP sends it from the event loop

    return send


# --8<-- [start:measure]
async def send_at_rate(
    senders: list[Callable[[str], Awaitable[None]]], rate_hz: float, count: int, seed: int
) -> None:
    """Send ``count`` messages through every sender, one round every 1/rate s (no drift)."""
    loop = asyncio.get_running_loop()
    rng = random.Random(seed)
    start = loop.time()
    for seq in range(count):
        await asyncio.sleep(max(0.0, start + seq / rate_hz - loop.time()))
        state = rng.getstate()
        for send in senders:
            rng.setstate(state)  # the same content on every mode; the timestamp is taken per send
            await send(game_message(seq, rng))


async def drain(reliable: list[Tally], count: int, settle_s: float) -> None:
    """Wait for late messages: at least ``settle_s``, then until the reliable modes have every message
    (at most DRAIN_MAX_S in all)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < DRAIN_MAX_S:
        settled = loop.time() - start >= settle_s
        if settled and all(len(t.latencies_ms) == count for t in reliable):
            return
        await asyncio.sleep(0.05)


# --8<-- [end:measure]


async def compare(args: argparse.Namespace) -> int:
    """Open every mode, send the same stream through all of them under the same link, print the table."""
    count = round(args.seconds * args.rate)
    lossy = Impairment(delay_ms=args.delay_ms, jitter_ms=args.jitter_ms, loss=args.loss / 100, seed=args.seed)
    setup = Impairment(delay_ms=args.delay_ms, jitter_ms=args.jitter_ms)
    modes = data_channel_modes(round(args.lifetime_ms))
    tallies = {mode.name: Tally() for mode in modes}
    pairs: list[ChannelPair] = []
    rto_ms = tcp_rto_ms(args.delay_ms, args.jitter_ms)
    tcp_models = (
        TcpLossModel(lossy, rto_ms, args.seed * 10),
        TcpLossModel(lossy, rto_ms, args.seed * 10 + 1),
    )
    ws_tally = Tally()
    origin, token = "https://game.example", secrets.token_urlsafe(16)
    runner, server_port = await start_game_server(origin, token, ws_tally)
    relay = TcpRelay(server_port, *tcp_models)
    await relay.start()
    session = aiohttp.ClientSession()
    try:
        try:
            pairs = list(await asyncio.gather(*(open_channel(m, setup, tallies[m.name]) for m in modes)))
        except TimeoutError:
            print(f"error: the data channels did not open within {SETUP_TIMEOUT_S:g} s", file=sys.stderr)
            return 1
        url = f"http://{LOOPBACK_ADDRESS}:{relay.port}/game"
        try:
            await session.ws_connect(url, headers={"Origin": "https://evil.example"})
            refused = "accepted (the check is broken)"
        except aiohttp.WSServerHandshakeError as error:
            refused = f"refused with HTTP {error.status}"
        ws = await session.ws_connect(url, headers={"Origin": origin, "Authorization": f"Bearer {token}"})

        first = pairs[0]
        print("Data channel lines of the offer (aiortc):")
        for line in sctp_lines(first.offer):
            print(f"  {line}")
        limit = max_message_size(first.answer)
        try:
            first.channel.send(b"\0" * (limit + 1))
            too_big = "sent (no limit enforced)"
        except ValueError as error:
            too_big = f"ValueError: {error}"
        print(f"The answer allows messages up to {limit} bytes; one byte more: {too_big}")
        print(
            f"aiortc cuts every message into DATA chunks of at most {USERDATA_MAX_LENGTH} bytes, one per datagram"
        )
        print(f"WebSocket handshake from another origin, without the token: {refused}")
        print()

        links = [link for pair in pairs for link in start_loss(pair.directions, lossy, args.seed)]
        for model in tcp_models:
            model.lossy = True
        senders = [channel_sender(pair.channel) for pair in pairs] + [ws.send_str]
        await send_at_rate(senders, args.rate, count, args.seed)
        await drain(
            [tallies[modes[0].name], tallies[modes[1].name], ws_tally], count, 2 * args.delay_ms / 1000
        )

        dropped = sum(link.counters.dropped_total for link in links)
        offered = sum(link.counters.sent for link in links)
        print(
            f"Link, each direction: {args.delay_ms:g} ms delay, {args.jitter_ms:g} ms jitter, "
            f"{args.loss:g} % random loss (seed {args.seed})"
        )
        print(
            f"{count} messages per mode, {args.rate:g} per second; latency is one-way, from send() to the "
            "receiver's message event"
        )
        rows = [(f"data channel: {mode.name}", tallies[mode.name]) for mode in modes]
        rows.append(("WebSocket over TCP (loss modelled)", ws_tally))
        print(table(rows, count))
        print()
        print(
            f"Data channel datagrams dropped by the link: {dropped} of {offered} "
            f"({100 * dropped / max(1, offered):.1f} %, both directions, all four modes)"
        )
        print(
            f"TCP model: {tcp_models[0].retransmissions} of {count} WebSocket frames needed a resend "
            f"(RTO {rto_ms:g} ms, doubling on each repeat)"
        )
        await ws.close()
    finally:
        await session.close()
        for pair in pairs:
            await pair.sender.close()
            await pair.receiver.close()
        await relay.close()
        await runner.cleanup()
    return 0


def bounded(name: str, integer: bool = False) -> Callable[[str], float]:
    """An argparse type: a number within LIMITS[name]."""
    return (whole_number if integer else number)(*LIMITS[name])


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the comparison and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds", type=bounded("seconds"), default=10.0, help="how long to send (default: %(default)g)"
    )
    parser.add_argument(
        "--rate",
        type=bounded("rate"),
        default=30.0,
        help="messages per second per mode (default: %(default)g)",
    )
    parser.add_argument(
        "--delay-ms",
        type=bounded("delay-ms"),
        default=50.0,
        help="one-way delay, each direction (default: %(default)g)",
    )
    parser.add_argument(
        "--jitter-ms",
        type=bounded("jitter-ms"),
        default=5.0,
        help="delay jitter, standard deviation (default: %(default)g)",
    )
    parser.add_argument(
        "--loss",
        type=bounded("loss"),
        default=5.0,
        help="random loss in percent, each direction (default: %(default)g)",
    )
    parser.add_argument(
        "--lifetime-ms",
        type=bounded("lifetime-ms", integer=True),
        default=300,
        help="maxPacketLifeTime of the last mode (default: %(default)s)",
    )
    parser.add_argument(
        "--seed", type=int, default=1, help="seed of the loss and jitter draws (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    return asyncio.run(compare(args))


if __name__ == "__main__":
    sys.exit(main())
