"""Your first call: two aiortc peers in one process, one sending audio and video to the other over loopback.

The caller sends a speech-like voice and a color-bars test pattern; the callee receives and decodes them.
The script prints how long the connection took, when the first audio and video frames arrived, and what
getStats() says about the media (packets, loss, jitter, round-trip time, bitrate) in real units.

Nothing leaves the machine: ICE offers 127.0.0.1 only and no STUN server is asked.

Run it:

    python samples/get-started/first_call.py --seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiortc import RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from rtclab.loopback import loopback_only, rtc_configuration
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack
from rtclab.stats import format_summary, media_snapshots, summarize

MAX_SECONDS = 60.0
CONNECT_TIMEOUT = 10.0


async def first_call(seconds: float) -> int:
    """Create the two peers, run the call for ``seconds`` and close both peers whatever happens."""
    # --8<-- [start:peers]
    # Both peers live in this process. rtc_configuration() is RTCConfiguration(iceServers=[]): with no
    # STUN server to ask, ICE only offers host candidates, and loopback_only() (in the connect step, where
    # candidates are gathered) limits those to 127.0.0.1.
    caller = RTCPeerConnection(configuration=rtc_configuration())
    callee = RTCPeerConnection(configuration=rtc_configuration())
    # --8<-- [end:peers]
    try:
        return await talk(caller, callee, seconds)
    except TimeoutError:
        print(f"error: the peers did not connect within {CONNECT_TIMEOUT:g} s", file=sys.stderr)
        return 1
    finally:
        await caller.close()
        await callee.close()


async def talk(caller: RTCPeerConnection, callee: RTCPeerConnection, seconds: float) -> int:
    """Send audio and video from caller to callee, then print the timings and the stats."""
    loop = asyncio.get_running_loop()

    # --8<-- [start:tracks]
    caller.addTrack(SpeechLikeAudioTrack())  # 48 kHz voice-like signal, sent as Opus
    caller.addTrack(ColorBarsVideoTrack(width=320, height=240, fps=30))  # sent as VP8

    first_frame_ms: dict[str, float] = {}
    players: list[asyncio.Task[None]] = []

    async def play(track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()  # a decoded av.AudioFrame or av.VideoFrame
            except MediaStreamError:  # the connection was closed
                return
            first_frame_ms.setdefault(track.kind, (loop.time() - start) * 1000)  # start: see connect

    @callee.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        players.append(asyncio.create_task(play(track)))

    # --8<-- [end:tracks]

    # --8<-- [start:connect]
    connected = asyncio.Event()

    def on_state_change() -> None:
        if caller.connectionState == callee.connectionState == "connected":
            connected.set()

    caller.on("connectionstatechange", on_state_change)
    callee.on("connectionstatechange", on_state_change)

    start = loop.time()
    with loopback_only():  # setLocalDescription() gathers the ICE candidates
        await caller.setLocalDescription(await caller.createOffer())
        await callee.setRemoteDescription(caller.localDescription)
        await callee.setLocalDescription(await callee.createAnswer())
        await caller.setRemoteDescription(callee.localDescription)
    await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT)
    print(f"connected in {(loop.time() - start) * 1000:.1f} ms")
    # --8<-- [end:connect]

    # --8<-- [start:stats]
    # The caller's report holds outbound-rtp (what it sent) and remote-inbound-rtp (the callee's RTCP
    # receiver reports: loss, jitter, RTT); the callee's holds inbound-rtp and remote-outbound-rtp.
    # media_snapshots() reads them with units: jitter ticks -> ms, RTT s -> ms, fractionLost / 256.
    before = media_snapshots(await caller.getStats(), await callee.getStats(), at_s=loop.time() - start)
    await asyncio.sleep(seconds)
    after = media_snapshots(await caller.getStats(), await callee.getStats(), at_s=loop.time() - start)

    for kind, ms in sorted(first_frame_ms.items()):
        print(f"first {kind} frame at {ms:.1f} ms")
    print(format_summary(summarize(before + after)))
    # --8<-- [end:stats]

    for player in players:
        player.cancel()
    await asyncio.gather(*players, return_exceptions=True)
    missing = {"audio", "video"} - first_frame_ms.keys()
    if missing:
        print(f"error: no {' or '.join(sorted(missing))} frame in {seconds:g} s", file=sys.stderr)
        return 1
    return 0


def duration(text: str) -> float:
    """Parse ``--seconds``: a number of seconds above 0 and at most MAX_SECONDS."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value <= MAX_SECONDS:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most {MAX_SECONDS:g}, got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the call and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=duration,
        default=3.0,
        help="how long the call lasts once connected (default: %(default)s, at most 60)",
    )
    args = parser.parse_args(argv)
    return asyncio.run(first_call(args.seconds))


if __name__ == "__main__":
    sys.exit(main())
