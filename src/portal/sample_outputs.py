"""Run the samples whose printed output a page shows, so every figure on a page was measured by the build.

A page that wants what `python samples/<track>/<name>.py` prints includes it by its build path:

    ```text
    --8<-- "build/outputs/<track>/<name>.txt"
    ```

`python -m portal.execute` (and so `make execute`, `make serve`, `make test`) finds those includes, runs each
sample once with no arguments from the repository root (LMA_MODE=quick|full is passed on; a sample's defaults
are what its page shows), and writes its stdout there. Like notebooks, a sample re-runs only when the hash of
its source, the rtclab sources, the lock file or the mode changed. A sample that exits non-zero fails the run.

A scenario runner also gets ``--json build/outputs/<name>.headlines.json``, so the one run that measures the
page's figures also writes its headline figures. The scenario tests read that run (:func:`page_run`) instead of
starting a second one: each run takes the machine alone for 15-45 s.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from portal.paths import BUILD, DOCS, ROOT, SAMPLES

OUTPUTS = BUILD / "outputs"
TIMEOUT = 300  # seconds for one sample run
# Samples whose printed figures are CPU time, or a scenario whose server and peers take both cores: they run
# after the others, one at a time (a co-host join took 15.9 s instead of about 5 with other runs beside it).
RUN_ALONE = {
    "sdk/video_encoders": "encode time per frame",
    "scenarios/video_1v1/video_1v1": "beauty-filter time per frame",
    "scenarios/voice_room/voice_room": "rooms per core",
    "scenarios/live_cohost/live_cohost": "join time, composite delay",
    "scenarios/team_voice/team_voice": "mouth-to-ear delay, recovery",
    "scenarios/bullet_comments/bullet_comments": "delivery delay at 1,000 viewers",
    "scenarios/voice_agent/voice_agent": "response time",
    "scenarios/voice_agent/latency_levers": "response time",
    "support/reproduce": "freezes and loss under a rate cap",
}
# Scenario runners: their run also writes its headline figures (--json), which the tests and the benchmark read.
WRITES_HEADLINES = {
    "scenarios/voice_agent/voice_agent",
    "scenarios/live_cohost/live_cohost",
    "scenarios/bullet_comments/bullet_comments",
    "scenarios/team_voice/team_voice",
    "scenarios/video_1v1/video_1v1",
    "scenarios/voice_room/voice_room",
}
# Data a sample reads besides its own file: a change there re-runs it like a change to its code.
READS = {
    "support/triage": ("support/dumps",),
    "support/diagnose_dump": ("support/dumps",),
    "support/worked_incident": ("support/dumps",),
    "support/reproduce": ("support/runbook_calls.py",),
}
INCLUDE = re.compile(r'--8<--\s+"build/outputs/(?P<name>[\w./-]+?)\.txt(?::[\w-]+)?"')  # whole, or a section


@dataclass(frozen=True)
class SampleOutput:
    """One sample whose output a page includes: `samples/<name>.py` -> `build/outputs/<name>.txt`."""

    name: str  # e.g. sdk/connection_timeline

    @property
    def sample(self) -> Path:
        return SAMPLES / f"{self.name}.py"

    @property
    def output(self) -> Path:
        return OUTPUTS / f"{self.name}.txt"

    @property
    def record(self) -> Path:
        return OUTPUTS / f"{self.name}.json"

    @property
    def headlines(self) -> Path | None:
        """Where the run writes its headline figures (None for a sample that writes none)."""
        return OUTPUTS / f"{self.name}.headlines.json" if self.name in WRITES_HEADLINES else None

    @property
    def run_alone(self) -> str:
        """What it measures that other runs beside it would distort ("" when it may share the machine)."""
        return RUN_ALONE.get(self.name, "")


def included_outputs() -> dict[SampleOutput, list[Path]]:
    """Every sample output some page includes, with the pages that include it."""
    found: dict[SampleOutput, list[Path]] = {}
    for page in sorted(DOCS.rglob("*.md")):
        if "_templates" in page.parts:
            continue
        for match in INCLUDE.finditer(page.read_text(encoding="utf-8")):
            found.setdefault(SampleOutput(match["name"]), []).append(page)
    return found


def sample_files(item: SampleOutput) -> list[Path]:
    """The files a sample's output depends on: the sample, or the whole folder of a sample that has one
    (samples/sdk/browser_call/browser_call.py and the server, bot and page beside it)."""
    if item.sample.parent.name == item.sample.stem:
        return sorted(
            p for p in item.sample.parent.rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    if item.name in READS:
        paths = [SAMPLES / read for read in READS[item.name]]
        found = [q for p in paths for q in ([p] if p.is_file() else sorted(p.rglob("*"))) if q.is_file()]
        return [item.sample, *found]
    return [item.sample]


def cache_key(item: SampleOutput, mode: str) -> str:
    digest = hashlib.sha256()
    for path in sample_files(item):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for path in sorted((ROOT / "src" / "rtclab").rglob("*")):
        if path.is_file() and path.suffix in {".py", ".yaml", ".json"}:
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    lock = ROOT / "uv.lock"
    if lock.exists():
        digest.update(lock.read_bytes())
    digest.update(f"mode={mode}".encode())
    return digest.hexdigest()


def _recorded(item: SampleOutput) -> dict | None:
    try:
        return json.loads(item.record.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _write_atomically(path: Path, text: str) -> None:
    """Through a temporary file and a rename: `make serve` may rebuild while samples finish."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def _forget(item: SampleOutput) -> None:
    """A failed run leaves no output behind, so the page cannot show a stale one."""
    item.output.unlink(missing_ok=True)
    item.record.unlink(missing_ok=True)
    if item.headlines is not None:
        item.headlines.unlink(missing_ok=True)


def run_sample(item: SampleOutput, mode: str, key: str) -> tuple[dict, str | None]:
    """Run one sample; return its record and, when it failed, a one-paragraph error."""
    started = time.monotonic()
    env = {**os.environ, "LMA_MODE": mode}
    command = [sys.executable, str(item.sample.relative_to(ROOT))]
    if item.headlines is not None:
        # The runner never replaces a file; this one is the build's own, from the run being replaced.
        item.headlines.unlink(missing_ok=True)
        item.headlines.parent.mkdir(parents=True, exist_ok=True)
        command += ["--json", str(item.headlines.relative_to(ROOT))]
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        _forget(item)
        return {"status": "failed"}, f"{item.sample.relative_to(ROOT)}: ran longer than {TIMEOUT} s"
    seconds = round(time.monotonic() - started, 1)
    if result.returncode != 0:
        tail = "\n".join(result.stderr.strip().splitlines()[-15:])
        _forget(item)
        return {"status": "failed"}, f"{item.sample.relative_to(ROOT)}: exit code {result.returncode}\n{tail}"
    record = {
        "status": "passed",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": seconds,
        "mode": mode,
        "cache_key": key,
    }
    item.output.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(item.output, result.stdout)
    _write_atomically(item.record, json.dumps(record, indent=2) + "\n")
    return record, None


def up_to_date(item: SampleOutput, key: str) -> bool:
    """Whether the recorded run is of the code, data, lock file and mode `key` hashes (and its files are there)."""
    recorded = _recorded(item)
    files = [item.output] + ([item.headlines] if item.headlines is not None else [])
    return bool(recorded) and recorded.get("cache_key") == key and all(f.exists() for f in files)


def page_run(name: str, mode: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the run a page shows of samples/<name>.py: the recorded one when it is up
    to date, else a new run, recorded for the page as `make execute` would (so that run is not repeated)."""
    item = SampleOutput(name)
    key = cache_key(item, mode)
    if not up_to_date(item, key):
        _, error = run_sample(item, mode, key)
        if error is not None:
            return 1, "", error
    return 0, item.output.read_text(encoding="utf-8"), ""


def plan(mode: str, force: bool = False) -> tuple[dict[str, dict], list[tuple[SampleOutput, str]]]:
    """Records of the included samples that are up to date (or cannot run), and the stale ones with their keys."""
    records: dict[str, dict] = {}
    stale: list[tuple[SampleOutput, str]] = []
    for item, pages in included_outputs().items():
        name = str(item.sample.relative_to(ROOT))
        if not item.sample.exists():
            page = pages[0].relative_to(ROOT)
            print(
                f"FAILED      {page}: includes build/outputs/{item.name}.txt, but {name} does not exist",
                file=sys.stderr,
            )
            records[name] = {"status": "failed"}
            continue
        key = cache_key(item, mode)
        recorded = _recorded(item)
        if not force and recorded and up_to_date(item, key):
            print(f"up to date  {name}  (ran {recorded['date']}, {recorded['seconds']} s)")
            records[name] = recorded
        else:
            stale.append((item, key))
    return records, stale
