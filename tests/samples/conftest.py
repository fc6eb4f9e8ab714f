"""Record each sample's test results in build/reports/samples.json for the execution report page.

Tests for `samples/<track>/<name>.py` live in `tests/samples/test_<name>.py`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict

import pytest

from portal.paths import REPORTS, ROOT, SAMPLES

_results: dict[str, list[tuple[str, float]]] = defaultdict(list)


def _sample_for(test_file: str) -> str | None:
    name = test_file.rsplit("/", 1)[-1].removeprefix("test_").removesuffix(".py")
    matches = sorted(SAMPLES.rglob(f"{name}.py"))
    return str(matches[0].relative_to(ROOT)) if matches else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        sample = _sample_for(report.nodeid.split("::", 1)[0])
        if sample:
            _results[sample].append((report.outcome, report.duration))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _results or hasattr(session.config, "workerinput"):
        return  # under xdist the controller sees every worker's reports and writes the file once
    path = REPORTS / "samples.json"
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        recorded = {}
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    for sample, outcomes in _results.items():
        passed = all(outcome == "passed" for outcome, _ in outcomes)
        recorded[sample] = {
            "status": "passed" if passed else "failed",
            "seconds": round(sum(seconds for _, seconds in outcomes), 1),
            "date": now,
            "tests": len(outcomes),
        }
    REPORTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n", encoding="utf-8")
