"""The adaptive (NetEQ-style) audio jitter buffer, and the same buffer playing a live aiortc receiver's audio.

What a server imports to play received audio through a buffer whose delay follows the network
(`AdaptivePlayout`); also the words every jitter-buffer measurement here is made in (`Trace`,
`BufferResult`). The rest lives beside it: traces and the simulator in `rtclab.jitter_traces`, aiortc's own
buffer replayed and probed in `rtclab.aiortc_jitter`, a loopback call through either in `rtclab.jitter_call`.

Why a buffer at all: the sender emits one 20 ms frame every 20 ms, the network delivers them unevenly, and the
sound card needs one every 20 ms again. Holding frames back absorbs the unevenness at the cost of delay.

* aiortc's buffer (``JitterBuffer(capacity=16, prefetch=4)`` for audio) has no clock. It hands a frame to the
  decoder when a packet *arrives* and four later frames are already there, and it waits for a missing packet
  until 16 packets have piled up behind it. So it adds four frames (80 ms) on a clean network, and after the
  first lost packet it keeps about 15 frames (~300 ms) for the rest of the call, whatever the jitter.
* The adaptive buffer runs on a clock: one frame goes out every 20 ms tick. It plays frame ``n`` no earlier
  than ``n * 20 ms + Q``, where ``Q`` is a high quantile of recent packet transit times (arrival time minus
  the frame's media time, over a sliding window), so about ``1 - quantile`` of frames can arrive too late.
  A missing frame is concealed and skipped instead of waited for. The delay grows at once (a tick that plays
  nothing new) and shrinks slowly (at most one frame dropped per ``decrease_interval_s``), as NetEQ does.

Definitions used everywhere here, in the simulator and in a real call alike:

* **added delay** of a frame: when the buffer hands it on to be played minus when its packet arrived, in ms.
  This equals the frame's mouth-to-ear delay minus its network delay, so it is the buffer's own share of the
  delay. For aiortc "handed on" is the moment its buffer releases the frame to the decoder (a lower bound:
  a sound card playing those bursts at 20 ms a frame could only add to it).
* **late-loss rate**: frames the network delivered but the buffer never played (they came after their
  playout time, aiortc dropped them, or the adaptive buffer discarded them to shrink its delay), as a share
  of the frames sent.
* **concealment rate**: 20 ms output slots that carried no received frame (concealment, or a stretch tick
  that grows the delay), as a share of all output slots. aiortc conceals nothing: its missing frames are
  gaps, counted here the same way.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import fractions
import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiortc import RTCRtpReceiver
    from aiortc.mediastreams import MediaStreamTrack
    from aiortc.rtp import RtpPacket

__all__ = [
    "EPSILON_S",
    "FRAME_MS",
    "TAIL_S",
    "Action",
    "AdaptiveConfig",
    "AdaptiveJitterBuffer",
    "AdaptivePlayout",
    "BufferResult",
    "Playout",
    "SequenceUnwrapper",
    "Trace",
    "install_jitter_buffer",
]

FRAME_MS = 20.0
"""aiortc's Opus frame: one packet every 20 ms."""

TAIL_S = 1.0
"""The last second of a trace is simulated but not scored: aiortc still holds those frames when it ends."""

EPSILON_S = 1e-9
"""Floating-point slack when comparing times in seconds (a nanosecond): a packet arriving exactly at a tick
must count as in time however the two sums were rounded."""


# --- traces ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """When each 20 ms frame was sent and when (if ever) its packet arrived; frame ``i`` has index ``i``.

    Attributes:
        frame_ms: Media duration of one frame (and the send interval), ms.
        sent_s: Send time of each frame, seconds.
        arrival_s: Arrival time of each frame's packet, seconds on the same clock; None if it was lost.
    """

    frame_ms: float
    sent_s: tuple[float, ...]
    arrival_s: tuple[float | None, ...]

    def __post_init__(self) -> None:
        if not self.frame_ms > 0:
            raise ValueError("frame_ms must be positive")
        if len(self.sent_s) != len(self.arrival_s):
            raise ValueError("sent_s and arrival_s must have one entry per frame")
        if not self.sent_s:
            raise ValueError("a trace needs at least one frame")

    @property
    def frames(self) -> int:
        """Frames sent."""
        return len(self.sent_s)

    @property
    def network_loss_rate(self) -> float:
        """Share of frames the network lost, 0-1."""
        return sum(a is None for a in self.arrival_s) / self.frames

    @property
    def scored_frames(self) -> int:
        """Frames that are scored: all but the last `TAIL_S` (aiortc still holds those when a trace ends)."""
        return max(1, self.frames - round(TAIL_S * 1000 / self.frame_ms))

    def arrival_order(self) -> list[tuple[float, int]]:
        """``(arrival time, frame index)`` of every delivered frame, in the order the packets arrived."""
        return sorted((a, i) for i, a in enumerate(self.arrival_s) if a is not None)

    def network_delays_ms(self) -> list[float]:
        """One-way network delay of every delivered frame, ms, in frame order."""
        return [(a - s) * 1000 for s, a in zip(self.sent_s, self.arrival_s, strict=True) if a is not None]

    @classmethod
    def from_arrivals(
        cls, arrivals: Mapping[int, float], frames: int, *, frame_ms: float = FRAME_MS
    ) -> Trace:
        """A trace from arrival times alone (a real call's receiver knows no send times).

        Send times are taken as nominal, one frame every ``frame_ms``, placed so that the fastest packet has
        a network delay of 0: the network delays of the result are *relative* delays. The buffers only use
        arrival times and indexes, so replaying such a trace gives them exactly what the real call gave.

        Args:
            arrivals: Arrival time in seconds by frame index (0-based); indexes not in it count as lost.
            frames: Frames sent (indexes 0 to ``frames - 1``).
            frame_ms: Frame duration, ms.

        Returns:
            The trace.
        """
        if frames < 1:
            raise ValueError("frames must be at least 1")
        f = frame_ms / 1000
        kept = {i: a for i, a in arrivals.items() if 0 <= i < frames}
        base = min((a - i * f for i, a in kept.items()), default=0.0)
        return cls(
            frame_ms,
            tuple(base + i * f for i in range(frames)),
            tuple(kept.get(i) for i in range(frames)),
        )


# --- the adaptive buffer --------------------------------------------------------------------------------------


class Action(StrEnum):
    """What the buffer does at one playout tick."""

    IDLE = "idle"
    """Nothing to play yet (before the first frame is due): no output slot."""
    NORMAL = "normal"
    """Plays the next frame."""
    ACCELERATE = "accelerate"
    """Plays the next frame and discards the one after it: the delay shrinks by one frame."""
    STRETCH = "stretch"
    """Plays synthetic audio and keeps the next frame for later: the delay grows by one frame."""
    CONCEAL = "conceal"
    """The next frame is missing at its playout time: synthetic audio instead, and move on."""


@dataclass(frozen=True)
class AdaptiveConfig:
    """Settings of `AdaptiveJitterBuffer`.

    Attributes:
        quantile: Share of recent packets that must arrive in time (0.5-1). The target delay is this
            quantile of the relative delays seen in the window; NetEQ uses 0.95.
        window_s: How far back (seconds of arrivals) the delay statistics reach. Longer remembers a rare
            spike for longer (fewer late frames, more delay).
        decrease_interval_s: At most one frame is discarded per this many seconds to bring the delay down:
            the slow half of "fast increase, slow decrease".
        min_delay_ms: Floor of the target delay, ms.
        max_delay_ms: Ceiling of the target delay, ms.
        start_delay_ms: Target used until ``warmup_packets`` packets have arrived (a window of one packet
            says nothing about jitter).
        warmup_packets: Packets to see before trusting the window alone.
        frame_ms: Frame duration and tick interval, ms.
        capacity: Most frames held; a packet further ahead than this is refused.
    """

    quantile: float = 0.95
    window_s: float = 5.0
    decrease_interval_s: float = 1.0
    min_delay_ms: float = 0.0
    max_delay_ms: float = 1000.0
    start_delay_ms: float = 60.0
    warmup_packets: int = 10
    frame_ms: float = FRAME_MS
    capacity: int = 500

    def __post_init__(self) -> None:
        if not 0.5 <= self.quantile <= 1:
            raise ValueError(f"AdaptiveConfig.quantile must be in [0.5, 1], got {self.quantile!r}")
        if not self.window_s > 0:
            raise ValueError(f"AdaptiveConfig.window_s must be positive, got {self.window_s!r}")
        if not self.decrease_interval_s >= 0:
            raise ValueError("AdaptiveConfig.decrease_interval_s must be >= 0")
        if not 0 <= self.min_delay_ms <= self.max_delay_ms:
            raise ValueError("AdaptiveConfig needs 0 <= min_delay_ms <= max_delay_ms")
        if not self.start_delay_ms >= 0:
            raise ValueError("AdaptiveConfig.start_delay_ms must be >= 0")
        if not self.frame_ms > 0:
            raise ValueError("AdaptiveConfig.frame_ms must be positive")
        if self.capacity < 2 or self.warmup_packets < 1:
            raise ValueError("AdaptiveConfig needs capacity >= 2 and warmup_packets >= 1")


@dataclass(frozen=True, slots=True)
class Playout:
    """The outcome of one tick.

    Attributes:
        action: What the tick did.
        index: The frame played (NORMAL, ACCELERATE) or concealed (CONCEAL); None for IDLE and STRETCH.
        payload: The played frame's payload (None when nothing was played).
        discarded: Payloads consumed without being played (ACCELERATE), in order; a decoder should still
            see them to keep its state continuous.
        target_ms: Target delay at this tick, ms (relative to the fastest recent packet).
    """

    action: Action
    index: int | None = None
    payload: Any = None
    discarded: tuple[Any, ...] = ()
    target_ms: float = 0.0


class AdaptiveJitterBuffer:
    """A time-driven audio jitter buffer whose delay follows a quantile of recent packet delays.

    Feed it packets with `put` as they arrive and call `tick` every ``frame_ms``; each tick returns what to
    play. It reads no clock: the caller passes times, so the same code runs in the simulator and in a call.

    How the delay is chosen: each packet ``i`` that arrives at ``a`` has a transit ``a - i * frame`` (its
    network delay plus an unknown constant clock offset). Frame ``n`` is due at ``n * frame + Q``, where
    ``Q`` is the ``quantile`` of the transits seen in the last ``window_s``. Relative to the fastest packet
    of the window that is a target delay of ``Q - min``: clock offsets cancel, only the spread counts.

    Attributes:
        config: The settings.
        late: Packets that arrived after their frame's playout time (refused).
        refused: Duplicates and packets beyond ``capacity`` (refused).
    """

    def __init__(self, config: AdaptiveConfig | None = None) -> None:
        """Create an empty buffer.

        Args:
            config: Settings (default: the 0.95 quantile NetEQ uses, over a 5 s window).
        """
        self.config = config or AdaptiveConfig()
        self.late = 0
        self.refused = 0
        self._frame_s = self.config.frame_ms / 1000
        self._frames: dict[int, tuple[float, Any]] = {}
        self._window: deque[tuple[float, float]] = deque()  # (arrival, transit) in arrival order
        self._sorted: list[float] = []  # the same transits, sorted
        self._seen = 0
        self._next: int | None = None
        self._started = False
        self._last_decrease_s = -math.inf

    @property
    def next_index(self) -> int | None:
        """The frame the next tick plays or conceals (None before the first packet)."""
        return self._next

    @property
    def buffered(self) -> int:
        """Frames waiting to be played."""
        return len(self._frames)

    def put(self, index: int, arrival_s: float, payload: Any = None) -> bool:
        """Add an arrived packet.

        Every packet updates the delay statistics, late ones too: lateness is what the target must learn.

        Args:
            index: Frame index (unwrapped RTP sequence number, counting from the first packet).
            arrival_s: Arrival time, seconds (the clock passed to `tick`).
            payload: Anything to hand back when the frame plays (the encoded frame).

        Returns:
            True if the frame was kept, False if it was late, a duplicate or too far ahead.
        """
        self._observe(index, arrival_s)
        if self._next is None:
            self._next = index
        if index < self._next:
            self.late += 1
            return False
        if index in self._frames or index >= self._next + self.config.capacity:
            self.refused += 1
            return False
        self._frames[index] = (arrival_s, payload)
        return True

    def target_delay_ms(self) -> float:
        """Current target delay, ms: the quantile of relative delays in the window, within the limits."""
        return self._target_s() * 1000

    def tick(self, now_s: float) -> Playout:
        """Decide what to play for the 20 ms slot starting at ``now_s``.

        Args:
            now_s: The tick time, seconds (same clock as `put`).

        Returns:
            What to play.
        """
        if self._next is None:
            return Playout(Action.IDLE)
        target_s = self._target_s()
        n = self._next
        # How much later than its due time frame n would play now (negative: too early).
        lag_s = now_s - (n * self._frame_s + self._sorted[0] + target_s)
        target_ms = target_s * 1000
        if lag_s < -EPSILON_S:
            # Fast increase: wait a tick. Before the first frame that is plain start-up silence.
            return Playout(Action.STRETCH if self._started else Action.IDLE, target_ms=target_ms)
        self._started = True
        entry = self._frames.pop(n, None)
        if entry is None:
            self._next = n + 1
            return Playout(Action.CONCEAL, index=n, target_ms=target_ms)
        if (
            lag_s >= self._frame_s - EPSILON_S
            and now_s - self._last_decrease_s >= self.config.decrease_interval_s
            and n + 1 in self._frames
        ):
            # Slow decrease: one frame too many in hand; drop the next one (NetEQ time-compresses instead).
            _, extra = self._frames.pop(n + 1)
            self._last_decrease_s = now_s
            self._next = n + 2
            return Playout(Action.ACCELERATE, n, entry[1], (extra,), target_ms)
        self._next = n + 1
        return Playout(Action.NORMAL, n, entry[1], target_ms=target_ms)

    def _observe(self, index: int, arrival_s: float) -> None:
        transit = arrival_s - index * self._frame_s
        self._seen += 1
        self._window.append((arrival_s, transit))
        bisect.insort(self._sorted, transit)
        horizon = arrival_s - self.config.window_s
        while self._window and self._window[0][0] < horizon:
            _, old = self._window.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, old)]

    def _target_s(self) -> float:
        cfg = self.config
        ordered = self._sorted
        rank = min(len(ordered) - 1, max(0, math.ceil(cfg.quantile * len(ordered)) - 1))
        target_ms = (ordered[rank] - ordered[0]) * 1000
        if self._seen < cfg.warmup_packets:
            target_ms = max(target_ms, cfg.start_delay_ms)
        return min(max(target_ms, cfg.min_delay_ms), cfg.max_delay_ms) / 1000


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BufferResult:
    """How one buffer did on one trace (frames of the scored part only).

    Attributes:
        name: Which buffer (``"aiortc"``, ``"adaptive q=0.95"``...).
        frames: Frames sent.
        network_lost: Frames the network lost.
        late: Frames delivered but never played (late, dropped or discarded).
        played: Frames played.
        synthesized: Output slots without a received frame (concealment and stretching; aiortc: gaps).
        played_at_s: When each played frame was handed on, in play order.
        added_delay_ms: Added delay of each played frame (hand-on time minus arrival), ms, same order.
    """

    name: str
    frames: int
    network_lost: int
    late: int
    played: int
    synthesized: int
    played_at_s: tuple[float, ...]
    added_delay_ms: tuple[float, ...]

    @property
    def mean_added_delay_ms(self) -> float:
        """Mean added delay of the played frames, ms (NaN if none played)."""
        return statistics.fmean(self.added_delay_ms) if self.added_delay_ms else math.nan

    @property
    def median_added_delay_ms(self) -> float:
        """Median added delay of the played frames, ms (NaN if none played)."""
        return statistics.median(self.added_delay_ms) if self.added_delay_ms else math.nan

    @property
    def p95_added_delay_ms(self) -> float:
        """95th percentile of the added delay, ms (NaN if none played)."""
        if not self.added_delay_ms:
            return math.nan
        ordered = sorted(self.added_delay_ms)
        return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]

    @property
    def late_loss_rate(self) -> float:
        """Frames delivered but not played, over frames sent, 0-1."""
        return self.late / self.frames

    @property
    def network_loss_rate(self) -> float:
        """Frames the network lost, over frames sent, 0-1."""
        return self.network_lost / self.frames

    @property
    def concealment_rate(self) -> float:
        """Output slots without a received frame, over all output slots, 0-1."""
        slots = self.played + self.synthesized
        return self.synthesized / slots if slots else 0.0

    def delay_per_interval(self, start_s: float, interval_s: float = 1.0) -> tuple[list[float], list[float]]:
        """Mean added delay of the frames played in each interval, for a readable timeline.

        Args:
            start_s: Time that counts as 0 (e.g. the first arrival), s.
            interval_s: Width of one interval, s.

        Returns:
            Interval starts (s from ``start_s``) and the mean added delay in each (ms), intervals with a frame.
        """
        bins: dict[int, list[float]] = {}
        for at, delay in zip(self.played_at_s, self.added_delay_ms, strict=True):
            bins.setdefault(math.floor((at - start_s) / interval_s), []).append(delay)
        keys = sorted(bins)
        return [k * interval_s for k in keys], [statistics.fmean(bins[k]) for k in keys]

    @classmethod
    def from_playout(
        cls,
        name: str,
        trace: Trace,
        scored: int,
        played: Mapping[int, float],
        synthesized: int,
    ) -> BufferResult:
        """Score what a buffer played from a trace, with the definitions of `rtclab.jitter`.

        Args:
            name: Label of the result.
            trace: The trace the buffer was fed.
            scored: Frames to score from the start (`Trace.scored_frames`).
            played: When each played frame was handed on, by frame index (later indexes are ignored).
            synthesized: Output slots without a received frame among the scored ones.

        Returns:
            The result.
        """
        arrivals = trace.arrival_s[:scored]
        delivered = {i for i, a in enumerate(arrivals) if a is not None}
        kept = sorted(
            ((at, i) for i, at in played.items() if i < scored), key=lambda item: (item[0], item[1])
        )
        delays = []
        for at, i in kept:
            arrival = arrivals[i]
            assert arrival is not None  # a frame is only ever played after its packet arrived
            delays.append((at - arrival) * 1000)
        return cls(
            name=name,
            frames=scored,
            network_lost=scored - len(delivered),
            late=len(delivered) - len(kept),
            played=len(kept),
            synthesized=synthesized,
            played_at_s=tuple(at for at, _ in kept),
            added_delay_ms=tuple(delays),
        )

    def row(self) -> dict[str, float | str]:
        """The headline numbers as one flat dict (for a table or a DataFrame)."""
        return {
            "buffer": self.name,
            "mean_added_delay_ms": self.mean_added_delay_ms,
            "p95_added_delay_ms": self.p95_added_delay_ms,
            "late_loss_pct": 100 * self.late_loss_rate,
            "network_loss_pct": 100 * self.network_loss_rate,
            "concealment_pct": 100 * self.concealment_rate,
        }


# --- a real aiortc receiver -----------------------------------------------------------------------------------

_JITTER_BUFFER_ATTR = "_RTCRtpReceiver__jitter_buffer"


def install_jitter_buffer(receiver: RTCRtpReceiver, buffer: object) -> None:
    """Replace an aiortc audio receiver's jitter buffer (the private ``RTCRtpReceiver.__jitter_buffer``).

    aiortc 1.16's ``RTCRtpReceiver._handle_rtp_packet`` calls ``self.__jitter_buffer.add(packet)`` for
    every RTP packet and decodes the ``JitterFrame`` it returns, if any. Anything with an ``add(packet) ->
    (pli_flag, frame_or_None)`` method can stand in. Install it before the first packet arrives (in the
    peer's ``track`` event).

    Args:
        receiver: An aiortc ``RTCRtpReceiver`` for audio.
        buffer: The replacement.

    Raises:
        RuntimeError: If this aiortc has no such attribute (the private hook moved).
    """
    if not hasattr(receiver, _JITTER_BUFFER_ATTR):
        raise RuntimeError("this aiortc version has no RTCRtpReceiver.__jitter_buffer to replace")
    setattr(receiver, _JITTER_BUFFER_ATTR, buffer)


class SequenceUnwrapper:
    """RTP sequence numbers (16 bits, wrapping) to frame indexes counted from the first packet."""

    def __init__(self) -> None:
        self._first: int | None = None
        self._last = 0  # extended sequence number of the newest packet

    def index(self, sequence_number: int) -> int:
        """The frame index of a packet: 0 for the first, then counted across the wrap from the newest one."""
        if self._first is None:
            self._first = self._last = sequence_number
            return 0
        step = (sequence_number - self._last + 0x8000) % 0x10000 - 0x8000
        extended = self._last + step
        self._last = max(self._last, extended)
        return extended - self._first


class AdaptivePlayout:
    """`AdaptiveJitterBuffer` inside a live aiortc audio receiver, with a playout task and concealment.

    Private aiortc hooks used (aiortc 1.16), and why:

    * ``RTCRtpReceiver.__jitter_buffer`` is replaced by this object (`install_jitter_buffer`). Its
      ``add(packet)`` stores the packet in the adaptive buffer and returns ``(False, None)``, so aiortc's
      decoder thread never gets a frame from the receiver.
    * ``RTCRtpReceiver.__codecs`` gives the codec of each payload type, to create the decoder.
    * ``RemoteStreamTrack._queue`` (``receiver.track``) is where decoded frames go: the playout task puts one
      ``AudioFrame`` there every 20 ms, and ``track.recv()`` reads them as usual.

    The playout task decodes the frames itself, with the same decoder aiortc would use
    (``aiortc.codecs.get_decoder``), because concealment needs decoded samples: Opus' own loss concealment
    is out of reach through PyAV (an empty packet makes FFmpeg's decoder flush and then fail with
    ``EOFError`` on every later packet). A missing frame becomes the last decoded frame repeated with a fade
    (silence after four missing frames in a row).

    Attributes:
        buffer: The adaptive buffer.
        arrivals: Arrival time (event-loop clock, s) by frame index.
        played: Playout time by frame index.
        synthesized: Output slots filled with concealment or stretching, as the index of the frame due then.
        actions: How many ticks did what, by `Action` value.
    """

    FADE_FRAMES = 4
    """Consecutive synthetic frames after which the output is silent."""

    def __init__(self, receiver: RTCRtpReceiver, config: AdaptiveConfig | None = None) -> None:
        """Prepare the playout for one receiver (call `install_jitter_buffer` with it, or use `attach`).

        Args:
            receiver: The aiortc audio receiver.
            config: Buffer settings.
        """
        self.receiver = receiver
        self.buffer = AdaptiveJitterBuffer(config)
        self.arrivals: dict[int, float] = {}
        self.played: dict[int, float] = {}
        self.synthesized: list[int] = []
        self.actions: dict[str, int] = {action.value: 0 for action in Action}
        self._unwrap = SequenceUnwrapper()
        self._task: asyncio.Task[None] | None = None
        self._decoder: Any = None
        self._codec: Any = None
        self._last: Any = None  # last decoded frame, as (ndarray, format, layout, rate)
        self._missing_run = 0
        self._slot = 0

    @classmethod
    def attach(cls, receiver: RTCRtpReceiver, config: AdaptiveConfig | None = None) -> AdaptivePlayout:
        """Create a playout and install it as the receiver's jitter buffer.

        Args:
            receiver: The aiortc audio receiver (its track must be audio).
            config: Buffer settings.

        Returns:
            The playout; its task starts with the first packet.
        """
        if receiver.track is None or receiver.track.kind != "audio":
            raise ValueError("the adaptive playout is for audio receivers only")
        playout = cls(receiver, config)
        install_jitter_buffer(receiver, playout)
        return playout

    def add(self, packet: RtpPacket) -> tuple[bool, None]:
        """What aiortc's receiver calls for each RTP packet: store it; never hand a frame back."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        index = self._unwrap.index(packet.sequence_number)
        self.arrivals.setdefault(index, now)
        codec = getattr(self.receiver, "_RTCRtpReceiver__codecs", {}).get(packet.payload_type)
        self.buffer.put(index, now, (codec, packet.timestamp, bytes(packet.payload)))
        if self._task is None:
            self._task = loop.create_task(self._run(now))
        return False, None

    async def stop(self) -> None:
        """Stop the playout task (the call's close does not know about it)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def trace(self) -> Trace:
        """The arrivals seen so far as a `Trace` (nominal send times; see `Trace.from_arrivals`)."""
        return Trace.from_arrivals(self.arrivals, max(self.arrivals, default=0) + 1)

    def result(self, name: str = "adaptive (call)") -> BufferResult:
        """Added delay, late loss and concealment measured in the call (last `TAIL_S` not scored)."""
        trace = self.trace()
        scored = trace.scored_frames
        synthesized = sum(1 for index in self.synthesized if index < scored)
        return BufferResult.from_playout(name, trace, scored, self.played, synthesized)

    async def _run(self, t0: float) -> None:
        loop = asyncio.get_running_loop()
        frame_s = self.buffer.config.frame_ms / 1000
        track = self.receiver.track
        k = 0
        while track.readyState == "live" and self.receiver.transport.state not in ("closed", "failed"):
            due = t0 + k * frame_s
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            now = loop.time()
            due_index = self.buffer.next_index
            self._emit(self.buffer.tick(now), now, track, due_index)
            k += 1

    def _emit(self, playout: Playout, now: float, track: MediaStreamTrack, due_index: int | None) -> None:
        self.actions[playout.action.value] += 1
        if playout.action is Action.IDLE:
            return
        frame = None
        if playout.payload is not None:
            frame = self._decode(playout.payload)
            for extra in playout.discarded:
                self._decode(extra)  # keeps the decoder's state continuous; the samples are dropped
        if frame is not None:
            assert playout.index is not None
            self.played[playout.index] = now
            self._missing_run = 0
        else:
            self.synthesized.append(-1 if due_index is None else due_index)
            self._missing_run += 1
            frame = self._conceal()
        if frame is not None:
            frame.pts = self._slot * frame.samples
            frame.time_base = fractions.Fraction(1, frame.sample_rate)
            self._slot += 1
            track._queue.put_nowait(frame)  # type: ignore[attr-defined]  # RemoteStreamTrack's queue

    def _decode(self, payload: tuple[Any, int, bytes]) -> Any:
        from aiortc.codecs import get_decoder
        from aiortc.jitterbuffer import JitterFrame

        codec, timestamp, data = payload
        if codec is None:
            return None
        if self._codec is None or codec.name != self._codec.name:
            self._decoder = get_decoder(codec)
            self._codec = codec
        try:
            frames = self._decoder.decode(JitterFrame(data=data, timestamp=timestamp))
        except Exception:  # noqa: BLE001 - a corrupt packet is concealed like a lost one
            return None
        if not frames:
            return None
        frame = frames[0]
        self._last = (frame.to_ndarray(), frame.format.name, frame.layout.name, frame.sample_rate)
        return frame

    def _conceal(self) -> Any:
        import av
        import numpy as np

        if self._last is None:
            return None
        samples, fmt, layout, rate = self._last
        fade = self.FADE_FRAMES
        start = max(0.0, 1 - (self._missing_run - 1) / fade)
        end = max(0.0, 1 - self._missing_run / fade)
        # A ramp inside the frame, so the repeat fades out instead of stepping down once per frame.
        gain = np.linspace(start, end, samples.shape[-1], endpoint=False, dtype=np.float32)
        faded = (samples.astype(np.float32) * gain).astype(samples.dtype)
        frame = av.AudioFrame.from_ndarray(faded, format=fmt, layout=layout)
        frame.sample_rate = rate
        return frame
