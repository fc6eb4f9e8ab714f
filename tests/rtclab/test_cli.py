"""The ``rtclab`` command: profile listings, the probe report (JSON and text), the verdict, one-line errors."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rtclab import cli, probe
from rtclab.profiles import load_profiles

BUILTINS = load_profiles()
FAST = "chrome-fast-4g"  # 30 ms each way, no jitter, no loss: an RTT that can be checked


def rtclab(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rtclab", *args], capture_output=True, text=True, timeout=timeout
    )


def profile_entry(name: str, **uplink: float) -> dict:
    link = {"rate_kbps": None, "delay_ms": 0, "jitter_ms": 0, "loss": 0}
    return {
        "name": name,
        "description": f"{name}, made up for the CLI tests.",
        "uplink": {**link, **uplink},
        "downlink": link,
        "sources": [{"name": "tests/rtclab/test_cli.py", "numbers": "none: a test fixture"}],
    }


def write_profiles(path: Path, *entries: dict) -> Path:
    path.write_text(yaml.safe_dump({"version": 1, "profiles": list(entries)}, sort_keys=False))
    return path


def assert_one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rtclab: error: ")
    assert "Traceback" not in result.stderr
    return lines[0]


# --- the probe (two real calls, run side by side to keep the file fast) ---------------------------------------


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, subprocess.CompletedProcess[str]]:
    lossy = write_profiles(
        tmp_path_factory.mktemp("profiles") / "lossy.yaml", profile_entry("lossy-lan", loss=0.05)
    )
    commands = {
        "fast": ["probe", "--profile", FAST, "--seconds", "3", "--json"],
        "lossy": ["probe", "--profile", str(lossy), "--seconds", "3", "--seed", "1"],
    }
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "rtclab", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name, args in commands.items()
    }
    results = {}
    for name, process in running.items():
        out, err = process.communicate(timeout=120)
        results[name] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return results


def test_probe_json_has_every_key_and_plausible_numbers(probes):
    result = probes["fast"]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    report = json.loads(result.stdout)

    assert list(report) == [
        "profile",
        "probe",
        "connect_ms",
        "rtt_ms",
        "one_way_delay_ms",
        "loss_pct",
        "media",
        "network",
        "mos",
        "mos_problem",
        "verdict",
        "thresholds",
    ]
    assert report["profile"]["name"] == FAST and report["profile"]["source"] == "built-in"
    assert report["probe"]["seconds"] == 3
    assert 0 < report["connect_ms"] < 5000

    profile_rtt = BUILTINS[FAST].rtt_ms
    rtt = report["rtt_ms"]
    assert rtt["profile"] == profile_rtt == 60
    assert rtt["readings"] >= 1
    # The delay is added in userspace on top of loopback: never less, and little queueing at this rate.
    assert profile_rtt - 2 <= rtt["median"] <= profile_rtt + 40
    assert rtt["median"] <= rtt["p95"] <= profile_rtt + 60
    assert report["one_way_delay_ms"] == pytest.approx(rtt["median"] / 2, abs=0.1)

    assert set(report["media"]) == {"audio", "video"}
    for kind, media in report["media"].items():
        assert media["packets_sent"] > 0
        assert media["packets_received"] > 0, kind
        assert media["loss_basis"] == "arrivals"
        assert media["loss_pct"] == 0
        assert media["frames"] > 10
        assert media["freezes"] == 0 and media["stalled_at_end"] is False
        assert media["jitter_ms_median"] is not None and media["jitter_ms_median"] < 30
    assert report["network"]["uplink"]["dropped_random"] == 0
    assert report["network"]["uplink"]["delivered"] == report["network"]["uplink"]["sent"]

    assert report["mos"]["mos"] > 4 and report["mos_problem"] is None
    verdict = report["verdict"]
    assert verdict["overall"] == "good"
    assert {c["rule_set"] for c in verdict["checks"]} >= {
        "ITU-T G.114",
        "Twilio preflight",
        "Agora",
        "ITU-T G.109",
    }
    for check in verdict["checks"]:
        assert check["level"] in ("good", "fair", "poor")
        assert check["urls"] and all(url.startswith("https://") for url in check["urls"])
        assert set(check["thresholds"]) <= set(report["thresholds"])


def test_probe_text_report_shows_the_loss_of_a_lossy_profile(probes):
    result = probes["lossy"]
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("rtclab probe: lossy-lan (")
    loss = re.search(r"^Loss\s+([\d.]+) %", text, re.MULTILINE)
    assert loss is not None, text
    assert 0 < float(loss.group(1)) < 30
    uplink = re.search(
        r"^Uplink\s+(\d+) datagrams sent, (\d+) delivered, dropped: random (\d+)", text, re.MULTILINE
    )
    assert uplink is not None and int(uplink.group(3)) > 0, text
    verdict = text[text.index("Verdict: ") :]
    assert re.search(r"^  (fair|poor)\s+\[Twilio [^\]]+\]\s+audio loss: ", verdict, re.MULTILINE), verdict
    for rule_set in ("ITU-T G.114", "Twilio preflight", "Agora", "ITU-T G.109"):
        assert f"[{rule_set}]" in verdict
    assert "https://www.itu.int/rec/T-REC-G.114" in verdict


# --- listing profiles -----------------------------------------------------------------------------------------


def test_profiles_table_lists_every_builtin():
    result = rtclab("profiles")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"{len(BUILTINS)} profiles in rtclab/data/profiles.yaml")
    header = next(line for line in lines if line.startswith("name "))
    for column in (
        "up kbit/s",
        "down kbit/s",
        "delay ms",
        "jitter ms",
        "loss %",
        "burst",
        "blackouts",
        "source",
    ):
        assert column in header
    names = [line.split()[0] for line in lines[lines.index(header) + 2 :] if line and not line[0].isspace()]
    assert names[: len(BUILTINS)] == list(BUILTINS)
    row = next(line for line in lines if line.startswith("atc-edge-average "))
    assert row.split()[1:5] == ["200", "240", "440/400", "0"]  # up/down where the directions differ
    assert "10-13 s" in next(line for line in lines if line.startswith("philippines-mobile "))


def test_profiles_json_parses_and_holds_every_builtin():
    result = rtclab("profiles", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["source"] == "built-in"
    assert [p["name"] for p in data["profiles"]] == list(BUILTINS)
    keys = {frozenset(p) for p in data["profiles"]}
    assert len(keys) == 1  # the same keys for every profile
    chrome = data["profiles"][0]
    assert chrome["uplink"]["rate_kbps"] == 400 and chrome["rtt_ms"] == 400
    assert chrome["source_hosts"] == ["github.com", "debugbear.com"]


def test_profiles_of_a_custom_file(tmp_path):
    path = write_profiles(
        tmp_path / "mine.yaml", profile_entry("office-wifi", delay_ms=15), profile_entry("cafe", loss=0.02)
    )
    result = rtclab("profiles", "--file", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"2 profiles in {path};")
    assert re.search(r"^office-wifi\s+no cap\s+no cap\s+15/0\s", result.stdout, re.MULTILINE), result.stdout
    assert re.search(r"^cafe\s+.*\s2/0\s", result.stdout, re.MULTILINE), result.stdout

    as_json = json.loads(rtclab("profiles", "--file", str(path), "--json").stdout)
    assert as_json["source"] == str(path)
    assert [p["name"] for p in as_json["profiles"]] == ["office-wifi", "cafe"]


# --- bad input: one line, exit code 2, nothing written ------------------------------------------------------


def test_unknown_profile_name_suggests_the_close_one():
    line = assert_one_error_line(rtclab("probe", "--profile", "chrome-3x"))
    assert "no built-in profile 'chrome-3x'" in line
    assert "did you mean chrome-3g" in line


def test_broken_profile_file_names_file_and_field_and_is_left_alone(tmp_path):
    entry = profile_entry("broken")
    entry["uplink"]["loss"] = 1.5
    path = write_profiles(tmp_path / "broken.yaml", entry)
    before = path.read_bytes(), path.stat().st_mtime_ns

    for args in (["probe", "--profile", str(path)], ["profiles", "--file", str(path)]):
        line = assert_one_error_line(rtclab(*args))
        assert line == f"rtclab: error: {path}: profiles[0].uplink.loss: 1.5 is not a fraction from 0 to 1"

    (tmp_path / "syntax.yaml").write_text("profiles: [\n")
    line = assert_one_error_line(rtclab("probe", "--profile", str(tmp_path / "syntax.yaml")))
    assert f"{tmp_path / 'syntax.yaml'}: not valid YAML: line 2" in line

    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.yaml", "syntax.yaml"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["probe", "--profile", FAST, "--seconds", "0"], "argument --seconds: 0 is not between 2 and 120"),
        (
            ["probe", "--profile", FAST, "--seconds", "121"],
            "argument --seconds: 121 is not between 2 and 120",
        ),
        (["probe", "--profile", FAST, "--seconds", "soon"], "'soon' is not a number of seconds"),
        (["probe", "--profile", FAST, "--seed", "x"], "argument --seed: invalid int value"),
        (["probe"], "required: --profile"),
        (
            ["profiles", "--file", "/nonexistent/profiles.yaml"],
            "/nonexistent/profiles.yaml: cannot read the file",
        ),
        (["bogus"], "invalid choice: 'bogus'"),
        ([], "required: COMMAND"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, expected):
    assert expected in assert_one_error_line(rtclab(*args))


def test_a_call_that_cannot_connect_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    dead = write_profiles(tmp_path / "dead.yaml", profile_entry("dead-link", loss=1))
    monkeypatch.setattr(probe, "CONNECT_TIMEOUT_S", 1.0)
    assert cli.main(["probe", "--profile", str(dead), "--seconds", "2"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("rtclab: error: the call did not connect under profile 'dead-link'")
