"""Opus in-band FEC, measured: who sends it, who decodes it, and what it buys under random and bursty loss.

Part 1 encodes a speech-like signal with aiortc's own Opus encoder, as shipped and with FFmpeg's `fec` and
`packet_loss` options set, and asks libopus which packets carry FEC data (LBRR). Part 2 encodes the same signal
with and without FEC, drops packets with `rtclab.impair` (random loss, then Gilbert-Elliott bursts of the same
average loss), and decodes each stream four ways: leave the gap silent, let the decoder conceal it, or rebuild
the lost frame from the FEC data in the next packet. PESQ (ITU-T P.862.2, wideband) scores each result.

FFmpeg's Opus decoder never decodes FEC data, so the receiving half calls libopus directly, through ctypes
(`rtclab.opus`), from the copy bundled in PyAV's wheel (`av.libs/libopus-*.so`).

Run it:

    .venv/bin/python samples/sdk/opus_fec.py
    .venv/bin/python samples/sdk/opus_fec.py --loss 20 --burst 4 --kbps 32
"""

from __future__ import annotations

import argparse
import fractions
import sys

import av
import numpy as np
import numpy.typing as npt
from aiortc.codecs.opus import OpusEncoder as AiortcOpusEncoder

from rtclab.arguments import number, whole_number
from rtclab.impair import GilbertElliott, Impairment, Link

# libopus itself, called through ctypes from the copy in PyAV's wheel: FFmpeg's decoder cannot decode FEC
from rtclab.opus import LibopusNotFoundError, OpusDecoder, OpusEncoder, has_lbrr, libopus_version, pcm16
from rtclab.quality import pesq_mos
from rtclab.signals import SpeechLikeSignal

RATE = 48_000
FRAME = 960  # 20 ms, the only frame size aiortc sends
FRAME_S = FRAME / RATE


# --8<-- [start:aiortc]
def aiortc_packets(pcm: npt.NDArray[np.int16], options: dict[str, str] | None) -> list[bytes]:
    """Encode with aiortc's OpusEncoder (a PyAV/FFmpeg libopus encoder: 96 kbps, stereo, 20 ms frames).

    ``options`` replaces the FFmpeg options aiortc sets ({"application": "voip"}) before the first encode,
    which is when PyAV opens the codec.
    """
    encoder = AiortcOpusEncoder()
    if options is not None:
        encoder.codec.options = options
    packets: list[bytes] = []
    for start in range(0, len(pcm) - FRAME + 1, FRAME):
        frame = av.AudioFrame.from_ndarray(
            pcm[start : start + FRAME].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts, frame.time_base = RATE, start, fractions.Fraction(1, RATE)
        payloads, _timestamp = encoder.encode(frame)
        packets += payloads
    return packets


# --8<-- [end:aiortc]


def aiortc_table(pcm: npt.NDArray[np.int16], loss_percent: int) -> list[str]:
    lines = [
        "1. Does aiortc's Opus encoder send FEC? (libopus' opus_packet_has_lbrr on every packet)",
        f"{'encoder':<52}  {'packets with FEC':>16}  {'mean bytes':>10}",
    ]
    variants = [
        ("aiortc OpusEncoder as shipped", None),
        (
            f'same, options fec="1", packet_loss="{loss_percent}"',
            {"application": "voip", "fec": "1", "packet_loss": str(loss_percent)},
        ),
    ]
    for name, options in variants:
        packets = aiortc_packets(pcm, options)
        with_fec = sum(has_lbrr(p) for p in packets)
        mean = sum(map(len, packets)) / len(packets)
        lines.append(f"{name:<52}  {f'{with_fec} / {len(packets)}':>16}  {mean:>10.0f}")
    return lines


# --8<-- [start:receiver]
def receive(packets: list[bytes], arrived: list[bool], mode: str) -> tuple[npt.NDArray[np.int16], int]:
    """Play a packet stream with some packets missing; return the audio and how many lost frames FEC rebuilt.

    mode "silence": a missing frame is left silent (no concealment at all).
    mode "plc": the decoder conceals a missing frame (opus_decode with no packet).
    mode "fec": if the next packet arrived and carries FEC data, decode the lost frame from it
    (opus_decode(next packet, decode_fec=1)); otherwise conceal. The receiver must hold one packet
    back to do this: 20 ms more jitter-buffer delay.
    """
    decoder = OpusDecoder(frame_ms=20)
    out, rebuilt = [], 0
    for i, packet in enumerate(packets):
        if arrived[i]:
            out.append(decoder.decode(packet))
        elif mode == "silence":
            out.append(np.zeros(FRAME, dtype=np.int16))
        elif mode == "fec" and i + 1 < len(packets) and arrived[i + 1] and has_lbrr(packets[i + 1]):
            out.append(decoder.decode(packets[i + 1], fec=True))
            rebuilt += 1
        else:
            out.append(decoder.decode(None))
    return np.concatenate(out), rebuilt


# --8<-- [end:receiver]


# --8<-- [start:loss]
def loss_pattern(impairment: Impairment, count: int) -> list[bool]:
    """Which of ``count`` packets, sent every 20 ms, the impaired link delivers."""
    link = Link(impairment)
    return [link.send(i * FRAME_S, 100).delivered for i in range(count)]


def bursty(loss: float, mean_burst: float, seed: int) -> Impairment:
    """Gilbert-Elliott loss with average ``loss`` in bursts of ``mean_burst`` packets on average."""
    r = 1 / mean_burst  # leave the bad state (where every packet is lost) after 1/r packets on average
    p = loss * r / (1 - loss)  # so that p / (p + r), the share of time spent in the bad state, is `loss`
    return Impairment(burst=GilbertElliott(p=p, r=r), seed=seed)


# --8<-- [end:loss]


def fec_table(pcm: npt.NDArray[np.int16], kbps: int, loss_percent: int, burst: float, seed: int) -> list[str]:
    loss = loss_percent / 100
    plain = OpusEncoder(kbps * 1000)
    # The encoder only spends bits on FEC when it expects loss: tell it what the network does.
    with_fec = OpusEncoder(kbps * 1000, fec=True, packet_loss_percent=loss_percent)
    frames = [pcm[i : i + FRAME] for i in range(0, len(pcm) - FRAME + 1, FRAME)]
    streams = {False: [plain.encode(f) for f in frames], True: [with_fec.encode(f) for f in frames]}
    lookahead = plain.lookahead_samples
    reference = pcm[: len(frames) * FRAME] / 32768

    n = len(frames)
    columns = {
        "no loss": [True] * n,
        f"random {loss_percent} %": loss_pattern(Impairment(loss=loss, seed=seed), n),
        f"bursty {loss_percent} %": loss_pattern(bursty(loss, burst, seed), n),
    }
    rows = [
        ("no FEC: gap left silent", False, "silence"),
        ("no FEC: decoder conceals (PLC)", False, "plc"),
        ("FEC sent, receiver ignores it (PLC)", True, "plc"),
        ("FEC sent and decoded", True, "fec"),
    ]
    width = 36
    lines = [
        f"2. Loss, {kbps} kbps, 20 ms frames, {n} packets; bursty = Gilbert-Elliott, mean burst {burst:g} packets",
        f"{'PESQ-WB':<{width}}" + "".join(f"{name:>16}" for name in columns),
        f"{'packets lost':<{width}}" + "".join(f"{arrived.count(False):>16}" for arrived in columns.values()),
    ]
    rebuilt_row = ""
    for label, fec_sent, mode in rows:
        cells = ""
        for arrived in columns.values():
            audio, rebuilt = receive(streams[fec_sent], arrived, mode)
            score = pesq_mos(reference[: len(audio) - lookahead], audio[lookahead:] / 32768, RATE, "wb")
            cells += f"{score:>16.2f}"
            if mode == "fec":
                # FEC can only help when the next packet arrived: count those losses.
                single = sum(1 for i in range(n - 1) if not arrived[i] and arrived[i + 1])
                rebuilt_row += f"{f'{rebuilt} of {single}' if single else '-':>16}"
        lines.append(f"{label:<{width}}{cells}")
    lines.append(f"{'rebuilt by FEC / lost, next arrived':<{width}}{rebuilt_row}")
    payload = {fec: sum(map(len, s)) * 8 / (n * FRAME_S) / 1000 for fec, s in streams.items()}
    carrying = sum(has_lbrr(p) for p in streams[True])
    lines.append(
        f"payload kbps: {payload[False]:.1f} without FEC, {payload[True]:.1f} with FEC (same target); "
        f"packets carrying FEC: {carrying} / {n}"
    )
    return lines


def opus_fec(seconds: int, kbps: int, loss_percent: int, burst: float, seed: int) -> int:
    try:
        version = libopus_version()
    except LibopusNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    speech = SpeechLikeSignal(RATE, seed=seed).read(seconds * RATE)
    pcm = pcm16(speech)
    print(f"{version}; {seconds} s of speech-like signal (seed {seed})")
    print("PESQ-WB: ITU-T P.862.2 MOS-LQO of the received signal against the input (1.04-4.64)")
    print()
    print("\n".join(aiortc_table(pcm, loss_percent)))
    print()
    print("\n".join(fec_table(pcm, kbps, loss_percent, burst, seed)))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run both parts and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--loss", type=whole_number(1, 40), default=10, metavar="PERCENT",
        help="average packet loss, and the loss the FEC encoder is told to expect (default: %(default)s, 1 to 40)",
    )  # fmt: skip
    parser.add_argument(
        "--burst", type=number(1, 10), default=3, metavar="PACKETS",
        help="mean length of a loss burst in the bursty column (default: %(default)s, 1 to 10)",
    )  # fmt: skip
    parser.add_argument(
        "--kbps", type=whole_number(8, 64), default=24,
        help="target bitrate of both encoders in part 2 (default: %(default)s, 8 to 64)",
    )  # fmt: skip
    parser.add_argument(
        "--seconds", type=whole_number(4, 30), default=10,
        help="length of the speech-like signal (default: %(default)s, 4 to 30)",
    )  # fmt: skip
    parser.add_argument(
        "--seed",
        type=whole_number(0, 2**31 - 1),
        default=0,
        help="seed of signal and loss (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    return opus_fec(args.seconds, args.kbps, args.loss, args.burst, args.seed)


if __name__ == "__main__":
    sys.exit(main())
