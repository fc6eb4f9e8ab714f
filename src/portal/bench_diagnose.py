"""How long a support engineer waits for a diagnosis: a 3 MB dump through `rtclab diagnose` and through the
browser page, on this machine. A benchmark, not a test: it prints and never fails on the numbers.

    python -m portal.bench_diagnose        # `make bench-diagnose`; needs the built site (make build)

The 3 MB dump is a real one made longer: the captured 3G call's polls repeated in time (counters carry on, the
clock runs on), as a call of several minutes records them. The report goes to build/reports/bench-diagnose.md.
"""

from __future__ import annotations

import copy
import json
import math
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from portal.paths import REPORTS, ROOT
from rtclab.chromium import launch
from rtclab.diagnose import diagnose_file

SOURCE = ROOT / "samples" / "support" / "dumps" / "3g.webrtc-internals.json"
SITE = ROOT / "build" / "site"
TARGET_BYTES = 3_000_000
RUNS = 5


def long_dump(folder: Path) -> tuple[Path, float]:
    """The 3G call made longer: its polls repeated until the file is about 3 MB, the clock running on (each
    series' end time moved out by the repeats) and counters carrying on from where the last repeat left them.

    Returns:
        The file, and the call's length in seconds.
    """
    source = json.loads(SOURCE.read_text(encoding="utf-8"))
    times = 1
    while True:
        dump = copy.deepcopy(source)
        longest = 0.0
        for record in dump["PeerConnections"].values():
            for entry in record["stats"].values():
                values = json.loads(entry["values"])
                longer = _longer(values, times)
                entry["values"] = json.dumps(longer, separators=(",", ":"))  # compact, as Chrome writes it
                if "startTime" in entry and "endTime" in entry and len(values) > 1:
                    start, end = _ms(entry["startTime"]), _ms(entry["endTime"])
                    span = (end - start) / (len(values) - 1) * (len(values) * times - 1)
                    entry["endTime"] = _iso(start + span)
                    longest = max(longest, span / 1000)
        text = json.dumps(dump, separators=(",", ":"))
        if len(text) >= TARGET_BYTES:
            break
        times = max(times + 1, math.ceil(times * TARGET_BYTES / len(text)))
    path = folder / "long-3g.webrtc-internals.json"
    path.write_text(text, encoding="utf-8")
    return path, longest


def _longer(values: list, times: int) -> list:
    """``values`` repeated ``times`` times; a counter (numbers that never fall) keeps counting."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
    counter = numbers and len(values) > 1 and all(b >= a for a, b in zip(values, values[1:], strict=False))
    if not counter or values[-1] == values[0]:
        return values * times
    grown = values[-1] - values[0] + (values[-1] - values[0]) / (len(values) - 1)
    return [type(v)(v + k * grown) for k in range(times) for v in values]


def _ms(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000  # Chrome writes ISO times


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def cli_seconds(path: Path) -> list[float]:
    runs = []
    for _ in range(RUNS):
        started = time.monotonic()
        subprocess.run(
            [str(ROOT / ".venv" / "bin" / "rtclab"), "diagnose", str(path), "--json"],
            check=True,
            capture_output=True,
        )
        runs.append(time.monotonic() - started)
    return runs


def in_process_seconds(path: Path) -> list[float]:
    runs = []
    for _ in range(RUNS):
        started = time.monotonic()
        diagnose_file(str(path))
        runs.append(time.monotonic() - started)
    return runs


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def browser_seconds(path: Path) -> tuple[list[float], list[list[str]]]:
    """Seconds per run, and the findings (id, severity) and verdict the page showed on the last run."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/support/diagnose-in-browser/"
    runs = []
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = launch(playwright.chromium)
            page = browser.new_page()
            for _ in range(RUNS):
                page.goto(url)
                started = time.monotonic()
                page.set_input_files("#diagnose-files", str(path))
                page.wait_for_selector("#diagnose-output [data-verdict]")
                runs.append(time.monotonic() - started)
            shown = page.eval_on_selector_all(
                "#diagnose-output [data-finding], #diagnose-output [data-verdict]",
                "nodes => nodes.map(n => n.dataset.verdict ? ['verdict', n.dataset.verdict]"
                " : [n.dataset.finding, n.dataset.severity])",
            )
            browser.close()
    finally:
        server.shutdown()
    return runs, shown


def main() -> int:
    if not (SITE / "support" / "diagnose-in-browser" / "index.html").exists():
        print("bench-diagnose: build the site first (make build)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        path, call_s = long_dump(Path(folder))
        size_mb = path.stat().st_size / 1e6
        report = diagnose_file(str(path))
        expected = [[f["id"], f["severity"]] for f in report["findings"]] + [["verdict", report["verdict"]]]
        browser, shown = browser_seconds(path)
        rows = [
            ("rtclab diagnose --json (process, imports included)", cli_seconds(path), "<= 2 s"),
            ("rtclab.diagnose.diagnose_file (in process)", in_process_seconds(path), ""),
            ("browser page, file chosen to verdict shown", browser, "<= 1 s"),
        ]
    agree = (
        "the same findings and verdict" if shown == expected else f"DIFFERENT findings: {shown} vs {expected}"
    )
    lines = [
        f"# Diagnosis benchmark\n\n{size_mb:.1f} MB webrtc-internals dump (the 3G call made {call_s / 60:.1f} min"
        f" long), median of {RUNS} runs, 2 cores. The page and the CLI gave {agree}"
        f" ({', '.join(f'{a} {b}' for a, b in expected)}).\n",
        "| where | median s | max s | goal |",
        "| --- | ---: | ---: | --- |",
    ]
    lines += [f"| {name} | {statistics.median(r):.2f} | {max(r):.2f} | {goal} |" for name, r, goal in rows]
    text = "\n".join(lines) + "\n"
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench-diagnose.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
