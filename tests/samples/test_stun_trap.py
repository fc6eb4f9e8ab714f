"""samples/sdk/stun_trap.py: shows aiortc's default STUN server without contacting it, and shows that a STUN
server that never answers (a silent socket on 127.0.0.1) makes gathering slower than iceServers=[]."""

import re
from functools import partial
from pathlib import Path

import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "stun_trap.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=60)


def test_default_server_is_shown_and_a_silent_server_slows_gathering():
    result = run_sample()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout

    assert "iceServers is None" in out
    assert "['stun:stun.l.google.com:19302']" in out
    assert re.search(r"would resolve stun\.l\.google\.com .* port 19302$", out, re.MULTILINE)

    gathering = {
        label: (float(ms), candidates)
        for label, ms, candidates in re.findall(
            r"^gathering with (.+?):\s+(\d+\.\d) ms\s+candidates: (.*)$", out, re.MULTILINE
        )
    }
    assert set(gathering) == {"iceServers=[]", "a STUN server that never answers"}
    no_stun_ms, no_stun = gathering["iceServers=[]"]
    silent_ms, with_silent = gathering["a STUN server that never answers"]
    assert no_stun == with_silent == "127.0.0.1"  # host candidates on loopback only, and no srflx
    assert silent_ms > no_stun_ms + 1000  # aioice waits for the STUN answer before gathering completes

    requests = re.search(
        r"^the silent server on 127\.0\.0\.1:\d+ received (\d+) binding request\(s\)$", out, re.M
    )
    assert requests and int(requests.group(1)) >= 1


def test_help_describes_the_sample():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    assert "STUN" in result.stdout


def test_unknown_argument_is_a_one_line_usage_error():
    result = run_sample("--stun", "stun.example.org")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert "unrecognized arguments" in errors[0]
    assert result.stdout == ""
