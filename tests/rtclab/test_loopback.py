"""rtclab.loopback: ICE gathers loopback candidates only, and the patch comes off cleanly."""

import argparse
import asyncio
import http.client
import os
import re
import select
import signal
import subprocess
import sys
import time

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from rtclab.loopback import (
    candidate_addresses,
    check_loopback_sdp,
    loopback_address,
    loopback_only,
    rtc_configuration,
    serve_until_stopped,
)

SDP_WITH_ETH0 = """v=0
m=audio 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 192.0.2.2
a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host
a=candidate:2 1 udp 2130706431 192.0.2.2 50001 typ host
a=candidate:3 1 udp 2130706431 fd00::2 50002 typ host
a=end-of-candidates
"""


def test_configuration_has_no_ice_servers():
    assert rtc_configuration().iceServers == []


def test_patch_is_active_only_inside_the_block():
    original = aioice.ice.get_host_addresses
    with loopback_only():
        assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(use_ipv4=False, use_ipv6=True) == []
    assert aioice.ice.get_host_addresses is original


def test_patch_is_undone_on_error():
    original = aioice.ice.get_host_addresses
    with pytest.raises(RuntimeError), loopback_only():
        raise RuntimeError("boom")
    assert aioice.ice.get_host_addresses is original


def test_overlapping_blocks_keep_the_patch_until_the_last_one_closes():
    original = aioice.ice.get_host_addresses
    first = loopback_only()
    second = loopback_only(("127.0.0.2",))
    first.__enter__()
    second.__enter__()
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1", "127.0.0.2"]
    first.__exit__(None, None, None)  # closes before the block opened after it, as two calls may do
    assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.2"]
    second.__exit__(None, None, None)
    assert aioice.ice.get_host_addresses is original


def test_ipv6_loopback_only_when_asked_for():
    with loopback_only(("127.0.0.1", "::1")):
        assert aioice.ice.get_host_addresses(True, False) == ["127.0.0.1"]
        assert aioice.ice.get_host_addresses(True, True) == ["127.0.0.1", "::1"]


@pytest.mark.parametrize("addresses", [(), ("192.0.2.2",), ("127.0.0.1", "10.0.0.1"), ("not-an-ip",)])
def test_non_loopback_addresses_are_refused(addresses):
    original = aioice.ice.get_host_addresses
    with pytest.raises(ValueError), loopback_only(addresses):
        pass
    assert aioice.ice.get_host_addresses is original


def test_candidate_addresses_are_parsed_from_sdp():
    assert candidate_addresses(SDP_WITH_ETH0) == ["127.0.0.1", "192.0.2.2", "fd00::2"]


@pytest.mark.parametrize(
    "sdp",
    [
        SDP_WITH_ETH0,
        "v=0\nm=audio 9 UDP/TLS/RTP/SAVPF 96\n",
        "a=candidate:1 1 udp 2130706431 3f9a.local 50000 typ host\n",
    ],
    ids=["eth0", "no-candidate", "mdns"],
)
def test_check_refuses_anything_but_loopback(sdp):
    with pytest.raises(ValueError):
        check_loopback_sdp(sdp)


def test_offer_sdp_holds_only_loopback_candidates():
    async def offer_sdp() -> str:
        pc = RTCPeerConnection(configuration=rtc_configuration())
        pc.addTransceiver("audio")
        pc.addTransceiver("video")
        try:
            with loopback_only():
                await pc.setLocalDescription(await pc.createOffer())
            return pc.localDescription.sdp
        finally:
            await pc.close()

    sdp = asyncio.run(offer_sdp())
    addresses = candidate_addresses(sdp)
    assert addresses, "no candidate gathered"
    assert set(addresses) == {"127.0.0.1"}
    assert set(re.findall(r"^c=IN IP[46] (\S+)", sdp, re.MULTILINE)) == {"127.0.0.1"}
    assert "typ srflx" not in sdp and "typ relay" not in sdp
    check_loopback_sdp(sdp)


@pytest.mark.parametrize("text", ["127.0.0.1", "127.0.0.2", "::1"])
def test_loopback_address_accepts_loopback_ips(text):
    assert loopback_address(text) == text


@pytest.mark.parametrize("text", ["0.0.0.0", "192.168.1.10", "localhost", ""])
def test_loopback_address_refuses_the_rest_and_names_the_value(text):
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        loopback_address(text)
    assert repr(text) in str(refused.value)
    assert "not a loopback address" in str(refused.value)


def test_loopback_address_is_a_one_line_argparse_error(capsys):
    parser = argparse.ArgumentParser(prog="server")
    parser.add_argument("--host", type=loopback_address, default="127.0.0.1")
    assert parser.parse_args(["--host", "::1"]).host == "::1"
    with pytest.raises(SystemExit) as exited:
        parser.parse_args(["--host", "0.0.0.0"])
    assert exited.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert error_lines == [
        "server: error: argument --host: '0.0.0.0' is not a loopback address (this lab serves 127.0.0.1 only)"
    ]


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "localhost"])
def test_serve_until_stopped_refuses_a_host_off_loopback(host):
    from aiohttp import web

    with pytest.raises(ValueError, match="not a loopback address"):
        asyncio.run(serve_until_stopped(web.Application(), host=host))


TINY_SERVER = """
import asyncio
from aiohttp import web
from rtclab.loopback import serve_until_stopped

async def hello(request):
    return web.Response(text="hello")

app = web.Application()
app.router.add_get("/", hello)
asyncio.run(serve_until_stopped(app, port=0))
print("stopped", flush=True)
"""


def _read_line(stream, deadline: float) -> str:
    """One line from a subprocess pipe, or what came of it if the deadline passes first (the process may hang).

    Reads the file descriptor a byte at a time: a buffered read could take the whole line into Python's
    buffer, where select() cannot see it.
    """
    fd = stream.fileno()
    line = b""
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        byte = os.read(fd, 1)
        if not byte:
            break
        line += byte
    return line.decode()


def test_serve_until_stopped_serves_on_loopback_and_stops_on_sigint():
    process = subprocess.Popen(
        [sys.executable, "-c", TINY_SERVER], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        line = _read_line(process.stdout, time.monotonic() + 60)  # generous: the machine may be busy
        match = re.fullmatch(r"listening on http://127\.0\.0\.1:(\d+)\n", line)
        assert match, f"no listening line, got {line!r}"
        port = int(match[1])
        assert port > 0

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            assert response.status == 200
            assert response.read() == b"hello"
        finally:
            connection.close()

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err.decode()
    assert out.decode() == "stopped\n"  # returned normally after the signal, no traceback
    assert "Traceback" not in err.decode()
