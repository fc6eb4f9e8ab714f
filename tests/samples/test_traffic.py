"""Under strace, the samples that start a server, Redis, gateways, aiortc peers or Chromium send nothing past
127.0.0.1 (portal.traffic counts TCP connects, datagrams and writes to connected sockets, process by process).

`make samples` already runs every other sample test traced. The scenario runs are timed against their own
limits (a viewer must say hello within 2 s, a call must keep its consent), which strace's stop on every send
breaks at full size, so this file traces each of them once at a small size instead.
"""

from __future__ import annotations

import shutil
import sys

import pytest

from portal import traffic
from portal.paths import ROOT

pytestmark = [
    pytest.mark.skipif(shutil.which("strace") is None, reason="strace missing: make doctor installs it"),
    pytest.mark.timeout(300),
]

SMALL_RUNS = {
    "browser_call": ["samples/sdk/browser_call/browser_call.py", "--seconds", "3"],
    "bullet_comments": [
        "samples/scenarios/bullet_comments/bullet_comments.py",
        "--viewers",
        "40",
        "--posters",
        "4",
        "--seconds",
        "3",
        "--weak-viewers",
        "4",
    ],
    "voice_room": [
        "samples/scenarios/voice_room/voice_room.py",
        "--speakers",
        "1",
        "--audience",
        "2",
        "--seconds",
        "3",
    ],
    "team_voice": [
        "samples/scenarios/team_voice/team_voice.py",
        "--sizes",
        "2",
        "--seconds",
        "2",
    ],
    # One co-host and one network each: every process and socket of the full run, not every measurement.
    "live_cohost": [
        "samples/scenarios/live_cohost/live_cohost.py",
        "--viewers",
        "1",
        "--seconds",
        "3",
        "--cohosts",
        "loopback",
    ],
    "video_1v1": [
        "samples/scenarios/video_1v1/video_1v1.py",
        "--runs",
        "1",
        "--profiles",
        "chrome-fast-4g",
        "--caps",
        "600",
    ],
    "voice_agent_browser": [
        "samples/scenarios/voice_agent/voice_agent.py",
        "--browser",
        "--browser-seconds",
        "4",
    ],
}


@pytest.mark.parametrize("name", sorted(SMALL_RUNS))
def test_scenario_sends_nothing_past_loopback(name, tmp_path, monkeypatch):
    monkeypatch.setattr(traffic, "TRAFFIC", tmp_path)
    monkeypatch.chdir(ROOT)
    code = traffic.run(name, [sys.executable, *SMALL_RUNS[name]])
    report = (tmp_path / f"{name}.txt").read_text(encoding="utf-8")
    assert "destinations outside loopback: 0" in report, report
    assert code == 0, f"{name} exited {code} under strace"
