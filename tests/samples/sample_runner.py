"""Run a sample the way a reader does (a subprocess from the repository root), or import it to test a part."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_sample(sample: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """`python samples/<track>/<name>.py ARGS` from the repository root, output captured as text."""
    return subprocess.run(
        [sys.executable, str(sample.relative_to(ROOT)), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def page_run(sample: Path) -> subprocess.CompletedProcess[str]:
    """The run of `sample` (no arguments) that its page shows: `make execute`'s when it is up to date with the
    code, else a new one, recorded for the page. A scenario takes the machine alone for 15-45 s; this way CI
    runs it once, for the page and the tests."""
    from portal.sample_outputs import page_run as recorded_page_run

    name = str(sample.relative_to(ROOT / "samples").with_suffix(""))
    code, stdout, stderr = recorded_page_run(name, os.environ.get("LMA_MODE", "quick"))
    return subprocess.CompletedProcess([sys.executable, str(sample.relative_to(ROOT))], code, stdout, stderr)


def page_headlines(sample: Path) -> Path:
    """The headline-figure file the page's run of a scenario runner wrote (see `page_run`)."""
    from portal.sample_outputs import SampleOutput

    path = SampleOutput(str(sample.relative_to(ROOT / "samples").with_suffix(""))).headlines
    assert path is not None, f"{sample} writes no headline figures"
    return path.relative_to(ROOT)  # as the run printed it


def load_sample(sample: Path) -> ModuleType:
    """Import a sample file as a module (its `main()` does not run)."""
    spec = importlib.util.spec_from_file_location(sample.stem, sample)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # @dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


class ScenarioServer:
    """A scenario's server.py in its own process on 127.0.0.1, driven with blocking HTTP calls.

    Every scenario server reads its token secret and backend key from ``<PREFIX>_SECRET`` and
    ``<PREFIX>_BACKEND_KEY``; this starts one with fresh ones, waits for its ``listening on`` line and
    talks JSON to it. Every refusal must come back as a JSON body (checked on each 4xx).
    """

    def __init__(self, server: Path, env_prefix: str, *args: str) -> None:
        self.secret, self.key = secrets.token_bytes(32), secrets.token_urlsafe(24)
        env = {**os.environ, f"{env_prefix}_SECRET": self.secret.hex(), f"{env_prefix}_BACKEND_KEY": self.key}
        self.proc = subprocess.Popen(
            [sys.executable, str(server), "--port", "0", *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = ""
        for _ in range(5):  # a server may print a line or two (its stand-ins) before it listens
            line = self.proc.stdout.readline().strip()
            if line.startswith("listening on "):
                break
        assert line.startswith("listening on http://127.0.0.1:"), line
        self.url = line.removeprefix("listening on ")

    def call(
        self, method: str, path: str, token: str | None = None, body: object = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        """(status, decoded JSON body) of one request; `raw` sends bytes as they are."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            text = error.read()
            assert error.headers.get("Content-Type", "").startswith("application/json"), text[:200]
            return error.code, json.loads(text)

    def issue(self, claims: dict[str, Any]) -> str:
        """A token from the server's backend endpoint (what the app's backend would ask for)."""
        status, data = self.call("POST", "/v1/tokens", self.key, claims)
        assert status == 200, data
        return data["token"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
