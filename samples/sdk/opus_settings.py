"""Opus settings, measured: what bitrate, frame size and DTX do to the bytes you send and to speech quality.

Encodes a speech-like signal with libopus, decodes it again and scores the result with PESQ (ITU-T P.862.2,
wideband), for three sweeps: target bitrate at 20 ms frames, frame size at one bitrate, and DTX off and on for
a talker who is silent half the time. No network is involved: this is the codec alone.

libopus comes from PyAV's wheel (the `av.libs/libopus-*.so` file), called through ctypes by `rtclab.opus`,
because FFmpeg's wrapper, which aiortc uses, has no DTX switch.

Run it:

    .venv/bin/python samples/sdk/opus_settings.py
    .venv/bin/python samples/sdk/opus_settings.py --seconds 16 --seed 3
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from rtclab.arguments import whole_number

# --8<-- [start:binding]
# libopus itself, called through ctypes from the copy in PyAV's wheel (see rtclab.opus for the binding)
from rtclab.opus import LibopusNotFoundError, OpusDecoder, OpusEncoder, libopus_version, pcm16

# --8<-- [end:binding]
from rtclab.quality import pesq_mos
from rtclab.signals import SpeechLikeSignal

RATE = 48_000
BITRATES_KBPS = (6, 12, 16, 24, 32, 64)
FRAME_SIZES_MS = (10, 20, 40, 60)
FRAME_SWEEP_KBPS = 24
DTX_KBPS = 24
# IPv4 (20 bytes) + UDP (8) + RTP (12) headers on every packet; SRTP adds its authentication tag on top.
HEADER_BYTES = 40
MIN_SECONDS, MAX_SECONDS = 4, 30


@dataclass(frozen=True)
class Result:
    """One encode-decode run: what was sent and how it scored."""

    packets_sent: int
    payload_bytes: int
    seconds: float
    pesq: float
    lookahead_ms: float
    sent_per_frame: list[int]  # bytes sent for each frame, 0 where DTX sent nothing

    @property
    def payload_kbps(self) -> float:
        return self.payload_bytes * 8 / self.seconds / 1000

    @property
    def wire_kbps(self) -> float:
        return (self.payload_bytes + HEADER_BYTES * self.packets_sent) * 8 / self.seconds / 1000


# --8<-- [start:encode]
def run_codec(speech: npt.NDArray[np.float32], kbps: float, frame_ms: int, *, dtx: bool = False) -> Result:
    """Encode ``speech`` frame by frame, 'send' every packet DTX does not drop, decode, score with PESQ."""
    encoder = OpusEncoder(int(kbps * 1000), frame_ms=frame_ms, dtx=dtx)
    decoder = OpusDecoder(frame_ms=frame_ms)
    frame = encoder.frame_samples
    pcm = pcm16(speech[: len(speech) // frame * frame])
    decoded, sent = [], []
    for start in range(0, len(pcm), frame):
        packet = encoder.encode(pcm[start : start + frame])
        # opus.h: "If the return value is 2 bytes or less, then the packet does not need to be transmitted
        # (DTX)." The receiver sees a gap and lets the decoder fill it (comfort noise).
        if len(packet) <= 2:
            sent.append(0)
            decoded.append(decoder.decode(None))
        else:
            sent.append(len(packet))
            decoded.append(decoder.decode(packet))
    lookahead = encoder.lookahead_samples
    out = np.concatenate(decoded)[lookahead:]  # the decoder's output starts `lookahead` samples late
    reference = pcm[: len(out)] / 32768
    return Result(
        packets_sent=sum(1 for size in sent if size),
        payload_bytes=sum(sent),
        seconds=len(pcm) / RATE,
        pesq=pesq_mos(reference, out / 32768, RATE, "wb"),
        lookahead_ms=lookahead * 1000 / RATE,
        sent_per_frame=sent,
    )


# --8<-- [end:encode]


def talk_then_listen(seconds: float, seed: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.bool_]]:
    """Speech and quiet room noise in turns of two seconds; also returns, per sample, 'is this a pause'."""
    voice = SpeechLikeSignal(RATE, seed=seed)
    noise = np.random.default_rng(seed)
    parts, pause = [], []
    turn = 2 * RATE
    for i in range(int(seconds * RATE) // turn):
        if i % 2 == 0:
            parts.append(voice.read(turn))
        else:
            parts.append((noise.standard_normal(turn) * 3e-4).astype(np.float32))  # about -70 dBFS
        pause.append(np.full(turn, i % 2 == 1))
    return np.concatenate(parts), np.concatenate(pause)


# --8<-- [start:tables]
def bitrate_table(speech: npt.NDArray[np.float32]) -> list[str]:
    lines = [
        "1. Target bitrate (20 ms frames, DTX off)",
        f"{'target kbps':>11}  {'payload kbps':>12}  {'on the wire kbps':>16}  {'PESQ-WB':>7}",
    ]
    for kbps in BITRATES_KBPS:
        r = run_codec(speech, kbps, 20)
        lines.append(f"{kbps:>11}  {r.payload_kbps:>12.1f}  {r.wire_kbps:>16.1f}  {r.pesq:>7.2f}")
    return lines


def frame_table(speech: npt.NDArray[np.float32]) -> list[str]:
    lines = [
        f"2. Frame size (target {FRAME_SWEEP_KBPS} kbps, DTX off)",
        f"{'frame ms':>8}  {'packets/s':>9}  {'payload kbps':>12}  {'on the wire kbps':>16}  "
        f"{'codec delay ms':>14}  {'PESQ-WB':>7}",
    ]
    for frame_ms in FRAME_SIZES_MS:
        r = run_codec(speech, FRAME_SWEEP_KBPS, frame_ms)
        delay = frame_ms + r.lookahead_ms  # a whole frame must be captured before it is encoded
        lines.append(
            f"{frame_ms:>8}  {r.packets_sent / r.seconds:>9.0f}  {r.payload_kbps:>12.1f}  {r.wire_kbps:>16.1f}  "
            f"{delay:>14.1f}  {r.pesq:>7.2f}"
        )
    return lines


def dtx_table(speech: npt.NDArray[np.float32], pause: npt.NDArray[np.bool_]) -> list[str]:
    frame = RATE * 20 // 1000
    in_pause = pause[: len(pause) // frame * frame].reshape(-1, frame).all(axis=1)
    lines = [
        f"3. DTX (target {DTX_KBPS} kbps, 20 ms frames; talk 2 s, pause 2 s, in turns)",
        f"{'DTX':>3}  {'packets/s':>9}  {'talking kbps':>12}  {'pauses kbps':>11}  {'on the wire kbps':>16}  "
        f"{'PESQ-WB':>7}",
    ]
    for dtx in (False, True):
        r = run_codec(speech, DTX_KBPS, 20, dtx=dtx)
        sent = np.array(r.sent_per_frame)
        mask = in_pause[: len(sent)]
        half = r.seconds * mask.mean(), r.seconds * (1 - mask.mean())
        talking = sent[~mask].sum() * 8 / half[1] / 1000
        pauses = sent[mask].sum() * 8 / half[0] / 1000
        lines.append(
            f"{'on' if dtx else 'off':>3}  {r.packets_sent / r.seconds:>9.1f}  {talking:>12.1f}  {pauses:>11.1f}  "
            f"{r.wire_kbps:>16.1f}  {r.pesq:>7.2f}"
        )
    return lines


# --8<-- [end:tables]


def opus_settings(seconds: int, seed: int) -> int:
    try:
        version = libopus_version()
    except LibopusNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    speech = SpeechLikeSignal(RATE, seed=seed).read(seconds * RATE)
    print(f"{version}, mono 48 kHz, VoIP mode; {seconds} s of speech-like signal (seed {seed})")
    print(
        f'"on the wire" adds {HEADER_BYTES} bytes of IPv4/UDP/RTP headers per packet (SRTP adds its tag on top)'
    )
    print("PESQ-WB: ITU-T P.862.2 MOS-LQO of the decoded signal against the input (1.04-4.64)")
    print()
    print("\n".join(bitrate_table(speech)))
    print()
    print("\n".join(frame_table(speech)))
    print()
    talk, pause = talk_then_listen(max(seconds, 8), seed)
    print("\n".join(dtx_table(talk, pause)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the three sweeps and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=whole_number(MIN_SECONDS, MAX_SECONDS),
        default=8,
        help=f"length of the speech-like signal (default: %(default)s, {MIN_SECONDS} to {MAX_SECONDS})",
    )
    parser.add_argument(
        "--seed",
        type=whole_number(0, 2**31 - 1),
        default=1,
        help="seed of the speech-like signal (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    return opus_settings(args.seconds, args.seed)


if __name__ == "__main__":
    sys.exit(main())
