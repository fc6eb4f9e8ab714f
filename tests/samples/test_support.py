"""The support track's samples and the commands its pages show: run them as a reader would."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
from sample_runner import ROOT, run_sample

SUPPORT = ROOT / "samples" / "support"
DUMPS = SUPPORT / "dumps"
# The commands a page runs on the project's own dumps; one naming the reader's file (webrtc_internals_dump.txt)
# is a template, not a claim that it runs here.
COMMAND = re.compile(r"^\s*\.venv/bin/(rtclab diagnose (?:\S+ )*?samples/.+)$", re.MULTILINE)


def test_the_support_pages_show_commands_that_run() -> None:
    assert len(page_commands()) >= 6


def page_commands() -> list[tuple[str, str]]:
    found = []
    for page in sorted((ROOT / "docs" / "support").rglob("*.md")):
        for match in COMMAND.finditer(page.read_text(encoding="utf-8")):
            found.append((str(page.relative_to(ROOT)), match[1]))
    return found


@pytest.mark.parametrize(("page", "command"), page_commands())
def test_every_diagnose_command_on_the_support_pages_runs(page: str, command: str, tmp_path: Path) -> None:
    # Pages write to /tmp/...; here each run writes into its own folder so reruns never meet an existing file.
    args = [arg.replace("/tmp/", f"{tmp_path}/") for arg in shlex.split(command)]
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / args[0]), *args[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{page}: {command}\n{result.stderr}"
    assert "verdict" in result.stdout or "结论" in result.stdout or result.stdout.lstrip().startswith("{")


def test_triage_lists_every_dump_worst_first() -> None:
    result = run_sample(SUPPORT / "triage.py")
    assert result.returncode == 0, result.stderr
    lines = [
        line
        for line in result.stdout.splitlines()
        if line and line.split()[0] in {p.name for p in DUMPS.iterdir()}
    ]
    assert len(lines) == len([p for p in DUMPS.iterdir() if p.suffix != ".md"])
    verdicts = [line.split()[2] for line in lines]
    order = ["failed", "poor", "fair", "good"]
    assert verdicts == sorted(verdicts, key=order.index)


def test_triage_reports_a_bad_file_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "good.json").write_bytes((DUMPS / "clean.webrtc-internals.json").read_bytes())
    (tmp_path / "broken.json").write_text('{"PeerConnections": {')
    result = run_sample(SUPPORT / "triage.py", str(tmp_path))
    assert result.returncode == 0
    assert "good.json" in result.stdout
    assert "broken.json: the JSON ends early" in result.stdout


def test_diagnose_dump_prints_the_path_the_mos_and_the_findings() -> None:
    result = run_sample(SUPPORT / "diagnose_dump.py")
    assert result.returncode == 0, result.stderr
    assert "connection" in result.stdout and "MOS" in result.stdout and "findings" in result.stdout


@pytest.mark.parametrize("sample", ["triage.py", "diagnose_dump.py"])
def test_bad_arguments_exit_2_in_one_line(sample: str, tmp_path: Path) -> None:
    result = run_sample(SUPPORT / sample, str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "missing" in result.stderr.strip().splitlines()[-1]  # the last line names the file
    assert run_sample(SUPPORT / sample, "--help").returncode == 0
