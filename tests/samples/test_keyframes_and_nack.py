"""samples/sdk/keyframes_and_nack.py: under random loss and a short burst the receiver NACKs and the sender
retransmits; a burst longer than the sender's history ends in a PLI and a keyframe; bad arguments exit 2."""

import fractions
import re
from functools import partial
from pathlib import Path

import av
import numpy as np
import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "keyframes_and_nack.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=180)
load_sample = partial(sample_runner.load_sample, SAMPLE)
ROW = re.compile(
    r"^(?P<run>(?:random loss|burst) \S+ [%s])\s+(?P<lost>\d+)\s+(?P<nacks>\d+)\s+(?P<asked>\d+)\s+"
    r"(?P<resent>\d+)\s+(?P<old>\d+)\s+(?P<plis>\d+)\s+(?P<freeze>\d+|nan)\s+(?P<keys>.+)$",
    re.MULTILINE,
)
STEP = re.compile(r"^  (?P<label>\S.*?)\s+(?P<ms>-?\d+|never)$", re.MULTILINE)


@pytest.fixture(scope="module")
def output():
    result = run_sample()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = {m["run"]: m for m in ROW.finditer(result.stdout)}
    steps = {m["label"]: None if m["ms"] == "never" else int(m["ms"]) for m in STEP.finditer(result.stdout)}
    return result.stdout, rows, steps


def test_three_runs_are_printed(output):
    _, rows, _ = output
    assert list(rows) == ["random loss 2 %", "burst 0.5 s", "burst 3 s"]
    for row in rows.values():
        assert "first frame" in row["keys"]  # every call starts with a keyframe


def test_random_loss_is_repaired_by_nack_and_rtx(output):
    _, rows, _ = output
    row = rows["random loss 2 %"]
    assert int(row["lost"]) > 0
    assert int(row["nacks"]) > 0
    assert int(row["resent"]) > 0


def test_a_short_burst_is_repaired_without_a_keyframe_request(output):
    _, rows, _ = output
    row = rows["burst 0.5 s"]
    assert int(row["lost"]) >= 5
    assert int(row["nacks"]) >= 1
    assert int(row["resent"]) >= 0.8 * int(row["asked"]) > 0
    assert int(row["old"]) == 0
    assert int(row["plis"]) == 0
    assert "PLI" not in row["keys"]


def test_a_long_burst_needs_a_pli_and_a_keyframe(output):
    _, rows, _ = output
    row = rows["burst 3 s"]
    assert int(row["lost"]) > 128  # more than the sender keeps
    assert int(row["asked"]) <= 128  # the receiver asks for the last 128 at most
    assert int(row["old"]) >= 0
    assert int(row["plis"]) >= 1
    assert re.search(r"\b\d+ PLI\b", row["keys"])
    assert int(row["freeze"]) > 3000  # at least the blackout


def test_the_long_burst_timeline_is_in_order(output):
    out, _, steps = output
    burst_end = steps["burst ends"]
    assert burst_end == 3000
    assert steps["last frame decoded before it"] < 300
    assert burst_end <= steps["first NACK after it"] < burst_end + 1000
    pli = steps["receiver sends a PLI"]
    assert pli is not None and pli > burst_end
    assert (
        pli <= steps["sender encodes a keyframe for it"] <= steps["first frame decoded after that keyframe"]
    )
    packets = int(re.search(r"^RTP packets sent from burst start to PLI: (\d+)$", out, re.MULTILINE)[1])
    assert 400 <= packets <= 600  # aiortc's video jitter buffer gives up after 512 packets


def test_is_vp8_keyframe_reads_the_payload_header():
    from aiortc.codecs.vpx import Vp8Encoder

    is_key = load_sample().is_vp8_keyframe
    encoder = Vp8Encoder()
    payloads = []
    for index in range(3):
        frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 40 * index, np.uint8), format="rgb24")
        frame.pts, frame.time_base = index * 3000, fractions.Fraction(1, 90_000)
        payloads.append(encoder.encode(frame, force_keyframe=index == 2)[0])
    assert is_key(payloads[0][0])
    assert not is_key(payloads[1][0])
    assert is_key(payloads[2][0])


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--loss", "--short-burst", "--long-burst", "--seed"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("--loss", "-1"),
        ("--loss", "31"),
        ("--loss", "nan"),
        ("--short-burst", "0"),
        ("--long-burst", "9"),
        ("--long-burst", "long"),
        ("--seed", "x"),
    ],
)
def test_bad_arguments_exit_2_with_one_error_line(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(list(args))
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and args[0] in errors[0]


def test_bad_argument_from_the_command_line_exits_2_without_traceback():
    result = run_sample("--loss", "50")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
