"""How aiortc repairs lost video: NACK and RTX retransmissions for single packets, PLI and a keyframe for a long burst.

Two aiortc peers in one process send 640x360 VP8 video one way (a test pattern with camera-like noise, so the
encoder spends its whole bitrate), three times, with a different loss on the sender's link each time
(rtclab.impair, over 127.0.0.1 only):

* random loss: the receiver sends NACKs, the sender retransmits the packets from its history over RTX;
* a short burst (a blackout shorter than the sender's 128-packet history): one NACK repairs it all;
* a long burst (longer than that history): packets are gone for good, the video freezes until aiortc's video
  jitter buffer (512 packets) overflows, the receiver sends a PLI, and the sender encodes a keyframe.

aiortc's getStats() has no NACK, PLI or keyframe counters, so the script wraps the methods that send and
answer them (private aiortc methods; the lock file pins the version) and counts. It prints one row per run,
then the timeline of the long burst.

Run it:

    python samples/sdk/keyframes_and_nack.py
    python samples/sdk/keyframes_and_nack.py --loss 5 --long-burst 2
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import av
import numpy as np
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.vpx import Vp8Encoder, VpxPayloadDescriptor
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RTP_HISTORY_SIZE

from rtclab.arguments import number
from rtclab.impair import Blackout, Impairment, impair_connection
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.signals import VIDEO_CLOCK_RATE, color_bars

WIDTH, HEIGHT, FPS = 640, 360, 30
BURST_AT_S = 1.5  # seconds after the link starts; the encoder has settled by then
RUN_S = 4.0  # length of the random-loss and short-burst runs
AFTER_KEYFRAME_S = 0.5  # the long-burst run ends this long after the video moves again
LONG_RUN_CAP_S = 25.0  # ... or after this long, keyframe or not


class NoisyBarsTrack(MediaStreamTrack):
    """rtclab's color bars plus seeded sensor noise, in real time: the noise keeps the encoder at its target."""

    kind = "video"

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = np.random.default_rng(seed)
        self._start: float | None = None
        self._index = 0

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._index += 1
            await asyncio.sleep(self._start + self._index / FPS - time.monotonic())
        image = color_bars(WIDTH, HEIGHT, self._index).astype(np.int16)
        image += self._rng.integers(-20, 21, size=(HEIGHT, WIDTH, 1), dtype=np.int16)
        frame = av.VideoFrame.from_ndarray(np.clip(image, 0, 255).astype(np.uint8), format="rgb24")
        frame.pts = round(self._index * VIDEO_CLOCK_RATE / FPS)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        return frame


@dataclass
class Counts:
    """What the wrappers saw during one run; times are seconds since the link started."""

    lost: int = 0  # datagrams the link dropped
    nacks: list[tuple[float, int]] = field(default_factory=list)  # (when, sequence numbers asked for)
    resent: int = 0  # retransmitted over RTX
    not_in_history: int = 0  # asked for, but already gone from the sender's 128-packet history
    plis: list[float] = field(default_factory=list)  # PLIs the receiver sent
    keyframes: list[tuple[float, str]] = field(
        default_factory=list
    )  # (when, why) the encoder made a keyframe
    frames: list[float] = field(default_factory=list)  # when the receiver decoded each frame
    sent_at_burst: int | None = None  # RTP packets (not counting RTX) sent when the burst began
    sent_at_pli: int | None = None  # ... when the receiver sent its first PLI


# --8<-- [start:keyframe]
def is_vp8_keyframe(payload: bytes) -> bool:
    """True if an RTP payload starts a VP8 keyframe.

    RFC 7741: the first packet of a frame has S=1 and PID=0 in its payload descriptor, and the VP8 payload
    header after it has the inverse key frame flag P (the lowest bit of its first octet) at 0 for a keyframe.
    """
    descriptor, rest = VpxPayloadDescriptor.parse(payload)
    return bool(descriptor.partition_start and descriptor.partition_id == 0 and rest and not rest[0] & 1)


class CountingVp8Encoder(Vp8Encoder):
    """aiortc's VP8 encoder, unchanged, noting each keyframe and why it came."""

    def __init__(self, counts: Counts, clock) -> None:
        super().__init__()
        self._counts, self._clock = counts, clock

    def encode(self, frame, force_keyframe: bool = False):
        codec_before = self.codec
        payloads, timestamp = super().encode(frame, force_keyframe)
        if payloads and is_vp8_keyframe(payloads[0]):
            if codec_before is None and not self._counts.keyframes:
                why = "first frame"
            elif force_keyframe:
                why = "PLI"
            elif self.codec is not codec_before:
                # aiortc rebuilds its encoder when the target bitrate moves by more than 10 %.
                why = "encoder restart"
            else:
                why = "encoder's own"
            self._counts.keyframes.append((self._clock(), why))
        return payloads, timestamp


# --8<-- [end:keyframe]


# --8<-- [start:count]
def count_repairs(sender: RTCRtpSender, receiver: RTCRtpReceiver, counts: Counts, clock) -> None:
    """Wrap the aiortc methods that send NACKs and PLIs (receiver) and retransmit (sender)."""
    send_nack, send_pli, retransmit = receiver._send_rtcp_nack, receiver._send_rtcp_pli, sender._retransmit
    history = sender._RTCRtpSender__rtp_history  # sequence number % 128 -> the last packet sent with it

    async def nack(media_ssrc: int, lost: list[int]) -> None:
        counts.nacks.append((clock(), len(lost)))
        await send_nack(media_ssrc, lost)

    async def pli(media_ssrc: int) -> None:
        if not counts.plis:
            counts.sent_at_pli = packets_sent(sender)
        counts.plis.append(clock())
        await send_pli(media_ssrc)

    async def resend(sequence_number: int) -> None:
        kept = history.get(sequence_number % RTP_HISTORY_SIZE)
        if kept is not None and kept.sequence_number == sequence_number:
            counts.resent += 1
        else:
            counts.not_in_history += 1
        await retransmit(sequence_number)

    receiver._send_rtcp_nack, receiver._send_rtcp_pli, sender._retransmit = nack, pli, resend
    # A keyframe request (PLI or FIR) makes the sender call _send_keyframe(); the encoder sees force_keyframe.
    sender._RTCRtpSender__encoder = CountingVp8Encoder(counts, clock)


# --8<-- [end:count]


def packets_sent(sender: RTCRtpSender) -> int:
    """RTP packets the sender has sent, retransmissions not counted (getStats' packetsSent, read at once)."""
    return sender._RTCRtpSender__packet_count


async def one_run(
    impairment: Impairment, seconds: float, seed: int, *, until_keyframe: bool = False
) -> Counts:
    """One call with ``impairment`` on the sender's link; return what the wrappers counted."""
    caller = RTCPeerConnection(configuration=rtc_configuration())
    callee = RTCPeerConnection(configuration=rtc_configuration())
    counts = Counts()
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    start = loop.time()

    def clock() -> float:
        return loop.time() - start

    async def consume(track: MediaStreamTrack) -> None:
        while True:
            try:
                await track.recv()
            except MediaStreamError:
                return
            counts.frames.append(clock())

    callee.on("track", lambda track: tasks.append(asyncio.create_task(consume(track))))
    caller.addTransceiver(NoisyBarsTrack(seed), direction="sendonly")
    try:
        with loopback_only():
            await caller.setLocalDescription(await caller.createOffer())
            start = loop.time()
            link = impair_connection(caller, impairment).link  # blackouts count from here
            check_loopback_sdp(caller.localDescription.sdp)
            await callee.setRemoteDescription(caller.localDescription)
            await callee.setLocalDescription(await callee.createAnswer())
            check_loopback_sdp(callee.localDescription.sdp)
            sender = caller.getSenders()[0]
            count_repairs(sender, callee.getReceivers()[0], counts, clock)
            await caller.setRemoteDescription(callee.localDescription)
        for blackout in impairment.blackouts:
            loop.call_at(
                start + blackout.start_s, lambda: setattr(counts, "sent_at_burst", packets_sent(sender))
            )
        if not until_keyframe:
            await asyncio.sleep(seconds)
        else:  # stop once the video has moved again after a keyframe that followed a PLI
            while clock() < seconds:
                pli_keys = [t for t, why in counts.keyframes if why == "PLI"]
                if pli_keys and counts.frames and counts.frames[-1] > pli_keys[0] + AFTER_KEYFRAME_S:
                    break
                await asyncio.sleep(0.1)
        counts.lost = link.counters.dropped_total
    finally:
        await caller.close()
        await callee.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return counts


def longest_freeze_ms(frames: list[float]) -> float:
    """Longest gap between two decoded frames, in ms."""
    return max((b - a for a, b in zip(frames, frames[1:], strict=False)), default=math.nan) * 1000


def row(name: str, counts: Counts) -> str:
    """One line of the summary table."""
    nacked = sum(n for _, n in counts.nacks)
    whys = Counter(why for _, why in counts.keyframes)
    keys = ", ".join(f"{n} {why}" for why, n in sorted(whys.items())) or "none"
    return (
        f"{name:<22}{counts.lost:>6}{len(counts.nacks):>7}{nacked:>8}{counts.resent:>8}"
        f"{counts.not_in_history:>9}{len(counts.plis):>6}{longest_freeze_ms(counts.frames):>10.0f}  {keys}"
    )


def timeline(counts: Counts, burst: Blackout) -> list[str]:
    """The long burst, step by step, in ms since it began."""

    def ms(t: float | None) -> str:
        return f"{'never':>8}" if t is None else f"{(t - burst.start_s) * 1000:8.0f}"

    first_nack = next((t for t, _ in counts.nacks if t >= burst.end_s), None)
    first_pli = counts.plis[0] if counts.plis else None
    pli_key = next((t for t, why in counts.keyframes if why == "PLI"), None)
    frozen_from = max((t for t in counts.frames if t < burst.start_s + 0.2), default=None)
    flowing = next((t for t in counts.frames if t > burst.end_s), None)
    clean = next((t for t in counts.frames if pli_key is not None and t > pli_key), None)
    between = "n/a"
    if counts.sent_at_burst is not None and counts.sent_at_pli is not None:
        between = str(counts.sent_at_pli - counts.sent_at_burst)
    steps = [
        ("last frame decoded before it", frozen_from),
        ("burst ends", burst.end_s),
        ("first NACK after it", first_nack),
        ("frames decoded again (the jitter buffer gave up)", flowing),
        ("receiver sends a PLI", first_pli),
        ("sender encodes a keyframe for it", pli_key),
        ("first frame decoded after that keyframe", clean),
    ]
    return [
        f"the long burst, in ms since it began ({burst.duration_s:g} s of blackout on the sender's link):",
        *(f"  {label:<50}{ms(t)}" for label, t in steps),
        f"RTP packets sent from burst start to PLI: {between}",
    ]


async def keyframes_and_nack(loss_pct: float, short_s: float, long_s: float, seed: int) -> int:
    """Run the three calls and print the table and the timeline."""
    short = Blackout(start_s=BURST_AT_S, duration_s=short_s)
    long = Blackout(start_s=BURST_AT_S, duration_s=long_s)
    runs = [
        (f"random loss {loss_pct:g} %", Impairment(loss=loss_pct / 100, seed=seed), RUN_S, False),
        (
            f"burst {short_s:g} s",
            Impairment(blackouts=(short,), seed=seed),
            max(RUN_S, short.end_s + 2),
            False,
        ),
        (f"burst {long_s:g} s", Impairment(blackouts=(long,), seed=seed), LONG_RUN_CAP_S, True),
    ]
    print(f"{WIDTH}x{HEIGHT} VP8 at {FPS} fps, one way; loss on the sender's link only (media and RTX)")
    header = f"{'run':<22}{'lost':>6}{'NACKs':>7}{'asked':>8}{'resent':>8}{'too old':>9}{'PLIs':>6}{'freeze ms':>10}"
    print(header + "  keyframes sent (why)")
    results = []
    for name, impairment, seconds, until_keyframe in runs:
        counts = await one_run(impairment, seconds, seed, until_keyframe=until_keyframe)
        results.append(counts)
        print(row(name, counts))
    print()
    print("\n".join(timeline(results[-1], long)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the calls and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--loss",
        type=number(0, 30, "%"),
        default=2.0,
        help="random loss of the first run, in %% (default: 2)",
    )
    parser.add_argument(
        "--short-burst",
        type=number(0.1, 8, "s"),
        default=0.5,
        metavar="S",
        help="blackout of the second run (default: 0.5 s)",
    )
    parser.add_argument(
        "--long-burst",
        type=number(0.1, 8, "s"),
        default=3.0,
        metavar="S",
        help="blackout of the third run (default: 3 s)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the loss and of the noise (default: 1)")
    args = parser.parse_args(argv)
    return asyncio.run(keyframes_and_nack(args.loss, args.short_burst, args.long_burst, args.seed))


if __name__ == "__main__":
    sys.exit(main())
