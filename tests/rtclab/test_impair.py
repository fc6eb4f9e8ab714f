"""rtclab.impair: the seeded link model, the datagram wrapper on real loopback sockets, and impaired calls."""

import asyncio
import gc
import logging
import math
import statistics

import pytest
from aiortc import RTCPeerConnection
from hypothesis import given, settings
from hypothesis import strategies as st

from rtclab.call import LoopbackCall
from rtclab.impair import (
    Blackout,
    Drop,
    GilbertElliott,
    ImpairedDatagramTransport,
    Impairment,
    Link,
    impair_connection,
)
from rtclab.loopback import loopback_only, rtc_configuration

seeds = st.integers(min_value=0, max_value=2**32)
probabilities = st.floats(min_value=0.0, max_value=1.0)


def run(link: Link, times: list[float], size: int = 200) -> list:
    return [link.send(t, size) for t in times]


def burst_lengths(lost: list[bool]) -> list[int]:
    runs, run_length = [], 0
    for flag in lost:
        if flag:
            run_length += 1
        elif run_length:
            runs.append(run_length)
            run_length = 0
    if run_length:
        runs.append(run_length)
    return runs


# The model ------------------------------------------------------------------------------------------------


def test_default_impairment_changes_nothing():
    link = Link(Impairment())
    decisions = run(link, [i * 0.001 for i in range(1000)])
    assert all(d.deliver_s == d.sent_s and d.dropped is None and d.delay_ms == 0 for d in decisions)
    c = link.counters
    assert (c.sent, c.delivered, c.dropped_total, c.bytes_sent, c.bytes_delivered) == (
        1000,
        1000,
        0,
        200_000,
        200_000,
    )


def test_fixed_delay_is_added_to_every_datagram():
    link = Link(Impairment(delay_ms=100), start_s=50.0)
    for d in run(link, [50.0 + i * 0.01 for i in range(100)]):
        assert d.deliver_s == pytest.approx(d.sent_s + 0.1)


@settings(max_examples=25, deadline=None)
@given(loss=probabilities, seed=seeds)
def test_random_loss_fraction_converges(loss, seed):
    n = 20_000
    link = Link(Impairment(loss=loss, seed=seed))
    run(link, [i * 0.001 for i in range(n)])
    measured = link.counters.dropped["random"] / n
    assert abs(measured - loss) <= 5 * math.sqrt(loss * (1 - loss) / n) + 1e-9
    assert link.counters.loss_fraction == measured


def test_gilbert_elliott_formulas():
    ge = GilbertElliott(p=0.02, r=0.25)
    assert ge.mean_loss == pytest.approx(0.02 / 0.27)
    assert ge.mean_burst_packets == pytest.approx(4.0)
    partial = GilbertElliott(p=0.1, r=0.3, loss_good=0.01, loss_bad=0.5)
    assert partial.mean_loss == pytest.approx(0.25 * 0.5 + 0.75 * 0.01)


@settings(max_examples=8, deadline=None)
@given(p=st.floats(0.005, 0.5), r=st.floats(0.05, 1.0), seed=seeds)
def test_gilbert_elliott_loss_and_bursts_match_the_formulas_over_100k_packets(p, r, seed):
    n = 100_000
    ge = GilbertElliott(p=p, r=r)
    link = Link(Impairment(burst=ge, seed=seed))
    lost = [not d.delivered for d in run(link, [i * 0.001 for i in range(n)])]
    assert link.counters.dropped["burst"] == sum(lost)

    # Standard errors of a two-state Markov chain (state correlation 1 - p - r) and of geometric bursts.
    memory = 1 - p - r
    bad = ge.bad_fraction
    loss_se = math.sqrt(bad * (1 - bad) * (1 + memory) / (1 - memory) / n)
    assert abs(sum(lost) / n - ge.mean_loss) <= 5 * loss_se + 1e-3

    bursts = burst_lengths(lost)
    burst_se = math.sqrt(1 - r) / r / math.sqrt(len(bursts))
    assert abs(statistics.fmean(bursts) - ge.mean_burst_packets) <= 5 * burst_se + 1e-9


def test_gilbert_elliott_with_partial_loss_in_each_state():
    ge = GilbertElliott(p=0.05, r=0.2, loss_good=0.02, loss_bad=0.6)
    link = Link(Impairment(burst=ge, seed=3))
    run(link, [i * 0.001 for i in range(100_000)])
    assert link.counters.loss_fraction == pytest.approx(ge.mean_loss, abs=0.01)


def test_burst_replaces_random_loss():
    link = Link(Impairment(loss=0.5, burst=GilbertElliott(p=0.01, r=1.0, loss_bad=0.0), seed=1))
    run(link, [i * 0.001 for i in range(1000)])
    assert link.counters.dropped_total == 0


send_gaps = st.lists(st.floats(min_value=0.0, max_value=0.05), min_size=1, max_size=300)


def times_from(gaps: list[float], start: float = 0.0) -> list[float]:
    times, t = [], start
    for gap in gaps:
        t += gap
        times.append(t)
    return times


@settings(max_examples=60, deadline=None)
@given(
    gaps=send_gaps,
    delay=st.floats(0, 300),
    jitter=st.floats(0, 100),
    loss=st.floats(0, 0.5),
    rate=st.none() | st.floats(50, 10_000),
    sizes=st.lists(st.integers(0, 1500), min_size=1, max_size=300),
    seed=seeds,
)
def test_order_is_kept_without_reorder(gaps, delay, jitter, loss, rate, sizes, seed):
    link = Link(Impairment(delay_ms=delay, jitter_ms=jitter, loss=loss, rate_kbps=rate, seed=seed))
    times = times_from(gaps)
    decisions = [link.send(t, sizes[i % len(sizes)]) for i, t in enumerate(times)]
    arrivals = [d.deliver_s for d in decisions if d.deliver_s is not None]
    assert arrivals == sorted(arrivals)
    assert all(d.deliver_s >= d.sent_s for d in decisions if d.deliver_s is not None)


def test_jitter_reorders_only_when_allowed():
    times = [i * 0.001 for i in range(2000)]
    free = [d.deliver_s for d in run(Link(Impairment(delay_ms=100, jitter_ms=20, reorder=True)), times)]
    kept = [d.deliver_s for d in run(Link(Impairment(delay_ms=100, jitter_ms=20, reorder=False)), times)]
    assert free != sorted(free)
    assert kept == sorted(kept)
    # Keeping order at 1000 datagrams a second holds each one behind slower ones before it.
    free_ms = [(t - s) * 1000 for t, s in zip(free, times, strict=True)]
    kept_ms = [(t - s) * 1000 for t, s in zip(kept, times, strict=True)]
    assert statistics.median(free_ms) == pytest.approx(100, abs=2)
    assert statistics.stdev(free_ms) == pytest.approx(20, abs=1.5)
    assert statistics.median(kept_ms) > 120


def test_jitter_never_makes_a_negative_delay():
    link = Link(Impairment(delay_ms=5, jitter_ms=50, reorder=True, seed=2))
    delays = [d.delay_ms for d in run(link, [i * 0.001 for i in range(5000)])]
    assert min(delays) == 0.0
    assert all(d >= 0 for d in delays)


@settings(max_examples=80, deadline=None)
@given(
    gaps=send_gaps,
    rate=st.floats(50, 10_000),
    queue_ms=st.floats(20, 500),
    sizes=st.lists(st.integers(1, 1500), min_size=1, max_size=50),
)
def test_queue_never_holds_more_than_queue_ms(gaps, rate, queue_ms, sizes):
    link = Link(Impairment(rate_kbps=rate, queue_ms=queue_ms))
    for i, t in enumerate(times_from(gaps)):
        size = sizes[i % len(sizes)]
        own_ms = size * 8 / rate
        before = link.backlog_ms(t)
        d = link.send(t, size)
        if d.delivered:
            # Waiting plus its own transmission stays within the queue (an idle queue takes anything).
            assert d.queue_ms <= max(queue_ms, own_ms) + 1e-6
            assert d.delay_ms == pytest.approx(d.queue_ms)
            assert link.backlog_ms(t) <= max(queue_ms, own_ms) + 1e-6
        else:
            assert d.dropped == Drop.QUEUE
            assert before + own_ms > queue_ms


def test_rate_limit_passes_the_rate_and_drops_the_rest():
    # 1200-byte datagrams offered at 600 kbit/s for 10 s through a 300 kbit/s, 200 ms queue.
    link = Link(Impairment(rate_kbps=300, queue_ms=200))
    decisions = run(link, [i / 62.5 for i in range(625)], size=1200)
    delivered = [d for d in decisions if d.delivered]
    seconds = delivered[-1].deliver_s - delivered[0].deliver_s
    assert (len(delivered) - 1) * 1200 * 8 / seconds / 1000 == pytest.approx(300, rel=1e-6)
    assert link.counters.dropped["queue"] == len(decisions) - len(delivered)
    assert link.counters.loss_fraction == pytest.approx(1 - (300 * 10 + 300 * 0.2) / 6000, abs=0.01)
    assert max(d.queue_ms for d in delivered) <= 200


def test_an_idle_queue_takes_a_datagram_longer_than_itself():
    link = Link(Impairment(rate_kbps=8, queue_ms=10))  # 1000 bytes take 1 s
    assert link.send(0.0, 1000).deliver_s == pytest.approx(1.0)
    assert link.send(0.5, 1000).dropped == Drop.QUEUE
    assert link.send(1.0, 1000).deliver_s == pytest.approx(2.0)


@settings(max_examples=60, deadline=None)
@given(
    gaps=send_gaps,
    start=st.floats(-100, 100),
    windows=st.lists(st.tuples(st.floats(0, 10), st.floats(0.001, 3)), max_size=3),
    loss=st.floats(0, 0.3),
)
def test_blackout_drops_exactly_what_is_sent_inside_it(gaps, start, windows, loss):
    blackouts = tuple(Blackout(a, d) for a, d in windows)
    link = Link(Impairment(blackouts=blackouts, loss=loss), start_s=start)
    for t in times_from(gaps, start):
        d = link.send(t, 100)
        inside = any(b.start_s <= t - start < b.start_s + b.duration_s for b in blackouts)
        assert (d.dropped == Drop.BLACKOUT) == inside
    assert link.counters.dropped["blackout"] == sum(
        any(b.covers(t - start) for b in blackouts) for t in times_from(gaps, start)
    )


def test_blackout_edges():
    link = Link(Impairment(blackouts=(Blackout(1.0, 2.0),)), start_s=10.0)
    fates = {t: link.send(10.0 + t, 100).dropped for t in (0.999, 1.0, 2.999, 3.0)}
    assert fates == {0.999: None, 1.0: Drop.BLACKOUT, 2.999: Drop.BLACKOUT, 3.0: None}


impairments = st.builds(
    Impairment,
    delay_ms=st.floats(0, 200),
    jitter_ms=st.floats(0, 50),
    reorder=st.booleans(),
    loss=st.floats(0, 1),
    burst=st.none() | st.builds(GilbertElliott, p=st.floats(0.01, 1), r=st.floats(0.01, 1)),
    rate_kbps=st.none() | st.floats(10, 5000),
    queue_ms=st.floats(0, 500),
    blackouts=st.lists(st.builds(Blackout, st.floats(0, 5), st.floats(0.01, 2)), max_size=2).map(tuple),
    seed=seeds,
)


@settings(max_examples=40, deadline=None)
@given(impairment=impairments, gaps=send_gaps)
def test_same_seed_same_decisions(impairment, gaps):
    times = times_from(gaps)
    first, second = Link(impairment), Link(impairment)
    assert run(first, times) == run(second, times)
    assert first.counters == second.counters
    c = first.counters
    assert c.sent == c.delivered + c.dropped_total == len(times)


def test_different_seeds_differ_and_knobs_draw_from_their_own_streams():
    times = [i * 0.001 for i in range(2000)]

    def lost(**kwargs) -> list[bool]:
        return [not d.delivered for d in run(Link(Impairment(loss=0.1, **kwargs)), times)]

    assert lost(seed=1) != lost(seed=2)
    assert lost(seed=1) == lost(seed=1, delay_ms=50, jitter_ms=10)  # adding jitter keeps the same losses


def test_send_times_must_not_go_backwards():
    link = Link(Impairment())
    link.send(1.0, 10)
    with pytest.raises(ValueError, match="backwards"):
        link.send(0.5, 10)
    with pytest.raises(ValueError, match="size_bytes"):
        link.send(2.0, -1)


def test_counters_flatten_for_json():
    link = Link(Impairment(loss=1.0))
    link.send(0.0, 10)
    assert link.counters.as_dict() == {
        "sent": 1,
        "delivered": 0,
        "bytes_sent": 10,
        "bytes_delivered": 0,
        "dropped_random": 1,
        "dropped_burst": 0,
        "dropped_queue": 0,
        "dropped_blackout": 0,
    }


def test_blackouts_given_as_a_list_are_stored_as_a_tuple():
    impairment = Impairment(blackouts=[Blackout(1, 2)])
    assert impairment.blackouts == (Blackout(1, 2),)
    hash(impairment)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Impairment(delay_ms=-1), "Impairment.delay_ms"),
        (lambda: Impairment(delay_ms=math.inf), "Impairment.delay_ms"),
        (lambda: Impairment(jitter_ms=-0.1), "Impairment.jitter_ms"),
        (lambda: Impairment(jitter_ms=math.nan), "Impairment.jitter_ms"),
        (lambda: Impairment(loss=1.5), "Impairment.loss"),
        (lambda: Impairment(loss=-0.01), "Impairment.loss"),
        (lambda: Impairment(rate_kbps=0), "Impairment.rate_kbps"),
        (lambda: Impairment(rate_kbps=-300), "Impairment.rate_kbps"),
        (lambda: Impairment(queue_ms=-1), "Impairment.queue_ms"),
        (lambda: Impairment(reorder=1), "Impairment.reorder"),
        (lambda: Impairment(seed=1.5), "Impairment.seed"),
        (lambda: Impairment(burst=0.1), "Impairment.burst"),
        (lambda: Impairment(blackouts=(1, 2)), "Impairment.blackouts"),
        (lambda: Impairment(loss="0.1"), "Impairment.loss"),
        (lambda: GilbertElliott(p=0, r=0.5), "GilbertElliott.p"),
        (lambda: GilbertElliott(p=0.1, r=1.2), "GilbertElliott.r"),
        (lambda: GilbertElliott(p=0.1, r=0.5, loss_good=-1), "GilbertElliott.loss_good"),
        (lambda: GilbertElliott(p=0.1, r=0.5, loss_bad=2), "GilbertElliott.loss_bad"),
        (lambda: Blackout(start_s=-1, duration_s=1), "Blackout.start_s"),
        (lambda: Blackout(start_s=0, duration_s=0), "Blackout.duration_s"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(make, field):
    with pytest.raises(ValueError, match=rf"{field}\b"):
        make()


# The datagram wrapper, on real loopback sockets -----------------------------------------------------------


class Collect(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.got: list[tuple[bytes, float]] = []

    def datagram_received(self, data: bytes, addr) -> None:
        self.got.append((data, asyncio.get_running_loop().time()))


async def loopback_pair(impairment: Impairment):
    loop = asyncio.get_running_loop()
    receiver, collect = await loop.create_datagram_endpoint(Collect, local_addr=("127.0.0.1", 0))
    raw, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
    wrapper = ImpairedDatagramTransport(raw, Link(impairment, start_s=loop.time()))
    return wrapper, receiver, collect, receiver.get_extra_info("sockname")


def test_wrapper_delays_in_order_and_close_drops_what_waits():
    async def scenario():
        loop = asyncio.get_running_loop()
        wrapper, receiver, collect, to = await loopback_pair(Impairment(delay_ms=50, jitter_ms=30, seed=4))
        assert wrapper.get_extra_info("sockname")[0] == "127.0.0.1"
        sent = {}
        for i in range(40):
            sent[i] = loop.time()
            wrapper.sendto(i.to_bytes(2, "big"), to)
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.4)
        assert [int.from_bytes(d, "big") for d, _ in collect.got] == list(range(40))
        delays = [(t - sent[int.from_bytes(d, "big")]) * 1000 for d, t in collect.got]
        assert min(delays) >= 0

        wrapper.sendto(b"late", to)
        assert wrapper.pending == 1
        wrapper.close()
        await asyncio.sleep(0.15)
        assert wrapper.pending == 0 and wrapper.cancelled == 1 and wrapper.is_closing()
        wrapper.sendto(b"after close", to)
        await asyncio.sleep(0.1)
        receiver.close()
        return [d for d, _ in collect.got]

    got = asyncio.run(scenario())
    assert b"late" not in got and b"after close" not in got


def test_wrapper_without_impairment_sends_at_once():
    async def scenario():
        wrapper, receiver, collect, to = await loopback_pair(Impairment())
        wrapper.sendto(b"now", to)
        assert wrapper.pending == 0
        await asyncio.sleep(0.05)
        wrapper.close()
        receiver.close()
        return collect.got

    assert [d for d, _ in asyncio.run(scenario())] == [b"now"]


# Impaired aiortc peers ------------------------------------------------------------------------------------


def test_impair_connection_needs_sockets_and_one_impairment_per_peer():
    async def scenario():
        pc = RTCPeerConnection(configuration=rtc_configuration())
        pc.addTransceiver("audio")
        with pytest.raises(RuntimeError, match="setLocalDescription"):
            impair_connection(pc, Impairment(delay_ms=10))
        with loopback_only():
            await pc.setLocalDescription(await pc.createOffer())
        peer = impair_connection(pc, Impairment(delay_ms=10))
        assert peer.transports and all(
            t.get_extra_info("sockname")[0] == "127.0.0.1" for t in peer.transports
        )
        assert impair_connection(pc, Impairment(delay_ms=10)) is peer
        assert len(peer.transports) == 1
        with pytest.raises(ValueError, match="different"):
            impair_connection(pc, Impairment(delay_ms=20))
        await pc.close()
        assert peer.pending == 0

    asyncio.run(scenario())


async def wait_for_rtt(call: LoopbackCall, timeout: float) -> list[float]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        report = await call.caller.getStats()
        rtts = [s.roundTripTime for s in report.values() if s.type == "remote-inbound-rtp"]
        if rtts and all(r is not None for r in rtts):
            return [r * 1000 for r in rtts]
        if loop.time() > deadline:
            return []
        await asyncio.sleep(0.1)


def test_call_with_100_ms_each_way_measures_a_200_ms_rtt(caplog):
    leftovers = []

    async def scenario():
        one_way = Impairment(delay_ms=100)
        async with LoopbackCall(uplink=one_way, downlink=one_way, sample_interval=0.25) as call:
            assert call.timings.connected_ms > 200  # ICE and DTLS need round trips too
            await call.wait_for_first_frames(timeout=5)
            rtts = await wait_for_rtt(call, timeout=6)
        leftovers.extend(t for t in asyncio.all_tasks() if t is not asyncio.current_task())
        return call, rtts

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        call, rtts = asyncio.run(scenario())
        gc.collect()

    assert rtts, "no RTT reported"
    for rtt in rtts:
        assert rtt == pytest.approx(200, abs=40)
    assert set(call.links) == {"uplink", "downlink"}
    up = call.links["uplink"].counters
    assert up.sent > 50 and up.dropped_total == 0
    assert call.links["downlink"].counters.sent > 0  # STUN answers, DTLS, RTCP receiver reports
    assert leftovers == []
    assert "Task was destroyed" not in caplog.text


def test_call_with_20_percent_uplink_loss_loses_packets():
    async def scenario():
        async with LoopbackCall(uplink=Impairment(loss=0.2, seed=7), sample_interval=0.25) as call:
            await call.wait_for_first_frames(timeout=8)
            await call.run(1.5)
        return call

    call = asyncio.run(scenario())
    audio, _video = call.summary()
    # Audio only: aiortc gives a video stream and its retransmission stream one stats id, so under loss
    # the video inbound-rtp entry can describe the RTX stream (a known gap in rtclab.stats' video numbers).
    assert audio.packets_lost > 0
    assert call.links["uplink"].counters.dropped["random"] > 0
    assert "downlink" not in call.links
    assert 0.05 < audio.loss_fraction < 0.4
