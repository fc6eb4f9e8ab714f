"""The scenario benchmark: runs runners with --json, reads their headlines, reports verdicts and failures."""

from __future__ import annotations

import math
from pathlib import Path

from portal import bench_scenarios
from portal.bench_scenarios import ScenarioRun, format_value, run_one, table, verdict
from rtclab.headlines import Headline

WRITES_HEADLINES = """
import sys
from pathlib import Path
from rtclab.headlines import Headline, write_headlines
path = Path(sys.argv[sys.argv.index("--json") + 1])
mode = "full" if "--full" in sys.argv else "quick"
write_headlines(path, "demo", mode, [Headline("first audio", 420.0, "ms", 650.0, "lower", "Agora")])
"""


def write_runner(tmp_path: Path, name: str, body: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    runner = folder / f"{name}.py"
    runner.write_text(body, encoding="utf-8")
    return runner


def test_runner_headlines_are_read_back(tmp_path: Path) -> None:
    runner = write_runner(tmp_path, "demo", WRITES_HEADLINES)
    result = run_one(runner, full=True, workdir=tmp_path)
    assert result.error == ""
    assert (result.scenario, result.mode) == ("demo", "full")
    assert result.headlines[0].value == 420.0


def test_failing_runner_is_reported_with_its_last_line(tmp_path: Path) -> None:
    runner = write_runner(
        tmp_path,
        "broken",
        "import sys\nprint('redis-server is not installed', file=sys.stderr)\nsys.exit(2)\n",
    )
    result = run_one(runner, full=False, workdir=tmp_path)
    assert result.error == "exit 2: redis-server is not installed"
    assert "FAILED: exit 2: redis-server is not installed" in table([result], full=False)


def test_runner_without_json_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    runner = write_runner(tmp_path, "silent", "pass\n")
    result = run_one(runner, full=False, workdir=tmp_path)
    assert "cannot read" in result.error and "silent.json" in result.error


def test_verdicts() -> None:
    assert verdict(Headline("delay", 50.0, "ms", 100.0, "lower")) == "beats by 50%"
    assert verdict(Headline("delay", 150.0, "ms", 100.0, "lower")) == "MISSED by 50%"
    assert verdict(Headline("rate", 99.0, "%", 100.0, "higher")) == "MISSED by 1%"
    assert verdict(Headline("rate", 100.0, "%", 100.0, "higher")) == "meets"
    assert verdict(Headline("pesq", 4.4, "", None)) == "–"
    assert verdict(Headline("delay", math.nan, "ms", 100.0)) == "–"


def test_values_are_formatted_for_reading() -> None:
    assert format_value(1096.4, "ms") == "1,096 ms"
    assert format_value(4.5512, "") == "4.55"
    assert format_value(math.nan, "ms") == "not measured"


def test_table_lists_every_headline_with_its_target_direction() -> None:
    run = ScenarioRun(
        "demo", 3.0, "demo", "quick", (Headline("p99 delay", 40.0, "ms", 100.0, "lower", "Agora signaling"),)
    )
    text = table([run], full=False)
    assert "| demo | p99 delay | 40.0 ms | ≤ 100 ms | Agora signaling | beats by 60% |" in text


def test_every_scenario_runner_is_found() -> None:
    names = {runner.stem for runner in bench_scenarios.runners()}
    assert {"voice_room", "video_1v1", "voice_agent"} <= names
