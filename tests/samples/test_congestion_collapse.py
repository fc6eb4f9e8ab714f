"""samples/sdk/congestion_collapse.py: under a cap below aiortc's lowest rate the stock sender keeps offering
more than the cap and delivers far fewer video frames than an uncapped call, while a sender that holds its
video under the cap delivers more; the per-second tables are well formed; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "congestion_collapse.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=150)
load_sample = partial(sample_runner.load_sample, SAMPLE)
SETTINGS = ("no cap", "generous cap", "tight cap, stock aiortc", "tight cap, sender capped")
SUMMARY = re.compile(
    r"^(?P<name>\S.*?)\s+(?P<cap>-|\d+)\s+(?P<sent>\d+)\s+(?P<over>-|\d+/\d+)\s+(?P<drops>\d+)"
    r"\s+(?P<fps>\d+\.\d)\s+(?P<frozen>\d+\.\d)\s+(?P<audio>\d+)$",
    re.MULTILINE,
)
SECOND = re.compile(r"^\s+(\d+)\s+(\d+)\s+(-|\d+)\s+(-|\d+)\s+(\d+)\s+(\d+)\s+(\d+)$")


def summary(out: str) -> dict[str, re.Match[str]]:
    return {m["name"]: m for m in SUMMARY.finditer(out.split("summary:")[1])}


def timelines(out: str) -> dict[str, list[tuple[str, ...]]]:
    """setting name -> its per-second rows (as strings), read from the blocks before the summary."""
    blocks = {}
    for block in out.split("summary:")[0].strip().split("\n\n"):
        lines = block.splitlines()
        name = lines[0].split(" (")[0]
        blocks[name] = [SECOND.match(line).groups() for line in lines[2:]]
    return blocks


@pytest.fixture(scope="module")
def default_run():
    result = run_sample()
    assert result.returncode == 0, result.stderr
    return result


def test_every_setting_prints_a_timeline_and_a_summary_row(default_run):
    assert default_run.stderr == ""
    out = default_run.stdout
    blocks = timelines(out)
    assert list(blocks) == list(SETTINGS)
    for name, rows in blocks.items():
        assert [int(r[0]) for r in rows] == [1, 2, 3, 4, 5], name
    assert list(summary(out)) == list(SETTINGS)
    assert "tight cap, stock aiortc (cap 300 kbps, queue 500 ms)" in out
    assert "video held under 120 kbps" in out


def test_tight_cap_collapses_the_stock_sender_and_not_the_capped_one(default_run):
    out = default_run.stdout
    rows = summary(out)
    free, generous = rows["no cap"], rows["generous cap"]
    stock, capped = rows["tight cap, stock aiortc"], rows["tight cap, sender capped"]
    cap = float(stock["cap"])

    # Without a bottleneck (or with one the sender never reaches) video flows and nothing is dropped.
    for row in (free, generous):
        assert float(row["fps"]) >= 15, row["name"]
        assert int(row["drops"]) == 0, row["name"]
    assert generous["over"] == "0/5"

    # Stock aiortc offers more than the cap for most of the call, the queue drops a lot, and far fewer
    # frames get through than without a cap.
    over, n = map(int, stock["over"].split("/"))
    assert over >= 0.6 * n
    assert float(stock["sent"]) > 1.2 * cap
    assert int(stock["drops"]) > 50
    assert float(stock["fps"]) < 0.5 * float(free["fps"])
    # ...and the encoder is at aiortc's VP8 floor at the end, even where REMB asked for less.
    last = timelines(out)["tight cap, stock aiortc"][-1]
    assert last[3] == "250"

    # The sender that holds its video under the cap delivers clearly more frames through the same path.
    assert float(capped["fps"]) > 2 * float(stock["fps"]) + 1
    assert float(capped["sent"]) < float(stock["sent"])
    assert float(capped["frozen"]) <= float(stock["frozen"])


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--seconds", "--generous-kbps", "--tight-kbps", "--queue-ms"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "option"), [(("--seconds", "1"), "--seconds"), (("--tight-kbps", "slow"), "--tight-kbps")]
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
        ("--seconds", "61"),
        ("--seconds", "2.5"),
        ("--generous-kbps", "nan"),
        ("--tight-kbps", "inf"),
        ("--tight-kbps", "10"),
        ("--queue-ms", "-1"),
    ],
)
def test_out_of_range_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(list(args))
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_frozen_time_counts_a_stream_that_stopped():
    frozen_s = load_sample().frozen_s
    assert frozen_s([i / 30 for i in range(1, 150)], 5.0) == 0.0
    assert frozen_s([], 5.0) == pytest.approx(5.0)
    assert frozen_s([0.1, 0.2, 3.0], 5.0) == pytest.approx((3.0 - 0.2) + (5.0 - 3.0))
