"""Unit conversions and summaries of rtclab.stats, on hand-made aiortc reports."""

import datetime
import math

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

from rtclab.stats import (
    CLOCK_RATES,
    MediaSnapshot,
    MediaSummary,
    bitrate_kbps,
    format_summary,
    fraction_lost,
    jitter_ms,
    media_snapshots,
    rtt_ms,
    summarize,
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
    (audio,) = media_snapshots(sender_report(bytes_sent={"audio": 1}), receiver, 0)
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
