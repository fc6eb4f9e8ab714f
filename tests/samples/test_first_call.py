"""samples/get-started/first_call.py: runs, prints plausible timings and stats, and rejects bad arguments."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "get-started" / "first_call.py"
SECTIONS = ("peers", "tracks", "connect", "stats")
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=60)
load_sample = partial(sample_runner.load_sample, SAMPLE)


def test_two_second_call_prints_timings_and_stats():
    result = run_sample("--seconds", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout

    connected = float(re.search(r"^connected in (\d+\.\d) ms$", out, re.MULTILINE).group(1))
    first = {
        kind: float(re.search(rf"^first {kind} frame at (\d+\.\d) ms$", out, re.MULTILINE).group(1))
        for kind in ("audio", "video")
    }
    assert 0 < connected < 5000
    for kind, ms in first.items():
        assert connected < ms < 5000, kind

    number = r"(\d+(?:\.\d+)?)"
    for kind in ("audio", "video"):
        line = re.search(
            rf"^{kind}\s+sent (\d+) pkts\s+recv (\d+) pkts\s+lost (-?\d+) \({number} %\)"
            rf"\s+jitter {number} ms\s+RTT (?:{number} ms|n/a)\s+bitrate {number} kbit/s$",
            out,
            re.MULTILINE,
        )
        assert line, f"no {kind} stats line in:\n{out}"
        sent, received = int(line.group(1)), int(line.group(2))
        assert received > 0
        assert sent >= received
        assert float(line.group(7)) > 0  # bitrate


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert "--seconds" in result.stdout
    assert result.stdout.startswith("usage:")


def test_negative_seconds_is_a_one_line_usage_error():
    result = run_sample("--seconds", "-1")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert "--seconds" in errors[0]
    assert result.stdout == ""


@pytest.mark.parametrize("value", ["0", "-0.5", "60.5", "1e9", "nan", "inf", "three"])
def test_out_of_range_seconds_exit_2(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(["--seconds", value])
    assert exit_info.value.code == 2
    assert "--seconds" in capsys.readouterr().err


@pytest.mark.parametrize(("value", "expected"), [("0.5", 0.5), ("3", 3.0), ("60", 60.0)])
def test_valid_seconds_are_accepted(value, expected):
    assert load_sample().duration(value) == expected


def test_page_sections_are_marked_and_short():
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    for name in SECTIONS:
        start = lines.index(f"    # --8<-- [start:{name}]")
        end = lines.index(f"    # --8<-- [end:{name}]")
        assert 5 <= end - start - 1 <= 25, f"section {name} has {end - start - 1} lines"
    markers = [re.search(r"\[(start|end):(\w+)\]", line) for line in lines if "--8<--" in line]
    assert [m.group(2) for m in markers if m.group(1) == "start"] == list(SECTIONS)
