"""Userspace network impairment without root: delay, jitter, random or bursty loss, a rate-limited queue
and blackouts, applied to every datagram a socket (or an aiortc peer) sends.

How it works, in three layers:

* `Link` is the model: a pure, seeded, clock-injected object. Given when a datagram is sent and how
  big it is, it decides whether the datagram is dropped (and why) or when it arrives. It reads no clock,
  touches no socket, and the same seed gives the same decisions, so unit tests can feed it 100,000 packets
  in a fraction of a second.
* `ImpairedDatagramTransport` wraps an ``asyncio.DatagramTransport``: each ``sendto()`` asks the link
  and either forgets the datagram or hands it to the real transport at its delivery time
  (``loop.call_at``). Closing the wrapper cancels every datagram still waiting.
* `impair_connection` puts that wrapper under one aiortc peer. aioice gives each local candidate a
  ``StunProtocol`` whose ``transport.sendto()`` carries every datagram the peer sends: STUN checks and
  consent, DTLS, RTP and RTCP. Replacing ``protocol.transport`` with the wrapper impairs all of them, in one
  direction only: what the peer receives is untouched, so impair each peer for its own sending direction.
  aiortc gathers (opens those sockets) in ``setLocalDescription()`` and only starts ICE in a task that runs
  after it returns, so calling `impair_connection` right after ``setLocalDescription()`` catches the
  very first packet. When the peer closes, aioice closes the transports and pending datagrams are dropped.

Order of effects for each datagram: a blackout drops it; else the bottleneck queue (``rate_kbps``) may drop
it (drop-tail) or hold it; then random or burst loss (the Gilbert-Elliott chain moves only for datagrams
that get this far); then propagation delay with jitter.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import weakref
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiortc import RTCPeerConnection

__all__ = [
    "Blackout",
    "Decision",
    "Drop",
    "GilbertElliott",
    "ImpairedDatagramTransport",
    "ImpairedPeer",
    "Impairment",
    "Link",
    "LinkCounters",
    "impair_connection",
]

# Floating-point slack when comparing times in seconds (a nanosecond): a queue filled exactly to its limit
# must not drop a packet because of rounding.
_EPSILON_S = 1e-9


def _check_range(
    owner: str, name: str, value: float, low: float, high: float, *, open_low: bool = False
) -> None:
    """Raise ValueError naming ``owner.name`` unless ``value`` is a number in [low, high] ((low, high] if open)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{owner}.{name} must be a number, got {value!r}")
    inside = (low < value if open_low else low <= value) and value <= high
    if not inside or math.isnan(value):
        bracket = "(" if open_low else "["
        raise ValueError(f"{owner}.{name} must be in {bracket}{low:g}, {high:g}], got {value!r}")


@dataclass(frozen=True)
class GilbertElliott:
    """Bursty loss: a two-state (good/bad) Markov chain that moves once per packet.

    In each state a packet is lost with that state's probability; then the chain may change state. With the
    default ``loss_good=0`` and ``loss_bad=1`` every stay in the bad state is one burst of lost packets.

    Attributes:
        p: Probability of moving from good to bad after a packet, in (0, 1].
        r: Probability of moving from bad to good after a packet, in (0, 1].
        loss_good: Loss probability in the good state, 0-1.
        loss_bad: Loss probability in the bad state, 0-1.

    Raises:
        ValueError: If a field is out of range; the message names it.
    """

    p: float
    r: float
    loss_good: float = 0.0
    loss_bad: float = 1.0

    def __post_init__(self) -> None:
        _check_range("GilbertElliott", "p", self.p, 0, 1, open_low=True)
        _check_range("GilbertElliott", "r", self.r, 0, 1, open_low=True)
        _check_range("GilbertElliott", "loss_good", self.loss_good, 0, 1)
        _check_range("GilbertElliott", "loss_bad", self.loss_bad, 0, 1)

    @property
    def bad_fraction(self) -> float:
        """Long-run share of packets sent in the bad state, ``p / (p + r)``."""
        return self.p / (self.p + self.r)

    @property
    def mean_loss(self) -> float:
        """Long-run loss probability, ``p/(p+r) * loss_bad + r/(p+r) * loss_good``."""
        bad = self.bad_fraction
        return bad * self.loss_bad + (1 - bad) * self.loss_good

    @property
    def mean_burst_packets(self) -> float:
        """Mean number of packets per stay in the bad state, ``1 / r`` (the mean loss burst when loss_bad=1)."""
        return 1 / self.r


@dataclass(frozen=True)
class Blackout:
    """A stretch of time during which the link carries nothing (a tunnel, a handover, a dead cell).

    Datagrams *sent* during ``[start_s, start_s + duration_s)`` are dropped; those already in flight still
    arrive.

    Attributes:
        start_s: Seconds after the link starts (>= 0).
        duration_s: Length in seconds (> 0).

    Raises:
        ValueError: If a field is out of range; the message names it.
    """

    start_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _check_range("Blackout", "start_s", self.start_s, 0, math.inf)
        _check_range("Blackout", "duration_s", self.duration_s, 0, math.inf, open_low=True)
        if math.isinf(self.start_s) or math.isinf(self.duration_s):
            raise ValueError("Blackout.start_s and Blackout.duration_s must be finite")

    @property
    def end_s(self) -> float:
        """First second after the blackout, ``start_s + duration_s``."""
        return self.start_s + self.duration_s

    def covers(self, elapsed_s: float) -> bool:
        """Tell whether a datagram sent ``elapsed_s`` seconds after the link started falls in the blackout."""
        return self.start_s <= elapsed_s < self.end_s


@dataclass(frozen=True)
class Impairment:
    """What one direction of a link does to the datagrams sent over it. The default changes nothing.

    Attributes:
        delay_ms: One-way propagation delay added to every datagram, in ms (>= 0).
        jitter_ms: Standard deviation of a gaussian added to ``delay_ms`` per datagram, in ms (>= 0). The
            sum is clipped at 0, so a datagram never arrives before it was sent (or left the queue).
        reorder: False (default): datagrams arrive in the order they were sent; a datagram whose draw would
            overtake the one before it waits for it (``delivery = max(delivery, previous delivery)``), as on
            a real single path. With jitter, this bunches datagrams and raises the median delay the more
            densely they are sent. True: each datagram keeps its own delay, so jitter reorders them.
        loss: Probability (0-1) that a datagram is lost, each independently (Bernoulli). Ignored when
            ``burst`` is set.
        burst: Bursty loss instead of ``loss``; see `GilbertElliott`.
        rate_kbps: Bottleneck rate in kbit/s (1 kbit = 1000 bits) of UDP payload, or None for no limit.
            Datagrams leave the bottleneck one after the other, each taking ``size * 8 / rate`` to send,
            so they queue behind each other.
        queue_ms: Drop-tail limit of that queue, in ms of data at ``rate_kbps`` (>= 0): a datagram is dropped
            when, with it, the queue would hold more than this (an empty queue always takes a datagram).
        blackouts: Stretches of time in which every datagram sent is dropped; see `Blackout`.
        seed: Seed of the random draws; the same seed and the same send times give the same result.

    Raises:
        ValueError: If a field is out of range; the message names it.
    """

    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    reorder: bool = False
    loss: float = 0.0
    burst: GilbertElliott | None = None
    rate_kbps: float | None = None
    queue_ms: float = 200.0
    blackouts: tuple[Blackout, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        _check_range("Impairment", "delay_ms", self.delay_ms, 0, math.inf)
        _check_range("Impairment", "jitter_ms", self.jitter_ms, 0, math.inf)
        _check_range("Impairment", "loss", self.loss, 0, 1)
        _check_range("Impairment", "queue_ms", self.queue_ms, 0, math.inf)
        for name in ("delay_ms", "jitter_ms", "queue_ms"):
            if math.isinf(getattr(self, name)):
                raise ValueError(f"Impairment.{name} must be finite")
        if self.rate_kbps is not None:
            _check_range("Impairment", "rate_kbps", self.rate_kbps, 0, math.inf, open_low=True)
            if math.isinf(self.rate_kbps):
                raise ValueError("Impairment.rate_kbps must be finite (None means no limit)")
        if not isinstance(self.reorder, bool):
            raise ValueError(f"Impairment.reorder must be True or False, got {self.reorder!r}")
        if self.burst is not None and not isinstance(self.burst, GilbertElliott):
            raise ValueError(f"Impairment.burst must be a GilbertElliott or None, got {self.burst!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"Impairment.seed must be an int, got {self.seed!r}")
        blackouts = tuple(
            self.blackouts
        )  # a list is accepted, and stored as a tuple so the value stays hashable
        if not all(isinstance(b, Blackout) for b in blackouts):
            raise ValueError("Impairment.blackouts must hold Blackout values only")
        object.__setattr__(self, "blackouts", blackouts)

    @property
    def mean_loss(self) -> float:
        """Long-run loss probability of the random or burst loss (queue drops and blackouts not counted)."""
        return self.burst.mean_loss if self.burst is not None else self.loss


class Drop(StrEnum):
    """Why a datagram was dropped."""

    RANDOM = "random"
    """Bernoulli loss (``Impairment.loss``)."""
    BURST = "burst"
    """Gilbert-Elliott loss (``Impairment.burst``)."""
    QUEUE = "queue"
    """The bottleneck queue was full (drop-tail)."""
    BLACKOUT = "blackout"
    """Sent during a blackout."""


@dataclass(frozen=True, slots=True)
class Decision:
    """What the link does with one datagram.

    Attributes:
        sent_s: When the datagram was sent, in the caller's clock (seconds).
        deliver_s: When it arrives, same clock; None if dropped.
        dropped: Why it was dropped; None if delivered.
        queue_ms: Time spent in the bottleneck queue, including its own transmission, in ms (0 without a
            rate limit or when dropped).
    """

    sent_s: float
    deliver_s: float | None
    dropped: Drop | None = None
    queue_ms: float = 0.0

    @property
    def delivered(self) -> bool:
        """True if the datagram arrives."""
        return self.deliver_s is not None

    @property
    def delay_ms(self) -> float | None:
        """One-way delay in ms (queueing, propagation and jitter), or None if dropped."""
        return None if self.deliver_s is None else (self.deliver_s - self.sent_s) * 1000


@dataclass
class LinkCounters:
    """Running totals of a `Link`.

    Attributes:
        sent: Datagrams offered to the link.
        delivered: Datagrams the link decided to deliver.
        dropped: Datagrams dropped per reason, keyed by the `Drop` values (``"random"``, ``"burst"``,
            ``"queue"``, ``"blackout"``; all present, 0 if none).
        bytes_sent: Bytes offered.
        bytes_delivered: Bytes the link decided to deliver.
    """

    sent: int = 0
    delivered: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: {reason.value: 0 for reason in Drop})
    bytes_sent: int = 0
    bytes_delivered: int = 0

    @property
    def dropped_total(self) -> int:
        """Datagrams dropped for any reason."""
        return sum(self.dropped.values())

    @property
    def loss_fraction(self) -> float:
        """Dropped over sent, 0-1 (0 before anything was sent)."""
        return self.dropped_total / self.sent if self.sent else 0.0

    def as_dict(self) -> dict[str, int]:
        """Flatten into plain ints, drops as ``dropped_<reason>`` (handy for JSON or a DataFrame row)."""
        flat = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "dropped"}
        flat.update({f"dropped_{reason}": n for reason, n in self.dropped.items()})
        return flat


class Link:
    """The impairment model of one direction: decides, per datagram, drop or delivery time. No I/O, no clock.

    Times are whatever clock the caller uses, in seconds, and must not go backwards from one datagram to
    the next. Random draws come from separate seeded streams for loss, bursts and jitter, so turning one
    knob does not change the draws of another.

    Example:
        ```python
        link = Link(Impairment(delay_ms=100, loss=0.05, seed=1))
        decision = link.send(0.0, 1200)
        decision.deliver_s  # 0.1, or None when lost
        ```

    Attributes:
        impairment: The settings.
        start_s: When the link started, in the caller's clock; blackouts count from here.
        counters: Totals so far.
    """

    def __init__(self, impairment: Impairment, *, start_s: float = 0.0) -> None:
        """Start a link.

        Args:
            impairment: What the link does.
            start_s: Start time in the caller's clock (for example ``loop.time()``).
        """
        self.impairment = impairment
        self.start_s = start_s
        self.counters = LinkCounters()
        seed = impairment.seed
        # String seeds are hashed with SHA-512 by `random`, so the streams are stable across runs and machines.
        self._loss_rng = random.Random(f"{seed}/loss")
        self._burst_rng = random.Random(f"{seed}/burst")
        self._jitter_rng = random.Random(f"{seed}/jitter")
        burst = impairment.burst
        # Start the chain in its long-run state mix, so short runs are not biased towards "good".
        self._bad = burst is not None and self._burst_rng.random() < burst.bad_fraction
        self._bytes_per_s = None if impairment.rate_kbps is None else impairment.rate_kbps * 1000 / 8
        self._queue_free_s = -math.inf  # when the bottleneck has sent everything queued so far
        self._last_deliver_s = -math.inf
        self._last_sent_s = -math.inf

    def backlog_ms(self, at_s: float) -> float:
        """Milliseconds of data still queued at the bottleneck at ``at_s`` (0 without a rate limit)."""
        return max(0.0, self._queue_free_s - at_s) * 1000

    def send(self, at_s: float, size_bytes: int) -> Decision:
        """Decide the fate of one datagram and update the counters.

        Args:
            at_s: Send time, in the caller's clock (seconds); not earlier than the previous datagram's.
            size_bytes: Datagram size in bytes (UDP payload), >= 0.

        Returns:
            The decision: a delivery time, or the reason for the drop.

        Raises:
            ValueError: If ``at_s`` goes backwards or ``size_bytes`` is negative.
        """
        if at_s < self._last_sent_s:
            raise ValueError(f"send times must not go backwards ({at_s} after {self._last_sent_s})")
        if size_bytes < 0:
            raise ValueError("size_bytes must be >= 0")
        self._last_sent_s = at_s
        imp = self.impairment
        counters = self.counters
        counters.sent += 1
        counters.bytes_sent += size_bytes

        elapsed = at_s - self.start_s
        if any(b.covers(elapsed) for b in imp.blackouts):
            return self._drop(at_s, Drop.BLACKOUT)

        leave_s = at_s
        if self._bytes_per_s is not None:
            start = max(at_s, self._queue_free_s)
            leave_s = start + size_bytes / self._bytes_per_s
            backlog_before = start - at_s
            if backlog_before > _EPSILON_S and leave_s - at_s > imp.queue_ms / 1000 + _EPSILON_S:
                return self._drop(at_s, Drop.QUEUE)
            self._queue_free_s = leave_s

        if imp.burst is not None:
            burst = imp.burst
            lost = self._burst_rng.random() < (burst.loss_bad if self._bad else burst.loss_good)
            move = self._burst_rng.random()
            self._bad = move >= burst.r if self._bad else move < burst.p
            if lost:
                return self._drop(at_s, Drop.BURST)
        elif imp.loss > 0 and self._loss_rng.random() < imp.loss:
            return self._drop(at_s, Drop.RANDOM)

        delay_ms = imp.delay_ms
        if imp.jitter_ms > 0:
            delay_ms = max(0.0, self._jitter_rng.gauss(delay_ms, imp.jitter_ms))
        deliver_s = leave_s + delay_ms / 1000
        if not imp.reorder:
            deliver_s = max(deliver_s, self._last_deliver_s)
        self._last_deliver_s = max(self._last_deliver_s, deliver_s)
        counters.delivered += 1
        counters.bytes_delivered += size_bytes
        return Decision(at_s, deliver_s, None, (leave_s - at_s) * 1000)

    def _drop(self, at_s: float, reason: Drop) -> Decision:
        self.counters.dropped[reason.value] += 1
        return Decision(at_s, None, reason)


class ImpairedDatagramTransport(asyncio.DatagramTransport):
    """An ``asyncio.DatagramTransport`` that sends through a `Link` before the real transport.

    ``sendto()`` asks the link; a delivered datagram goes to the wrapped transport at its delivery time (at
    once if that has come). Waiting datagrams sit in one heap served by a single ``loop.call_at`` timer, in
    delivery order (ties in send order, so ``reorder=False`` holds on the wire too). Everything else
    (``get_extra_info``, receiving) is the wrapped transport's.

    Attributes:
        inner: The real transport.
        link: The impairment model; its clock is ``loop.time()``.
        cancelled: Datagrams dropped because the transport closed before their delivery time.
    """

    def __init__(self, inner: asyncio.DatagramTransport, link: Link) -> None:
        """Wrap a transport; must be created while the event loop runs.

        Args:
            inner: The transport to send through.
            link: The model; create it with ``start_s=loop.time()`` for blackouts to count from now.
        """
        super().__init__()
        self.inner = inner
        self.link = link
        self.cancelled = 0
        self._loop = asyncio.get_running_loop()
        self._queue: list[tuple[float, int, bytes, Any]] = []
        self._order = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Datagrams accepted by the link and not yet handed to the real transport."""
        return len(self._queue)

    def sendto(self, data: bytes | bytearray | memoryview, addr: Any = None) -> None:
        """Send a datagram through the link (may drop or delay it).

        Args:
            data: The datagram.
            addr: Destination, as for the wrapped transport.
        """
        if self._closed or self.inner.is_closing():
            return
        now = self._loop.time()
        decision = self.link.send(now, len(data))
        if decision.deliver_s is None:
            return
        if decision.deliver_s <= now and not self._queue:
            self.inner.sendto(data, addr)
            return
        heapq.heappush(self._queue, (decision.deliver_s, next(self._order), bytes(data), addr))
        self._arm()

    def _arm(self) -> None:
        head = self._queue[0][0]
        if self._timer is not None:
            if self._timer.when() <= head:
                return
            self._timer.cancel()
        self._timer = self._loop.call_at(head, self._release)

    def _release(self) -> None:
        self._timer = None
        # The loop may run a timer up to its clock resolution early: keep that datagram for the next round.
        now = self._loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, _, data, addr = heapq.heappop(self._queue)
            if not self.inner.is_closing():
                self.inner.sendto(data, addr)
        if self._queue:
            self._arm()

    def _cancel_pending(self) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.cancelled += len(self._queue)
        self._queue.clear()

    def close(self) -> None:
        """Drop the datagrams still waiting and close the real transport."""
        self._cancel_pending()
        self.inner.close()

    def abort(self) -> None:
        """Drop the datagrams still waiting and abort the real transport."""
        self._cancel_pending()
        self.inner.abort()

    def is_closing(self) -> bool:
        """True once this wrapper or the real transport is closing."""
        return self._closed or self.inner.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The wrapped transport's extra info (``sockname``, ``socket``...)."""
        return self.inner.get_extra_info(name, default)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        """Set the wrapped transport's protocol."""
        self.inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        """The wrapped transport's protocol."""
        return self.inner.get_protocol()

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (or being unpickled): do not recurse
            raise AttributeError(name)
        return getattr(self.inner, name)


class ImpairedPeer:
    """The impairment applied to one aiortc peer's sending direction, as returned by `impair_connection`.

    Attributes:
        link: The model shared by all the peer's sockets (one bottleneck); read ``link.counters``.
        transports: The wrappers now under the peer's ICE sockets.
    """

    def __init__(self, link: Link) -> None:
        """Hold the link; `impair_connection` adds the transports.

        Args:
            link: The model every socket of the peer sends through.
        """
        self.link = link
        self.transports: list[ImpairedDatagramTransport] = []

    @property
    def impairment(self) -> Impairment:
        """The settings in force."""
        return self.link.impairment

    @property
    def pending(self) -> int:
        """Datagrams waiting for their delivery time, over all the peer's sockets."""
        return sum(t.pending for t in self.transports)

    def close(self) -> None:
        """Drop every waiting datagram and stop delaying (the peer's own close does this too)."""
        for transport in self.transports:
            transport._cancel_pending()


_impaired: weakref.WeakKeyDictionary[Any, ImpairedPeer] = weakref.WeakKeyDictionary()


def _stun_protocols(pc: RTCPeerConnection) -> list[Any]:
    """The aioice protocols (one per local candidate) of every ICE transport of ``pc``."""
    ice_transports: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        ice = transceiver.receiver.transport.transport
        ice_transports[id(ice)] = ice
    if pc.sctp is not None:
        ice = pc.sctp.transport.transport
        ice_transports[id(ice)] = ice
    # `_connection` (aiortc) and `_protocols` (aioice) are private; the test suite pins the versions.
    return [p for ice in ice_transports.values() for p in ice._connection._protocols]


def impair_connection(pc: RTCPeerConnection, impairment: Impairment) -> ImpairedPeer:
    """Impair every datagram ``pc`` sends from now on (STUN, DTLS, RTP, RTCP), leaving what it receives alone.

    Call it right after ``await pc.setLocalDescription(...)``, with no ``await`` in between: the sockets
    exist then and ICE has not started. Calling it again (after a renegotiation that opened new sockets)
    with the same impairment impairs the new sockets through the same link.

    Args:
        pc: The peer whose outgoing direction to impair.
        impairment: What to do to its datagrams. Blackouts count from this call.

    Returns:
        A handle with the link (and its counters) and the wrapped transports.

    Raises:
        RuntimeError: If ``pc`` has no socket yet (``setLocalDescription`` not done) or no loop runs.
        ValueError: If ``pc`` is already impaired with a different impairment.
    """
    loop = asyncio.get_running_loop()
    protocols = _stun_protocols(pc)
    if not protocols:
        raise RuntimeError(
            "the peer has no ICE socket yet: call impair_connection() after setLocalDescription()"
        )
    peer = _impaired.get(pc)
    if peer is None:
        peer = _impaired[pc] = ImpairedPeer(Link(impairment, start_s=loop.time()))
    elif peer.impairment != impairment:
        raise ValueError("this peer is already impaired with different settings")
    for protocol in protocols:
        if not isinstance(protocol.transport, ImpairedDatagramTransport):
            wrapper = ImpairedDatagramTransport(protocol.transport, peer.link)
            protocol.transport = wrapper
            peer.transports.append(wrapper)
    return peer
