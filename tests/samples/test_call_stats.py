"""samples/sdk/call_stats.py: raw getStats() fields convert to real units, the tidy table and the per-profile
tables are complete, RTT grows with a profile's delay, more loss lowers every model's MOS; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "call_stats.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=180)
load_sample = partial(sample_runner.load_sample, SAMPLE)

NUMBER = r"-?\d+(?:\.\d+)?"
JITTER = re.compile(rf"^(?P<where>\S+ \S+ (?P<kind>audio|video))\s+jitter\s+(?P<ticks>\d+)\s+RTP ticks at "
                    rf"(?P<clock>\d+) Hz\s+(?P<ms>{NUMBER}) ms$", re.MULTILINE)  # fmt: skip
FRACTION = re.compile(rf"^\S+ \S+ \S+\s+fractionLost\s+(?P<raw>\d+)\s+1/256 of last interval\s+(?P<pct>{NUMBER}) %$",
                      re.MULTILINE)  # fmt: skip
RTT = re.compile(
    rf"^\S+ \S+ \S+\s+roundTripTime\s+(?P<s>{NUMBER})\s+seconds\s+(?P<ms>{NUMBER}) ms$", re.MULTILINE
)
NETWORK = re.compile(
    rf"^(?P<name>\S+)\s+(?P<nominal>\d+)\s+(?P<rtt>{NUMBER})\s+(?P<jitter>{NUMBER})\s+(?P<loss>{NUMBER})"
    r"\s+(?P<afz>\d+) / (?P<afs>\d+\.\d+) s\s+(?P<vfz>\d+) / (?P<vfs>\d+\.\d+) s$",
    re.MULTILINE,
)
SCORES = re.compile(
    rf"^(?P<name>\S+)\s+(?P<emodel>{NUMBER})\s+(?P<twilio>{NUMBER})\s+(?P<livekit>{NUMBER})"
    r"\s+(?P<quality>excellent|good|poor)$",
    re.MULTILINE,
)
AIORTC = re.compile(
    rf"^   (?P<name>\S+)\s+MOS (?P<mos>{NUMBER}) \(R (?P<r>{NUMBER}): Id (?P<id>{NUMBER}), Ie-eff (?P<ie>{NUMBER}); "
    r"aiortc receiver: (?P<buffer>80|280) ms buffer, no concealment\)$",
    re.MULTILINE,
)
SWEEP = re.compile(
    rf"^\s*(?P<loss>\d+)\s+(?P<emodel>{NUMBER})\s+(?P<twilio>{NUMBER})\s+(?P<livekit>{NUMBER})$"
)


def section(out: str, number: int) -> str:
    """The text of section ``number`` ("1. ...") up to the next numbered section."""
    match = re.search(rf"^{number}\. .*?(?=^\d\. |\Z)", out, re.MULTILINE | re.DOTALL)
    assert match, f"section {number} missing"
    return match.group(0)


def network_rows(out: str) -> dict[str, dict[str, float]]:
    return {
        m["name"]: {k: float(v) for k, v in m.groupdict().items() if k != "name"}
        for m in NETWORK.finditer(section(out, 3))
    }


def score_rows(out: str) -> dict[str, dict[str, str]]:
    return {m["name"]: m.groupdict() for m in SCORES.finditer(section(out, 3))}


@pytest.fixture(scope="module")
def default_run():
    result = run_sample()
    assert result.returncode == 0, result.stderr
    return result


def test_raw_fields_come_with_their_units_and_convert_exactly(default_run):
    raw = section(default_run.stdout, 1)
    jitters = list(JITTER.finditer(raw))
    kinds = {m["kind"] for m in jitters}
    assert kinds == {"audio", "video"}, raw
    for m in jitters:
        clock = int(m["clock"])
        assert clock == (48_000 if m["kind"] == "audio" else 90_000)
        # ms = ticks / clock rate * 1000, printed to 0.1 ms
        assert float(m["ms"]) == pytest.approx(int(m["ticks"]) / clock * 1000, abs=0.051), m.group(0)
    for m in FRACTION.finditer(raw):
        assert 0 <= int(m["raw"]) <= 255
        assert float(m["pct"]) == pytest.approx(int(m["raw"]) / 256 * 100, abs=0.051)
    rtts = list(RTT.finditer(raw))
    assert rtts, "no roundTripTime reported in the raw report"
    for m in rtts:
        assert float(m["ms"]) == pytest.approx(float(m["s"]) * 1000, abs=0.06)
    for field in ("packetsSent", "bytesSent", "packetsReceived", "packetsLost"):
        assert re.search(rf"^\S+ \S+ audio\s+{field}\s+-?\d+\s", raw, re.MULTILINE), field
    assert re.search(r"^caller transport\s+bytesSent\s+\d+\s+datagram bytes", raw, re.MULTILINE)


def test_tidy_table_has_unit_columns_and_derived_bitrate(default_run):
    lines = section(default_run.stdout, 2).strip().splitlines()[1:]
    header = lines[0].split()
    assert header == [
        "at_s",
        "interval_s",
        "bitrate_kbps",
        "loss_pct",
        "rtcp_loss_pct",
        "jitter_ms",
        "rtt_ms",
    ]
    rows = [line.split() for line in lines[1:]]
    assert len(rows) >= 4  # a reading at the start, then about one per second of a 4 s call
    assert rows[0][1:4] == ["n/a", "n/a", "n/a"]  # no previous reading to derive from
    times = [float(row[0]) for row in rows]
    assert times == sorted(times)
    for row in rows[1:]:
        interval, bitrate, loss = (float(x) for x in row[1:4])
        assert interval > 0
        assert 0 < bitrate < 1000, row  # Opus voice: tens to a few hundred kbit/s of payload
        assert 0 <= loss <= 100
    assert any(row[6] != "n/a" for row in rows), "no RTT in any reading"


def test_rtt_grows_with_the_profile_delay_and_every_score_is_a_mos(default_run):
    network = network_rows(default_run.stdout)
    assert list(network) == ["loopback", "chrome-slow-4g", "nigeria-mobile"]
    base = network["loopback"]
    assert base["nominal"] == 0 and base["rtt"] < 50
    # chrome-slow-4g has no jitter: its RTT is the profile's plus a little processing.
    slow4g = network["chrome-slow-4g"]
    assert slow4g["nominal"] == 150
    assert slow4g["rtt"] - base["rtt"] >= 0.8 * slow4g["nominal"], slow4g
    # nigeria-mobile draws 30 ms of jitter per direction, so one RTT sample can fall below the profile's.
    nigeria = network["nigeria-mobile"]
    assert nigeria["nominal"] > 0 and nigeria["jitter"] > base["jitter"]
    for row in (slow4g, nigeria):
        assert base["rtt"] < row["rtt"] < 3 * row["nominal"] + 200, row
    scores = score_rows(default_run.stdout)
    assert list(scores) == list(network)
    for row in scores.values():
        for model in ("emodel", "twilio", "livekit"):
            assert 1.0 <= float(row[model]) <= 4.5, row


def test_every_profile_is_also_scored_as_aiortc_receives_it(default_run):
    network = network_rows(default_run.stdout)
    rows = {m["name"]: m for m in AIORTC.finditer(section(default_run.stdout, 3))}
    assert list(rows) == list(network)
    for name, m in rows.items():
        assert 1.0 <= float(m["mos"]) <= 4.5, m.group(0)
        assert float(m["r"]) == pytest.approx(93.2 - float(m["id"]) - float(m["ie"]), abs=1.0), m.group(0)
        lost = network[name]["loss"] > 0
        assert (m["buffer"] == "280") == lost and (float(m["ie"]) > 0) == lost, m.group(0)


def test_loss_sweep_lowers_every_model(default_run):
    text = section(default_run.stdout, 4)
    rows = [m for m in map(SWEEP.match, text.splitlines()) if m]
    assert [int(m["loss"]) for m in rows] == [0, 1, 2, 5, 10]
    for model in ("emodel", "twilio", "livekit"):
        values = [float(m[model]) for m in rows]
        assert values == sorted(values, reverse=True), (model, values)
    first, last = rows[0], rows[-1]
    # E-model and LiveKit drop hard with 10 % loss; Twilio's preflight formula barely moves (0.25 R points).
    assert float(last["emodel"]) < float(first["emodel"]) - 0.5
    assert float(last["livekit"]) < float(first["livekit"]) - 1.5
    assert float(first["twilio"]) - float(last["twilio"]) < 0.05


@pytest.mark.parametrize(("rtt_ms", "jitter_ms"), [(0.0, 0.0), (150.0, 10.0), (400.0, 40.0)])
def test_more_loss_means_a_lower_mos_in_every_model(rtt_ms, jitter_ms):
    three_mos = load_sample().three_mos
    scores = [three_mos(rtt_ms, jitter_ms, loss) for loss in (0.0, 0.005, 0.02, 0.1)]
    for model in ("emodel", "twilio", "livekit"):
        values = [getattr(s, model) for s in scores]
        assert all(a > b for a, b in zip(values, values[1:], strict=False)), (model, values)


def test_a_lossier_longer_link_measures_more_loss_and_scores_lower(tmp_path):
    profile = tmp_path / "lossy.yaml"
    profile.write_text(
        "profiles:\n"
        "  - name: lossy-400\n"
        "    description: 200 ms each way and 8 % random loss on what the caller sends.\n"
        "    uplink: {rate_kbps: null, delay_ms: 200, jitter_ms: 0, loss: 0.08}\n"
        "    downlink: {rate_kbps: null, delay_ms: 200, jitter_ms: 0, loss: 0}\n"
        "    sources: [{name: this test, numbers: made up}]\n",
        encoding="utf-8",
    )
    result = run_sample("--profile", "loopback", "--profile", str(profile), "--seconds", "5")
    assert result.returncode == 0, result.stderr
    network = network_rows(result.stdout)
    assert list(network) == ["loopback", "lossy-400"]
    base, lossy = network["loopback"], network["lossy-400"]
    assert lossy["nominal"] == 400
    assert lossy["rtt"] - base["rtt"] >= 0.8 * 400
    assert lossy["loss"] >= 2.0 > base["loss"]  # 8 % configured; a few percent at least must show
    scores = score_rows(result.stdout)
    for model in ("emodel", "livekit"):
        assert float(scores["lossy-400"][model]) < float(scores["loopback"][model]) - 0.3, model
    assert float(scores["lossy-400"]["twilio"]) < float(scores["loopback"]["twilio"])  # the 400 ms RTT


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--profile", "--seconds", "--interval"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "option"),
    [(("--profile", "no-such-network"), "--profile"), (("--seconds", "1"), "--seconds")],
)
def test_bad_argument_is_a_one_line_usage_error(args, option):
    result = run_sample(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert option in errors[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--seconds", "nan"),
        ("--seconds", "61"),
        ("--interval", "0"),
        ("--interval", "fast"),
        ("--profile", "missing.yaml"),
        ("--profile", "loopback") * 7,
    ],
)
def test_out_of_range_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(list(args))
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err
