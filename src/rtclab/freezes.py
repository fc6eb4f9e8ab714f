"""Freezes: gaps between rendered (or received) frames longer than Agora's thresholds, and the freeze rate.

One definition for every measurement here: `rtclab.quality.match_video_frames` applies it to the pictures
a call decoded, and `rtclab.stats` offers it next to the getStats() numbers (aiortc reports no freezes).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["FREEZE_THRESHOLDS_MS", "FreezeEvent", "FreezeReport", "freezes"]

FREEZE_THRESHOLDS_MS: dict[str, float] = {"audio": 200.0, "video": 600.0}
"""Gap between two rendered frames above which playback counts as frozen, per kind.

Audio: Agora Analytics' Call Inspector glossary, "audio freezing occurs if audio rendering pauses for over
200 ms" (https://docs.agora.io/en/agora-analytics/reference/call-search-terms). Video: 600 ms, the stall
Agora's analytics count as a video freeze (Agora's RTC SDK itself reports ``totalFrozenTime`` with 500 ms
for streams of 5 fps or more); pass ``threshold_ms`` to `freezes` to use another definition.
"""


@dataclass(frozen=True)
class FreezeEvent:
    """One freeze: playback stood still from ``start_s`` for ``duration_s``.

    Attributes:
        start_s: Time of the last frame before the gap, in seconds.
        duration_s: The whole gap up to the next frame, in seconds (Agora's "freezing duration").
    """

    start_s: float
    duration_s: float


@dataclass(frozen=True)
class FreezeReport:
    """The freezes of one stream and how much of the time it spent frozen.

    Attributes:
        kind: ``"audio"`` or ``"video"``.
        threshold_ms: Gaps longer than this counted as freezes.
        events: The freezes, in time order.
        total_s: Time from the first frame to the last.
        frozen_s: Sum of the freeze durations.
        freeze_rate: ``frozen_s / total_s`` (0 with fewer than two frames): Agora's freeze rate as a fraction.
    """

    kind: str
    threshold_ms: float
    events: tuple[FreezeEvent, ...]
    total_s: float
    frozen_s: float
    freeze_rate: float


def freezes(frame_times_s: Iterable[float], kind: str, *, threshold_ms: float | None = None) -> FreezeReport:
    """Find freezes in the times at which frames were rendered (or received), with Agora's definitions.

    A freeze is a gap between two consecutive frames longer than the kind's threshold
    (`FREEZE_THRESHOLDS_MS`: audio 200 ms, video 600 ms); its duration is the whole gap, and the freeze
    rate is the frozen time over the time from the first frame to the last.

    Args:
        frame_times_s: When each frame came out, in seconds, in any order (for example
            ``time.monotonic()`` at each ``track.recv()``).
        kind: ``"audio"`` or ``"video"``.
        threshold_ms: Another gap threshold in ms, instead of the kind's.

    Returns:
        The freeze events and the freeze rate.

    Raises:
        ValueError: On an unknown kind, a non-positive threshold, or a time that is NaN or infinite.
    """
    if kind not in FREEZE_THRESHOLDS_MS:
        raise ValueError(f"kind must be one of {', '.join(FREEZE_THRESHOLDS_MS)}, got {kind!r}")
    threshold = FREEZE_THRESHOLDS_MS[kind] if threshold_ms is None else float(threshold_ms)
    if not threshold > 0:
        raise ValueError("threshold_ms must be positive")
    times = sorted(float(t) for t in frame_times_s)
    if any(not math.isfinite(t) for t in times):
        raise ValueError("frame times must be finite numbers")
    events = tuple(
        FreezeEvent(start_s=a, duration_s=b - a)
        for a, b in itertools.pairwise(times)
        if (b - a) * 1000 > threshold
    )
    total = times[-1] - times[0] if len(times) >= 2 else 0.0
    frozen = min(math.fsum(event.duration_s for event in events), total)  # rounding may overshoot total
    return FreezeReport(
        kind=kind,
        threshold_ms=threshold,
        events=events,
        total_s=total,
        frozen_s=frozen,
        freeze_rate=frozen / total if total > 0 else 0.0,
    )
