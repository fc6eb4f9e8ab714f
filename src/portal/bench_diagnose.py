"""How long a support engineer waits for a diagnosis: a 3 MB dump through `rtclab diagnose` and through the
browser page, on this machine. A benchmark, not a test: it prints and never fails on the numbers.

    python -m portal.bench_diagnose        # `make bench-diagnose`; needs the built site (make build)

The 3 MB dump is a real one made longer: the captured 3G call's series repeated in time, as a ~10 minute call
would record. The report goes to build/reports/bench-diagnose.md.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
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


def long_dump(folder: Path) -> Path:
    """The 3G dump with every series repeated until the file is about 3 MB (start and end times stretched)."""
    dump = json.loads(SOURCE.read_text(encoding="utf-8"))
    times = max(1, round(TARGET_BYTES / SOURCE.stat().st_size))
    for record in dump["PeerConnections"].values():
        for entry in record["stats"].values():
            values = json.loads(entry["values"])
            entry["values"] = json.dumps(values * times)
    path = folder / "long-3g.webrtc-internals.json"
    path.write_text(json.dumps(dump), encoding="utf-8")
    return path


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


def browser_seconds(path: Path) -> list[float]:
    handler = partial(SimpleHTTPRequestHandler, directory=str(SITE))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
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
            browser.close()
    finally:
        server.shutdown()
    return runs


def main() -> int:
    if not (SITE / "support" / "diagnose-in-browser" / "index.html").exists():
        print("bench-diagnose: build the site first (make build)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        path = long_dump(Path(folder))
        size_mb = path.stat().st_size / 1e6
        rows = [
            ("rtclab diagnose --json (process, imports included)", cli_seconds(path), "<= 2 s"),
            ("rtclab.diagnose.diagnose_file (in process)", in_process_seconds(path), ""),
            ("browser page, file chosen to verdict shown", browser_seconds(path), "<= 1 s"),
        ]
    lines = [
        f"# Diagnosis benchmark\n\n{size_mb:.1f} MB webrtc-internals dump, median of {RUNS} runs, 2 cores\n",
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
