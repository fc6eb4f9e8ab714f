"""samples/sdk/latency_budget.py: prints a per-stage budget for audio and video on loopback and with an added
delay; the stages add up to the end-to-end measures that use no timestamp; the added delay shows up in the
network stage and end to end; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "latency_budget.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=120)
load_sample = partial(sample_runner.load_sample, SAMPLE)
COLUMNS = ("audio loopback", "audio +D", "video loopback", "video +D")
NUMBER = r"(-|-?\d+\.\d)"


def table(out: str) -> dict[str, dict[str, float | None]]:
    """row name -> column -> value (None for '-'), for every row of the budget table."""
    rows = {}
    pattern = re.compile(
        rf"^(?P<name>\S.*?|  \S.*?)\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}$", re.MULTILINE
    )
    for match in pattern.finditer(out):
        values = [None if v == "-" else float(v) for v in match.groups()[1:]]
        rows[match["name"].strip()] = dict(zip(COLUMNS, values, strict=True))
    return rows


@pytest.fixture(scope="module")
def default_run():
    result = run_sample("--seconds", "2", "--delay-ms", "100")
    assert result.returncode == 0, result.stderr
    return result


def test_prints_every_stage_for_both_kinds_and_both_calls(default_run):
    out = default_run.stdout
    assert default_run.stderr == ""
    header = next(line for line in out.splitlines() if line.startswith("stage (mean ms)"))
    assert re.findall(r"(audio|video) (loopback|\+100 ms)", header) == [
        ("audio", "loopback"),
        ("audio", "+100 ms"),
        ("video", "loopback"),
        ("video", "+100 ms"),
    ]
    rows = table(out)
    stages = ["capture", "encode", "packetize", "network", "jitter buffer", "decode"]
    assert list(rows)[: len(stages)] == stages
    assert set(rows["render (not in loopback)"].values()) == {None}
    for stage in stages:
        for column, value in rows[stage].items():
            assert value is not None and 0 <= value < 2000, (stage, column)
    frames = re.search(r"^frames measured\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert frames is not None
    # 2 s of 20 ms audio frames (100) and of 30 fps video (60), with generous room for a loaded machine.
    audio_frames, _, video_frames, _ = (int(n) for n in frames.groups())
    assert audio_frames >= 50 and video_frames >= 30


def test_stages_add_up_to_the_measures_that_use_no_timestamp(default_run):
    rows = table(default_run.stdout)
    for column in COLUMNS:
        stages = rows["sum of the stages"][column]
        end_to_end = rows["end to end, no timestamps (*)"][column]
        assert stages is not None and end_to_end is not None, column
        if column.startswith("video"):
            # Same frames, matched by the counter in the picture instead of the RTP timestamp.
            assert abs(end_to_end - stages) <= max(5.0, 0.05 * stages), column
        else:
            # The waveform also sees the codec's lookahead, which no timestamp shows; nothing is lost here.
            assert -5.0 <= end_to_end - stages <= 25.0, column


def test_added_delay_shows_up_in_the_network_stage_and_end_to_end(default_run):
    rows = table(default_run.stdout)
    delay = 100.0
    for kind in ("audio", "video"):
        grew = rows["network"][f"{kind} +D"] - rows["network"][f"{kind} loopback"]
        assert 0.9 * delay <= grew <= 1.5 * delay, kind
        e2e = rows["end to end, no timestamps (*)"]
        assert e2e[f"{kind} +D"] - e2e[f"{kind} loopback"] >= 0.8 * delay, kind
        # The stages on one machine do not wait for the network.
        for stage in ("encode", "decode"):
            assert rows[stage][f"{kind} +D"] < delay / 2, (kind, stage)


def test_aiortc_jitter_buffers_hold_what_their_source_says(default_run):
    rows = table(default_run.stdout)
    # Audio: a frame leaves once 4 later 20 ms frames are in (prefetch=4). Video: once the next frame starts.
    for column in ("audio loopback", "audio +D"):
        assert 60 <= rows["jitter buffer"][column] <= 140, column
    for column in ("video loopback", "video +D"):
        assert 15 <= rows["jitter buffer"][column] <= 80, column


def test_codec_delay_and_g114_lines(default_run):
    out = default_run.stdout
    lines = re.findall(
        r"^(loopback|\+100 ms): audio delay the timestamps miss (-?\d+\.\d) ms, "
        r"Opus encoder lookahead (\d+\.\d) ms$",
        out,
        re.MULTILINE,
    )
    assert [label for label, _, _ in lines] == ["loopback", "+100 ms"]
    for _, _, lookahead in lines:
        assert 2.5 <= float(lookahead) <= 30
    verdicts = re.findall(r"^  (loopback|\+100 ms)\s+(audio|video) (below|between|above) ", out, re.MULTILINE)
    assert len(verdicts) == 4
    assert ("loopback", "video", "below") in verdicts


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--delay-ms", "--seconds"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "option"), [(("--seconds", "0"), "--seconds"), (("--delay-ms", "-5"), "--delay-ms")]
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
        ("--seconds", "nan"),
        ("--seconds", "x"),
        ("--delay-ms", "1001"),
        ("--delay-ms", "inf"),
    ],
)
def test_out_of_range_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(list(args))
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_g114_verdict_bands():
    verdict = load_sample().g114_verdict
    assert verdict(None) == "not measured"
    assert verdict(149.9).startswith("below 150 ms")
    assert verdict(150).startswith("between 150 and 400 ms")
    assert verdict(400).startswith("between")
    assert verdict(400.1).startswith("above 400 ms")
