"""rtclab.bench: the userspace impairment, measured on real loopback UDP, stays within its targets."""

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys

import pytest

from rtclab import bench

SETTINGS = [s.name for s in bench.settings(1000)]


def test_bench_json_has_every_setting_within_targets():
    result = subprocess.run(
        [sys.executable, "-m", "rtclab.bench", "--packets", "1000", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(result.stdout)
    rows = {row["setting"]: row for row in report["settings"]}
    assert list(rows) == SETTINGS
    failures = {
        name: [c for c in row["checks"] if not c["ok"]] or row for name, row in rows.items() if not row["ok"]
    }
    assert not failures, json.dumps(failures, indent=1)
    for name, row in rows.items():
        assert row["checks"], name
        assert all(c["measured"] is not None for c in row["checks"]), name
        assert row["received"] == row["model_delivered"], name
        assert row["sent"] >= 100, name
    assert rows["delay 100 ms"]["sent"] == 1000
    names = {c["name"] for row in rows.values() for c in row["checks"]}
    assert {"median delay ms", "delay std-dev ms", "loss %", "throughput kbit/s"} <= names
    assert report["ok"] is True and result.returncode == 0
    assert report["kernel"] is None


def test_bench_help():
    result = subprocess.run(
        [sys.executable, "-m", "rtclab.bench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    assert "--packets" in result.stdout and "--json" in result.stdout and "--kernel" in result.stdout


def test_measure_refuses_a_destination_off_loopback():
    sender, receiver = (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM),
    )
    sender.bind(("127.0.0.1", 0))
    receiver.bind(("0.0.0.0", 0))  # bound, but "anywhere" is not a destination the traffic rule allows
    try:
        with pytest.raises(ValueError, match="refusing"):
            asyncio.run(bench.measure(bench.settings(100)[0], sockets=(sender, receiver)))
    finally:
        sender.close()
        receiver.close()


def _netns() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None, reason="needs root and ip")
def test_namespaces_are_deleted_even_on_error():
    with pytest.raises(RuntimeError, match="boom"), bench._namespaces() as (a, b):
        assert a in _netns() and b in _netns()
        raise RuntimeError("boom")
    assert a not in _netns() and b not in _netns()


@pytest.mark.skipif(bench.kernel_available() is not None, reason=str(bench.kernel_available()))
def test_kernel_mode_compares_tbf_and_nft_with_the_userspace_link():
    result = asyncio.run(bench.run_kernel(packets=500, seed=0))
    assert result["netem"] == "available" or result["netem"].startswith("unavailable")
    loss, rate = result["rows"]
    assert loss["setting"] == "kernel: loss 5 % random" and loss["model_delivered"] is None
    assert 0 < loss["sent"] - loss["received"] < 0.15 * loss["sent"]
    throughput = next(c for c in rate["checks"] if c["name"] == "throughput kbit/s")["measured"]
    assert throughput == pytest.approx(300 * 1200 / 1242, rel=0.05)  # tbf counts 42 bytes of headers
    assert f"lma{os.getpid()}" not in _netns()
