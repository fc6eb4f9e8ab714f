"""samples/sdk/opus_settings.py: a higher Opus bitrate costs more bytes and does not lower PESQ, shorter frames
cost more packets and header bytes, and DTX cuts what is sent during pauses; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "opus_settings.py"
PAGE = ROOT / "docs" / "sdk" / "audio-and-opus.md"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=120)
load_sample = partial(sample_runner.load_sample, SAMPLE)
NUMBER = r"(-?\d+(?:\.\d+)?)"


def rows(out: str, heading: str, columns: int) -> list[list[float]]:
    """The numeric rows of the table that starts with ``heading`` (DTX 'off'/'on' read as 0/1)."""
    block = out.split(heading, 1)[1].split("\n\n", 1)[0]
    found = []
    for line in block.splitlines()[2:]:
        cells = line.split()
        cells = [{"off": "0", "on": "1"}.get(c, c) for c in cells]
        assert len(cells) == columns and all(re.fullmatch(NUMBER, c) for c in cells), line
        found.append([float(c) for c in cells])
    return found


@pytest.fixture(scope="module")
def default_run():
    result = run_sample()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_prints_a_header_and_three_tables(default_run):
    assert re.match(r"libopus \d+\.\d+", default_run)
    for heading in ("1. Target bitrate", "2. Frame size", "3. DTX"):
        assert heading in default_run


def test_more_bitrate_costs_more_bytes_and_does_not_lower_pesq(default_run):
    table = rows(default_run, "1. Target bitrate", 4)
    assert [row[0] for row in table] == list(load_sample().BITRATES_KBPS)
    for target, payload, wire, pesq in table:
        assert 0.6 * target <= payload <= 1.3 * target  # VBR lands near its target on speech
        assert wire > payload
        assert 1.0 <= pesq <= 4.7
    payloads = [row[1] for row in table]
    assert payloads == sorted(payloads)
    pesqs = [row[3] for row in table]
    for lower, higher in zip(pesqs, pesqs[1:], strict=False):
        assert higher >= lower - 0.15  # a step up never costs quality beyond PESQ's noise
    assert pesqs[-1] >= pesqs[0] + 0.8  # 64 kbps is clearly better than 6 kbps


def test_shorter_frames_cost_packets_and_headers_and_longer_frames_cost_delay(default_run):
    table = rows(default_run, "2. Frame size", 6)
    assert [row[0] for row in table] == list(load_sample().FRAME_SIZES_MS)
    by_frame = {row[0]: row for row in table}
    for frame_ms, packets, _payload, _wire, delay, _pesq in table:
        assert packets == pytest.approx(1000 / frame_ms, rel=0.05)
        assert delay > frame_ms
    assert by_frame[10][3] > by_frame[20][3] + 10  # 50 more packets/s x 40 header bytes = 16 kbps
    assert by_frame[60][4] > by_frame[20][4] + 30


def test_dtx_cuts_what_is_sent_in_pauses_but_not_while_talking(default_run):
    (off, on) = rows(default_run, "3. DTX", 6)
    assert off[0] == 0 and on[0] == 1
    assert on[1] < 0.8 * off[1]  # fewer packets per second
    assert on[3] < 0.5 * off[3]  # pauses: far fewer bits
    assert on[2] > 0.7 * off[2]  # talking: about the same
    assert on[5] > off[5] - 0.5  # quality of the talk survives


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--seconds", "--seed"):
        assert option in result.stdout


@pytest.mark.parametrize("args", [("--seconds", "2"), ("--seconds", "ten"), ("--seed", "-1")])
def test_bad_argument_is_a_one_line_usage_error(args):
    result = run_sample(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert args[0] in errors[0]
    assert result.stdout == ""
