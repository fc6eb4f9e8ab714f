"""What a video encoder costs: CPU per frame, bitrate and quality of VP8 and H.264 presets, and a resolution ladder.

The script draws a short moving clip (a panning texture with a moving square, the same scene at every size),
encodes it with PyAV, decodes it again and prints two tables:

* presets at 640x360 and a 600 kbit/s target: libvpx (VP8) with its defaults and in realtime mode, libx264
  (H.264) with its defaults and with ultrafast + zerolatency, and aiortc's own VP8 and H.264 encoders (the
  settings every aiortc call uses);
* a ladder of three sizes (320x180, 640x360, 1280x720) with aiortc's two encoders, each with a target
  bitrate for its size, after aiortc's clamps (VP8 250 k-1.5 Mbit/s, H.264 500 k-3 Mbit/s).

For each run: CPU time per frame (the process's CPU time, so every encoder thread counts and other programs
on the machine do not), the bitrate that came out, how many frames went in before the first packet came out
(frames the encoder holds back add latency), and SSIM and PSNR of the decoded luma against the source
(rtclab.quality). Nothing is sent over a network.

Run it:

    python samples/sdk/video_encoders.py
    python samples/sdk/video_encoders.py --frames 60
"""

from __future__ import annotations

import argparse
import fractions
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload

from rtclab.arguments import whole_number
from rtclab.quality import psnr, ssim

FPS = 30
MIN_FRAMES, MAX_FRAMES = 10, 300
SCORED_FRAMES = (
    6  # frames scored with SSIM/PSNR per run, spread over the clip (SSIM at 720p is slow in numpy)
)

# --8<-- [start:settings]
# (codec, setting, encoder name in FFmpeg, its options). "aiortc" means aiortc's own encoder class, with the
# settings aiortc hard-codes: VP8 realtime, cpu-used -6, CBR; x264 Baseline, tune zerolatency, preset medium.
PRESETS = (
    ("VP8", "libvpx defaults", "libvpx", {}),
    ("VP8", "realtime, cpu-used 8", "libvpx", {"deadline": "realtime", "cpu-used": "8"}),
    ("VP8", "aiortc's encoder", "aiortc", {}),
    ("H.264", "libx264 defaults", "libx264", {}),
    ("H.264", "ultrafast + zerolatency", "libx264", {"preset": "ultrafast", "tune": "zerolatency"}),
    ("H.264", "aiortc's encoder", "aiortc", {}),
)
PRESET_SIZE = (640, 360, 600)  # width, height, target kbit/s
# A ladder in the range vendors publish for 30 fps camera video (see the page for their tables).
LADDER = ((320, 180, 200), (640, 360, 600), (1280, 720, 1700))
# --8<-- [end:settings]


def scene(width: int, height: int, index: int) -> npt.NDArray[np.uint8]:
    """Frame ``index`` of the clip: a texture panning left and a white square crossing it, as RGB.

    Coordinates are relative to the frame, so every size shows the same picture with more or less detail.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u = x / width + index * 0.004  # the pan: 0.4 % of the width per frame
    v = y / height
    image = np.empty((height, width, 3), np.float32)
    for channel, (a, b, phase) in enumerate(((7, 3, 0.0), (5, 11, 1.0), (13, 6, 2.0))):
        image[..., channel] = (
            128
            + 60 * np.sin(2 * np.pi * (a * u + b * v) + phase)
            + 30 * np.sin(2 * np.pi * 6 * a * u * v + phase)
        )
    side = height // 5
    left = int((index * 0.01 % 1) * (width - side))
    top = (height - side) // 2
    image[top : top + side, left : left + side] = 255
    return np.clip(image, 0, 255).astype(np.uint8)


@dataclass
class Run:
    """What one encoder did with the clip."""

    codec: str
    setting: str
    width: int
    height: int
    target_kbps: int
    applied_kbps: int  # the target the encoder was given (aiortc clamps it)
    cpu_ms: float  # CPU time per frame
    kbps: float  # bitrate that came out
    delay_frames: int  # frames fed before the first packet came out
    ssim: float
    psnr_db: float


def clip(width: int, height: int, frames: int) -> list[av.VideoFrame]:
    """The clip as yuv420p frames, the format both encoders take."""
    out = []
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(scene(width, height, index), format="rgb24").reformat(
            format="yuv420p"
        )
        frame.pts = index * 3000  # 90 kHz clock, 30 fps
        frame.time_base = fractions.Fraction(1, 90_000)
        out.append(frame)
    return out


# --8<-- [start:encode]
def ffmpeg_encoder(name: str, options: dict[str, str], width: int, height: int, kbps: int):
    """An encoder function for PyAV's ``name`` with ``options``: frame (or None to flush) -> bitstream chunks."""
    codec = av.CodecContext.create(name, "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = kbps * 1000
    codec.framerate = fractions.Fraction(FPS)
    codec.time_base = fractions.Fraction(1, FPS)
    codec.options = options

    def encode(frame: av.VideoFrame | None) -> list[bytes]:
        if frame is not None:
            frame = frame.reformat()  # a copy, with pts in the codec's time base
            frame.pts, frame.time_base = frame.pts // 3000, codec.time_base
        return [bytes(packet) for packet in codec.encode(frame)]

    return encode, kbps


def aiortc_encoder(codec: str, kbps: int):
    """aiortc's own encoder, as an RTCRtpSender drives it: encode(frame) -> RTP payloads, depayloaded here."""
    encoder = Vp8Encoder() if codec == "VP8" else H264Encoder()
    encoder.target_bitrate = kbps * 1000  # what a REMB message does; aiortc clamps it
    depayload = vp8_depayload if codec == "VP8" else h264_depayload

    def encode(frame: av.VideoFrame | None) -> list[bytes]:
        if frame is None:  # aiortc never flushes: every frame comes out at once
            return []
        payloads, _timestamp = encoder.encode(frame)
        return [b"".join(depayload(p) for p in payloads)] if payloads else []

    return encode, encoder.target_bitrate // 1000


def measure(encode: Callable[[av.VideoFrame | None], list[bytes]], frames: list[av.VideoFrame]):
    """Feed the clip; return (CPU s, chunks, frames fed before the first chunk came out)."""
    chunks: list[bytes] = []
    delay = None
    start = time.process_time()  # CPU time of this process: every encoder thread, not other programs
    for index, frame in enumerate(frames):
        chunks += encode(frame)
        if chunks and delay is None:
            delay = index
    chunks += encode(None)
    return time.process_time() - start, chunks, len(frames) if delay is None else delay


# --8<-- [end:encode]


def decode(codec: str, chunks: list[bytes]) -> list[av.VideoFrame]:
    """Decode a bitstream with the decoder aiortc uses for that codec."""
    decoder = av.CodecContext.create("libvpx" if codec == "VP8" else "h264", "r")
    out = []
    for chunk in chunks:
        out += decoder.decode(av.Packet(chunk))
    out += decoder.decode(None)
    return out


def run(
    codec: str, setting: str, name: str, options: dict[str, str], size: tuple[int, int, int], n: int
) -> Run:
    """Encode the clip at ``size`` with one setting, decode it, and score it."""
    width, height, kbps = size
    frames = clip(width, height, n)
    if name == "aiortc":
        encode, applied = aiortc_encoder(codec, kbps)
    else:
        encode, applied = ffmpeg_encoder(name, options, width, height, kbps)
    cpu_s, chunks, delay = measure(encode, frames)
    decoded = decode(codec, chunks)
    if len(decoded) != len(frames):
        raise RuntimeError(f"{codec} {setting}: {len(decoded)} frames decoded out of {len(frames)}")
    # --8<-- [start:score]
    picks = np.linspace(1, n - 1, SCORED_FRAMES).astype(int)  # frame 0 is a keyframe: skip it
    pairs = [(frames[i].to_ndarray(format="gray"), decoded[i].to_ndarray(format="gray")) for i in picks]
    quality_ssim = statistics.fmean(ssim(ref, deg) for ref, deg in pairs)
    quality_psnr = statistics.fmean(min(psnr(ref, deg), 99.0) for ref, deg in pairs)
    kbps_out = sum(len(c) for c in chunks) * 8 / (n / FPS) / 1000
    # --8<-- [end:score]
    return Run(
        codec,
        setting,
        width,
        height,
        kbps,
        applied,
        cpu_s / n * 1000,
        kbps_out,
        delay,
        quality_ssim,
        quality_psnr,
    )


def table(title: str, runs: list[Run]) -> str:
    """Format runs as one table."""
    lines = [
        title,
        f"{'codec':<6}{'setting':<25}{'size':>10}{'target kbps':>13}{'CPU ms/frame':>14}"
        f"{'kbps out':>10}{'held back':>11}{'SSIM':>7}{'PSNR dB':>9}",
    ]
    for r in runs:
        target = (
            f"{r.target_kbps}" if r.applied_kbps == r.target_kbps else f"{r.target_kbps}->{r.applied_kbps}"
        )
        lines.append(
            f"{r.codec:<6}{r.setting:<25}{f'{r.width}x{r.height}':>10}{target:>13}{r.cpu_ms:>14.1f}"
            f"{r.kbps:>10.0f}{r.delay_frames:>11d}{r.ssim:>7.3f}{r.psnr_db:>9.1f}"
        )
    return "\n".join(lines)


def video_encoders(frames: int) -> int:
    """Run both tables and print them."""
    print(f"clip: {frames} frames at {FPS} fps (a panning texture and a moving square), encoded then decoded")
    print(
        "CPU ms/frame: process CPU time (all encoder threads); held back: frames in before the first packet out"
    )
    print()
    presets = [run(c, s, name, opts, PRESET_SIZE, frames) for c, s, name, opts in PRESETS]
    print(table(f"presets at {PRESET_SIZE[0]}x{PRESET_SIZE[1]}, target {PRESET_SIZE[2]} kbit/s:", presets))
    print()
    # The middle rung is the preset table's size: reuse those two runs.
    done = {(r.codec, r.width): r for r in presets if r.setting == "aiortc's encoder"}
    ladder = [
        done.get((codec, size[0])) or run(codec, "aiortc's encoder", "aiortc", {}, size, frames)
        for size in LADDER
        for codec in ("VP8", "H.264")
    ]
    print(table("ladder, aiortc's encoders (target -> what aiortc's clamp let through):", ladder))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the encoders and return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--frames",
        type=whole_number(MIN_FRAMES, MAX_FRAMES),
        default=30,
        help=f"frames in the clip, at {FPS} fps (default: %(default)s, {MIN_FRAMES} to {MAX_FRAMES})",
    )
    args = parser.parse_args(argv)
    return video_encoders(args.frames)


if __name__ == "__main__":
    sys.exit(main())
