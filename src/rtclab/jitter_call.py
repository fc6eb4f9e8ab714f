"""A loopback call whose callee hears its audio through a chosen jitter buffer (`JitterBufferCall`), measured
and replayed through the simulator on the call's own arrivals (`measure_in_call`): the check that
`rtclab.jitter_traces` tells the truth about a real aiortc receiver.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from rtclab.aiortc_jitter import AiortcBufferProbe, run_aiortc
from rtclab.call import LoopbackCall
from rtclab.impair import Impairment
from rtclab.jitter import AdaptiveConfig, AdaptivePlayout, BufferResult, install_jitter_buffer
from rtclab.jitter_traces import run_adaptive
from rtclab.signals import SpeechLikeAudioTrack

if TYPE_CHECKING:
    from aiortc.mediastreams import MediaStreamTrack

__all__ = ["CallMeasurement", "JitterBufferCall", "measure_in_call"]


class JitterBufferCall(LoopbackCall):
    """A `rtclab.call.LoopbackCall` whose callee receives its audio through a chosen jitter buffer.

    ``buffer="adaptive"`` installs `AdaptivePlayout`; ``buffer="aiortc"`` keeps aiortc's buffer behind an
    `AiortcBufferProbe`, which only records. The buffer is installed in the callee's ``track`` event (by
    overriding `LoopbackCall`'s private ``_on_track``), before the first RTP packet can arrive.

    Example:
        ```python
        link = Impairment(delay_ms=250, jitter_ms=50, loss=0.005, seed=1)
        async with JitterBufferCall(buffer="adaptive", tracks=[SpeechLikeAudioTrack()], uplink=link) as call:
            await call.run(8)
        print(call.jitter_buffer.result().row())
        ```

    Attributes:
        buffer_kind: ``"adaptive"`` or ``"aiortc"``.
        jitter_buffer: The installed playout or probe (None until the audio track arrives).
    """

    def __init__(
        self,
        *,
        buffer: Literal["adaptive", "aiortc"] = "adaptive",
        config: AdaptiveConfig | None = None,
        **kwargs: Any,
    ) -> None:
        """Prepare the call.

        Args:
            buffer: Which jitter buffer the callee's audio goes through.
            config: Settings of the adaptive buffer.
            **kwargs: Passed to `rtclab.call.LoopbackCall` (tracks, uplink, record_seconds...).
        """
        if buffer not in ("adaptive", "aiortc"):
            raise ValueError("buffer must be 'adaptive' or 'aiortc'")
        super().__init__(**kwargs)
        self.buffer_kind = buffer
        self.config = config
        self.jitter_buffer: AdaptivePlayout | AiortcBufferProbe | None = None

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self.callee is not None and self.jitter_buffer is None:
            receiver = next(t.receiver for t in self.callee.getTransceivers() if t.receiver.track is track)
            if self.buffer_kind == "adaptive":
                self.jitter_buffer = AdaptivePlayout.attach(receiver, self.config)
            else:
                probe = AiortcBufferProbe()
                install_jitter_buffer(receiver, probe)
                self.jitter_buffer = probe
        super()._on_track(track)

    async def close(self) -> None:
        """Close the call, then stop the playout task."""
        await super().close()
        if isinstance(self.jitter_buffer, AdaptivePlayout):
            await self.jitter_buffer.stop()


@dataclass(frozen=True)
class CallMeasurement:
    """One loopback call through a jitter buffer, measured, and the same arrivals replayed in the simulator.

    Attributes:
        buffer: ``"adaptive"`` or ``"aiortc"``.
        frames_out: Audio frames the callee's track delivered.
        measured: What the buffer did in the call.
        replay: The simulator on the call's own arrivals (same buffer, same settings).
        actions: Ticks per `Action` value (adaptive only; empty for aiortc).
    """

    buffer: str
    frames_out: int
    measured: BufferResult
    replay: BufferResult
    actions: Mapping[str, int]


async def measure_in_call(
    buffer: Literal["adaptive", "aiortc"],
    link: Impairment,
    seconds: float,
    config: AdaptiveConfig | None = None,
) -> CallMeasurement:
    """Run an audio-only `JitterBufferCall` over loopback with ``link`` on the media path, and measure it.

    Args:
        buffer: Which jitter buffer the callee's audio goes through.
        link: Impairment of everything the caller sends (the media direction).
        seconds: How long the call runs once connected, s.
        config: Adaptive buffer settings (default `AdaptiveConfig`).

    Returns:
        The measurement, with the replay of the call's arrivals through the simulator.
    """
    config = config or AdaptiveConfig()
    async with JitterBufferCall(
        buffer=buffer, config=config, tracks=[SpeechLikeAudioTrack()], uplink=link
    ) as call:
        await call.run(seconds)
    installed = call.jitter_buffer
    if installed is None:
        raise RuntimeError("the callee never received an audio track")
    trace = installed.trace()
    if isinstance(installed, AdaptivePlayout):
        replay, actions = run_adaptive(trace, config, name="replay"), dict(installed.actions)
    else:
        replay, actions = run_aiortc(trace, name="replay"), {}
    return CallMeasurement(buffer, call.frames_received.get("audio", 0), installed.result(), replay, actions)
