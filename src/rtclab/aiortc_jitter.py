"""aiortc's own audio jitter buffer, measured: replayed packet by packet on a `rtclab.jitter.Trace`
(`run_aiortc`, with an optional sound-card model) and recorded inside a live aiortc receiver
(`AiortcBufferProbe`).

Nothing here is a model of aiortc's buffer: both feed its real ``aiortc.jitterbuffer.JitterBuffer`` class and
score what it releases with the definitions of `rtclab.jitter`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rtclab.jitter import EPSILON_S, BufferResult, SequenceUnwrapper, Trace

if TYPE_CHECKING:
    from aiortc.rtp import RtpPacket

__all__ = ["AiortcBufferProbe", "run_aiortc"]


def run_aiortc(
    trace: Trace,
    *,
    capacity: int = 16,
    prefetch: int = 4,
    start_seq: int = 0,
    sound_card: bool = False,
    name: str | None = None,
) -> BufferResult:
    """Feed a trace, packet by packet in arrival order, to aiortc's real ``JitterBuffer`` class.

    This is not a model: it is aiortc's own code (``aiortc.jitterbuffer.JitterBuffer``, as the audio receiver
    creates it) given RTP packets with the trace's sequence numbers. By default a frame counts as played at
    the arrival of the packet that made the buffer release it: a lower bound on what a listener gets, since
    aiortc releases frames in bursts and nothing in it plays them on a clock.

    With ``sound_card=True`` the released frames go on to a model of a sound card: a FIFO that starts with
    the first released frame and plays one frame per 20 ms tick, or a gap when it is empty (an underrun).
    It drops nothing, so every underrun adds its length to the delay for the rest of the call.

    Args:
        trace: The packet trace.
        capacity: Ring size (aiortc's audio receiver: 16).
        prefetch: Frames that must follow a frame before it is released (aiortc's audio receiver: 4).
        start_seq: RTP sequence number of frame 0 (set near 65535 to cross the wrap).
        sound_card: Play the released frames on a 20 ms clock (see above).
        name: Label of the result (default ``"aiortc"`` or ``"aiortc + sound card"``).

    Returns:
        Added delay, late loss and gaps over the scored frames (`rtclab.jitter.Trace.scored_frames`).
    """
    name = name or ("aiortc + sound card" if sound_card else "aiortc")
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtp import RtpPacket

    scored = trace.scored_frames
    samples = round(48 * trace.frame_ms)  # RTP clock of Opus: 48 kHz
    buffer = JitterBuffer(capacity=capacity, prefetch=prefetch)
    index_of: dict[int, int] = {}
    played: dict[int, float] = {}
    for arrival, i in trace.arrival_order():
        timestamp = (i * samples) & 0xFFFFFFFF
        packet = RtpPacket(payload_type=111, sequence_number=(start_seq + i) & 0xFFFF, timestamp=timestamp)
        packet._data = b"\x00"  # type: ignore[attr-defined]  # the depayloaded frame aiortc's buffer joins
        index_of[timestamp] = i
        _, frame = buffer.add(packet)
        if frame is not None:
            played[index_of[frame.timestamp]] = arrival
    if sound_card:
        return _sound_card(name, trace, scored, played)
    gaps = scored - sum(1 for i in played if i < scored)
    return BufferResult.from_playout(name, trace, scored, played, gaps)


def _sound_card(name: str, trace: Trace, scored: int, released: Mapping[int, float]) -> BufferResult:
    """Play frames released at given times on a 20 ms clock, in release order, with underruns as gaps."""
    queue = deque(sorted(released.items(), key=lambda item: (item[1], item[0])))
    f = trace.frame_ms / 1000
    played: dict[int, float] = {}
    underruns = 0
    if queue:
        t0 = queue[0][1]
        k = 0
        while queue:
            now = t0 + k * f
            if queue[0][1] <= now + EPSILON_S:
                index, _ = queue.popleft()
                played[index] = now
            elif queue[0][0] < scored:
                underruns += 1
            k += 1
    return BufferResult.from_playout(name, trace, scored, played, underruns)


class AiortcBufferProbe:
    """aiortc's own audio jitter buffer, recording when each packet arrives and each frame leaves it.

    Installed with `install_jitter_buffer`, it delegates to a real ``JitterBuffer(capacity=16, prefetch=4)``
    and changes nothing in what the receiver decodes.

    Attributes:
        inner: The aiortc buffer.
        arrivals: Arrival time (event-loop clock, s) by frame index.
        released: Release time by frame index.
    """

    def __init__(self, capacity: int = 16, prefetch: int = 4) -> None:
        """Create the probe around a new aiortc buffer.

        Args:
            capacity: Ring size (aiortc audio: 16).
            prefetch: Frames that must follow before a release (aiortc audio: 4).
        """
        from aiortc.jitterbuffer import JitterBuffer

        self.inner = JitterBuffer(capacity=capacity, prefetch=prefetch)
        self.arrivals: dict[int, float] = {}
        self.released: dict[int, float] = {}
        self._unwrap = SequenceUnwrapper()
        self._index_of_timestamp: dict[int, int] = {}

    def add(self, packet: RtpPacket) -> tuple[bool, Any]:
        """What aiortc's receiver calls for each packet: record, then delegate."""
        now = asyncio.get_running_loop().time()
        index = self._unwrap.index(packet.sequence_number)
        self.arrivals.setdefault(index, now)
        self._index_of_timestamp[packet.timestamp] = index
        pli, frame = self.inner.add(packet)
        if frame is not None:
            self.released[self._index_of_timestamp[frame.timestamp]] = now
        return pli, frame

    def trace(self) -> Trace:
        """The arrivals seen so far as a `Trace` (nominal send times; see `Trace.from_arrivals`)."""
        return Trace.from_arrivals(self.arrivals, max(self.arrivals, default=0) + 1)

    def result(self, name: str = "aiortc (call)") -> BufferResult:
        """Added delay and late loss measured in the call (last `rtclab.jitter.TAIL_S` not scored)."""
        trace = self.trace()
        scored = trace.scored_frames
        gaps = scored - sum(1 for i in self.released if i < scored)
        return BufferResult.from_playout(name, trace, scored, self.released, gaps)
