"""Run every scenario playbook's reference sample and report its headline figures against the published targets.

    python -m portal.bench_scenarios [--full] [--only voice_room,team_voice]   # what `make bench-scenarios` runs

Each playbook's runner (samples/scenarios/<name>/<name>.py) measures its scenario and, given ``--json PATH``,
writes a few headline figures next to the targets its page cites (rtclab.headlines). This runs them one after
another (never in parallel: they measure delays and CPU on a shared machine), prints one table and writes it to
build/reports/bench-scenarios.md. Like `make bench-site` it reports and never fails on a missed target: timings
on a loaded laptop are not a verdict; the samples' own tests check what must hold.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from portal.paths import REPORTS, ROOT, SAMPLES
from rtclab.headlines import Headline, HeadlineFileError, read_headlines

SCENARIOS = SAMPLES / "scenarios"
TIMEOUT_S = {"quick": 180, "full": 900}


@dataclass
class ScenarioRun:
    """One runner's result: its headlines, or why there are none."""

    name: str
    seconds: float
    scenario: str = ""
    mode: str = ""
    headlines: tuple[Headline, ...] = ()
    error: str = ""


def runners() -> list[Path]:
    """Every scenario runner: a folder under samples/scenarios/ holding a script of the folder's name."""
    return sorted(p / f"{p.name}.py" for p in SCENARIOS.iterdir() if (p / f"{p.name}.py").is_file())


def run_one(runner: Path, full: bool, workdir: Path) -> ScenarioRun:
    """Run one runner with --json into `workdir` and read what it wrote."""
    name = runner.stem
    out = workdir / f"{name}.json"
    command = [sys.executable, str(runner), "--json", str(out)] + (["--full"] if full else [])
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S["full" if full else "quick"]
        )
    except subprocess.TimeoutExpired as timeout:
        return ScenarioRun(name, time.monotonic() - started, error=f"no result after {timeout.timeout:.0f} s")
    seconds = time.monotonic() - started
    if done.returncode != 0:
        last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
        return ScenarioRun(name, seconds, error=f"exit {done.returncode}: {last}")
    try:
        scenario, mode, headlines = read_headlines(out)
    except HeadlineFileError as error:
        return ScenarioRun(name, seconds, error=str(error))
    return ScenarioRun(name, seconds, scenario, mode, tuple(headlines))


def verdict(headline: Headline) -> str:
    """'beats by 41 %', 'missed by 12 %' or '–' (no target to compare with)."""
    margin = headline.margin()
    if margin is None:
        return "–"
    if margin >= 0:
        return f"beats by {margin:.0%}" if margin >= 0.005 else "meets"
    return f"MISSED by {-margin:.0%}"


def format_value(value: float, unit: str) -> str:
    if value != value:  # NaN: the run could not measure it
        return "not measured"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f} {unit}".strip()


def table(results: list[ScenarioRun], full: bool) -> str:
    lines = [
        f"Scenario headline figures, {'full' if full else 'quick'} mode, one run each on 127.0.0.1 "
        "(loopback: no network delay unless a row says a profile)",
        "",
        "| scenario | metric | measured | published target | source | verdict | conditions |",
        "|---|---|---:|---:|---|---|---|",
    ]
    for result in results:
        if result.error:
            lines.append(f"| {result.name} | – | – | – | – | FAILED: {result.error} | |")
            continue
        for h in result.headlines:
            sign = "≤" if h.better == "lower" else "≥"
            target = f"{sign} {format_value(h.target, h.unit)}" if h.target is not None else "–"
            lines.append(
                f"| {result.scenario} | {h.metric} | {format_value(h.value, h.unit)} | {target} | "
                f"{h.source or '–'} | {verdict(h)} | {h.conditions} |"
            )
    lines += ["", "| runner | mode | run time (s) |", "|---|---|---:|"]
    lines += [f"| {r.name} | {r.mode or '–'} | {r.seconds:.0f} |" for r in results]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portal.bench_scenarios", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--full", action="store_true", help="run each scenario at its full (workshop) size")
    parser.add_argument("--only", default="", help="comma-separated runner names, e.g. voice_room,team_voice")
    args = parser.parse_args(argv)
    available = runners()
    wanted = [name for name in args.only.split(",") if name]
    unknown = sorted(set(wanted) - {r.stem for r in available})
    if unknown:
        parser.error(
            f"--only: no scenario runner named {', '.join(unknown)} (have: {', '.join(r.stem for r in available)})"
        )
    selected = [r for r in available if not wanted or r.stem in wanted]

    results = []
    with tempfile.TemporaryDirectory(prefix="lma-scenarios-") as tmp:
        for runner in selected:
            print(f"  running {runner.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
            result = run_one(runner, args.full, Path(tmp))
            print(
                f"    {result.seconds:.0f} s{' — ' + result.error if result.error else ''}", file=sys.stderr
            )
            results.append(result)
    text = table(results, args.full)
    print(text)
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench-scenarios.md").write_text(text + "\n", encoding="utf-8")
    print(f"\nwritten to {REPORTS / 'bench-scenarios.md'}", file=sys.stderr)
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
