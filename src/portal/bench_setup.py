"""Measure what a newcomer waits for: a fresh clone's first `make serve` until the first page is served, then
`make check` on three kinds of page, and (with --ci) `.ci/run` with the time of each stage.

    python -m portal.bench_setup          # `make bench-setup`: about 10 minutes on 2 cores
    python -m portal.bench_setup --ci     # also .ci/run in the clone: about 25 minutes more

The clone is made from this checkout's last commit into a temporary folder, so nothing here is touched and
nothing uncommitted is measured. The report goes to build/reports/bench-setup.md. A benchmark, not a test:
it prints the numbers and never fails on them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from portal.paths import REPORTS, ROOT

CHECK_PAGES = {
    "tutorial": "docs/get-started/first-call.md",
    "how-to (sample outputs)": "docs/scenarios/voice-room.md",
    "notebook": "notebooks/tuning/jitter-buffer.ipynb",
}
SERVE_TIMEOUT = 1800  # seconds


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_serve(clone: Path) -> float:
    """Seconds from `make serve` to the first 200 from the home page."""
    port = free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        ["make", "serve", f"SERVE_ADDRESS=127.0.0.1:{port}"],
        cwd=clone,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # so the whole tree (make, mkdocs) can be stopped at once
    )
    try:
        while time.monotonic() - started < SERVE_TIMEOUT:
            if server.poll() is not None:
                raise RuntimeError(f"make serve exited with {server.returncode} before serving")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"make serve served nothing in {SERVE_TIMEOUT} s")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        # A notebook worker of portal.execute once outlived the group (seen 2026-12-07): stop anything still
        # running from the clone, so the benchmark leaves no process behind.
        subprocess.run(["pkill", "-TERM", "-f", str(clone)], check=False)


def timed(command: list[str], clone: Path) -> tuple[float, int]:
    started = time.monotonic()
    code = subprocess.call(command, cwd=clone, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    return time.monotonic() - started, code


def run(with_ci: bool) -> int:
    lines = ["# Set-up benchmark", "", f"commit {_head()}, {os.cpu_count()} cores", ""]
    with tempfile.TemporaryDirectory(prefix="lma-bench-setup-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True)
        print("bench-setup: first make serve in a fresh clone ...", flush=True)
        serve = first_serve(clone)
        lines += [f"- first `make serve` to the first page served: **{serve:.0f} s**", ""]
        lines += ["| `make check PAGE=...` | page | seconds | exit |", "| --- | --- | ---: | ---: |"]
        for kind, page in CHECK_PAGES.items():
            print(f"bench-setup: make check PAGE={page} ...", flush=True)
            seconds, code = timed(["make", "check", f"PAGE={page}"], clone)
            lines.append(f"| {kind} | `{page}` | {seconds:.1f} | {code} |")
        if with_ci:
            print("bench-setup: .ci/run in the clone ...", flush=True)
            seconds, code = timed([".ci/run"], clone)
            lines += [
                "",
                f"- `.ci/run`: **{seconds:.0f} s**, exit {code}",
                "",
                "| stage | seconds | status |",
            ]
            lines.append("| --- | ---: | --- |")
            timings = json.loads((clone / "build" / "reports" / "timings.json").read_text(encoding="utf-8"))
            lines += [f"| {t['stage']} | {t['seconds']:.1f} | {t['status']} |" for t in timings]
    text = "\n".join(lines) + "\n"
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "bench-setup.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


def _head() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench-setup", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--ci", action="store_true", help="also run .ci/run in the clone and report its stages"
    )
    args = parser.parse_args(argv)
    try:
        return run(args.ci)
    except (RuntimeError, subprocess.CalledProcessError) as error:
        print(f"bench-setup: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
