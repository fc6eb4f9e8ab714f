"""Unit conversions and summaries of rtclab.stats, on hand-made aiortc reports."""

import asyncio
import datetime
import math
import re

import pytest
from aiortc.stats import (
    RTCInboundRtpStreamStats,
    RTCOutboundRtpStreamStats,
    RTCRemoteInboundRtpStreamStats,
    RTCRemoteOutboundRtpStreamStats,
    RTCStatsReport,
    RTCTransportStats,
)
from hypothesis import given
from hypothesis import strategies as st

from rtclab.freezes import FreezeEvent, freezes
from rtclab.quality import (
    delay_impairment,
    effective_equipment_impairment,
    mos_from_r,
    r_factor,
    score_speech,
)
from rtclab.stats import (
    AIORTC_RECEIVER,
    CLOCK_RATES,
    TABLE_COLUMNS,
    MediaSnapshot,
    MediaSummary,
    bitrate_kbps,
    estimate_mos,
    format_summary,
    fraction_lost,
    get_stats,
    jitter_ms,
    media_snapshots,
    rtt_ms,
    rtx_ssrcs,
    summarize,
    to_dataframe,
)

NOW = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
SSRC = {"audio": 1111, "video": 2222}


def sender_report(
    *, bytes_sent: dict[str, int], rtt_s: float | None = 0.0008, fraction: int = 0, remote: bool = True
) -> RTCStatsReport:
    report = RTCStatsReport()
    report.add(
        RTCTransportStats(
            timestamp=NOW,
            type="transport",
            id="transport_1",
            packetsSent=0,
            packetsReceived=0,
            bytesSent=0,
            bytesReceived=0,
            iceRole="controlling",
            dtlsState="connected",
        )
    )
    for kind, sent in bytes_sent.items():
        report.add(
            RTCOutboundRtpStreamStats(
                timestamp=NOW,
                type="outbound-rtp",
                id=f"outbound-rtp_{kind}",
                ssrc=SSRC[kind],
                kind=kind,
                transportId="transport_1",
                packetsSent=150,
                bytesSent=sent,
                trackId=kind,
            )
        )
        if remote:
            report.add(
                RTCRemoteInboundRtpStreamStats(
                    timestamp=NOW,
                    type="remote-inbound-rtp",
                    id=f"remote-inbound-rtp_{kind}",
                    ssrc=9,
                    kind=kind,
                    transportId="transport_1",
                    packetsReceived=147,
                    packetsLost=3,
                    jitter=0,
                    roundTripTime=rtt_s,  # type: ignore[arg-type]  # aiortc puts None here before an RR
                    fractionLost=fraction,
                )
            )
    return report


def receiver_report(jitter_ticks: dict[str, int], lost: int = 3) -> RTCStatsReport:
    report = RTCStatsReport()
    for kind, ticks in jitter_ticks.items():
        report.add(
            RTCInboundRtpStreamStats(
                timestamp=NOW,
                type="inbound-rtp",
                id=f"inbound-rtp_{kind}",
                ssrc=SSRC[kind],
                kind=kind,
                transportId="transport_2",
                packetsReceived=147,
                packetsLost=lost,
                jitter=ticks,
            )
        )
        report.add(
            RTCRemoteOutboundRtpStreamStats(
                timestamp=NOW,
                type="remote-outbound-rtp",
                id=f"remote-outbound-rtp_{kind}",
                ssrc=SSRC[kind],
                kind=kind,
                transportId="transport_2",
                packetsSent=140,
                bytesSent=1,
            )
        )
        # The receiving peer also has a sender per transceiver, which sends nothing in a one-way call.
        report.add(
            RTCOutboundRtpStreamStats(
                timestamp=NOW,
                type="outbound-rtp",
                id=f"outbound-rtp_idle_{kind}",
                ssrc=5,
                kind=kind,
                transportId="transport_2",
                packetsSent=0,
                bytesSent=0,
                trackId="x",
            )
        )
    return report


# --- unit conversions ---


def test_jitter_uses_the_clock_rate_of_each_kind():
    assert jitter_ms(480, CLOCK_RATES["audio"]) == pytest.approx(10.0)
    assert jitter_ms(900, CLOCK_RATES["video"]) == pytest.approx(10.0)


@given(st.integers(min_value=0, max_value=10**7), st.sampled_from([8000, 48000, 90000]))
def test_jitter_ms_converts_ticks_back_to_ticks(ticks, clock_rate):
    assert jitter_ms(ticks, clock_rate) * clock_rate / 1000 == pytest.approx(ticks)


@given(st.integers(min_value=1, max_value=10**6))
def test_same_ticks_are_longer_on_the_slower_audio_clock(ticks):
    assert jitter_ms(ticks, CLOCK_RATES["audio"]) > jitter_ms(ticks, CLOCK_RATES["video"])


def test_jitter_rejects_a_bad_clock_rate():
    with pytest.raises(ValueError):
        jitter_ms(10, 0)


@pytest.mark.parametrize(("raw", "expected"), [(0, 0.0), (64, 0.25), (128, 0.5), (255, 255 / 256)])
def test_fraction_lost_is_in_256ths(raw, expected):
    assert fraction_lost(raw) == expected


@given(st.integers(min_value=0, max_value=255))
def test_fraction_lost_stays_below_one(raw):
    assert 0 <= fraction_lost(raw) < 1


@pytest.mark.parametrize("raw", [-1, 256, 1000])
def test_fraction_lost_rejects_out_of_range(raw):
    with pytest.raises(ValueError):
        fraction_lost(raw)


def test_rtt_is_converted_to_ms_and_none_is_kept():
    assert rtt_ms(0.0008) == pytest.approx(0.8)
    assert rtt_ms(None) is None


def test_bitrate_from_two_byte_counters():
    # 5625 bytes in 0.5 s = 45000 bits in 0.5 s = 90 kbit/s
    assert bitrate_kbps(1000, 6625, 0.5) == pytest.approx(90.0)


@given(
    st.integers(min_value=0, max_value=10**9),
    st.integers(min_value=0, max_value=10**9),
    st.floats(min_value=0.01, max_value=3600),
)
def test_bitrate_times_duration_gives_back_the_bytes(start, delta, seconds):
    assert bitrate_kbps(start, start + delta, seconds) * 1000 * seconds / 8 == pytest.approx(delta)


@pytest.mark.parametrize(("before", "after", "seconds"), [(0, 10, 0), (0, 10, -1), (10, 0, 1)])
def test_bitrate_rejects_bad_input(before, after, seconds):
    with pytest.raises(ValueError):
        bitrate_kbps(before, after, seconds)


# --- snapshots from reports ---


def test_snapshot_reads_both_peers_with_units():
    snapshots = media_snapshots(
        sender_report(bytes_sent={"audio": 4000, "video": 9000}, rtt_s=0.0008, fraction=64),
        receiver_report({"audio": 96, "video": 180}),
        at_s=1.5,
    )
    audio, video = snapshots
    assert (audio.kind, video.kind) == ("audio", "video")
    assert audio.at_s == 1.5
    assert audio.packets_sent == 150  # from the sender, not the receiver's idle outbound-rtp
    assert audio.bytes_sent == 4000
    assert audio.packets_received == 147
    assert audio.packets_lost == 3
    assert audio.jitter_ms == pytest.approx(2.0)  # 96 ticks at 48 kHz
    assert video.jitter_ms == pytest.approx(2.0)  # 180 ticks at 90 kHz
    assert audio.fraction_lost == 0.25
    assert audio.rtt_ms == pytest.approx(0.8)


def test_snapshot_before_any_receiver_report_has_no_rtt():
    (audio,) = media_snapshots(sender_report(bytes_sent={"audio": 10}, rtt_s=None), receiver_report({}), 0.1)
    assert audio.rtt_ms is None
    assert audio.fraction_lost == 0.0
    assert audio.packets_received == 0
    assert audio.jitter_ms is None


def test_snapshot_without_remote_inbound_rtp():
    (video,) = media_snapshots(sender_report(bytes_sent={"video": 10}, remote=False), receiver_report({}), 0)
    assert video.rtt_ms is None
    assert video.fraction_lost is None


def test_snapshot_skips_kinds_that_are_not_sent():
    assert [s.kind for s in media_snapshots(sender_report(bytes_sent={"video": 1}), RTCStatsReport(), 0)] == [
        "video"
    ]


def test_snapshot_adds_up_streams_of_one_kind_and_keeps_the_worst_jitter():
    receiver = receiver_report({"audio": 48})
    second = RTCInboundRtpStreamStats(
        timestamp=NOW,
        type="inbound-rtp",
        id="inbound-rtp_second",
        ssrc=3,
        kind="audio",
        transportId="t",
        packetsReceived=10,
        packetsLost=0,
        jitter=480,
    )
    receiver.add(second)
    sender = sender_report(bytes_sent={"audio": 1})
    sender.add(
        RTCOutboundRtpStreamStats(
            timestamp=NOW,
            type="outbound-rtp",
            id="outbound-rtp_second",
            ssrc=3,
            kind="audio",
            transportId="transport_1",
            packetsSent=10,
            bytesSent=1,
            trackId="second",
        )
    )
    (audio,) = media_snapshots(sender, receiver, 0)
    assert audio.packets_received == 157
    assert audio.jitter_ms == pytest.approx(10.0)


# --- summaries ---


def test_summary_line_reads_with_units():
    summary = MediaSummary(
        kind="audio",
        packets_sent=150,
        packets_received=150,
        packets_lost=0,
        jitter_ms=1.2,
        rtt_ms=0.8,
        bitrate_kbps=45.3,
        seconds=3.0,
    )
    assert str(summary) == (
        "audio  sent 150 pkts  recv 150 pkts  lost 0 (0.0 %)  jitter 1.2 ms  RTT 0.8 ms  bitrate 45.3 kbit/s"
    )


def test_summarize_uses_last_counters_and_average_bitrate():
    timeline = [
        MediaSnapshot("video", 2.0, 60, 50_000, 58, 2, 3.0, 0.0, 1.5),
        MediaSnapshot("audio", 0.0, 0, 0, 0, 0, None, None, None),
        MediaSnapshot("video", 0.0, 0, 0, 0, 0, None, None, None),
        MediaSnapshot("audio", 2.0, 100, 25_000, 100, 0, 1.0, 0.0, None),
    ]
    audio, video = summarize(timeline)
    assert audio.kind == "audio"
    assert audio.packets_received == 100
    assert audio.bitrate_kbps == pytest.approx(100.0)  # 25 kB in 2 s
    assert audio.rtt_ms is None
    assert video.bitrate_kbps == pytest.approx(200.0)
    assert video.packets_lost == 2
    assert video.loss_fraction == pytest.approx(2 / 60)
    assert video.seconds == 2.0
    text = format_summary([audio, video])
    assert text.splitlines()[0].startswith("audio  sent 100 pkts  recv 100 pkts  lost 0 (0.0 %)")
    assert "RTT n/a" in text.splitlines()[0]
    assert "lost 2 (3.3 %)" in text.splitlines()[1]
    assert "bitrate 200.0 kbit/s" in text.splitlines()[1]


def test_a_single_snapshot_has_no_bitrate():
    (audio,) = summarize([MediaSnapshot("audio", 1.0, 10, 1000, 10)])
    assert audio.bitrate_kbps is None
    assert "bitrate n/a" in str(audio)


def test_duplicates_do_not_make_loss_negative():
    (audio,) = summarize([MediaSnapshot("audio", 1.0, 10, 1000, 12, -2)])
    assert audio.loss_fraction == 0.0


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_loss_fraction_is_a_fraction(received, lost):
    (summary,) = summarize([MediaSnapshot("audio", 0.0, received + lost, 0, received, lost)])
    assert 0 <= summary.loss_fraction <= 1
    if received + lost:
        assert math.isclose(summary.loss_fraction, lost / (received + lost))


# --- the tidy table ---


def audio(at_s, sent_bytes, received, lost, *, jitter=None, fraction=None, rtt=None):
    return MediaSnapshot("audio", at_s, received + lost, sent_bytes, received, lost, jitter, fraction, rtt)


def test_table_has_one_row_per_snapshot_with_units_in_the_names():
    timeline = [
        audio(0.0, 0, 0, 0),
        MediaSnapshot("video", 0.0, 0, 0, 0, 0),
        audio(1.0, 5_000, 98, 2, jitter=1.5, fraction=0.25, rtt=40.0),
        MediaSnapshot("video", 1.0, 90, 100_000, 90, 0, 2.0, 0.0, 41.0),
        audio(2.0, 15_000, 196, 4, jitter=2.5, fraction=0.0, rtt=42.0),
    ]
    table = to_dataframe(reversed(timeline))
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert len(table) == 5
    assert list(zip(table.at_s, table.kind, strict=True)) == [
        (0.0, "audio"),
        (0.0, "video"),
        (1.0, "audio"),
        (1.0, "video"),
        (2.0, "audio"),
    ]
    sound = table[table.kind == "audio"].reset_index(drop=True)
    assert (
        math.isnan(sound.bitrate_kbps[0])
        and math.isnan(sound.loss_pct[0])
        and math.isnan(sound.interval_s[0])
    )
    assert list(sound.bitrate_kbps[1:]) == pytest.approx([40.0, 80.0])  # 5 kB in 1 s, then 10 kB in 1 s
    assert list(sound.loss_pct[1:]) == pytest.approx([2.0, 2.0])  # 2 of 100 expected in each interval
    assert list(sound.interval_s[1:]) == [1.0, 1.0]
    assert math.isnan(sound.rtt_ms[0]) and sound.rtt_ms[1] == 40.0
    assert math.isnan(sound.rtcp_loss_pct[0]) and sound.rtcp_loss_pct[1] == 25.0
    assert sound.jitter_ms[2] == 2.5
    video = table[table.kind == "video"].reset_index(drop=True)
    assert video.bitrate_kbps[1] == pytest.approx(800.0)
    assert str(table.packets_sent.dtype) == "int64"


def test_table_leaves_impossible_intervals_empty():
    table = to_dataframe([audio(1.0, 5_000, 10, 0), audio(1.0, 6_000, 20, 0), audio(2.0, 1_000, 20, 0)])
    assert math.isnan(table.bitrate_kbps[1])  # no time between the two readings
    assert math.isnan(table.bitrate_kbps[2])  # the byte counter went backwards
    assert math.isnan(table.loss_pct[2])  # nothing expected in between


def test_an_empty_timeline_gives_an_empty_table():
    table = to_dataframe([])
    assert table.empty and list(table.columns) == list(TABLE_COLUMNS)


@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), min_size=2, max_size=20))
def test_interval_loss_adds_up_to_the_overall_loss(steps):
    received = lost = 0
    timeline = []
    for i, (more_received, more_lost) in enumerate(steps):
        received += more_received
        lost += more_lost
        timeline.append(audio(float(i), 100 * i, received, lost))
    table = to_dataframe(timeline)
    intervals = table.loss_pct[1:].fillna(0) / 100 * [r + lo for r, lo in steps[1:]]
    assert intervals.sum() == pytest.approx(lost - steps[0][1])


# --- freezes ---


def frame_times(count, step_s, gaps=()):
    """``count`` frames ``step_s`` apart, with extra seconds of silence inserted after given frame numbers."""
    times, now = [], 0.0
    extra = dict(gaps)
    for i in range(count):
        times.append(now)
        now += step_s + extra.get(i, 0.0)
    return times


def test_an_audio_gap_over_200_ms_is_a_freeze():
    times = frame_times(100, 0.02, gaps=[(49, 0.28)])  # a 300 ms gap after frame 49
    report = freezes(times, "audio")
    assert report.threshold_ms == 200
    assert report.events == (FreezeEvent(start_s=pytest.approx(0.98), duration_s=pytest.approx(0.3)),)
    assert report.total_s == pytest.approx(99 * 0.02 + 0.28)
    assert report.freeze_rate == pytest.approx(0.3 / report.total_s)


def test_thresholds_follow_agora_definitions():
    assert freezes([0.0, 0.2, 0.4], "audio").events == ()  # exactly 200 ms is not over 200 ms
    assert len(freezes([0.0, 0.21], "audio").events) == 1
    assert freezes([0.0, 0.5, 1.0], "video").events == ()  # 500 ms stalls are not video freezes
    assert len(freezes([0.0, 0.7, 0.733], "video").events) == 1
    assert len(freezes([0.0, 0.5], "video", threshold_ms=400).events) == 1


def test_freezes_sort_the_times_and_handle_short_input():
    assert freezes([1.0, 0.0, 0.5], "audio").events == (
        FreezeEvent(0.0, 0.5),
        FreezeEvent(0.5, 0.5),
    )
    assert freezes([], "video").freeze_rate == 0.0
    assert freezes([3.0], "video").total_s == 0.0


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (([0.0, 1.0], "screen"), {}),
        (([0.0, math.nan], "audio"), {}),
        (([0.0, 1.0], "audio"), {"threshold_ms": 0}),
    ],
)
def test_freezes_reject_bad_input(args, kwargs):
    with pytest.raises(ValueError):
        freezes(*args, **kwargs)


@given(st.lists(st.floats(0, 100), max_size=50), st.sampled_from(["audio", "video"]))
def test_freeze_rate_is_a_fraction_of_the_time(times, kind):
    report = freezes(times, kind)
    assert 0 <= report.freeze_rate <= 1
    assert report.frozen_s <= report.total_s + 1e-9
    assert all(e.duration_s * 1000 > report.threshold_ms for e in report.events)


# --- MOS estimate ---


def mos_timeline(lost: int = 3) -> list[MediaSnapshot]:
    return [
        audio(0.0, 0, 0, 0),
        audio(1.0, 4_000, 99, min(lost, 1), jitter=8.0, rtt=None),
        audio(2.0, 8_000, 198, min(lost, 2), jitter=10.0, rtt=100.0),
        audio(3.0, 12_000, 300 - lost, lost, jitter=12.0, rtt=120.0),
        MediaSnapshot("video", 3.0, 100, 1, 50, 50, 50.0, 0.5, 900.0),  # ignored: not audio
    ]


def test_mos_estimate_models_aiortc_by_default():
    estimate = estimate_mos(mos_timeline(lost=3))
    assert estimate.receiver == "aiortc" and estimate.conceals is False
    assert estimate.rtt_ms == 110.0  # median of the reported RTTs
    assert estimate.jitter_ms == 10.0
    assert estimate.loss_fraction == pytest.approx(0.01)  # the network's: 3 of 300
    # a packet was lost: aiortc's buffer holds about 14 frames from then on, and conceals nothing
    assert estimate.jitter_buffer_ms == 280.0
    assert estimate.one_way_delay_ms == pytest.approx(55 + 280)
    assert estimate.frame_loss_fraction == pytest.approx(1 - 0.99**5)  # about five frames per lost packet
    assert estimate.id == pytest.approx(delay_impairment(335))
    assert estimate.ie_eff == pytest.approx(95 * 4.901 / (4.901 + 4.3), abs=0.01)  # Bpl 4.3: no concealment
    assert estimate.r == pytest.approx(93.2 - estimate.id - estimate.ie_eff)
    assert estimate.mos == pytest.approx(mos_from_r(estimate.r))
    same = score_speech(network_delay_ms=55, jitter_buffer_ms=280, loss_fraction=1 - 0.99**5, conceals=False)
    assert (estimate.mos, estimate.id, estimate.ie_eff) == pytest.approx((same.mos, same.id, same.ie_eff))


def test_mos_estimate_of_a_call_without_loss_counts_the_80_ms_prefetch():
    estimate = estimate_mos(mos_timeline(lost=0))
    assert estimate.jitter_buffer_ms == 80.0
    assert estimate.one_way_delay_ms == pytest.approx(55 + 80)
    assert estimate.frame_loss_fraction == 0 and estimate.ie_eff == 0
    assert estimate.r == pytest.approx(93.2 - delay_impairment(135))


def test_concealing_receiver_keeps_the_old_optimistic_estimate():
    timeline = mos_timeline(lost=3)
    optimistic = estimate_mos(timeline, receiver="concealing")
    assert optimistic.receiver == "concealing" and optimistic.conceals is True
    assert optimistic.jitter_buffer_ms == 20.0  # 2 x the median jitter
    assert optimistic.one_way_delay_ms == pytest.approx(55 + 20)
    assert optimistic.frame_loss_fraction == optimistic.loss_fraction == pytest.approx(0.01)
    assert optimistic.r == pytest.approx(r_factor(75, 0.01, "opus"))  # what estimate_mos gave before
    assert optimistic.ie_eff == pytest.approx(effective_equipment_impairment(0.01, "opus"))
    honest = estimate_mos(timeline)
    assert honest.id > optimistic.id and honest.ie_eff > optimistic.ie_eff
    assert honest.mos < optimistic.mos - 0.5


def test_mos_estimate_takes_a_given_jitter_buffer_and_codec():
    timeline = mos_timeline(lost=3)
    given_buffer = estimate_mos(timeline, jitter_buffer_ms=80)
    assert given_buffer.jitter_buffer_ms == 80 and given_buffer.one_way_delay_ms == pytest.approx(135)
    assert given_buffer.conceals is False and given_buffer.ie_eff == estimate_mos(timeline).ie_eff
    g711 = estimate_mos(timeline, receiver="concealing", codec="g711")  # G.711 without PLC: Bpl 4.3
    assert g711.mos < estimate_mos(timeline, receiver="concealing").mos
    bursty = estimate_mos(timeline, burst_ratio=2.0)
    assert bursty.ie_eff > estimate_mos(timeline).ie_eff


def test_mos_estimate_reads_as_one_line_with_its_parts():
    line = str(estimate_mos(mos_timeline(lost=3)))
    assert re.fullmatch(
        r"MOS \d\.\d\d \(R -?\d+: Id \d+\.\d, Ie-eff \d+\.\d; aiortc receiver: 280 ms buffer, no concealment\)",
        line,
    ), line
    assert str(estimate_mos(mos_timeline(), receiver="concealing")).endswith(
        "concealing receiver: 20 ms buffer, Opus concealment)"
    )


def test_mos_estimate_falls_with_loss():
    clean = estimate_mos([audio(1.0, 1, 100, 0, jitter=5.0, rtt=60.0)])
    lossy = estimate_mos([audio(1.0, 1, 95, 5, jitter=5.0, rtt=60.0)])
    assert clean.mos > 4.0 and lossy.mos < clean.mos - 0.3
    for receiver in ("aiortc", "concealing"):
        scores = [
            estimate_mos([audio(1.0, 1, 100 - n, n, rtt=60.0)], receiver=receiver).mos for n in (0, 1, 5)
        ]
        assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1], receiver


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"receiver": "browser"}, "unknown receiver"),
        ({"jitter_buffer_ms": -1}, "jitter_buffer_ms"),
        ({"jitter_buffer_ms": math.nan}, "jitter_buffer_ms"),
        ({"codec": "speex"}, "unknown codec"),
    ],
)
def test_mos_estimate_rejects_bad_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        estimate_mos(mos_timeline(), **kwargs)


# --- what rtclab measured about aiortc's audio receiver, checked against aiortc's own buffer ---


def test_aiortc_receiver_numbers_match_aiortc_s_buffer():
    from rtclab.aiortc_jitter import run_aiortc
    from rtclab.impair import Impairment
    from rtclab.jitter_traces import link_trace

    assert AIORTC_RECEIVER.jitter_buffer_ms(0) == 80 and AIORTC_RECEIVER.jitter_buffer_ms(1) == 280
    assert AIORTC_RECEIVER.conceals is False and AIORTC_RECEIVER.frames_lost_per_lost_packet == 5
    clean = run_aiortc(link_trace(Impairment(seed=1), 20))
    assert clean.median_added_delay_ms == pytest.approx(AIORTC_RECEIVER.buffer_ms, abs=1)
    for loss, seed in ((0.01, 1), (0.05, 2)):
        result = run_aiortc(link_trace(Impairment(loss=loss, seed=seed), 60))
        assert result.median_added_delay_ms == pytest.approx(AIORTC_RECEIVER.buffer_after_loss_ms, abs=20)
        missing = 1 - result.played / result.frames
        modelled = AIORTC_RECEIVER.frame_loss(result.network_loss_rate)
        assert modelled == pytest.approx(missing, abs=0.03), (loss, missing, modelled)
        assert modelled <= missing + 0.005  # the model may be kind to aiortc, never harsher


@given(st.floats(0, 1), st.floats(0, 1))
def test_aiortc_frame_loss_is_about_five_frames_per_lost_packet_and_at_most_all(a, b):
    low, high = sorted((a, b))
    assert 0 <= AIORTC_RECEIVER.frame_loss(low) <= AIORTC_RECEIVER.frame_loss(high) <= 1
    assert AIORTC_RECEIVER.frame_loss(low) <= min(5 * low, 1) + 1e-12
    if low <= 0.01:
        assert AIORTC_RECEIVER.frame_loss(low) >= 4.9 * low


def test_aiortc_frame_loss_rejects_a_loss_outside_0_to_1():
    with pytest.raises(ValueError):
        AIORTC_RECEIVER.frame_loss(1.2)


def test_mos_estimate_needs_an_rtt():
    with pytest.raises(ValueError, match="no RTT"):
        estimate_mos([audio(1.0, 1, 10, 0, jitter=3.0)])
    with pytest.raises(ValueError, match="no audio snapshot"):
        estimate_mos([])


# --- aiortc's RTX trap: a video stream and its retransmissions share one inbound-rtp id ---

RTX_SSRC = 3333


def rtx_receiver_report(rtx_received: int = 4) -> RTCStatsReport:
    """The callee's report once a retransmission came: the video entry describes the RTX SSRC."""
    report = receiver_report({"audio": 96, "video": 180})
    report.add(
        RTCInboundRtpStreamStats(
            timestamp=NOW,
            type="inbound-rtp",
            id="inbound-rtp_video",  # aiortc's id: the same for the media and the RTX stream
            ssrc=RTX_SSRC,
            kind="video",
            transportId="transport_2",
            packetsReceived=rtx_received,
            packetsLost=2,
            jitter=9000,  # 100 ms: RTX packets carry the original timestamps, so their "jitter" is nonsense
        )
    )
    return report


def test_an_inbound_entry_about_the_rtx_ssrc_is_never_taken_for_the_video():
    sender = sender_report(bytes_sent={"audio": 4000, "video": 9000})
    audio, video = media_snapshots(sender, rtx_receiver_report(), at_s=2.0)
    assert audio.received_from == "inbound-rtp" and audio.packets_received == 147
    # The video falls back on the receiver's RTCP report about the media SSRC, not the RTX stream's 4 packets.
    assert video.received_from == "rtcp"
    assert video.packets_received == 147 and video.packets_lost == 3
    assert video.jitter_ms == pytest.approx(0.0)


def test_the_matching_entry_is_used_when_it_is_there():
    (video,) = media_snapshots(sender_report(bytes_sent={"video": 1}), receiver_report({"video": 90}), 0)
    assert video.received_from == "inbound-rtp"
    assert video.jitter_ms == pytest.approx(1.0)


def test_nothing_received_yet_is_none_not_rtcp():
    (video,) = media_snapshots(sender_report(bytes_sent={"video": 1}), RTCStatsReport(), 0)
    assert video.received_from == "none" and video.packets_received == 0


def test_rtx_ssrcs_reads_fid_groups():
    sdp = "\r\n".join(
        [
            "v=0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96",
            "a=ssrc:1111 cname:x",
            "m=video 9 UDP/TLS/RTP/SAVPF 97 98",
            "a=ssrc-group:FID 2222 3333",
            "a=ssrc:2222 cname:x",
            "a=ssrc:3333 cname:x",
            "",
        ]
    )
    assert rtx_ssrcs(sdp) == {3333: 2222}
    assert rtx_ssrcs("v=0\r\n") == {}


class FakeStream:
    def __init__(self, received: int, lost: int, jitter: int) -> None:
        self.packets_received, self.packets_lost, self.jitter = received, lost, jitter


class FakePeer:
    """Just enough of an RTCPeerConnection for get_stats: getStats(), getReceivers(), remoteDescription."""

    def __init__(self, streams: dict | None) -> None:
        self.receiver = type("Receiver", (), {})()
        if streams is not None:
            self.receiver._RTCRtpReceiver__remote_streams = streams
        self.report = rtx_receiver_report()
        # aiortc's id for the receiver's entry
        self.report[f"inbound-rtp_{id(self.receiver)}"] = self.report.pop("inbound-rtp_video")
        self.remoteDescription = type("Description", (), {"sdp": "a=ssrc-group:FID 2222 3333\r\n"})()

    async def getStats(self) -> RTCStatsReport:
        report = RTCStatsReport()
        report.update(self.report)
        return report

    def getReceivers(self) -> list:
        return [self.receiver]


def inbound_video(report: RTCStatsReport) -> list:
    return [s for s in report.values() if s.type == "inbound-rtp" and s.kind == "video"]


def test_get_stats_rebuilds_the_media_ssrc_entry_from_the_receivers_streams():
    peer = FakePeer({SSRC["video"]: FakeStream(140, 10, 180), RTX_SSRC: FakeStream(4, 2, 9000)})
    (video,) = inbound_video(asyncio.run(get_stats(peer)))
    assert (video.ssrc, video.packetsReceived, video.packetsLost, video.jitter) == (
        SSRC["video"],
        140,
        10,
        180,
    )
    assert video.id == f"inbound-rtp_{id(peer.receiver)}"
    (snapshot,) = media_snapshots(
        sender_report(bytes_sent={"video": 1}), asyncio.run(get_stats(peer)), 0, kinds=["video"]
    )
    assert snapshot.received_from == "inbound-rtp" and snapshot.packets_received == 140


def test_get_stats_drops_an_rtx_entry_if_aiortc_changes_its_internals():
    assert inbound_video(asyncio.run(get_stats(FakePeer(None)))) == []


def test_this_aiortc_still_keeps_per_ssrc_streams_where_get_stats_reads_them():
    from aiortc import RTCRtpReceiver

    assert "_RTCRtpReceiver__remote_streams" in RTCRtpReceiver.__init__.__code__.co_names


def test_video_stats_stay_on_the_media_ssrc_under_loss():
    """A real call at 15 % uplink loss: NACK brings retransmissions on the RTX SSRC within a round trip."""
    from rtclab.call import LoopbackCall
    from rtclab.impair import Impairment

    async def scenario():
        readings = []
        async with LoopbackCall(uplink=Impairment(loss=0.15, seed=3), sample_interval=1) as call:
            await call.wait_for_first_frames(timeout=8)
            rtx = rtx_ssrcs(call.callee.remoteDescription.sdp)
            for _ in range(12):
                sender, plain = await call.caller.getStats(), await call.callee.getStats()
                fixed = await get_stats(call.callee)
                readings.append((sender, plain, fixed))
                await asyncio.sleep(0.25)
        return rtx, readings

    rtx, readings = asyncio.run(scenario())
    assert len(rtx) == 1
    ((rtx_ssrc, media_ssrc),) = rtx.items()
    outbound = [s for s in readings[-1][0].values() if s.type == "outbound-rtp" and s.kind == "video"]
    assert [s.ssrc for s in outbound] == [media_ssrc]
    # The trap is real on this aiortc: aiortc's own report shows the RTX stream by the end.
    assert any(s.ssrc == rtx_ssrc for s in inbound_video(readings[-1][1]))

    received, lost = [], []
    for sender, plain, fixed in readings:
        (entry,) = inbound_video(fixed)
        assert entry.ssrc == media_ssrc
        snapshot = media_snapshots(sender, fixed, 0, kinds=["video"])[0]
        assert snapshot.received_from == "inbound-rtp"
        received.append(snapshot.packets_received)
        lost.append(snapshot.packets_lost)
        # With aiortc's own report, an RTX entry is never read as the video's (RTCP numbers, or none yet).
        masked = any(s.ssrc == rtx_ssrc for s in inbound_video(plain))
        plain_snapshot = media_snapshots(sender, plain, 0, kinds=["video"])[0]
        assert plain_snapshot.received_from in (("rtcp", "none") if masked else ("inbound-rtp", "none"))
    assert received == sorted(received) and received[-1] > received[0]
    sent = outbound[0].packetsSent
    assert received[-1] <= sent
    assert 0.05 < lost[-1] / (received[-1] + lost[-1]) < 0.35
