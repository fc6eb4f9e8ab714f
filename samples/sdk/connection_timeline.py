"""Where connection time goes: every stage of a call's setup, timestamped from aiortc's own events.

Two aiortc peers in one process set up a call several times over: the caller's SDP offer (aiortc gathers
the ICE candidates inside setLocalDescription), the callee's answer, the ICE connectivity checks, the DTLS
handshake, the first RTP packet and the first decoded audio and video frames. The script prints the SDP
offer lines that matter, then one row per stage: when it ended and how long it took, median over the runs.

With --impair-ms D every datagram either peer sends waits D ms, so each round trip grows by 2 x D. The
stages that wait for answers from the other peer (ICE checks, the DTLS handshake) grow by whole round
trips; the stages that run on one machine (createOffer, gathering, decoding) do not.

Nothing leaves the machine: ICE offers 127.0.0.1 only and no STUN server is asked.

Run it:

    python samples/sdk/connection_timeline.py
    python samples/sdk/connection_timeline.py --runs 3 --impair-ms 100
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
from dataclasses import dataclass

from aiortc import RTCPeerConnection, RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket

from rtclab.arguments import number, whole_number
from rtclab.impair import Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack

MAX_RUNS = 50
MAX_IMPAIR_MS = 1000.0
RUN_TIMEOUT = 15.0  # seconds for one setup, from createOffer to both first frames

# --8<-- [start:timeline]
# One row per stage: (what, the mark it starts from, the mark that ends it). Each run records the marks in
# ms since the caller started createOffer(); the table shows the median of "end" and of "end - start".
STAGES = (
    ("caller: createOffer()", "start", "offer created"),
    ("caller: setLocalDescription(offer), gathers", "offer created", "offer set"),
    ("callee: apply offer, answer, gather", "offer set", "answer set"),
    ("caller: setRemoteDescription(answer)", "answer set", "answer applied"),
    ("callee: ICE checks (checking -> completed)", "callee ICE checking", "callee ICE completed"),
    ("caller: ICE checks (checking -> completed)", "caller ICE checking", "caller ICE completed"),
    ("caller: DTLS handshake (server)", "caller ICE completed", "caller connected"),
    ("callee: DTLS handshake (client)", "callee ICE completed", "callee connected"),
    ("both peers connected (connect time)", "start", "both connected"),
    ("callee: first RTP packet (audio)", "caller connected", "first audio rtp"),
    ("callee: first RTP packet (video)", "caller connected", "first video rtp"),
    ("callee: first audio frame decoded", "first audio rtp", "first audio frame"),
    ("callee: first video frame decoded", "first video rtp", "first video frame"),
)


def timeline_table(runs: list[dict[str, float]]) -> str:
    """Format the stages as a table: median end time and median duration over ``runs``, in ms."""
    rows = [f"{'stage':<46}{'ends at ms':>12}{'took ms':>10}"]
    for what, start, end in STAGES:
        ends = statistics.median(run[end] for run in runs)
        took = statistics.median(run[end] - run[start] for run in runs)
        rows.append(f"{what:<46}{ends:>12.1f}{took:>10.1f}")
    return "\n".join(rows)


# --8<-- [end:timeline]


# --8<-- [start:sdp]
KEEP = ("m=", "a=group:BUNDLE", "a=ice-ufrag:", "a=ice-pwd:", "a=candidate:", "a=setup:")


def lines_that_matter(sdp: str) -> list[str]:
    """The SDP lines this page explains, in order: media sections, Opus and VP8, BUNDLE,
    ICE credentials and candidates, the DTLS certificate fingerprint and the DTLS role."""
    kept = []
    for line in sdp.splitlines():
        if line.startswith("a=rtpmap:"):
            codec = line.split(" ", 1)[1].split("/")[0]  # "a=rtpmap:96 opus/48000/2" -> "opus"
            if codec.lower() in ("opus", "vp8"):
                kept.append(line)
        # aiortc writes three fingerprints (sha-256, -384, -512) of one certificate: keep the first.
        elif line.startswith(KEEP) or line.startswith("a=fingerprint:sha-256 "):
            kept.append(line)
    return kept


# --8<-- [end:sdp]


@dataclass
class Setup:
    """What one call setup left behind: its marks (ms since createOffer began), its SDP, its DTLS version."""

    marks: dict[str, float]
    offer: str
    answer: str
    dtls_version: str


async def one_setup(impair_ms: float) -> Setup:
    """Set up one call, wait until both first frames are decoded, then close both peers."""
    caller = RTCPeerConnection(configuration=rtc_configuration())
    callee = RTCPeerConnection(configuration=rtc_configuration())
    tasks: list[asyncio.Task[None]] = []
    try:
        return await asyncio.wait_for(setup(caller, callee, impair_ms, tasks), RUN_TIMEOUT)
    finally:
        await caller.close()
        await callee.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def setup(
    caller: RTCPeerConnection, callee: RTCPeerConnection, impair_ms: float, tasks: list[asyncio.Task[None]]
) -> Setup:
    """Negotiate caller -> callee on loopback, timestamping every stage until both first frames are decoded."""
    loop = asyncio.get_running_loop()
    marks: dict[str, float] = {"start": 0.0}
    done = asyncio.Event()
    wanted = {"caller connected", "callee connected", "first audio frame", "first video frame"}

    def mark(name: str) -> None:  # the first time only; `start` is taken just before createOffer()
        marks.setdefault(name, (loop.time() - start) * 1000)
        if {"caller connected", "callee connected"} <= marks.keys():
            marks.setdefault("both connected", max(marks["caller connected"], marks["callee connected"]))
        if wanted <= marks.keys():
            done.set()

    caller.addTrack(SpeechLikeAudioTrack())
    caller.addTrack(ColorBarsVideoTrack(width=320, height=240, fps=30))

    # --8<-- [start:events]
    # aiortc's public events: ICE state ("checking", "completed") and connection state ("connected" once ICE
    # has a pair AND the DTLS handshake is done). aiortc starts DTLS as soon as ICE completes, so
    # "ICE completed -> connected" is the DTLS handshake.
    def watch(pc: RTCPeerConnection, name: str) -> None:
        pc.on("iceconnectionstatechange", lambda: mark(f"{name} ICE {pc.iceConnectionState}"))
        pc.on("connectionstatechange", lambda: mark(f"{name} {pc.connectionState}"))

    watch(caller, "caller")
    watch(callee, "callee")

    async def first_frame(track: MediaStreamTrack) -> None:
        try:
            await track.recv()  # the first decoded frame: it has been through the jitter buffer
        except MediaStreamError:  # closed before a frame came
            return
        mark(f"first {track.kind} frame")

    callee.on("track", lambda track: tasks.append(asyncio.create_task(first_frame(track))))

    def first_rtp(receiver: RTCRtpReceiver) -> None:
        # No event tells when the first RTP packet arrives, so wrap the receiver's packet handler.
        # `_handle_rtp_packet` is private to aiortc (the lock file pins the version).
        handle = receiver._handle_rtp_packet

        async def stamped(packet: RtpPacket, arrival_time_ms: int) -> None:
            mark(f"first {receiver.track.kind} rtp")
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = stamped

    # --8<-- [end:events]

    # --8<-- [start:negotiate]
    # Signaling is instant here (the peers hand each other the SDP); a real app adds its server's trip.
    delay = Impairment(delay_ms=impair_ms)
    start = loop.time()
    with loopback_only():  # candidates are gathered inside setLocalDescription()
        offer = await caller.createOffer()
        mark("offer created")
        await caller.setLocalDescription(offer)
        if impair_ms:  # no await before this: ICE starts in a task that runs at the next await
            impair_connection(caller, delay)
        mark("offer set")
        check_loopback_sdp(caller.localDescription.sdp)
        await callee.setRemoteDescription(caller.localDescription)
        for receiver in callee.getReceivers():
            first_rtp(receiver)
        await callee.setLocalDescription(await callee.createAnswer())
        if impair_ms:
            impair_connection(callee, delay)
        mark("answer set")
        check_loopback_sdp(callee.localDescription.sdp)
        await caller.setRemoteDescription(callee.localDescription)
        mark("answer applied")
    await done.wait()
    # --8<-- [end:negotiate]
    return Setup(marks, caller.localDescription.sdp, callee.localDescription.sdp, dtls_version(caller))


def dtls_version(pc: RTCPeerConnection) -> str:
    """The DTLS version the peer negotiated: 1.2 needs one more round trip than 1.3.

    aiortc does not expose it; this reads its private OpenSSL connection.
    """
    ssl = getattr(pc.getTransceivers()[0].receiver.transport, "_ssl", None)
    return ssl.get_protocol_version_name() if ssl is not None else "unknown"


async def connection_timeline(runs: int, impair_ms: float) -> int:
    """Run ``runs`` setups, then print the SDP lines that matter and the median timeline."""
    results = []
    for _ in range(runs):
        try:
            results.append(await one_setup(impair_ms))
        except TimeoutError:
            print(f"error: a setup did not reach both first frames within {RUN_TIMEOUT:g} s", file=sys.stderr)
            return 1
    first = results[0]
    print("SDP offer (caller), the lines that matter:")
    for line in lines_that_matter(first.offer):
        print(f"  {line}")
    setup_line = next(line for line in first.answer.splitlines() if line.startswith("a=setup:"))
    print(f"SDP answer (callee): {setup_line}")
    print(f"DTLS version negotiated: {first.dtls_version}")
    print()
    print(
        f"median of {runs} run(s); every datagram delayed {impair_ms:g} ms each way (round trip +{2 * impair_ms:g} ms)"
    )
    print('"ends at" counts from the moment the caller began createOffer()')
    print(timeline_table([result.marks for result in results]))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the setups and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--runs",
        type=whole_number(1, MAX_RUNS),
        default=5,
        help=f"how many calls to set up; the table shows medians (default: %(default)s, at most {MAX_RUNS})",
    )
    parser.add_argument(
        "--impair-ms",
        type=number(0, MAX_IMPAIR_MS, "ms"),
        default=0.0,
        metavar="D",
        help="one-way delay added to every datagram each peer sends, in ms "
        f"(default: %(default)g, at most {MAX_IMPAIR_MS:g})",
    )
    args = parser.parse_args(argv)
    return asyncio.run(connection_timeline(args.runs, args.impair_ms))


if __name__ == "__main__":
    sys.exit(main())
