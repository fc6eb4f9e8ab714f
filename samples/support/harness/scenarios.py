"""The calls capture_dumps.py records for the support desk's fixtures: a name, what goes wrong, and in words
how, for the fixtures' README. Directions are the browser user's: downlink is what the browser receives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from call_peer import Fault

from rtclab.impair import GilbertElliott, Impairment
from rtclab.profiles import get_profile


@dataclass(frozen=True)
class Scenario:
    name: str
    fault: Fault
    how: str  # one README cell: profile or fault, numbers, direction


def _scenarios() -> dict[str, Scenario]:
    three_g = get_profile("loadero-3g")
    burst = GilbertElliott(p=0.016, r=0.25)  # mean loss p/(p+r) = 6.0 %, mean burst 1/r = 4 packets
    # Our assumption for "the same last mile, a nearer server": 60 ms one way instead of 250, jitter 15 ms,
    # the same 0.5 % loss; no rate cap (with 3G's 1200 kbps and a 200 ms queue aiortc's video bursts lost
    # ~18 % to queue drops, which would hide what the shorter path fixes).
    near = Impairment(delay_ms=60, jitter_ms=15, loss=0.005)
    cap = Impairment(rate_kbps=300, queue_ms=200)
    down, up = three_g.downlink, three_g.uplink
    table = [
        Scenario("clean", Fault(), "no impairment (loopback, RTT < 1 ms)"),
        Scenario(
            "3g",
            Fault(
                to_browser=three_g.downlink_impairment(seed=1), from_browser=three_g.uplink_impairment(seed=2)
            ),
            f"profile `{three_g.name}` both ways: down {down.rate_kbps:g} kbps, {down.delay_ms:g} ms "
            f"± {down.jitter_ms:g} ms, {down.loss:.1%} loss; up {up.rate_kbps:g} kbps, {up.delay_ms:g} ms "
            f"± {up.jitter_ms:g} ms, {up.loss:.1%} loss (RTT ≈ {three_g.rtt_ms:g} ms)",
        ),
        Scenario(
            "3g-near-server",
            Fault(
                to_browser=dataclasses.replace(near, seed=5), from_browser=dataclasses.replace(near, seed=6)
            ),
            f"the same 3G last mile with a nearer server (**our assumption**, not a published profile): both "
            f"ways {near.delay_ms:g} ms ± {near.jitter_ms:g} ms, {near.loss:.1%} loss, no rate cap "
            f"(RTT ≈ {2 * near.delay_ms:g} ms)",
        ),
        Scenario(
            "bursty-loss",
            Fault(to_browser=Impairment(burst=burst, seed=3), from_browser=Impairment(burst=burst, seed=4)),
            f"Gilbert-Elliott loss both ways: p={burst.p:g}, r={burst.r:g} (mean {burst.mean_loss:.1%}, "
            f"bursts of {burst.mean_burst_packets:g} packets on average), no delay",
        ),
        Scenario(
            "bandwidth-cap",
            Fault(to_browser=cap, from_browser=cap, camera=(1280, 720)),
            f"rate cap {cap.rate_kbps:g} kbps both ways, drop-tail queue {cap.queue_ms:g} ms, no delay or loss; "
            "the browser's camera at 1280x720 (the others 640x480)",
        ),
        Scenario(
            "ice-failed",
            Fault(unreachable=True),
            "never connects: the answer's candidates point at an unused 127.0.0.1 port and every datagram the "
            "aiortc peer sends is dropped, so Chromium's checks go unanswered (connectionState checking → failed "
            "after about 20 s; iceConnectionState ends at disconnected)",
        ),
        Scenario(
            "one-way-audio",
            Fault(send_audio=False),
            "the aiortc peer negotiates audio sendrecv but its audio track never yields a frame: no audio RTP "
            "reaches the browser, while the browser's audio and both videos flow; no impairment",
        ),
    ]
    return {scenario.name: scenario for scenario in table}


SCENARIOS = _scenarios()
