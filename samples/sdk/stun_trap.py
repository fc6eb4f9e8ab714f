"""The default-STUN trap: what aiortc asks when you give it no configuration, and what a silent STUN server costs.

First the script creates a peer the way most examples do, RTCPeerConnection() with no configuration, and
shows the public STUN server aiortc fills in. It never lets that peer gather, so nothing is sent.

Then it times candidate gathering (setLocalDescription) twice: with iceServers=[], and with a STUN server
that never answers. That server is a UDP socket this script binds on 127.0.0.1 and reads without replying,
which is what an unreachable or blocked STUN server looks like to the ICE agent. It prints both gathering
times and how many binding requests the silent server received.

Nothing leaves the machine: every socket is on 127.0.0.1.

Run it (it takes about 6 s):

    python samples/sdk/stun_trap.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.rtcicetransport import RTCIceGatherer

from rtclab.loopback import candidate_addresses, loopback_only, rtc_configuration


async def show_default() -> None:
    """Print the STUN server a default peer would ask, without letting it gather."""
    # --8<-- [start:default]
    pc = RTCPeerConnection()  # no configuration=: what most snippets on the web do
    default = RTCConfiguration().iceServers
    print(f"RTCPeerConnection() uses RTCConfiguration(), whose iceServers is {default}")
    print(f"None means aiortc's default list: {[s.urls for s in RTCIceGatherer.getDefaultIceServers()]}")
    # Adding a transceiver creates the ICE gatherer; it gathers only in setLocalDescription(), never here.
    pc.addTransceiver("audio")
    gatherer = pc.getTransceivers()[0].receiver.transport.transport.iceGatherer
    # `_connection` (aiortc) is private: the aioice agent that would send the binding request.
    host, port = gatherer._connection.stun_server
    print(f"its ICE agent would resolve {host} and send a STUN binding request to port {port}")
    await pc.close()  # closed before setLocalDescription: nothing was resolved or sent
    # --8<-- [end:default]


# --8<-- [start:silent]
class SilentStunServer(asyncio.DatagramProtocol):
    """A UDP socket on 127.0.0.1 that reads every datagram and never answers: a dead or blocked STUN server."""

    def __init__(self) -> None:
        self.requests = 0

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.requests += 1


# --8<-- [end:silent]


# --8<-- [start:gather]
async def gathering_ms(configuration: RTCConfiguration) -> tuple[float, list[str]]:
    """Time setLocalDescription(offer) for one audio-only peer: that is where aiortc gathers candidates."""
    loop = asyncio.get_running_loop()
    pc = RTCPeerConnection(configuration=configuration)
    try:
        pc.addTransceiver("audio")
        with loopback_only():  # host candidates on 127.0.0.1 only
            start = loop.time()
            await pc.setLocalDescription(await pc.createOffer())
            elapsed_ms = (loop.time() - start) * 1000
        return elapsed_ms, candidate_addresses(pc.localDescription.sdp)
    finally:
        await pc.close()


# --8<-- [end:gather]


async def stun_trap() -> int:
    """Show the default, then time gathering with no STUN server and with a silent one."""
    await show_default()
    print()
    loop = asyncio.get_running_loop()
    # --8<-- [start:compare]
    transport, server = await loop.create_datagram_endpoint(SilentStunServer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        no_stun_ms, no_stun = await gathering_ms(rtc_configuration())  # iceServers=[]
        silent = RTCConfiguration(iceServers=[RTCIceServer(f"stun:127.0.0.1:{port}")])
        silent_ms, with_silent = await gathering_ms(silent)
    finally:
        transport.close()
    for label, ms, candidates in (
        ("iceServers=[]", no_stun_ms, no_stun),
        ("a STUN server that never answers", silent_ms, with_silent),
    ):
        print(f"gathering with {label + ':':<34}{ms:8.1f} ms   candidates: {', '.join(candidates)}")
    print(f"the silent server on 127.0.0.1:{port} received {server.requests} binding request(s)")
    # --8<-- [end:compare]
    if silent_ms <= no_stun_ms:
        print("error: the silent STUN server did not slow gathering down", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line (only --help) and run the demonstration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args(argv)
    return asyncio.run(stun_trap())


if __name__ == "__main__":
    sys.exit(main())
