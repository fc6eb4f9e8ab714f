"""Serve the built site on 127.0.0.1 with gzip, as real hosts do, and audit its pages with Lighthouse.

Shared by `make bench-site` (timings, median of runs) and the budget test in `make test` (bytes and
accessibility, which do not vary from run to run).
"""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from portal.paths import ROOT, SITE
from rtclab.chromium import chromium_path, lighthouse_flags

LIGHTHOUSE = ROOT / "node_modules" / ".bin" / "lighthouse"
COMPRESSIBLE = (".html", ".css", ".js", ".json", ".xml", ".svg", ".txt", ".map", ".ipynb")

# Chrome DevTools' "Slow 3G" numbers, as the budgets in the issue use them. By default Lighthouse
# *simulates* them from an unthrottled load (its "Lantern" model), which counts every request that
# started before the paint as holding it up, non-blocking stylesheets included.
SLOW_3G = [
    "--throttling.rttMs=400",
    "--throttling.throughputKbps=400",
    "--throttling.cpuSlowdownMultiplier=4",
]
# The same numbers applied to the browser while it loads (DevTools throttling): what a reader gets.
# Request latency is the RTT times 4, as Lighthouse's own applied presets do.
SLOW_3G_APPLIED = [
    *SLOW_3G,
    "--throttling-method=devtools",
    "--throttling.requestLatencyMs=1600",
    "--throttling.downloadThroughputKbps=400",
    "--throttling.uploadThroughputKbps=400",
]


class GzipHandler(SimpleHTTPRequestHandler):
    """Static files, gzip-compressed for clients that accept it (text types only)."""

    def log_message(self, format: str, *args: object) -> None:  # keep the bench output readable
        pass

    def send_head(self):  # type: ignore[no-untyped-def]
        path = Path(self.translate_path(self.path))
        if path.is_dir():
            if not self.path.split("?", 1)[0].endswith("/"):
                return super().send_head()  # the standard handler redirects to the "/" URL
            path = path / "index.html"
        accepts_gzip = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (accepts_gzip and path.is_file() and path.suffix in COMPRESSIBLE):
            return super().send_head()
        body = _gzipped(str(path), path.stat().st_mtime)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)


@functools.lru_cache(maxsize=512)
def _gzipped(path: str, mtime: float) -> bytes:
    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


@contextmanager
def serve(site: Path = SITE) -> Iterator[str]:
    """Serve `site` on a free 127.0.0.1 port for the duration of the block; yields the base URL."""
    handler = functools.partial(GzipHandler, directory=str(site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Audit:
    url: str
    performance: float | None  # 0–100, None when only accessibility was audited
    accessibility: float
    lcp_ms: float | None
    transferred_bytes: int
    failed_accessibility: list[str]


def audit(url: str, *, throttling: list[str] | None = None, performance: bool = True) -> Audit:
    """Run Lighthouse (mobile) once on `url`; `throttling` adds flags such as SLOW_3G."""
    if not LIGHTHOUSE.exists():
        raise FileNotFoundError(f"{LIGHTHOUSE} is missing: run make env (npm ci installs Lighthouse)")
    categories = "performance,accessibility" if performance else "accessibility"
    with tempfile.TemporaryDirectory(prefix="lma-lighthouse-") as tmp:
        report = Path(tmp) / "report.json"
        command = [
            str(LIGHTHOUSE),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={report}",
            f"--only-categories={categories}",
            f"--chrome-flags={lighthouse_flags(f'--user-data-dir={tmp}/profile')}",
            *(throttling or []),
        ]
        if not performance:
            # Bytes need no throttling; skipping it makes the run quick.
            command += ["--throttling-method=provided", "--only-audits=total-byte-weight,accessibility"]
        env = {**os.environ, "CHROME_PATH": chromium_path()}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
        if done.returncode != 0 or not report.exists():
            raise RuntimeError(f"lighthouse failed on {url}: {done.stderr.strip()[-500:]}")
        result = json.loads(report.read_text(encoding="utf-8"))
    audits = result["audits"]
    a11y = result["categories"]["accessibility"]
    failed = [
        ref["id"]
        for ref in a11y["auditRefs"]
        if ref["weight"] > 0 and audits[ref["id"]]["score"] is not None and audits[ref["id"]]["score"] < 1
    ]
    perf = result["categories"].get("performance", {}).get("score")
    lcp = audits.get("largest-contentful-paint", {}).get("numericValue")
    return Audit(
        url=url,
        performance=None if perf is None else round(perf * 100),
        accessibility=round(a11y["score"] * 100),
        lcp_ms=lcp,
        transferred_bytes=int(audits["total-byte-weight"]["numericValue"]),
        failed_accessibility=failed,
    )
