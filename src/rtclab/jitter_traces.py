"""Seeded packet traces of a 20 ms audio stream and the jitter-buffer simulator that plays them.

Traces go through a `rtclab.impair.Link` or a named network profile (`link_trace`, `profile_trace`); the
adaptive buffer plays one (`run_adaptive`), both buffers side by side (`compare`), and `least_delay` picks the
best setting for a late-loss target. Added delay, late loss and concealment are defined in `rtclab.jitter`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal

from rtclab.aiortc_jitter import run_aiortc
from rtclab.impair import Impairment, Link
from rtclab.jitter import (
    EPSILON_S,
    FRAME_MS,
    Action,
    AdaptiveConfig,
    AdaptiveJitterBuffer,
    BufferResult,
    Trace,
)
from rtclab.profiles import Profile, get_profile

__all__ = ["compare", "least_delay", "link_trace", "profile_trace", "run_adaptive"]

_PACKET_BYTES = 300  # aiortc's Opus runs at 96 kbit/s: 240 bytes a frame, plus RTP, SRTP and UDP headers


def link_trace(
    impairment: Impairment,
    seconds: float,
    *,
    frame_ms: float = FRAME_MS,
    packet_bytes: int = _PACKET_BYTES,
) -> Trace:
    """Send one audio packet every ``frame_ms`` through a `rtclab.impair.Link` and record when each arrives.

    The link's own seed makes the trace reproducible: the same impairment gives the same trace.

    Args:
        impairment: Delay, jitter (with or without reordering), random or burst loss, rate limit, blackouts.
        seconds: Length of the stream, s.
        frame_ms: Send interval and frame duration, ms.
        packet_bytes: Size of each packet on the wire, bytes (matters only with a rate limit).

    Returns:
        The trace, sent times from 0.
    """
    if not seconds > 0:
        raise ValueError("seconds must be positive")
    link = Link(impairment)
    f = frame_ms / 1000
    count = max(1, round(seconds / f))
    sent = tuple(i * f for i in range(count))
    arrivals = tuple(link.send(s, packet_bytes).deliver_s for s in sent)
    return Trace(frame_ms, sent, arrivals)


def profile_trace(
    profile: str | Profile,
    seconds: float,
    *,
    seed: int = 0,
    direction: Literal["downlink", "uplink"] = "downlink",
    reorder: bool = False,
    frame_ms: float = FRAME_MS,
) -> Trace:
    """A trace through one direction of a named network profile (`rtclab.profiles`).

    Args:
        profile: A built-in profile name (``"loadero-3g"``), a profile file, or a `rtclab.profiles.Profile`.
        seconds: Length of the stream, s.
        seed: Seed of the link's random draws.
        direction: ``"downlink"`` (what the listener receives; the default) or ``"uplink"``.
        reorder: Let jitter reorder packets (each keeps its own delay) instead of queueing them in order.
        frame_ms: Frame duration, ms.

    Returns:
        The trace.
    """
    chosen = get_profile(profile) if isinstance(profile, str) else profile
    if direction not in ("downlink", "uplink"):
        raise ValueError("direction must be 'downlink' or 'uplink'")
    impairment = (
        chosen.downlink_impairment(seed) if direction == "downlink" else chosen.uplink_impairment(seed)
    )
    return link_trace(dataclasses.replace(impairment, reorder=reorder), seconds, frame_ms=frame_ms)


def run_adaptive(
    trace: Trace, config: AdaptiveConfig | None = None, *, name: str | None = None
) -> BufferResult:
    """Play a trace through `AdaptiveJitterBuffer`, ticking every frame from the first arrival on.

    Args:
        trace: The packet trace.
        config: Buffer settings; its ``frame_ms`` is replaced by the trace's.
        name: Label of the result (default ``"adaptive q=<quantile>"``).

    Returns:
        Added delay, late loss and concealment over the scored frames (`rtclab.jitter.Trace.scored_frames`).
    """
    config = dataclasses.replace(config or AdaptiveConfig(), frame_ms=trace.frame_ms)
    name = name or f"adaptive q={config.quantile:g}"
    scored = trace.scored_frames
    arrivals = trace.arrival_order()
    if not arrivals:
        return BufferResult.from_playout(name, trace, scored, {}, scored)
    buffer = AdaptiveJitterBuffer(config)
    f = trace.frame_ms / 1000
    t0 = arrivals[0][0]
    played: dict[int, float] = {}
    synthesized = 0
    j = 0
    k = 0
    while True:
        now = t0 + k * f
        while j < len(arrivals) and arrivals[j][0] <= now + EPSILON_S:
            buffer.put(arrivals[j][1], arrivals[j][0])
            j += 1
        before = buffer.next_index
        playout = buffer.tick(now)
        if playout.action in (Action.NORMAL, Action.ACCELERATE):
            assert playout.index is not None
            played[playout.index] = now
        elif playout.action is not Action.IDLE and before is not None and before < scored:
            synthesized += 1
        after = buffer.next_index
        if after is not None and after >= scored:
            break
        k += 1
    return BufferResult.from_playout(name, trace, scored, played, synthesized)


def compare(
    trace: Trace, configs: Sequence[AdaptiveConfig] = (AdaptiveConfig(),), *, sound_card: bool = False
) -> list[BufferResult]:
    """aiortc's buffer and the adaptive one (once per config) on the same trace.

    Args:
        trace: The packet trace.
        configs: Adaptive settings to try (e.g. several quantiles, to draw a delay/late-loss curve).
        sound_card: Also give aiortc's output played on a 20 ms clock (`run_aiortc`), right after aiortc.

    Returns:
        aiortc's result first (then aiortc + sound card if asked), then one per config, in order.
    """
    fixed = [run_aiortc(trace)] + ([run_aiortc(trace, sound_card=True)] if sound_card else [])
    return [*fixed, *(run_adaptive(trace, config) for config in configs)]


def least_delay(results: Sequence[BufferResult], max_late_loss_rate: float) -> BufferResult | None:
    """The result with the least mean added delay among those whose late loss is at most a given rate.

    Args:
        results: Results to choose from (e.g. an adaptive sweep).
        max_late_loss_rate: Highest acceptable late-loss rate, 0-1 (e.g. aiortc's own).

    Returns:
        That result, or None when none qualifies.
    """
    eligible = [r for r in results if r.late_loss_rate <= max_late_loss_rate]
    return min(eligible, key=lambda r: r.mean_added_delay_ms, default=None)
