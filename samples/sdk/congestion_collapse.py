"""Congestion collapse: what aiortc's sender does when the path is slower than its video encoder's floor.

One call per setting, caller -> callee on loopback, with a speech-like voice and a noisy test pattern that
is hard to compress (so the VP8 encoder always spends its whole bitrate target). The caller's sending
direction goes through rtclab.impair's userspace bottleneck: a rate cap with a finite drop-tail queue.
The settings:

* no cap: the path is as fast as the machine;
* generous cap: more than aiortc's VP8 encoder ever asks for;
* tight cap: less than aiortc needs at its lowest, Opus at a fixed 96 kbps plus VP8 at its 250 kbps floor,
  so the receiver's REMB estimate can ask for less but the encoder never goes below its floor;
* tight cap, sender capped: the same path, but the sender holds its video target at 40 % of the cap,
  leaving room for the audio, as a congestion controller that knew the path would.

Every second it prints what the caller offered to the bottleneck (all its packets: audio, video, RTX,
RTCP), the last REMB estimate the receiver sent back, the VP8 encoder's target, the packets the queue
dropped, the video packets the sender resent because the receiver NACKed them, and the video frames the
callee decoded; then one summary row per setting with the video freeze time (gaps over 600 ms between
decoded frames, counting a stream that stopped as frozen until the call ends).

Nothing leaves the machine: ICE offers 127.0.0.1 only and no STUN server is asked.

Run it:

    python samples/sdk/congestion_collapse.py
    python samples/sdk/congestion_collapse.py --seconds 10 --tight-kbps 300 --queue-ms 300
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpSender
from aiortc.codecs import vpx
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, unpack_remb_fci

from rtclab.arguments import number, whole_number
from rtclab.freezes import freezes
from rtclab.impair import ImpairedPeer, Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.signals import ColorBarsVideoTrack, SpeechLikeAudioTrack

CONNECT_TIMEOUT = 15.0  # seconds to connect one call
WIDTH, HEIGHT, FPS = 320, 240, 30
AUDIO_FRAME_S = 0.020  # aiortc's Opus frames are 20 ms


@dataclass(frozen=True)
class Setting:
    """One call: a name, the bottleneck on the caller's sending direction, and the sender's own cap."""

    name: str
    cap_kbps: float | None  # None: no bottleneck
    sender_cap_kbps: float | None = None  # None: stock aiortc (REMB, clamped to 250-1500 kbps)


@dataclass
class Second:
    """What happened in one second of a call."""

    sent_kbps: float
    remb_kbps: float | None
    target_kbps: float | None
    queue_drops: int
    resent: int
    frames: int


@dataclass
class Result:
    """One call's seconds, when the callee decoded each video frame, and how many audio frames it decoded."""

    setting: Setting
    seconds: list[Second] = field(default_factory=list)
    frame_times: list[float] = field(default_factory=list)
    audio_frames: int = 0
    duration_s: float = 0.0


# --8<-- [start:observe]
@dataclass
class SenderLog:
    """What the video sender was told and did: every REMB value (bit/s) and every retransmission."""

    rembs: list[int] = field(default_factory=list)
    resent: int = 0


def encoder_of(sender: RTCRtpSender):
    """The sender's encoder (private in aiortc: it is created when the first frame is encoded)."""
    return getattr(sender, "_RTCRtpSender__encoder", None)


def watch_sender(sender: RTCRtpSender, log: SenderLog, sender_cap_bps: int | None) -> None:
    """Wrap the video sender's private handlers to log REMB and retransmissions (and apply the fix).

    aiortc's own REMB handler sets the encoder's target to the REMB value, clamped to 250 kbps-1.5 Mbps;
    its NACK handler resends every packet the receiver lists, as often as it is listed."""
    handle_rtcp, retransmit, next_frame = (
        sender._handle_rtcp_packet,
        sender._retransmit,
        sender._next_encoded_frame,
    )

    async def handle_rtcp_and_log(packet) -> None:
        await handle_rtcp(packet)
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            log.rembs.append(unpack_remb_fci(packet.fci)[0])
            hold_under_cap(sender, sender_cap_bps)

    async def retransmit_and_log(sequence_number: int) -> None:
        log.resent += 1
        await retransmit(sequence_number)

    async def next_frame_under_cap(codec):
        hold_under_cap(sender, sender_cap_bps)  # before every frame too, not only when a REMB comes
        return await next_frame(codec)

    sender._handle_rtcp_packet = handle_rtcp_and_log
    sender._retransmit = retransmit_and_log
    sender._next_encoded_frame = next_frame_under_cap


# --8<-- [end:observe]


# --8<-- [start:fix]
def hold_under_cap(sender: RTCRtpSender, cap_bps: int | None) -> None:
    """The fix: never let the video target exceed what the path can carry. aiortc's setter would raise any
    value to its 250 kbps floor, so this writes the private field behind it."""
    encoder = encoder_of(sender)
    if cap_bps is None or not isinstance(encoder, vpx.Vp8Encoder):
        return
    if encoder.target_bitrate > cap_bps:
        encoder._Vp8Encoder__target_bitrate = cap_bps


# --8<-- [end:fix]


# --8<-- [start:call]
async def one_call(setting: Setting, seconds: int, queue_ms: float) -> Result:
    """Run one call for ``seconds`` after it connects, sampling once a second."""
    caller = RTCPeerConnection(configuration=rtc_configuration())
    callee = RTCPeerConnection(configuration=rtc_configuration())
    result = Result(setting)
    frame_times: list[float] = []
    audio_times: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()

    async def play(track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                frame_times.append(loop.time())
            else:
                audio_times.append(loop.time())

    callee.on("track", lambda track: tasks.append(asyncio.create_task(play(track))))
    caller.addTrack(SpeechLikeAudioTrack(seed=1))
    # Fresh noise in every frame: VP8 cannot predict noise from the frame before, so it uses every bit of its
    # target, however high.
    video_sender = caller.addTrack(ColorBarsVideoTrack(width=WIDTH, height=HEIGHT, fps=FPS, noise=8, seed=2))
    sender_cap_bps = None if setting.sender_cap_kbps is None else int(setting.sender_cap_kbps * 1000)
    log = SenderLog()
    watch_sender(video_sender, log, sender_cap_bps)
    # The bottleneck: a rate cap with a drop-tail queue of queue_ms, on what the caller sends only.
    bottleneck = Impairment(rate_kbps=setting.cap_kbps, queue_ms=queue_ms, seed=0)
    try:
        with loopback_only():
            await caller.setLocalDescription(await caller.createOffer())
            impaired: ImpairedPeer = impair_connection(caller, bottleneck)  # before ICE sends anything
            check_loopback_sdp(caller.localDescription.sdp)
            await callee.setRemoteDescription(caller.localDescription)
            await callee.setLocalDescription(await callee.createAnswer())
            check_loopback_sdp(callee.localDescription.sdp)
            await caller.setRemoteDescription(callee.localDescription)
        connected = asyncio.Event()
        caller.on("connectionstatechange", lambda: caller.connectionState == "connected" and connected.set())
        if caller.connectionState != "connected":
            await asyncio.wait_for(connected.wait(), CONNECT_TIMEOUT)

        counters = impaired.link.counters
        start = loop.time()
        sent, drops, resent, frames = counters.bytes_sent, counters.dropped["queue"], log.resent, 0
        for second in range(1, seconds + 1):
            await asyncio.sleep(start + second - loop.time())
            encoder = encoder_of(video_sender)
            frames_now = sum(1 for t in frame_times if t >= start)
            result.seconds.append(
                Second(
                    sent_kbps=(counters.bytes_sent - sent) * 8 / 1000,
                    remb_kbps=log.rembs[-1] / 1000 if log.rembs else None,
                    target_kbps=encoder.target_bitrate / 1000 if encoder is not None else None,
                    queue_drops=counters.dropped["queue"] - drops,
                    resent=log.resent - resent,
                    frames=frames_now - frames,
                )
            )
            sent, drops, resent = counters.bytes_sent, counters.dropped["queue"], log.resent
            frames = frames_now
        end = loop.time()
        result.frame_times = [t - start for t in frame_times if start <= t <= end]
        result.duration_s = end - start
        result.audio_frames = sum(1 for t in audio_times if start <= t <= end)
        return result
    finally:
        await caller.close()
        await callee.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --8<-- [end:call]


def frozen_s(frame_times: list[float], duration_s: float) -> float:
    """Seconds of video freeze (gaps over 600 ms), counting the time before the first decoded frame and after
    the last one as frozen too: a stream that stops decoding is frozen until the call ends."""
    report = freezes([0.0, *frame_times, duration_s], "video")
    return report.frozen_s


# --8<-- [start:table]
def timeline_table(result: Result) -> str:
    """One row per second: offered rate, last REMB, encoder target, queue drops, resent packets, frames."""

    def kbps(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    rows = [
        f"{'s':>3}{'sent kbps':>11}{'REMB kbps':>11}{'target kbps':>13}{'queue drops':>13}{'resent':>8}{'frames':>8}"
    ]
    for i, s in enumerate(result.seconds, 1):
        rows.append(
            f"{i:>3}{s.sent_kbps:>11.0f}{kbps(s.remb_kbps):>11}{kbps(s.target_kbps):>13}"
            f"{s.queue_drops:>13}{s.resent:>8}{s.frames:>8}"
        )
    return "\n".join(rows)


def summary_table(results: list[Result]) -> str:
    """One row per setting: mean offered rate, seconds above the cap, drops, frame rate and freeze time."""
    rows = [
        f"{'setting':<34}{'cap kbps':>9}{'sent kbps':>10}{'s over cap':>11}{'drops':>7}"
        f"{'frames/s':>9}{'frozen s':>9}{'audio %':>8}"
    ]
    for r in results:
        n = len(r.seconds)
        cap = r.setting.cap_kbps
        mean_sent = sum(s.sent_kbps for s in r.seconds) / n
        over = "-" if cap is None else f"{sum(s.sent_kbps > cap for s in r.seconds)}/{n}"
        drops = sum(s.queue_drops for s in r.seconds)
        fps = len(r.frame_times) / r.duration_s
        rows.append(
            f"{r.setting.name:<34}{'-' if cap is None else f'{cap:.0f}':>9}{mean_sent:>10.0f}{over:>11}"
            f"{drops:>7}{fps:>9.1f}{frozen_s(r.frame_times, r.duration_s):>9.1f}"
            f"{100 * r.audio_frames * AUDIO_FRAME_S / r.duration_s:>8.0f}"
        )
    return "\n".join(rows)


# --8<-- [end:table]


def settings(generous_kbps: float, tight_kbps: float) -> list[Setting]:
    """The four calls, in the order they run and print."""
    return [
        Setting("no cap", None),
        Setting("generous cap", generous_kbps),
        Setting("tight cap, stock aiortc", tight_kbps),
        Setting("tight cap, sender capped", tight_kbps, sender_cap_kbps=round(0.4 * tight_kbps)),
    ]


async def congestion_collapse(seconds: int, generous_kbps: float, tight_kbps: float, queue_ms: float) -> int:
    """Run every setting, print each one's timeline, then the summary."""
    results = []
    for setting in settings(generous_kbps, tight_kbps):
        try:
            result = await one_call(setting, seconds, queue_ms)
        except TimeoutError:
            print(
                f"error: the call '{setting.name}' did not connect within {CONNECT_TIMEOUT:g} s",
                file=sys.stderr,
            )
            return 1
        results.append(result)
        cap = (
            "no cap" if setting.cap_kbps is None else f"cap {setting.cap_kbps:g} kbps, queue {queue_ms:g} ms"
        )
        own = (
            "" if setting.sender_cap_kbps is None else f", video held under {setting.sender_cap_kbps:g} kbps"
        )
        print(f"{setting.name} ({cap}{own}); VP8 {WIDTH}x{HEIGHT} at {FPS} fps")
        print(timeline_table(result))
        print()
    print("summary: frames/s = video frames decoded a second, frozen s = video gaps over 600 ms,")
    print("         audio % = audio frames decoded x 20 ms / call length")
    print(summary_table(results))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the calls and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=whole_number(2, 60),
        default=5,
        help="length of each call once connected (default: %(default)s)",
    )
    parser.add_argument(
        "--generous-kbps",
        type=number(100, 100_000),
        default=3000,
        help="the generous cap, in kbit/s (default: %(default)g)",
    )
    parser.add_argument(
        "--tight-kbps",
        type=number(50, 100_000),
        default=300,
        help="the tight cap, in kbit/s (default: %(default)g)",
    )
    parser.add_argument(
        "--queue-ms",
        type=number(10, 5000),
        default=500,
        help="drop-tail queue of each cap, in ms of data at the cap's rate (default: %(default)g)",
    )
    args = parser.parse_args(argv)
    return asyncio.run(congestion_collapse(args.seconds, args.generous_kbps, args.tight_kbps, args.queue_ms))


if __name__ == "__main__":
    sys.exit(main())
