"""rtclab.loopback: ICE gathers loopback candidates only, and the patch comes off cleanly."""

import asyncio
import re

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from rtclab.loopback import candidate_addresses, check_loopback_sdp, loopback_only, rtc_configuration

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
