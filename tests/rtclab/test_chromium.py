"""rtclab.chromium: the one place Chromium starts. Its flags resolve nothing but loopback, a missing browser is one
line saying how to install it, and any other file that starts Chromium its own way fails this test."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rtclab import chromium

ROOT = Path(__file__).resolve().parents[2]
# Ways of starting Chromium that bypass rtclab.chromium: Playwright given an executable, the binary by path.
OTHER_LAUNCHES = re.compile(r"executable_path\s*=|[\"']/usr/bin/chromium[\"']|chromium\.launch\(|--headless")
ALLOWED = {
    "src/rtclab/chromium.py",  # the helper itself
    "tests/rtclab/test_chromium.py",  # this test's pattern
}


def test_flags_resolve_nothing_but_loopback_and_keep_background_networking_off():
    flags = chromium.flags("--use-fake-ui-for-media-stream")
    assert "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost" in flags
    for flag in ("--disable-background-networking", "--disable-component-update", "--disable-sync"):
        assert flag in flags
    assert flags[-1] == "--use-fake-ui-for-media-stream"  # a sample's own flags come after


def test_lighthouse_gets_the_same_flags_with_the_rule_quoted():
    value = chromium.lighthouse_flags("--user-data-dir=/tmp/x")
    assert value.startswith("--headless ")
    assert '--host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"' in value
    assert value.endswith("--user-data-dir=/tmp/x")


def test_a_missing_chromium_is_one_line_with_the_install_command(monkeypatch):
    monkeypatch.delenv("CHROME_PATH", raising=False)
    with pytest.raises(
        chromium.ChromiumMissingError, match=r"apt-get install chromium.*/nonexistent/chromium"
    ):
        chromium.chromium_path("/nonexistent/chromium")


def test_launch_passes_the_flags_and_the_executable(monkeypatch, tmp_path):
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    seen = {}

    class BrowserType:
        def launch(self, **options):
            seen.update(options)
            return "browser"

    assert chromium.launch(BrowserType(), "--x", path=str(fake), timeout=5) == "browser"
    assert seen["executable_path"] == str(fake) and seen["headless"] is True and seen["timeout"] == 5
    assert seen["args"] == chromium.flags("--x")


def test_nothing_else_starts_chromium_its_own_way():
    offenders = []
    for folder in ("src", "samples", "tests", "notebooks"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix not in {".py", ".ipynb", ".sh", ".js"} or "__pycache__" in path.parts:
                continue
            rel = str(path.relative_to(ROOT))
            if rel in ALLOWED:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                if OTHER_LAUNCHES.search(line):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, (
        "start Chromium with rtclab.chromium.launch (Playwright) or lighthouse_flags (Lighthouse), which keep it on "
        "loopback; the contributor guide says how:\n  " + "\n  ".join(offenders)
    )


def test_a_chrome_path_that_does_not_exist_is_an_error_not_a_fallback(monkeypatch):
    monkeypatch.setenv("CHROME_PATH", "/nonexistent/chrome")
    with pytest.raises(chromium.ChromiumMissingError, match="/nonexistent/chrome"):
        chromium.chromium_path()
