"""rtclab.diagnose and `rtclab diagnose`: facts per connection, findings from the rules table, the JSON schema,
the incident review, and bad files reported in one line while the others are still diagnosed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synthetic_dumps import call_stats, rtcstats_lines, webrtc_internals

from rtclab.cli import main
from rtclab.diagnose import diagnose, load_rules, percentiles
from rtclab.diagnose_report import format_text, incident_review
from rtclab.dumps import parse_dump

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "support" / "runbooks"


def report_of(value: dict | str, lang: str = "en") -> dict:
    data = value if isinstance(value, str) else json.dumps(value)
    return diagnose(parse_dump(data, "call.json"), lang)


def ids(report: dict) -> list[tuple[str, str]]:
    return [(f["id"], f["severity"]) for f in report["findings"]]


def test_percentiles_interpolate_like_numpy() -> None:
    assert percentiles([30, 0, 10, 20]) == {"p50": 15, "p95": 28.5, "max": 30}
    assert percentiles([]) is None


def test_a_healthy_call_has_no_findings() -> None:
    report = report_of(webrtc_internals(call_stats(10)))
    (connection,) = report["connections"]
    assert connection["connected"] is True
    assert connection["candidate_pair"] == {
        "local_type": "host",
        "remote_type": "srflx",
        "protocol": "udp",
        "relay_protocol": None,
    }
    assert connection["rtt_ms"] == {"p50": 50.0, "p95": 50.0, "max": 50.0}
    audio = next(s for s in connection["streams"] if s["direction"] == "inbound")
    assert audio["loss_pct"] == 0
    assert audio["jitter_ms"]["p50"] == 10
    assert audio["bitrate_kbps"]["p50"] == pytest.approx(32)
    assert audio["jitter_buffer_ms"] == 60
    assert audio["concealed_pct"] == 0
    assert report["findings"] == []
    assert report["verdict"] == "good"


def test_loss_and_rtt_findings_carry_value_threshold_and_source() -> None:
    report = report_of(webrtc_internals(call_stats(10, lost_per_s=2, rtt_s=0.45)))
    assert ("rtt-high", "P3") in ids(report)
    loss = next(f for f in report["findings"] if f["id"] == "audio-loss")
    assert loss["severity"] == "P3"
    assert loss["value"] == pytest.approx(100 * 18 / 468, abs=0.01)
    assert loss["threshold"] == 1
    assert loss["stream"] == "IT01A1"
    assert loss["connection"] == "1-1"
    assert loss["runbook"] == "support/runbooks/bursty-loss/"
    assert loss["source"]["url"].startswith("https://")
    assert report["verdict"] == "fair"


def test_the_mos_uses_the_receivers_buffer_and_concealment() -> None:
    mos = report_of(webrtc_internals(call_stats(10, lost_per_s=5, rtt_s=0.3)))["connections"][0]["mos"]
    assert mos["jitter_buffer_ms"] == 60
    assert mos["network_delay_ms"] == 150
    assert mos["conceals"] is True
    assert mos["id"] > 0 and mos["ie_eff"] > 0
    assert 1 <= mos["mos"] <= 4.5


def test_ice_failure_is_one_p1_and_a_failed_verdict() -> None:
    report = report_of(webrtc_internals(call_stats(3), states=["checking", "failed"]))
    assert ids(report) == [("not-connected", "P1")]
    assert report["connections"][0]["ice_outcome"] == "failed"
    assert report["verdict"] == "failed"


def test_a_connection_that_never_left_new() -> None:
    stats = {"T01": {"type": "transport", "dtlsState": ["new"] * 3}}
    report = report_of(webrtc_internals(stats, states=[]))
    assert report["connections"][0]["ice_outcome"] == "never-left-new"
    assert report["verdict"] == "failed"


def test_one_way_audio() -> None:
    stats = call_stats(10)
    stats["IT01A1"]["packetsReceived"] = [0] * 10
    stats["IT01A1"]["bytesReceived"] = [0] * 10
    assert ("audio-one-way", "P2") in ids(report_of(webrtc_internals(stats)))


def test_both_formats_give_the_same_report() -> None:
    stats = call_stats(10, lost_per_s=3, rtt_s=0.4)
    a = report_of(webrtc_internals(stats))
    b = report_of(rtcstats_lines(stats))
    assert ids(a) == ids(b)
    assert a["connections"][0]["rtt_ms"] == b["connections"][0]["rtt_ms"]
    assert a["connections"][0]["streams"] == b["connections"][0]["streams"]


def test_json_has_the_documented_keys() -> None:
    report = report_of(webrtc_internals(call_stats(10, lost_per_s=3)))
    assert report["schema"] == 1
    assert {"format", "user_agent", "connections", "findings", "verdict"} <= set(report)
    connection = report["connections"][0]
    assert {"id", "connected", "states", "candidate_pair", "rtt_ms", "streams"} <= set(connection)
    stream = connection["streams"][0]
    assert {
        "id",
        "kind",
        "direction",
        "loss_pct",
        "jitter_ms",
        "freeze_count",
        "concealed_pct",
        "bitrate_kbps",
    } <= set(stream)
    finding = report["findings"][0]
    assert {
        "id",
        "severity",
        "connection",
        "stream",
        "value",
        "threshold",
        "unit",
        "title",
        "runbook",
    } <= set(finding)
    json.dumps(report, allow_nan=False)  # no NaN or infinity in the output


def test_every_rule_is_complete_and_cites_a_dated_source() -> None:
    table = load_rules()
    seen = set()
    for rule in table["rules"]:
        assert rule["id"] not in seen
        seen.add(rule["id"])
        assert rule["scope"] in ("connection", "stream")
        assert rule["title"]["en"] and rule["title"]["zh"] and rule["explain"]["en"] and rule["explain"]["zh"]
        assert (RUNBOOKS / f"{rule['family']}.md").exists(), rule["family"]
        for level in rule["levels"]:
            assert level["severity"] in ("P1", "P2", "P3", "P4")
            assert sum(key in level for key in ("above", "below", "in")) == 1
            source = table["sources"][level["source"]]
            assert source["url"].startswith("https://") and str(source["as_of"])


def test_findings_speak_chinese() -> None:
    report = report_of(webrtc_internals(call_stats(10, lost_per_s=3)), lang="zh")
    assert report["findings"][0]["title"] == "音频丢包"
    assert "结论" in format_text(report, "zh")


def test_incident_review_holds_timeline_severity_and_runbook() -> None:
    report = report_of(webrtc_internals(call_stats(10, lost_per_s=3, rtt_s=0.4)))
    text = incident_review(report, "en")
    for heading in (
        "## Summary",
        "## Severity",
        "## Timeline",
        "## Evidence",
        "## Suspected cause",
        "## Fix",
        "## Follow-ups",
    ):
        assert heading in text
    assert "ice -> connected" in text
    assert "support/runbooks/bursty-loss/" in text


# --- the command line ---------------------------------------------------------------------------------------


@pytest.fixture
def dumps(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.json"
    good.write_text(json.dumps(webrtc_internals(call_stats(10, lost_per_s=2))))
    bad = tmp_path / "bad.json"
    bad.write_text('{"PeerConnections": {')
    return {"good": good, "bad": bad}


def test_cli_json_for_one_file(dumps, capsys) -> None:
    assert main(["diagnose", str(dumps["good"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["schema"] == 1 and out["format"] == "webrtc-internals"


def test_cli_reports_the_good_files_beside_a_bad_one(dumps, capsys) -> None:
    assert main(["diagnose", str(dumps["bad"]), str(dumps["good"])]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        f"rtclab: error: {dumps['bad']}: the JSON ends early (truncated file?)"
    ]
    assert "audio-loss" in captured.out
    assert "Traceback" not in captured.err


def test_cli_json_for_several_files_lists_errors_too(dumps, capsys) -> None:
    assert main(["diagnose", str(dumps["good"]), str(dumps["bad"]), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert [("error" in r) for r in out] == [False, True]


def test_cli_never_overwrites(dumps, tmp_path, capsys) -> None:
    incident = tmp_path / "incident.md"
    assert main(["diagnose", str(dumps["good"]), "--incident", str(incident), "--lang", "zh"]) == 0
    written = incident.read_text(encoding="utf-8")
    assert "# 事故复盘" in written
    assert main(["diagnose", str(dumps["good"]), "--incident", str(incident)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert incident.read_text(encoding="utf-8") == written


def test_cli_html_marks_findings_and_verdict(dumps, tmp_path) -> None:
    page = tmp_path / "report.html"
    assert main(["diagnose", str(dumps["good"]), "--html", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert 'data-finding="audio-loss" data-severity="P3"' in html
    assert 'data-verdict="fair"' in html
    assert "<script" not in html and "http://" not in html.split("<body>")[0]


def with_sender_limits(durations: dict, erle_db: float | None = None) -> dict:
    stats = call_stats(10)
    stats["OT01V1"] = {
        "type": "outbound-rtp",
        "kind": ["video"] * 10,
        "packetsSent": [100 * i for i in range(10)],
        "bytesSent": [50_000 * i for i in range(10)],
        "qualityLimitationDurations": [json.dumps(durations)] * 10,  # webrtc-internals writes objects as JSON
    }
    if erle_db is not None:
        stats["SA1"] = {
            "type": "media-source",
            "kind": ["audio"] * 10,
            "echoReturnLossEnhancement": [erle_db] * 10,
        }
        stats["OT01A1"]["mediaSourceId"] = ["SA1"] * 10
    return stats


def test_cpu_and_bandwidth_limits_of_the_sent_video() -> None:
    cpu = report_of(
        webrtc_internals(with_sender_limits({"none": 5.0, "cpu": 5.0, "bandwidth": 0.0, "other": 0.0}))
    )
    assert ("cpu-limited", "P3") in ids(cpu)
    video = next(s for s in cpu["connections"][0]["streams"] if s["kind"] == "video")
    assert video["quality_limitation_pct"] == {"cpu": 50.0, "bandwidth": 0.0, "other": 0.0}
    bandwidth = report_of(webrtc_internals(with_sender_limits({"none": 2.0, "cpu": 0.0, "bandwidth": 8.0})))
    assert [i for i, _ in ids(bandwidth)] == ["bandwidth-limited"]


def test_echo_stats_alone_raise_no_finding() -> None:
    # Chromium's fake devices report ERLE 0.2 dB with no echo path at all: a rule on it would be a false alarm.
    report = report_of(webrtc_internals(with_sender_limits({"none": 1.0}, erle_db=0.2)))
    assert ids(report) == []
    audio = next(
        s
        for s in report["connections"][0]["streams"]
        if s["kind"] == "audio" and s["direction"] == "outbound"
    )
    assert audio["echo_return_loss_enhancement_db"] == 0.2  # still reported, for the echo runbook


# --- the real dumps: Chromium calling aiortc under rtclab profiles (samples/support/dumps/README.md) -----------

DUMPS = Path(__file__).resolve().parents[2] / "samples" / "support" / "dumps"
EXPECTED = {  # scenario: findings that must be there, findings that must not, verdict
    "clean": (set(), {"*"}, "good"),
    "3g-near-server": (set(), {"rtt-high", "mos-low", "P1", "P2"}, None),
    "3g": ({"rtt-high", "mos-low", "video-freezes"}, {"not-connected"}, "poor"),
    "bursty-loss": ({"audio-loss", "audio-concealment"}, {"not-connected", "rtt-high"}, "poor"),
    "bandwidth-cap": ({"bandwidth-limited", "video-freezes"}, {"not-connected", "rtt-high"}, "poor"),
    "one-way-audio": ({"audio-one-way"}, {"not-connected"}, "poor"),
    "ice-failed": ({"not-connected"}, {"rtt-high", "audio-loss"}, "failed"),
}


def real_dumps() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(DUMPS.iterdir()):
        scenario = path.name.split(".")[0]
        if path.suffix != ".md":
            found.append((scenario, path))
    return found


@pytest.mark.parametrize(("scenario", "path"), real_dumps(), ids=[p.name for _, p in real_dumps()])
def test_real_dumps_give_the_expected_findings(scenario: str, path: Path) -> None:
    from rtclab.diagnose import diagnose_file

    must, must_not, verdict = EXPECTED[scenario]
    report = diagnose_file(str(path))
    found = {f["id"] for f in report["findings"]} | {f["severity"] for f in report["findings"]}
    assert must <= found, f"{path.name}: missing {must - found}"
    assert not (must_not & found), f"{path.name}: should not have {must_not & found}"
    if "*" in must_not:
        assert report["findings"] == [], f"{path.name}: a healthy call got {ids(report)}"
    if verdict:
        assert report["verdict"] == verdict


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
def test_both_capture_ways_agree(scenario: str) -> None:
    from rtclab.diagnose import diagnose_file

    a = diagnose_file(str(DUMPS / f"{scenario}.webrtc-internals.json"))["connections"][0]
    b = diagnose_file(str(DUMPS / f"{scenario}.rtcstats"))["connections"][0]
    assert a["connected"] == b["connected"]
    assert a["candidate_pair"] == b["candidate_pair"] or not a["connected"]
    if a["connected"]:
        # two captures of one call, polled at slightly different moments
        assert b["rtt_ms"]["p50"] == pytest.approx(a["rtt_ms"]["p50"], rel=0.25, abs=5)
        kinds = lambda c: sorted((s["kind"], s["direction"]) for s in c["streams"])  # noqa: E731
        assert kinds(a) == kinds(b)


def test_the_legacy_layout_reads_like_the_current_one() -> None:
    from rtclab.diagnose import diagnose_file

    current = diagnose_file(str(DUMPS / "3g.webrtc-internals.json"))
    legacy = diagnose_file(str(DUMPS / "3g.legacy.webrtc-internals.json"))
    assert ids(legacy) == ids(current)
    a, b = current["connections"][0], legacy["connections"][0]
    assert b["candidate_pair"] == a["candidate_pair"]
    assert b["rtt_ms"] == a["rtt_ms"]
    audio = lambda c: next(s for s in c["streams"] if s["kind"] == "audio" and s["direction"] == "inbound")  # noqa: E731
    assert audio(b)["loss_pct"] == audio(a)["loss_pct"]
    assert audio(b)["concealed_pct"] == audio(a)["concealed_pct"]  # read from the legacy track stats


def test_counters_that_go_backwards_give_no_mos_instead_of_a_crash() -> None:
    stats = call_stats(10)
    stats["IT01A1"]["jitterBufferDelay"] = [-1.0] * 10
    stats["IT01A1"]["concealedSamples"] = [-5] * 10
    report = report_of(webrtc_internals(stats))
    assert report["connections"][0]["mos"] is None
