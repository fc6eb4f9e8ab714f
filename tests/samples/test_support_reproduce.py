"""samples/support/reproduce.py: each runbook's problem raises its finding, and its fix removes it."""

from __future__ import annotations

import re

import pytest
from sample_runner import ROOT, run_sample

REPRODUCE = ROOT / "samples" / "support" / "reproduce.py"
RUNBOOKS = ROOT / "docs" / "support" / "runbooks"
SECTION = re.compile(r'--8<--\s+"build/outputs/support/reproduce\.txt:([\w-]+)"')


def cases() -> set[str]:
    return set(re.findall(r'^    "([\w-]+)": Case\(', REPRODUCE.read_text(encoding="utf-8"), re.MULTILINE))


def test_the_fix_removes_the_finding() -> None:
    # Delay, and a rate cap far under what aiortc sends: both hold on a loaded machine in a short call.
    result = run_sample(REPRODUCE, "high-rtt", "bitrate-collapse", "--seconds", "3", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "rtt-high: raised before, gone after" in result.stdout
    assert "audio-loss: raised before, gone after" in result.stdout
    high_rtt = result.stdout.split("[start:high-rtt]")[1].split("[end:high-rtt]")[0]
    assert "findings, problem: P3 rtt-high" in high_rtt
    assert "findings, fix:     none" in high_rtt


def test_a_call_that_never_connects_is_one_p1() -> None:
    result = run_sample(REPRODUCE, "cannot-connect", "--seconds", "2", timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "findings, problem: P1 not-connected\n" in result.stdout
    assert "the fix is not applied here" in result.stdout


def test_every_section_a_runbook_includes_is_a_case() -> None:
    included = {name for page in RUNBOOKS.glob("*.md") for name in SECTION.findall(page.read_text("utf-8"))}
    assert included, "no runbook includes a reproduction"
    assert included <= cases(), f"pages include sections reproduce.py does not print: {included - cases()}"


def test_help_names_every_case() -> None:
    result = run_sample(REPRODUCE, "--help")
    assert result.returncode == 0
    assert all(name in result.stdout for name in cases())


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["no-such-case"], "unknown case 'no-such-case'"),
        (["high-rtt", "--seconds", "99"], "--seconds 99 is not between 2 and 30"),
        (["--seconds", "soon"], "invalid float value: 'soon'"),
    ],
)
def test_a_bad_argument_exits_2_in_one_line(args: list[str], says: str) -> None:
    result = run_sample(REPRODUCE, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert says in result.stderr.strip().splitlines()[-1]
