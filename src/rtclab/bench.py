"""Measure how faithfully rtclab.impair's userspace link delays, drops and rate-limits real UDP on 127.0.0.1.

Run ``python -m rtclab.bench`` (``--help`` for options). For each setting it sends a paced stream of numbered
UDP datagrams from one loopback socket to another through an `rtclab.impair.ImpairedDatagramTransport`,
in real time, and compares what arrives with what was configured: median delay (target ±2 ms), delay spread,
loss (±1 percentage point) and throughput (±5 %). Random settings are seeded; where a few thousand packets
cannot pin a random quantity to the target (bursty loss), the tolerance widens to three standard errors of
the sample and the table says so. ``--kernel`` (root only) repeats the loss and rate flows between two network
namespaces with the kernel's ``tbf`` and ``nft`` instead, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import dataclasses
import ipaddress
import json
import math
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rtclab.impair import Blackout, Decision, GilbertElliott, ImpairedDatagramTransport, Impairment, Link

__all__ = [
    "Check",
    "Flow",
    "Measurement",
    "Setting",
    "expected_checks",
    "format_table",
    "main",
    "measure",
    "run_bench",
    "settings",
]

LOCALHOST = "127.0.0.1"
DELAY_TOLERANCE_MS = 2.0
LOSS_TOLERANCE = 0.01
THROUGHPUT_TOLERANCE = 0.05
RATE_SECONDS = 4.0
"""How long each 300 kbit/s flow runs: at 1200-byte packets the cap passes only 31 packets a second."""
BLACKOUT_SECONDS = 2.0

_HEADER = struct.Struct("!I")


@dataclass(frozen=True)
class Flow:
    """A paced stream of equal datagrams.

    Attributes:
        packets: Datagrams to send.
        pps: Datagrams per second.
        size: UDP payload bytes per datagram (>= 4: the sequence number).
    """

    packets: int
    pps: float
    size: int = 200

    def __post_init__(self) -> None:
        if self.packets < 1 or not self.pps > 0 or self.size < _HEADER.size:
            raise ValueError(f"a flow needs packets >= 1, pps > 0 and size >= {_HEADER.size}: {self}")

    @property
    def seconds(self) -> float:
        """Time to send the whole stream."""
        return self.packets / self.pps

    @property
    def offered_kbps(self) -> float:
        """Offered load in kbit/s of payload."""
        return self.pps * self.size * 8 / 1000


@dataclass(frozen=True)
class Check:
    """One configured value against its measurement: passes when ``|measured - configured| <= tolerance``.

    Attributes:
        name: What is compared, with its unit (``"median delay ms"``).
        configured: The value the settings imply.
        measured: The measured value (None if nothing could be measured).
        tolerance: Allowed deviation, in the same unit.
        widened: True when the tolerance was widened to three standard errors of the sample.
    """

    name: str
    configured: float
    measured: float | None
    tolerance: float
    widened: bool = False

    @property
    def ok(self) -> bool:
        """True when the measurement is within tolerance."""
        if self.measured is None or math.isnan(self.measured):
            return False
        return abs(self.measured - self.configured) <= self.tolerance + 1e-9

    def cell(self) -> str:
        """``configured/measured`` for the table, with ``!`` on a failure and ``~`` on a widened tolerance."""
        measured = "n/a" if self.measured is None else f"{self.measured:.1f}"
        mark = "" if self.ok else " !"
        widened = "~" if self.widened else ""
        return f"{self.configured:.1f}/{measured} ±{widened}{self.tolerance:.1f}{mark}"


@dataclass(frozen=True)
class Setting:
    """An impairment, the flow sent through it, and the checks to make.

    Attributes:
        name: Short label for the table.
        impairment: The userspace impairment.
        flow: The stream sent through it.
        checks: Names of the checks to make: ``delay``, ``spread``, ``loss``, ``throughput``, ``burst``,
            ``gap``.
    """

    name: str
    impairment: Impairment
    flow: Flow
    checks: tuple[str, ...]


@dataclass
class Measurement:
    """What arrived for one setting.

    Attributes:
        setting: The setting measured.
        sent_at: Send time of each datagram (loop clock, seconds), by sequence number.
        received_at: Arrival time by sequence number, for the datagrams that arrived.
        decisions: The link's decision per datagram (empty when no userspace link was used).
        seconds: Wall time the measurement took.
        start_s: When the link started (loop clock); blackouts count from here.
    """

    setting: Setting
    sent_at: list[float]
    received_at: dict[int, float]
    decisions: list[Decision] = field(default_factory=list)
    seconds: float = 0.0
    start_s: float = 0.0

    @property
    def delays_ms(self) -> list[float]:
        """One-way delay of each arrived datagram, in ms, in sequence order."""
        return [(self.received_at[i] - self.sent_at[i]) * 1000 for i in sorted(self.received_at)]

    def delays_after_ms(self, seconds: float) -> list[float]:
        """Delays in ms of the arrived datagrams sent at least ``seconds`` after the first one."""
        if not self.sent_at:
            return []
        since = self.sent_at[0] + seconds
        return [
            (t - self.sent_at[i]) * 1000
            for i, t in sorted(self.received_at.items())
            if self.sent_at[i] >= since
        ]

    @property
    def loss(self) -> float:
        """Fraction of sent datagrams that did not arrive."""
        return 1 - len(self.received_at) / len(self.sent_at) if self.sent_at else 0.0

    @property
    def throughput_kbps(self) -> float | None:
        """Payload rate at the receiver from first to last arrival, in kbit/s (first datagram not counted)."""
        times = sorted(self.received_at.values())
        if len(times) < 2 or times[-1] <= times[0]:
            return None
        return (len(times) - 1) * self.setting.flow.size * 8 / (times[-1] - times[0]) / 1000

    @property
    def mean_burst_packets(self) -> float | None:
        """Mean length of the runs of consecutive lost datagrams (None if none was lost)."""
        runs, run = [], 0
        for seq in range(len(self.sent_at)):
            if seq in self.received_at:
                if run:
                    runs.append(run)
                run = 0
            else:
                run += 1
        if run:
            runs.append(run)
        return statistics.fmean(runs) if runs else None

    @property
    def longest_gap_ms(self) -> float | None:
        """Longest silence between two consecutive arrivals, in ms."""
        times = sorted(self.received_at.values())
        return max((b - a) * 1000 for a, b in zip(times, times[1:], strict=False)) if len(times) > 1 else None

    def timing_error_ms(self) -> tuple[float, float] | None:
        """Median and 99th percentile of |measured delay - delay the link decided|, per datagram, in ms.

        This is the error of the real-time machinery alone (timers, sockets, the event loop), with the
        randomness of the model taken out. None without a userspace link or arrivals.
        """
        errors = [
            abs((self.received_at[i] - self.sent_at[i]) - (d.deliver_s - d.sent_s)) * 1000
            for i, d in enumerate(self.decisions)
            if d.deliver_s is not None and i in self.received_at
        ]
        if not errors:
            return None
        errors.sort()
        return statistics.median(errors), errors[min(len(errors) - 1, int(len(errors) * 0.99))]

    def checks(self) -> list[Check]:
        """Compare with the configured values; see `expected_checks`."""
        return expected_checks(self)


def settings(packets: int = 5000, seed: int = 0) -> list[Setting]:
    """The settings the bench measures.

    Args:
        packets: Datagrams per setting, except the 300 kbit/s flows, which run `RATE_SECONDS`, and
            the 6 Mbit/s flow, which sends at least 1407 (1.5 s).
        seed: Seed of every impairment.

    Returns:
        The settings, in the order they run.
    """
    fast = Flow(packets, pps=2000)
    big = 1200
    cap = 300.0
    return [
        Setting("delay 100 ms", Impairment(delay_ms=100, seed=seed), fast, ("delay", "loss")),
        Setting(
            "delay 100 ± 20 ms (gaussian, reorders)",
            Impairment(delay_ms=100, jitter_ms=20, reorder=True, seed=seed),
            fast,
            ("delay", "spread", "loss"),
        ),
        Setting("loss 5 % random", Impairment(loss=0.05, seed=seed), fast, ("delay", "loss")),
        Setting(
            "Gilbert-Elliott p=0.02 r=0.25",
            Impairment(burst=GilbertElliott(p=0.02, r=0.25), seed=seed),
            fast,
            ("delay", "loss", "burst"),
        ),
        Setting(
            "rate 300 kbit/s, 240 offered",
            Impairment(rate_kbps=cap, queue_ms=200, seed=seed),
            Flow(round(RATE_SECONDS * 0.8 * cap * 1000 / 8 / big), pps=0.8 * cap * 1000 / 8 / big, size=big),
            ("delay", "loss", "throughput"),
        ),
        Setting(
            "rate 300 kbit/s, 600 offered",
            Impairment(rate_kbps=cap, queue_ms=200, seed=seed),
            Flow(round(RATE_SECONDS * 2 * cap * 1000 / 8 / big), pps=2 * cap * 1000 / 8 / big, size=big),
            ("delay", "loss", "throughput"),
        ),
        Setting(
            "rate 6 Mbit/s, 9 offered",
            Impairment(rate_kbps=6000, queue_ms=200, seed=seed),
            # At least 1.5 s: the 200 ms queue takes 0.4 s to fill at this load.
            Flow(max(packets, 1407), pps=1.5 * 6000 * 1000 / 8 / big, size=big),
            ("delay", "loss", "throughput"),
        ),
        Setting(
            "blackout 2 s",
            Impairment(blackouts=(Blackout(start_s=1.0, duration_s=BLACKOUT_SECONDS),), seed=seed),
            Flow(packets, pps=packets / (BLACKOUT_SECONDS + 2.0)),
            ("loss", "gap"),
        ),
    ]


def _serialization_ms(imp: Impairment, size: int) -> float:
    return 0.0 if imp.rate_kbps is None else size * 8 / imp.rate_kbps


def _queue_loss(imp: Impairment, flow: Flow) -> float:
    """Expected drop-tail loss of a constant flow: what the cap passes while sending, plus a full queue."""
    assert imp.rate_kbps is not None
    delivered_kbit = imp.rate_kbps * flow.seconds + imp.rate_kbps * imp.queue_ms / 1000
    return max(0.0, 1 - delivered_kbit / (flow.offered_kbps * flow.seconds))


def _loss_standard_error(imp: Impairment, n: int) -> float:
    """Standard error of the loss fraction of n packets (a Markov chain's for bursty loss)."""
    if imp.burst is None:
        return math.sqrt(imp.loss * (1 - imp.loss) / n)
    ge = imp.burst
    bad = ge.bad_fraction
    memory = 1 - ge.p - ge.r  # correlation of the state from one packet to the next
    state_var = bad * (1 - bad) * (ge.loss_bad - ge.loss_good) ** 2 * (1 + memory) / (1 - memory)
    coin_var = bad * ge.loss_bad * (1 - ge.loss_bad) + (1 - bad) * ge.loss_good * (1 - ge.loss_good)
    return math.sqrt((state_var + coin_var) / n)


def expected_checks(m: Measurement) -> list[Check]:
    """The checks of a measurement, against values derived from its setting.

    Delay and loss tolerances are the targets (±2 ms, ±1 point, ±5 %), widened to three standard errors of
    the sample where randomness alone would exceed them at this many packets (the check is then marked
    ``widened``). Rate flows get a loss of 0 below the cap and the drop-tail expectation above it; over the
    cap the median delay is that of a full queue, within one arrival interval.

    Args:
        m: The measurement.

    Returns:
        One check per name in ``m.setting.checks``.
    """
    s, imp, flow = m.setting, m.setting.impairment, m.setting.flow
    n = len(m.sent_at)
    delays = m.delays_ms
    checks: list[Check] = []

    def widened(target: float, standard_error: float) -> tuple[float, bool]:
        return (3 * standard_error, True) if 3 * standard_error > target else (target, False)

    for name in s.checks:
        if name == "delay":
            se = 1.2533 * imp.jitter_ms / math.sqrt(max(len(delays), 1))  # standard error of a median
            tol, wide = widened(DELAY_TOLERANCE_MS, se)
            configured = imp.delay_ms + _serialization_ms(imp, flow.size)
            sample = delays
            if imp.rate_kbps is not None and flow.offered_kbps > imp.rate_kbps:
                # Over the cap, once the queue has filled, it stays full: a datagram gets in once the
                # backlog has drained to queue_ms minus its own size, which happens within one arrival
                # interval, so every admitted datagram waits between queue_ms - interval and queue_ms.
                interval_ms = 1000 / flow.pps
                configured, tol = imp.delay_ms + imp.queue_ms - interval_ms / 2, interval_ms / 2 + tol
                fill_s = imp.queue_ms / 1000 * imp.rate_kbps / (flow.offered_kbps - imp.rate_kbps)
                sample = m.delays_after_ms(fill_s + 0.1)  # datagrams sent once the queue has filled
            measured = statistics.median(sample) if sample else None
            checks.append(Check("median delay ms", configured, measured, tol, widened=wide))
        elif name == "spread":
            se = imp.jitter_ms / math.sqrt(2 * max(len(delays), 1))
            tol, wide = widened(DELAY_TOLERANCE_MS, se)
            measured = statistics.stdev(delays) if len(delays) > 1 else None
            checks.append(Check("delay std-dev ms", imp.jitter_ms, measured, tol, widened=wide))
        elif name == "loss":
            if imp.rate_kbps is not None:
                configured = _queue_loss(imp, flow)
                tol, wide = max(LOSS_TOLERANCE, 1 / n), False
            elif imp.blackouts:
                sent_s = sum(min(b.duration_s, max(0.0, flow.seconds - b.start_s)) for b in imp.blackouts)
                configured, (tol, wide) = sent_s / flow.seconds, (max(LOSS_TOLERANCE, 1 / n), False)
            else:
                configured = imp.mean_loss
                tol, wide = widened(LOSS_TOLERANCE, _loss_standard_error(imp, n))
            checks.append(Check("loss %", configured * 100, m.loss * 100, tol * 100, widened=wide))
        elif name == "throughput":
            assert imp.rate_kbps is not None
            configured = min(flow.offered_kbps, imp.rate_kbps)
            checks.append(
                Check("throughput kbit/s", configured, m.throughput_kbps, THROUGHPUT_TOLERANCE * configured)
            )
        elif name == "burst":
            assert imp.burst is not None
            ge = imp.burst
            bursts = max(1.0, n * ge.bad_fraction * ge.r)  # expected number of bad-state stays
            se = math.sqrt(1 - ge.r) / ge.r / math.sqrt(bursts)  # geometric lengths: std-dev sqrt(1-r)/r
            checks.append(Check("mean burst pkts", ge.mean_burst_packets, m.mean_burst_packets, 3 * se))
        elif name == "gap":
            # The receiver hears nothing from the last datagram sent before the blackout to the first
            # sent after it: the blackout plus the sender's own spacing around it, which is added to the
            # tolerance (the link cannot do better than the datagrams it is given).
            blackout = max(imp.blackouts, key=lambda b: b.duration_s)
            elapsed = [t - m.start_s for t in m.sent_at]
            before = max((t for t in elapsed if t < blackout.start_s), default=blackout.start_s)
            after = min((t for t in elapsed if t >= blackout.end_s), default=blackout.end_s)
            spacing_ms = ((after - before) - blackout.duration_s) * 1000
            configured = blackout.duration_s * 1000
            checks.append(
                Check("longest gap ms", configured, m.longest_gap_ms, DELAY_TOLERANCE_MS + spacing_ms)
            )
    return checks


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, received_at: dict[int, float]) -> None:
        self.received_at = received_at
        self.loop = asyncio.get_running_loop()
        self.last_s = 0.0

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        now = self.loop.time()
        self.received_at.setdefault(_HEADER.unpack_from(data)[0], now)
        self.last_s = now


class _RecordingLink(Link):
    """A link that keeps every decision, to compare the wire with the model."""

    def __init__(self, impairment: Impairment, *, start_s: float) -> None:
        super().__init__(impairment, start_s=start_s)
        self.decisions: list[Decision] = []

    def send(self, at_s: float, size_bytes: int) -> Decision:
        decision = super().send(at_s, size_bytes)
        self.decisions.append(decision)
        return decision


async def measure(
    setting: Setting,
    *,
    userspace: bool = True,
    sockets: tuple[socket.socket, socket.socket] | None = None,
) -> Measurement:
    """Send a setting's flow and record what arrives, in real time.

    Args:
        setting: What to send, and through which impairment.
        userspace: Send through the userspace link (False: straight to the socket, for the kernel mode,
            where the namespaces' qdiscs and firewall do the impairing).
        sockets: A bound (sender, receiver) pair of UDP sockets; by default two new ones on 127.0.0.1.

    Returns:
        Send and arrival times, and the link's decisions.
    """
    loop = asyncio.get_running_loop()
    began = time.perf_counter()
    flow = setting.flow
    if sockets is None:
        sender_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        receiver_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender_sock.bind((LOCALHOST, 0))
        receiver_sock.bind((LOCALHOST, 0))
    else:
        sender_sock, receiver_sock = sockets
    destination = receiver_sock.getsockname()
    # Traffic rule: loopback, or the veth inside the namespaces this bench made; never anywhere else.
    if not ipaddress.ip_address(destination[0]).is_loopback and destination[0] not in _NS_ADDRESSES:
        raise ValueError(f"refusing to send to {destination[0]}: loopback or the bench's own namespaces only")
    # Room for a whole 200 ms queue of 9 Mbit/s even if the loop is busy for a moment.
    receiver_sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    received_at: dict[int, float] = {}
    receiver_transport, receiver = await loop.create_datagram_endpoint(
        lambda: _Receiver(received_at), sock=receiver_sock
    )
    raw, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=sender_sock)
    start = loop.time() + 0.05
    link = _RecordingLink(setting.impairment, start_s=start)
    sender: asyncio.DatagramTransport = ImpairedDatagramTransport(raw, link) if userspace else raw
    sent_at: list[float] = []
    padding = bytes(flow.size - _HEADER.size)
    try:
        seq = 0
        while seq < flow.packets:
            now = loop.time()
            while seq < flow.packets and start + seq / flow.pps <= now:
                sent_at.append(loop.time())
                sender.sendto(_HEADER.pack(seq) + padding, destination)
                seq += 1
            if seq < flow.packets:
                await asyncio.sleep(max(0.0, start + seq / flow.pps - loop.time()))
        # Drain: everything the link decided to deliver, or (kernel) until the line has been quiet a while.
        expected = sum(d.delivered for d in link.decisions) if userspace else None
        deadline = loop.time() + setting.impairment.delay_ms / 1000 + setting.impairment.queue_ms / 1000 + 3
        while loop.time() < deadline:
            if expected is not None and len(received_at) >= expected:
                break
            if expected is None and loop.time() - max(receiver.last_s, sent_at[-1]) > 0.5:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)  # a stray late datagram would show up here
    finally:
        sender.close()
        receiver_transport.close()
    decisions = link.decisions if userspace else []
    return Measurement(setting, sent_at, received_at, decisions, time.perf_counter() - began, start)


def _row(m: Measurement) -> dict[str, Any]:
    checks = m.checks()
    timing = m.timing_error_ms()
    model_delivered = sum(d.delivered for d in m.decisions) if m.decisions else None
    return {
        "setting": m.setting.name,
        "impairment": dataclasses.asdict(m.setting.impairment),
        "flow": {**dataclasses.asdict(m.setting.flow), "offered_kbps": m.setting.flow.offered_kbps},
        "sent": len(m.sent_at),
        "received": len(m.received_at),
        "model_delivered": model_delivered,
        "timing_error_ms": None if timing is None else {"p50": timing[0], "p99": timing[1]},
        "max_delay_ms": max(m.delays_ms, default=None),
        "checks": [{**dataclasses.asdict(c), "ok": c.ok} for c in checks],
        "ok": all(c.ok for c in checks)
        and (model_delivered is None or model_delivered == len(m.received_at)),
        "seconds": m.seconds,
    }


def format_table(rows: Sequence[dict[str, Any]]) -> str:
    """Format bench rows (as in the JSON output) as a text table, one line per setting.

    Args:
        rows: Rows from `run_bench`.

    Returns:
        The table, each check as ``configured/measured ±tolerance`` (``!`` marks a miss, ``~`` a tolerance
        widened to three standard errors).
    """
    columns = ["median delay ms", "delay std-dev ms", "loss %", "throughput kbit/s"]
    header = ["setting", "pkts", *columns, "other", "timing err p50/p99 ms", "s", "result"]
    lines = []
    for row in rows:
        by_name = {c["name"]: Check(**{k: v for k, v in c.items() if k != "ok"}) for c in row["checks"]}
        other = [
            f"{name.split(' ', 1)[1] if ' ' in name else name} {c.cell()}" for name, c in by_name.items()
        ]
        other = [o for o, name in zip(other, by_name, strict=True) if name not in columns]
        timing = row["timing_error_ms"]
        lines.append(
            [
                row["setting"],
                str(row["sent"]),
                *(by_name[c].cell() if c in by_name else "-" for c in columns),
                "; ".join(other) or "-",
                "-" if timing is None else f"{timing['p50']:.2f}/{timing['p99']:.2f}",
                f"{row['seconds']:.1f}",
                "PASS" if row["ok"] else "FAIL",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines, strict=True)]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("  ".join("-" * w for w in widths))
    out += ["  ".join(x.ljust(w) for x, w in zip(line, widths, strict=True)) for line in lines]
    return "\n".join(out)


async def run_bench(packets: int = 5000, seed: int = 0) -> list[dict[str, Any]]:
    """Measure every setting of `settings`, one after the other.

    Args:
        packets: Datagrams per setting (the 300 kbit/s flows run a fixed time instead).
        seed: Seed of every impairment.

    Returns:
        One row per setting: sent, received, checks with configured and measured values, timing error.
    """
    return [_row(await measure(s)) for s in settings(packets, seed)]


# Kernel mode --------------------------------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_NS_ADDRESSES = ("10.203.0.1", "10.203.0.2")


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check, timeout=30)


@contextlib.contextmanager
def _namespaces() -> Iterator[tuple[str, str]]:
    """Two fresh network namespaces joined by a veth pair (10.203.0.1 <-> 10.203.0.2); deleted on exit."""
    tag = f"lma{os.getpid()}"
    a, b = f"{tag}a", f"{tag}b"
    made: list[str] = []
    try:
        for ns in (a, b):
            _run("ip", "netns", "add", ns)
            made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "link", "add", "va", "netns", a, "type", "veth", "peer", "name", "vb", "netns", b)
        for ns, dev, address in ((a, "va", _NS_ADDRESSES[0]), (b, "vb", _NS_ADDRESSES[1])):
            _run("ip", "-n", ns, "addr", "add", f"{address}/30", "dev", dev)
            _run("ip", "-n", ns, "link", "set", dev, "up")
        yield a, b
    finally:
        for ns in made:
            _run("ip", "netns", "del", ns, check=False)


def _socket_in(ns: str, address: str) -> socket.socket:
    """A UDP socket bound to ``address`` inside namespace ``ns`` (the thread switches in and back)."""
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/self/ns/net", "rb") as home, open(f"/var/run/netns/{ns}", "rb") as target:
        if libc.setns(target.fileno(), _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {ns} failed")
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((address, 0))
        finally:
            if libc.setns(home.fileno(), _CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back home failed")
    return sock


def kernel_available() -> str | None:
    """Tell why the kernel mode cannot run here, or None if it can.

    Returns:
        A reason (not root, a missing tool), or None.
    """
    if os.geteuid() != 0:
        return "needs root (ip netns, tc, nft)"
    missing = [tool for tool in ("ip", "tc", "nft") if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)} (apt-get install -y iproute2 nftables)"
    if shutil.which("unshare") and _run("unshare", "-n", "true", check=False).returncode != 0:
        return "this machine does not allow new network namespaces"
    return None


def _in(ns: str, *command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("ip", "netns", "exec", ns, *command, check=check)


async def run_kernel(packets: int, seed: int) -> dict[str, Any]:
    """Run the random-loss and the over-cap rate flows through the kernel, between two namespaces.

    Loss is an nftables ``numgen random`` rule, the rate a ``tbf`` qdisc on the sender's veth, both set from
    the same settings as the userspace rows. Two differences are expected, not errors: tbf counts IP, UDP
    and Ethernet headers (42 bytes a datagram) where the userspace link counts payload only, and its
    ``latency`` limit also holds the bucket's ``burst``. netem is probed and reported.

    Args:
        packets: Datagrams of the loss flow.
        seed: Seed of the settings (the kernel's randomness is its own).

    Returns:
        ``{"netem": "available" | "unavailable: <error>", "rows": [...]}``, rows shaped as the userspace
        ones and named ``kernel: ...``.
    """
    by_name = {s.name: s for s in settings(packets, seed)}
    loss_setting, rate_setting = by_name["loss 5 % random"], by_name["rate 300 kbit/s, 600 offered"]
    result: dict[str, Any] = {"netem": None, "rows": []}
    with _namespaces() as (a, b):
        probe = _in(a, "tc", "qdisc", "add", "dev", "va", "root", "netem", "delay", "100ms", check=False)
        if probe.returncode == 0:
            result["netem"] = "available"
            _in(a, "tc", "qdisc", "del", "dev", "va", "root")
        else:
            result["netem"] = f"unavailable: {probe.stderr.strip()}"

        percent = round(loss_setting.impairment.loss * 100)
        rule = f"ip daddr {_NS_ADDRESSES[1]} meta l4proto udp numgen random mod 100 < {percent} drop"
        _in(a, "nft", "add", "table", "inet", "lma")
        _in(a, "nft", "add chain inet lma out { type filter hook output priority 0; policy accept; }")
        _in(a, "nft", f"add rule inet lma out {rule}")
        sockets = (_socket_in(a, _NS_ADDRESSES[0]), _socket_in(b, _NS_ADDRESSES[1]))
        kernel_loss = dataclasses.replace(loss_setting, name="kernel: " + loss_setting.name)
        result["rows"].append(_row(await measure(kernel_loss, userspace=False, sockets=sockets)))
        _in(a, "nft", "delete", "table", "inet", "lma")

        imp = rate_setting.impairment
        assert imp.rate_kbps is not None
        tbf = ["rate", f"{imp.rate_kbps:g}kbit", "burst", "1600", "latency", f"{imp.queue_ms:g}ms"]
        _in(a, "tc", "qdisc", "add", "dev", "va", "root", "tbf", *tbf)
        sockets = (_socket_in(a, _NS_ADDRESSES[0]), _socket_in(b, _NS_ADDRESSES[1]))
        kernel_rate = dataclasses.replace(rate_setting, name="kernel: " + rate_setting.name)
        result["rows"].append(_row(await measure(kernel_rate, userspace=False, sockets=sockets)))
    return result


def format_comparison(rows: Sequence[dict[str, Any]], kernel_rows: Sequence[dict[str, Any]]) -> str:
    """Set each kernel row beside the userspace row of the same flow, metric by metric.

    Args:
        rows: Userspace rows from `run_bench`.
        kernel_rows: Rows from `run_kernel`.

    Returns:
        A text table: flow, metric, configured, userspace, kernel.
    """
    by_name = {row["setting"]: row for row in rows}
    lines = [("flow", "metric", "configured", "userspace", "kernel")]
    for kernel in kernel_rows:
        name = kernel["setting"].removeprefix("kernel: ")
        user = {c["name"]: c for c in by_name[name]["checks"]}
        label = f"{name} ({kernel['sent']} pkts)"
        for check in kernel["checks"]:
            mine = user[check["name"]]
            cells = [f"{c['measured']:.1f}" if c["measured"] is not None else "n/a" for c in (mine, check)]
            lines.append((label, check["name"], f"{check['configured']:.1f}", *cells))
            label = ""
    widths = [max(len(line[i]) for line in lines) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the bench and print the table (or JSON).

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        0 if every setting passed, 1 otherwise.
    """
    parser = argparse.ArgumentParser(prog="python -m rtclab.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--packets", type=int, default=5000, help="datagrams per setting (default 5000, min 100)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of every impairment (default 0)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument(
        "--kernel", action="store_true", help="also run loss and rate in the kernel, between two netns (root)"
    )
    args = parser.parse_args(argv)
    if args.packets < 100:
        parser.error("--packets must be at least 100")

    began = time.perf_counter()
    rows = asyncio.run(run_bench(args.packets, args.seed))
    kernel: dict[str, Any] | None = None
    if args.kernel:
        reason = kernel_available()
        if reason:
            kernel = {"skipped": reason}
        else:
            try:
                kernel = asyncio.run(run_kernel(args.packets, args.seed))
            except (OSError, subprocess.SubprocessError) as exc:
                detail = getattr(exc, "stderr", None) or exc
                kernel = {"skipped": f"failed: {detail}".strip()}
    seconds = time.perf_counter() - began
    ok = all(row["ok"] for row in rows)
    if args.json:
        json.dump(
            {
                "packets": args.packets,
                "seed": args.seed,
                "ok": ok,
                "seconds": seconds,
                "settings": rows,
                "kernel": kernel,
            },
            sys.stdout,
            indent=2,
        )
        print()
    else:
        print(format_table(rows))
        if kernel is not None:
            print()
            if "skipped" in kernel:
                print(f"kernel mode skipped: {kernel['skipped']}")
            else:
                print(f"kernel mode, two network namespaces joined by a veth pair: netem {kernel['netem']}")
                print("(tbf counts 42 bytes of headers per datagram: 1200-byte payloads pass at 1200/1242 of")
                print(" the rate; its latency limit holds the 1600-byte burst too, so its queue is longer)")
                print(format_comparison(rows, kernel["rows"]))
        print(
            f"\n{'PASS' if ok else 'FAIL'}: {sum(r['ok'] for r in rows)}/{len(rows)} settings in {seconds:.1f} s"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
