"""rtclab.probe: the verdict against the cited thresholds, and a short probe under every named profile."""

import asyncio
import dataclasses
import json

import pytest

from rtclab import probe
from rtclab.freezes import FreezeEvent, FreezeReport
from rtclab.profiles import load_profiles
from rtclab.stats import MediaSnapshot, MosEstimate, estimate_mos

BUILTINS = load_profiles()
FAST = "chrome-fast-4g"


# --- the verdict, without a call -----------------------------------------------------------------------------


def media(kind: str, *, sent: int = 500, received: int | None = 500, frames: int = 400, gaps: int = 0):
    events = tuple(FreezeEvent(start_s=float(i), duration_s=0.7) for i in range(gaps))
    freeze = FreezeReport(kind, 200.0, events, 10.0, 0.7 * gaps, 0.07 * gaps) if frames else None
    return probe.MediaResult(
        kind=kind,
        frames=frames,
        first_frame_ms=100.0,
        packets_sent=sent,
        packets_received=received,
        reported_lost=None,
        jitter_ms=5.0,
        reports=10,
        bitrate_kbps=100.0,
        freeze=freeze,
    )


def report(rtt_ms: float = 60.0, r: float = 90.0, **kinds: probe.MediaResult) -> probe.ProbeReport:
    results = {"audio": media("audio"), "video": media("video"), **kinds}
    mos = MosEstimate(
        mos=4.3,
        r=r,
        one_way_delay_ms=rtt_ms / 2 + 80,
        rtt_ms=rtt_ms,
        jitter_ms=5,
        jitter_buffer_ms=80,
        loss_fraction=0,
        id=93.2 - r,
        ie_eff=0.0,
        conceals=False,
        receiver="aiortc",
        frame_loss_fraction=0,
    )
    return probe.ProbeReport(
        profile=BUILTINS[FAST],
        profile_source="built-in",
        seconds=10,
        seed=0,
        ended_s=10.5,
        connect_ms=50.0,
        rtt_ms=(rtt_ms,),
        media=results,
        mos=mos,
    )


def levels(probe: probe.ProbeReport) -> dict[str, tuple[str, str]]:
    return {c.subject: (c.level, c.rule_set) for c in probe.checks}


def test_verdict_levels_follow_the_thresholds_table():
    assert report().verdict == "good"
    assert levels(report(rtt_ms=400))["one-way delay"] == ("fair", "ITU-T G.114")  # 200 ms one way
    assert levels(report(rtt_ms=900))["one-way delay"] == ("poor", "ITU-T G.114")
    assert levels(report(audio=media("audio", received=490)))["audio loss"] == ("fair", "Twilio preflight")
    assert levels(report(audio=media("audio", received=400)))["audio loss"] == (
        "poor",
        "Twilio Voice Insights",
    )
    assert levels(report(video=media("video", frames=0)))["video freezes"] == ("poor", "Agora")
    assert levels(report(video=media("video", gaps=2)))["video freezes"] == ("fair", "Agora")
    assert levels(report(r=65))["estimated MOS"] == ("fair", "ITU-T G.109")
    assert levels(report(r=55))["estimated MOS"] == ("poor", "ITU-T G.109")
    assert report(r=55, rtt_ms=400).verdict == "poor"


def test_mos_check_and_json_show_the_parts_of_r():
    estimate = estimate_mos(
        [MediaSnapshot("audio", 1.0, 500, 1, 495, 5, jitter_ms=20.0, rtt_ms=500.0)], burst_ratio=1.0
    )
    probed = dataclasses.replace(report(rtt_ms=500), mos=estimate)
    check = next(c for c in probed.checks if c.subject == "estimated MOS")
    assert check.level == "poor"
    assert f"Id {estimate.id:.1f}, Ie-eff {estimate.ie_eff:.1f}" in check.reason
    assert "aiortc receiver: 280 ms buffer, no concealment" in check.reason
    data = probed.to_dict()["mos"]
    old_keys = {"mos", "r", "g109_category", "one_way_delay_ms", "jitter_buffer_ms", "loss_pct", "method"}
    assert old_keys | {"id", "ie_eff", "frame_loss_pct", "conceals", "receiver"} == set(data)
    assert data["r"] == pytest.approx(93.2 - data["id"] - data["ie_eff"], abs=0.11)
    assert (data["jitter_buffer_ms"], data["conceals"], data["receiver"]) == (280.0, False, "aiortc")
    assert data["loss_pct"] == 1.0 and data["frame_loss_pct"] == pytest.approx(4.901, abs=0.001)
    assert "AIORTC_RECEIVER" in data["method"] and "2 x jitter" not in data["method"]
    json.dumps(probed.to_dict())  # plain data all the way down


def test_loss_falls_back_on_receiver_reports_when_arrivals_are_unknown():
    hidden = dataclasses.replace(media("video"), packets_received=None, reported_lost=20)
    assert hidden.loss_basis == "receiver reports"
    assert hidden.loss_pct == pytest.approx(4.0)
    assert "lower bound" in next(c.reason for c in report(video=hidden).checks if c.subject == "video loss")


def test_every_threshold_names_its_source():
    for name, threshold in probe.THRESHOLDS.items():
        assert threshold.url.startswith("https://"), name
        assert threshold.rule_set and threshold.says, name
    assert probe.THRESHOLDS["audio_freeze_gap_ms"].value == 200
    assert (probe.THRESHOLDS["delay_good_ms"].value, probe.THRESHOLDS["delay_max_ms"].value) == (150, 400)


def test_run_probe_refuses_seconds_outside_the_range():
    with pytest.raises(ValueError, match="between 2 and 120"):
        asyncio.run(probe.run_probe(BUILTINS[FAST], seconds=1))


# --- every named profile, probed for 2 s -------------------------------------------------------------------

PROBE_SECONDS = 2.0
PARALLEL = 4  # calls at a time in one event loop: ~35 s for all profiles on 2 cores


@pytest.fixture(scope="module")
def every_profile() -> dict[str, probe.ProbeReport]:
    """Probe every built-in profile once, a few at a time (the blackouts, at 10 s, come after the probe)."""
    import rtclab.quality  # noqa: F401  # its scipy import takes seconds: not inside the timed calls

    async def probe_all() -> dict[str, probe.ProbeReport]:
        gate = asyncio.Semaphore(PARALLEL)

        async def one(name: str) -> tuple[str, probe.ProbeReport]:
            async with gate:
                return name, await probe.run_probe(BUILTINS[name], seconds=PROBE_SECONDS, seed=0)

        return dict(await asyncio.gather(*(one(name) for name in BUILTINS)))

    return asyncio.run(probe_all())


@pytest.mark.parametrize("name", list(BUILTINS))
def test_probe_gives_sane_numbers_under_every_profile(every_profile, name):
    profile = BUILTINS[name]
    report = every_profile[name]
    up, down = profile.uplink, profile.downlink
    assert report.profile == profile
    assert report.connect_ms is not None and report.connect_ms > 0
    assert report.media_s is not None and PROBE_SECONDS - 0.1 <= report.media_s <= PROBE_SECONDS + 11

    # RTT: the configured delays are added on top of loopback; gaussian jitter can pull single readings
    # below, queues (200 ms per direction) and a busy event loop push them above.
    assert report.rtt_ms, f"{name}: no RTT"
    rtt, jitter = profile.rtt_ms, up.jitter_ms + down.jitter_ms
    assert report.rtt_median_ms >= 0.8 * rtt - jitter, (report.rtt_ms, rtt)
    # With a single reading in a 2 s probe, the 95th percentile is that reading: jitter applies to it too.
    assert report.rtt_p95_ms >= 0.8 * rtt - 5 - jitter, (report.rtt_ms, rtt)
    assert report.rtt_median_ms <= rtt + 400 + 8 * jitter + 1500, (report.rtt_ms, rtt)

    # Loss: at least a good part of the configured loss where enough packets were sent to see it; at most a
    # few times it where the uplink dropped nothing else (no full queue, no blackout).
    loss = report.loss_pct
    assert loss is not None and 0 <= loss <= 100
    sent = sum(m.packets_sent for m in report.media.values())
    configured = up.mean_loss * 100
    if up.mean_loss * sent >= 10:
        assert loss >= 0.25 * configured, (loss, configured)
    uplink = report.links["uplink"]
    if uplink["dropped_queue"] == 0 and uplink["dropped_blackout"] == 0:
        assert loss <= 3 * configured + 3, (loss, configured)
    for media in report.media.values():
        assert media.loss_basis == "arrivals"  # the receiver's own count of the media SSRC

    assert report.mos is not None, report.mos_problem
    assert 1 <= report.mos.mos <= 4.5
    assert report.mos.receiver == "aiortc" and not report.mos.conceals
    lost = report.media["audio"].packets_lost
    assert report.mos.jitter_buffer_ms == (280 if lost else 80), lost  # aiortc's measured buffer
    assert report.mos.r == pytest.approx(93.2 - report.mos.id - report.mos.ie_eff)
    assert (report.mos.ie_eff > 0) == bool(lost)  # Ie 0 for Opus; any loss costs frames, none concealed
    assert report.verdict in (probe.GOOD, probe.FAIR, probe.POOR)
    if report.one_way_delay_ms > probe.THRESHOLDS["delay_max_ms"].value:
        assert report.verdict == probe.POOR
