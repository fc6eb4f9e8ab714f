"""A one-way call whose callee runs in a child process: two aiortc peers in two processes, over loopback only.

The caller (this process) sends a speech-like voice and a color-bars video; the callee, started as
``python -m rtclab.peer_process``, receives and decodes them. Signaling goes over a TCP connection to a
server this process binds on 127.0.0.1 (a random port), one JSON object per line. The child proves who it is
with a random token it reads from its stdin (never from its command line, which other users can read); a
connection that does not start with the token is closed. Both peers gather loopback candidates only
(`rtclab.loopback`), and the caller's sending direction can be impaired (`rtclab.impair`).

Shutdown always ends the child: on ``bye`` it sends its summary and exits; it also exits when the signaling
connection closes (the parent died), and after ``max_seconds`` whatever happens. The parent waits for it, then
terminates and finally kills it if it has not exited in time.

Example:
    ```python
    async with ProcessCall(uplink=Impairment(delay_ms=50, loss=0.02)) as call:
        await call.wait_for_first_frames()
        await call.run(3)
    print(call.timings, call.frames_received)
    print(format_summary(call.summary()))
    ```

Frame times cross the process boundary as ``time.monotonic()`` readings, which on Linux come from one clock
for every process (``CLOCK_MONOTONIC``), so they are comparable with the parent's event-loop clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import hmac
import json
import secrets
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

from rtclab.call import CallTimings
from rtclab.impair import Impairment, Link
from rtclab.stats import MediaSnapshot, MediaSummary, media_snapshots, summarize

__all__ = ["ProcessCall", "main"]

HOST = "127.0.0.1"
"""The only address the signaling server binds."""
_LINE_LIMIT = 1 << 20  # 1 MiB per JSON line: an SDP is a few kB, a summary of 30 s of frame times ~100 kB


class ProcessCall:
    """A one-way call to a callee in a child process, signaled over 127.0.0.1 TCP with a token.

    Use it as an async context manager: entering starts the child, negotiates and waits until both peers
    are connected; leaving collects the callee's summary, closes both peers and makes sure the child has
    exited. While the call runs, both sides' stats are sampled every ``sample_interval`` seconds into
    `timeline` (the callee's ``inbound-rtp`` read with `rtclab.stats.get_stats` and sent over signaling).

    Attributes:
        caller: The peer in this process (None before `start`).
        process: The callee's process (None before `start`).
        timings: Connect and first-frame times, in ms from the start of the offer.
        timeline: Every stats sample, one `rtclab.stats.MediaSnapshot` per kind per sample.
        frames_received: Frames the callee decoded, per kind (filled at `close`).
        frame_times: When the callee got each decoded frame, per kind, in seconds from the start of the offer
            (filled at `close`).
        links: The impairment in force on the caller's sending side, ``"uplink"`` (after `start`).
        exit_code: The child's exit code after `close` (negative: killed by that signal).
    """

    def __init__(
        self,
        *,
        sample_interval: float = 0.25,
        connect_timeout: float = 15.0,
        uplink: Impairment | None = None,
        max_seconds: float = 120.0,
    ) -> None:
        """Prepare a call; nothing is started until `start`.

        Args:
            sample_interval: Seconds between two stats samples (0.05-60).
            connect_timeout: Seconds to wait for the child to report in and for both peers to connect.
            uplink: Impairment of everything the caller sends (media, RTCP, ICE, DTLS); None for none.
            max_seconds: The child exits after this long whatever happens (its own watchdog).

        Raises:
            ValueError: If a number is out of range.
        """
        if not 0.05 <= sample_interval <= 60:
            raise ValueError("sample_interval must be between 0.05 and 60 seconds")
        if connect_timeout <= 0 or max_seconds <= 0:
            raise ValueError("connect_timeout and max_seconds must be positive")
        self.sample_interval = sample_interval
        self.connect_timeout = connect_timeout
        self.max_seconds = max_seconds
        self.uplink = uplink
        self.caller: Any = None
        self.process: asyncio.subprocess.Process | None = None
        self.timings = CallTimings()
        self.timeline: list[MediaSnapshot] = []
        self.frames_received: dict[str, int] = {}
        self.frame_times: dict[str, list[float]] = {}
        self.links: dict[str, Link] = {}
        self.exit_code: int | None = None
        self._token = secrets.token_hex(16)
        self._t0 = 0.0
        self._tracks: list[Any] = []
        self._server: asyncio.Server | None = None
        self._peer: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._replies: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._callee_connected: asyncio.Future[None] | None = None
        self._stderr_task: asyncio.Task[bytes] | None = None
        self._request_id = 0
        self._closed = False

    async def __aenter__(self) -> ProcessCall:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the caller started creating its offer."""
        return asyncio.get_running_loop().time() - self._t0

    async def start(self) -> None:
        """Start the child, negotiate over the signaling connection and wait until both peers are connected.

        Raises:
            TimeoutError: If the child does not report in, or the peers do not connect, in time.
            ConnectionError: If the child exits or a peer's connection fails.
            ValueError: If a description offers a non-loopback candidate.
            RuntimeError: If the call was started before.

        Everything (peer, server, child) is closed again if starting fails.
        """
        from aiortc import RTCPeerConnection, RTCSessionDescription

        from rtclab.impair import impair_connection
        from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
        from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack

        if self._server is not None:
            raise RuntimeError("a ProcessCall can only be started once")
        loop = asyncio.get_running_loop()
        self._peer = loop.create_future()
        self._callee_connected = loop.create_future()
        try:
            self._server = await asyncio.start_server(self._on_client, HOST, 0, limit=_LINE_LIMIT)
            port = self._server.sockets[0].getsockname()[1]
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "rtclab.peer_process",
                "--port",
                str(port),
                "--max-seconds",
                str(self.max_seconds),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
            assert self.process.stdin is not None and self.process.stderr is not None
            self._stderr_task = asyncio.create_task(self.process.stderr.read())
            self.process.stdin.write(self._token.encode() + b"\n")
            await self.process.stdin.drain()
            self.process.stdin.close()

            reader, self._writer = await self._wait(self._peer, "the callee did not report in")
            self._reader_task = asyncio.create_task(self._read(reader))

            self.caller = caller = RTCPeerConnection(configuration=rtc_configuration())
            caller.on("connectionstatechange", self._on_connection_state)
            self._tracks = [SpeechLikeAudioTrack(), ColorBarsVideoTrack()]
            for track in self._tracks:
                caller.addTrack(track)
            self._t0 = loop.time()
            with loopback_only():
                await caller.setLocalDescription(await caller.createOffer())
            if self.uplink is not None:  # before any await: ICE starts at the next one
                self.links["uplink"] = impair_connection(caller, self.uplink).link
            check_loopback_sdp(caller.localDescription.sdp)
            answer = await self._request({"type": "offer", "sdp": caller.localDescription.sdp})
            check_loopback_sdp(answer["sdp"])
            await caller.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
            await self._wait(self._callee_connected, "the peers did not connect")
            while caller.connectionState != "connected":
                if caller.connectionState in ("failed", "closed"):
                    raise ConnectionError(f"caller connection {caller.connectionState}")
                if self.elapsed_s > self.connect_timeout:
                    raise TimeoutError(f"peers did not connect within {self.connect_timeout} s")
                await asyncio.sleep(0.01)
            self.timings.connected_ms = self.elapsed_s * 1000
        except BaseException:
            await self.close()
            raise
        self._sampler = asyncio.create_task(self._sample_forever())

    async def run(self, seconds: float) -> None:
        """Keep the call going for ``seconds``."""
        await asyncio.sleep(seconds)

    async def wait_for_first_frames(self, timeout: float = 5.0) -> None:
        """Wait until the callee has decoded a frame of both kinds.

        Raises:
            TimeoutError: If a kind has no frame after ``timeout``.
        """
        reply = await self._request({"type": "wait_frames", "timeout": timeout}, timeout=timeout + 5)
        for kind, ms in reply["first_ms"].items():
            self._set_first(kind, ms)
        missing = sorted({"audio", "video"} - reply["first_ms"].keys())
        if missing:
            raise TimeoutError(f"no {', '.join(missing)} frame within {timeout} s")

    async def sample(self) -> list[MediaSnapshot]:
        """Read the caller's stats and the callee's (over signaling) and append one snapshot per kind."""
        if self.caller is None:
            raise RuntimeError("the call has not started")
        sender, reply = await asyncio.gather(self.caller.getStats(), self._request({"type": "stats"}))
        snapshots = media_snapshots(sender, _inbound_report(reply["inbound"]), at_s=self.elapsed_s)
        self.timeline.extend(snapshots)
        return snapshots

    def summary(self) -> list[MediaSummary]:
        """Summarize `timeline` per media kind, audio first (see `rtclab.stats.summarize`)."""
        return summarize(self.timeline)

    async def close(self) -> None:
        """Take a last sample, get the callee's summary, close everything and make sure the child exited.

        Safe to call more than once; never leaves the child running.
        """
        if self._closed:
            return
        self._closed = True
        try:
            if self._sampler is not None:
                self._sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sampler
                with contextlib.suppress(Exception):
                    await self.sample()
            if self._writer is not None and self._reader_task is not None and not self._reader_task.done():
                with contextlib.suppress(Exception):
                    summary = await self._request({"type": "bye"}, timeout=5)
                    self._take_summary(summary)
        finally:
            await self._shut_down()

    async def _shut_down(self) -> None:
        if self.caller is not None:
            await self.caller.close()
        for track in self._tracks:
            track.stop()
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
        if self.process is not None:
            self.exit_code = await _reap(self.process)
        for task in (self._reader_task, self._stderr_task):
            if task is not None and not task.done():
                task.cancel()
            if task is not None:
                with contextlib.suppress(BaseException):
                    await task
        for future in self._replies.values():
            if not future.done():
                future.cancel()

    # --- signaling -----------------------------------------------------------------------------------------

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Accept the first connection that starts with the token; close any other."""
        try:
            hello = json.loads(await asyncio.wait_for(reader.readline(), 5))
            token = str(hello.get("token", "")) if isinstance(hello, dict) else ""
        except (TimeoutError, ValueError, ConnectionError):
            token = ""
        if self._peer is not None and not self._peer.done() and hmac.compare_digest(token, self._token):
            self._peer.set_result((reader, writer))
            return
        writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        assert self._callee_connected is not None
        try:
            while line := await reader.readline():
                message = json.loads(line)
                kind = message.get("type")
                if kind == "reply" and message.get("id") in self._replies:
                    future = self._replies.pop(message["id"])
                    if not future.done():
                        future.set_result(message)
                elif kind == "state" and not self._callee_connected.done():
                    if message["state"] == "connected":
                        self._callee_connected.set_result(None)
                    elif message["state"] in ("failed", "closed"):
                        error = ConnectionError(f"callee connection {message['state']}")
                        self._callee_connected.set_exception(error)
        finally:
            error = ConnectionError("the callee closed the signaling connection")
            if not self._callee_connected.done():
                self._callee_connected.set_exception(error)
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(error)

    async def _request(self, message: dict[str, Any], timeout: float | None = None) -> dict[str, Any]:
        if self._writer is None:
            raise RuntimeError("no signaling connection")
        self._request_id += 1
        key = str(self._request_id)
        future = asyncio.get_running_loop().create_future()
        self._replies[key] = future
        self._writer.write(json.dumps({**message, "id": key}).encode() + b"\n")
        await self._writer.drain()
        try:
            return await asyncio.wait_for(future, self.connect_timeout if timeout is None else timeout)
        finally:
            self._replies.pop(key, None)

    async def _wait(self, future: asyncio.Future[Any], what: str) -> Any:
        """Wait for ``future`` within the connect timeout, failing early if the child exits."""
        assert self.process is not None
        exited = asyncio.ensure_future(self.process.wait())
        try:
            done, _ = await asyncio.wait(
                {future, exited}, timeout=self.connect_timeout, return_when="FIRST_COMPLETED"
            )
        finally:
            if not exited.done():
                exited.cancel()
        if future in done:
            return future.result()
        if exited in done:
            raise ConnectionError(f"{what}: the callee process exited with code {exited.result()}")
        raise TimeoutError(f"{what} within {self.connect_timeout} s")

    def _on_connection_state(self) -> None:
        future, state = self._callee_connected, self.caller.connectionState
        if future is not None and not future.done() and state in ("failed", "closed"):
            future.set_exception(ConnectionError(f"caller connection {state}"))

    def _set_first(self, kind: str, monotonic_ms: float) -> None:
        at_ms = monotonic_ms - self._t0 * 1000
        if kind == "audio" and self.timings.first_audio_ms is None:
            self.timings.first_audio_ms = at_ms
        elif kind == "video" and self.timings.first_video_ms is None:
            self.timings.first_video_ms = at_ms

    def _take_summary(self, summary: dict[str, Any]) -> None:
        for kind, times in summary["frame_times"].items():
            self.frame_times[kind] = [t - self._t0 for t in times]
            self.frames_received[kind] = len(times)
            if times:
                self._set_first(kind, times[0] * 1000)

    async def _sample_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await self.sample()
            await asyncio.sleep(self.sample_interval)


async def _reap(process: asyncio.subprocess.Process, grace: float = 5.0) -> int:
    """Wait for the child to exit; terminate it, then kill it, if it does not within ``grace`` seconds."""
    for stop in (None, process.terminate, process.kill):
        if stop is not None:
            with contextlib.suppress(ProcessLookupError):
                stop()
        try:
            return await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            continue
    return await process.wait()


def _inbound_report(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Rebuild ``inbound-rtp`` stats objects from what the callee sent, keyed by id like a stats report."""
    from aiortc.stats import RTCInboundRtpStreamStats

    now = datetime.datetime.now(datetime.UTC)
    return {
        e["id"]: RTCInboundRtpStreamStats(
            timestamp=now,
            type="inbound-rtp",
            id=e["id"],
            ssrc=e["ssrc"],
            kind=e["kind"],
            transportId=e["transportId"],
            packetsReceived=e["packetsReceived"],
            packetsLost=e["packetsLost"],
            jitter=e["jitter"],
        )
        for e in entries
    }


# --- the callee (the child process) ------------------------------------------------------------------------------


async def _callee(port: int, token: str, max_seconds: float) -> int:
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
    from rtclab.stats import get_stats

    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port, limit=_LINE_LIMIT), 10)
    pc = RTCPeerConnection(configuration=rtc_configuration())
    frame_times: dict[str, list[float]] = {"audio": [], "video": []}
    consumers: list[asyncio.Task[None]] = []

    def send(message: dict[str, Any]) -> None:
        if not writer.is_closing():
            writer.write(json.dumps(message).encode() + b"\n")

    async def consume(track: Any) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            frame_times.setdefault(track.kind, []).append(time.monotonic())

    pc.on("track", lambda track: consumers.append(asyncio.create_task(consume(track))))
    pc.on("connectionstatechange", lambda: send({"type": "state", "state": pc.connectionState}))

    async def serve() -> None:
        while line := await reader.readline():
            message = json.loads(line)
            kind, reply = message.get("type"), {"type": "reply", "id": message.get("id")}
            if kind == "offer":
                check_loopback_sdp(message["sdp"])
                with loopback_only():
                    await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
                    await pc.setLocalDescription(await pc.createAnswer())
                check_loopback_sdp(pc.localDescription.sdp)
                send({**reply, "sdp": pc.localDescription.sdp})
            elif kind == "stats":
                report = await get_stats(pc)
                inbound = [
                    {
                        k: getattr(s, k)
                        for k in (
                            "id",
                            "ssrc",
                            "kind",
                            "transportId",
                            "packetsReceived",
                            "packetsLost",
                            "jitter",
                        )
                    }
                    for s in report.values()
                    if s.type == "inbound-rtp"
                ]
                send({**reply, "inbound": inbound})
            elif kind == "wait_frames":
                deadline = time.monotonic() + float(message["timeout"])
                while not all(frame_times.values()) and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                first = {k: times[0] * 1000 for k, times in frame_times.items() if times}
                send({**reply, "first_ms": first})
            elif kind == "bye":
                send({**reply, "frame_times": frame_times})
                return
            await writer.drain()

    try:
        hello = {"type": "hello", "token": token}
        writer.write(json.dumps(hello).encode() + b"\n")
        await writer.drain()
        await asyncio.wait_for(serve(), max_seconds)
        await writer.drain()
        return 0
    except TimeoutError:
        print("rtclab.peer_process: max_seconds reached, exiting", file=sys.stderr)
        return 3
    finally:
        await pc.close()
        for task in consumers:
            task.cancel()
        await asyncio.gather(*consumers, return_exceptions=True)
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the callee: read the token from stdin, connect to the caller's signaling port and answer.

    Args:
        argv: ``--port PORT [--max-seconds N]`` (default ``sys.argv[1:]``).

    Returns:
        0 after a clean ``bye``, 2 on bad arguments or no token, 3 when ``max_seconds`` ran out, 1 on error.
    """
    parser = argparse.ArgumentParser(
        prog="python -m rtclab.peer_process",
        description="The callee of rtclab.peer_process.ProcessCall (started by it; reads its token on stdin).",
    )
    parser.add_argument("--port", type=int, required=True, help="the caller's signaling port on 127.0.0.1")
    parser.add_argument("--max-seconds", type=float, default=120.0, help="exit after this long (default 120)")
    args = parser.parse_args(argv)
    token = sys.stdin.readline().strip()
    if not token:
        print("rtclab.peer_process: error: no token on stdin", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_callee(args.port, token, args.max_seconds))
    except (OSError, ValueError, TimeoutError) as error:
        print(f"rtclab.peer_process: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
