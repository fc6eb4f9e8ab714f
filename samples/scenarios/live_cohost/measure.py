"""What the runner computes from what the simulated people received: delays read from the frame counters drawn
in each tile, the co-host's offset in the composite, voice delays found by cross-correlation in the mix, and
the SSIM of the received composite against the ideal composite of the two sources.

All times are ``time.monotonic()`` seconds of the runner's process, where every simulated person lives, so a
capture time and an arrival time compare directly.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence

import numpy as np
from client import Seen
from compositor import Layout, compose

from rtclab.quality import align, match_video_frames, ssim
from rtclab.recording import AudioRecorder
from rtclab.signals import ColorBarsVideoTrack, PacedAudioTrack, luma

__all__ = ["median", "picture_delays", "picture_offsets", "composite_ssim", "voice_delays"]


def median(values: Iterable[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def _in(at: float, window: tuple[float, float]) -> bool:
    return window[0] <= at < window[1]


# --8<-- [start:delays]
def picture_delays(
    camera: ColorBarsVideoTrack, seen: Sequence[tuple[int | None, float]], window: tuple[float, float]
) -> list[float]:
    """Capture-to-screen delay (ms) of each of ``camera``'s frames that first appeared inside ``window``."""
    received = [(counter, at) for counter, at in seen if _in(at, window)]
    sent = [(index, at) for index, at in camera.sent_times if window[0] - 5 <= at < window[1]]
    report = match_video_frames(sent, received)
    return [d.delay_ms for d in report.deliveries]


def picture_offsets(
    host: ColorBarsVideoTrack,
    cohost: ColorBarsVideoTrack,
    frames: Sequence[Seen],
    window: tuple[float, float],
) -> list[float]:
    """How much older the co-host's picture is than the host's in the same composite frame (ms, > 0: later)."""
    host_sent, cohost_sent = dict(host.sent_times), dict(cohost.sent_times)
    offsets = []
    for frame in frames:
        h, c = frame.slots
        if _in(frame.at, window) and h in host_sent and c in cohost_sent:
            offsets.append((host_sent[h] - cohost_sent[c]) * 1000)
    return offsets


# --8<-- [end:delays]


# --8<-- [start:voices]
def voice_delays(
    recording: AudioRecorder,
    voice: PacedAudioTrack,
    window: tuple[float, float],
    *,
    piece_s: float = 1.0,
    min_correlation: float = 0.3,
) -> list[float]:
    """Mouth-to-ear delay (ms) of one voice inside a recording that may hold a mix of several.

    The recording is cut into ``piece_s`` pieces; each is located in the voice's own signal by cross-correlation
    (`rtclab.quality.align`), searching only the 4 s before the piece arrived. In a mix of two equal voices the
    match is weaker than alone (about 0.7 while both talk), and a piece where this voice pauses does not match
    at all: those are skipped.
    """
    if voice.started_at is None or recording.duration_s < 1.5:
        return []
    rate = recording.sample_rate
    samples, offsets, arrivals = recording.samples, recording.frame_offsets, recording.arrival_s
    reference = voice.reference(float(arrivals[-1]) - voice.started_at + 1.0)
    delays = []
    size = int(piece_s * rate)
    for start in range(0, len(offsets), max(1, round(piece_s / 0.020))):  # 20 ms frames
        first, arrived = int(offsets[start]), float(arrivals[start])
        piece = samples[first : first + size]
        if piece.size < size or not _in(arrived, window) or not piece.any():
            continue
        lo = max(0, int((arrived - 4.0 - voice.started_at) * rate))
        hi = min(reference.size, int((arrived - voice.started_at) * rate) + size)
        if hi - lo < size or not reference[lo:hi].any():
            continue
        match = align(reference[lo:hi], piece, rate)
        if match.correlation >= min_correlation and match.delay_samples <= 0:
            played = (
                voice.started_at + (lo - match.delay_samples) / rate
            )  # when the piece's first sample was sent
            delays.append((arrived - played) * 1000)
    return delays


# --8<-- [end:voices]


# --8<-- [start:ssim]
def composite_ssim(
    layout: Layout,
    host: ColorBarsVideoTrack,
    cohost: ColorBarsVideoTrack,
    frames: Sequence[Seen],
    window: tuple[float, float],
    limit: int = 20,
) -> list[tuple[float, float, float]]:
    """SSIM of received composites against the ideal composite of the very source frames they show:
    (whole picture, host's tile, co-host's tile) per scored frame.

    The counters say which host frame and which co-host frame a composite holds; the sources regenerate those
    frames exactly (`ColorBarsVideoTrack.image`), and `compose` lays them out as the server does, without any
    codec. So the score covers everything lossy in between: two encodes, two decodes and the scaling.
    """
    kept = [f for f in frames if f.image is not None and _in(f.at, window) and None not in f.slots]
    step = max(1, len(kept) // limit)
    scores = []
    for frame in kept[::step][:limit]:
        h, c = frame.slots
        ideal = luma(compose(layout, [host.image(h), cohost.image(c)]))
        tiles = [
            ssim(ideal[y : y + height, x : x + width], frame.image[y : y + height, x : x + width])
            for x, y, width, height in layout.regions()
        ]
        scores.append((ssim(ideal, frame.image), tiles[0], tiles[1]))
    return scores


# --8<-- [end:ssim]


def percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None
