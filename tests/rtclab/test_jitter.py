"""rtclab.jitter, jitter_traces, aiortc_jitter and jitter_call: the adaptive buffer's bookkeeping and
adaptation, aiortc's real buffer on traces (the facts measured in FACTS.md), the simulator's definitions, and
the adaptive buffer inside a real loopback call."""

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rtclab.aiortc_jitter import run_aiortc
from rtclab.impair import Impairment
from rtclab.jitter import Action, AdaptiveConfig, AdaptiveJitterBuffer, SequenceUnwrapper, Trace
from rtclab.jitter_call import JitterBufferCall, measure_in_call
from rtclab.jitter_traces import compare, link_trace, profile_trace, run_adaptive
from rtclab.signals import SpeechLikeAudioTrack

F = 0.020


def steady_trace(frames: int, delay_s: float = 0.05, lost: frozenset[int] = frozenset()) -> Trace:
    sent = tuple(i * F for i in range(frames))
    return Trace(20.0, sent, tuple(None if i in lost else s + delay_s for i, s in enumerate(sent)))


# --- traces ---------------------------------------------------------------------------------------------------


def test_link_trace_is_seeded_and_follows_the_link():
    imp = Impairment(delay_ms=100, jitter_ms=30, loss=0.05, seed=4)
    a, b = link_trace(imp, 20), link_trace(imp, 20)
    assert a == b
    assert a.frames == 1000
    assert 0.02 < a.network_loss_rate < 0.09
    delays = a.network_delays_ms()
    assert min(delays) >= 0
    assert 80 < sorted(delays)[len(delays) // 2] < 160  # median near the set delay (in-order queueing adds)
    assert link_trace(Impairment(delay_ms=100, jitter_ms=30, loss=0.05, seed=5), 20) != a


def test_profile_trace_uses_the_chosen_direction():
    down = profile_trace("loadero-4g", 10, seed=1)  # downlink jitter 5 ms, uplink 15 ms
    up = profile_trace("loadero-4g", 10, seed=1, direction="uplink")

    def spread(trace: Trace) -> float:
        d = sorted(trace.network_delays_ms())
        return d[int(0.95 * len(d))] - d[0]

    assert spread(up) > spread(down)
    with pytest.raises(ValueError):
        profile_trace("loadero-4g", 10, direction="sideways")  # type: ignore[arg-type]


def test_trace_from_arrivals_makes_relative_delays():
    trace = Trace.from_arrivals({0: 10.05, 1: 10.09, 3: 10.11}, 5)
    assert trace.frames == 5
    assert trace.arrival_s[2] is None and trace.arrival_s[4] is None
    assert min(trace.network_delays_ms()) == pytest.approx(0)
    assert max(trace.network_delays_ms()) == pytest.approx(20)


def test_trace_validation():
    with pytest.raises(ValueError):
        Trace(20.0, (0.0,), ())
    with pytest.raises(ValueError):
        Trace(20.0, (), ())
    with pytest.raises(ValueError):
        AdaptiveConfig(quantile=0.2)
    with pytest.raises(ValueError):
        AdaptiveConfig(min_delay_ms=50, max_delay_ms=10)


# --- aiortc's buffer: the facts measured before ---------------------------------------------------------------


def test_aiortc_buffer_adds_four_frames_without_loss():
    result = run_aiortc(steady_trace(500))
    assert result.late == 0 and result.network_lost == 0
    assert result.median_added_delay_ms == pytest.approx(80, abs=1)


def test_aiortc_buffer_keeps_about_300_ms_after_one_loss():
    result = run_aiortc(steady_trace(1000, lost=frozenset({100})))
    after = [d for t, d in zip(result.played_at_s, result.added_delay_ms, strict=True) if t > 200 * F]
    assert min(after) > 250  # it never drains back to 80 ms
    assert result.median_added_delay_ms > 250


def test_aiortc_buffer_loses_far_more_than_the_network():
    trace = link_trace(Impairment(loss=0.05, seed=3), 60)
    result = run_aiortc(trace)
    assert result.network_loss_rate < 0.07
    assert result.played / result.frames < 0.85  # FACTS.md: about 73.5 % come out at 5 % loss
    assert result.late_loss_rate > 2 * result.network_loss_rate


def test_aiortc_buffer_across_the_sequence_number_wrap():
    trace = steady_trace(400, lost=frozenset({50}))
    plain = run_aiortc(trace)
    wrapped = run_aiortc(trace, start_seq=65500)
    assert wrapped.played == plain.played
    assert wrapped.added_delay_ms == pytest.approx(plain.added_delay_ms)


def test_sound_card_only_adds_delay():
    trace = profile_trace("loadero-high-jitter", 30, seed=2)
    released, heard = run_aiortc(trace), run_aiortc(trace, sound_card=True)
    assert heard.played == released.played
    assert heard.mean_added_delay_ms > released.mean_added_delay_ms + 50  # bursts wait for the clock
    assert heard.name == "aiortc + sound card"


# --- the adaptive buffer --------------------------------------------------------------------------------------


def test_adaptive_buffer_on_a_steady_stream_is_smooth_and_short():
    result = run_adaptive(steady_trace(500), AdaptiveConfig(start_delay_ms=0))
    assert result.late == 0 and result.synthesized == 0
    assert result.mean_added_delay_ms < 20  # within one tick of the arrival


def test_a_lost_packet_is_concealed_not_waited_for():
    result = run_adaptive(steady_trace(1000, lost=frozenset({100})), AdaptiveConfig(start_delay_ms=0))
    assert result.network_lost == 1 and result.late == 0
    assert result.synthesized == 1
    assert max(result.added_delay_ms[200:]) < 80  # unlike aiortc, no lasting cost


def test_target_rises_fast_and_falls_slowly():
    buffer = AdaptiveJitterBuffer(AdaptiveConfig(window_s=2.0, start_delay_ms=0, decrease_interval_s=0.5))
    for i in range(100):  # calm: 50 ms every time
        buffer.put(i, i * F + 0.05)
    calm = buffer.target_delay_ms()
    for i in range(100, 110):  # a spike of 200 ms more
        buffer.put(i, i * F + 0.25)
    assert calm < 5
    assert buffer.target_delay_ms() > 150  # the quantile sees it at once
    for i in range(110, 400):
        buffer.put(i, i * F + 0.05)
    assert buffer.target_delay_ms() < 5  # forgotten once out of the window


def test_stretch_then_accelerate_around_a_delay_spike():
    sent = [i * F for i in range(1500)]
    arrivals = [s + (0.30 if 500 <= i < 520 else 0.05) for i, s in enumerate(sent)]
    trace = Trace(20.0, tuple(sent), tuple(arrivals))
    config = AdaptiveConfig(quantile=1.0, window_s=2.0, decrease_interval_s=0.2)
    buffer = AdaptiveJitterBuffer(config)
    actions: dict[Action, int] = dict.fromkeys(Action, 0)
    order = sorted((a, i) for i, a in enumerate(arrivals))
    j = 0
    for k in range(1600):
        now = order[0][0] + k * F
        while j < len(order) and order[j][0] <= now:
            buffer.put(order[j][1], order[j][0])
            j += 1
        actions[buffer.tick(now).action] += 1
    assert actions[Action.STRETCH] >= 5  # grew by about the 250 ms spike
    assert actions[Action.ACCELERATE] >= 5  # and came back down afterwards
    result = run_adaptive(trace, config)
    assert result.added_delay_ms[-1] < 60


def test_higher_quantile_trades_delay_for_late_loss():
    trace = profile_trace("loadero-3g", 60, seed=1)
    low = run_adaptive(trace, AdaptiveConfig(quantile=0.8))
    high = run_adaptive(trace, AdaptiveConfig(quantile=1.0))
    assert high.mean_added_delay_ms > low.mean_added_delay_ms + 20
    assert high.late_loss_rate < low.late_loss_rate / 2


def test_adaptive_beats_aiortc_on_3g_at_no_more_late_loss():
    trace = profile_trace("loadero-3g", 60, seed=1)
    fixed, adaptive = compare(trace, [AdaptiveConfig(quantile=1.0)])
    assert adaptive.late_loss_rate <= fixed.late_loss_rate
    assert adaptive.mean_added_delay_ms < 0.7 * fixed.mean_added_delay_ms


def test_sequence_unwrapper():
    unwrap = SequenceUnwrapper()
    assert [unwrap.index(s) for s in (65534, 65535, 0, 1, 65533, 3)] == [0, 1, 2, 3, -1, 5]


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    frames = draw(st.integers(60, 300))
    delays = draw(st.lists(st.floats(0, 0.4), min_size=frames, max_size=frames))
    lost = draw(st.sets(st.integers(0, frames - 1), max_size=frames // 3))
    sent = tuple(i * F for i in range(frames))
    return Trace(
        20.0,
        sent,
        tuple(None if i in lost else s + d for i, (s, d) in enumerate(zip(sent, delays, strict=True))),
    )


configs = st.builds(
    AdaptiveConfig,
    quantile=st.floats(0.5, 1.0),
    window_s=st.floats(0.2, 5.0),
    decrease_interval_s=st.floats(0, 2.0),
    start_delay_ms=st.floats(0, 200),
)


@settings(max_examples=60, deadline=None)
@given(traces(), configs)
def test_every_frame_is_accounted_for_once(trace: Trace, config: AdaptiveConfig):
    result = run_adaptive(trace, config)
    assert result.played + result.late + result.network_lost == result.frames
    assert result.network_lost == sum(a is None for a in trace.arrival_s[: result.frames])
    # nothing plays before it arrives; the buffer takes an arrival within 1 ns of a tick as on time (_EPSILON_S)
    assert all(d >= -1e-6 for d in result.added_delay_ms)
    assert list(result.played_at_s) == sorted(result.played_at_s)
    ticks = [round(t / F, 6) for t in result.played_at_s]
    assert all(math.isclose(t, round(t), abs_tol=1e-3) for t in [t - ticks[0] for t in ticks])  # on the clock
    assert 0 <= result.concealment_rate <= 1


@settings(max_examples=60, deadline=None)
@given(traces(), configs)
def test_frames_play_in_order_once(trace: Trace, config: AdaptiveConfig):
    buffer = AdaptiveJitterBuffer(config)
    order = sorted((a, i) for i, a in enumerate(trace.arrival_s) if a is not None)
    if not order:
        return
    played: list[int] = []
    j = 0
    for k in range(trace.frames + 200):
        now = order[0][0] + k * F
        while j < len(order) and order[j][0] <= now:
            buffer.put(order[j][1], order[j][0])
            j += 1
        out = buffer.tick(now)
        if out.action in (Action.NORMAL, Action.ACCELERATE, Action.CONCEAL):
            played.append(out.index)
        assert out.target_ms <= config.max_delay_ms + 1e-6
    assert played == sorted(set(played))


@settings(max_examples=40, deadline=None)
@given(traces())
def test_aiortc_runner_accounting(trace: Trace):
    result = run_aiortc(trace)
    assert result.played + result.late + result.network_lost == result.frames
    assert all(d >= -1e-9 for d in result.added_delay_ms)


# --- a real call ----------------------------------------------------------------------------------------------


def test_adaptive_buffer_in_a_real_call_decodes_and_matches_the_simulator():
    link = Impairment(delay_ms=60, jitter_ms=30, loss=0.02, seed=11)

    async def scenario() -> JitterBufferCall:
        async with JitterBufferCall(
            buffer="adaptive", tracks=[SpeechLikeAudioTrack()], uplink=link, record_seconds=10
        ) as call:
            await call.run(5)
        return call

    call = asyncio.run(scenario())
    playout = call.jitter_buffer
    measured = playout.result()
    assert call.frames_received["audio"] > 150  # about 50 a second came out of the track
    assert playout.actions["normal"] > 150
    assert measured.played > 150
    assert call.recording.audio.duration_s > 3
    replay = run_adaptive(playout.trace(), playout.buffer.config)
    # The call ran on a busy event loop; the replay on exact ticks. Same order of magnitude, generously.
    assert abs(measured.mean_added_delay_ms - replay.mean_added_delay_ms) < max(
        25, 0.5 * replay.mean_added_delay_ms
    )
    assert playout._task is not None and playout._task.done()


def test_aiortc_probe_in_a_real_call_changes_nothing():
    m = asyncio.run(measure_in_call("aiortc", Impairment(), 2))
    assert m.buffer == "aiortc" and not m.actions
    assert m.frames_out >= m.measured.played - 5  # every frame the probe released was decoded
    assert m.measured.played > 30
    assert 60 < m.measured.median_added_delay_ms < 140  # four frames of prefetch on a clean loopback
    assert m.replay.added_delay_ms == pytest.approx(m.measured.added_delay_ms)  # same code, same arrivals


def test_bad_buffer_kind():
    with pytest.raises(ValueError):
        JitterBufferCall(buffer="neteq")  # type: ignore[arg-type]
