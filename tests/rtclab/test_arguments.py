"""rtclab.arguments: the samples' range-checked option types give argparse's one-line usage error."""

from __future__ import annotations

import argparse

import pytest

from rtclab.arguments import number, whole_number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sample.py")
    p.add_argument("--seconds", type=whole_number(2, 60), default=5)
    p.add_argument("--delay-ms", type=number(0, 2000, "ms"), default=0.0)
    return p


def test_a_large_whole_number_range_is_written_out(capsys):
    parser = argparse.ArgumentParser(prog="sample.py")
    parser.add_argument("--seed", type=whole_number(0, 2**31 - 1))
    with pytest.raises(SystemExit):
        parser.parse_args(["--seed", "-1"])
    assert "must be from 0 to 2147483647, got -1" in capsys.readouterr().err


def test_values_in_range_are_read_with_their_ends_included():
    args = parser().parse_args(["--seconds", "60", "--delay-ms", "0"])
    assert (args.seconds, args.delay_ms) == (60, 0.0)
    assert parser().parse_args(["--delay-ms", "2e3"]).delay_ms == 2000.0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seconds", "61"], "argument --seconds: must be from 2 to 60, got 61"),
        (["--seconds", "2.5"], "argument --seconds: not a whole number: '2.5'"),
        (["--delay-ms", "soon"], "argument --delay-ms: not a number: 'soon'"),
        (["--delay-ms", "-1"], "argument --delay-ms: must be from 0 to 2000 ms, got -1"),
        (["--delay-ms", "nan"], "argument --delay-ms: must be from 0 to 2000 ms, got nan"),
        (["--delay-ms", "inf"], "argument --delay-ms: must be from 0 to 2000 ms, got inf"),
    ],
)
def test_a_bad_value_is_one_line_and_exit_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        parser().parse_args(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2
    assert err[-1] == f"sample.py: error: {message}"
