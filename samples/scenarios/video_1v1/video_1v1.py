"""1v1 video social (1v1 社交), measured: a matchmaker that pairs two users with signed, expiring tokens; the call
connected three ways (connect on accept, pre-connected while it rings, pre-connected with early media); a
beauty filter in the send path; and a resolution ladder that follows the bandwidth.

It starts the matchmaker (server.py in this folder) as its own process on 127.0.0.1 with a fresh signing
secret and backend key, then measures:

1. the beauty filter's CPU time per frame at 360p and 720p (and what it does: skin noise before/after);
2. time to first frame after the callee taps accept, both directions, for each way of connecting, under
   rtclab network profiles (media and signaling both see the profile's delay and rate);
3. the resolution the receiver gets when the sender's uplink is capped (2000 / 600 / 250 kbit/s), with the
   sender stepping down 720p -> 360p -> 180p as the receiver's REMB estimate falls;
4. hostile requests against the matchmaker during a call.

    .venv/bin/python samples/scenarios/video_1v1/video_1v1.py            # quick (CI)
    .venv/bin/python samples/scenarios/video_1v1/video_1v1.py --full     # or LMA_MODE=full: more runs, longer
    .venv/bin/python samples/scenarios/video_1v1/video_1v1.py --profiles loadero-3g --caps 800
    .venv/bin/python samples/scenarios/video_1v1/video_1v1.py --json video.json   # + headline figures as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import ClientSession, ClientTimeout
from beauty import BeautyTrack, beautify, skin_mask
from client import Api, User
from media import LADDER, CameraTrack, HeldTrack, LadderTrack
from tokens import issue_token

from rtclab.arguments import whole_number
from rtclab.encoders import TunedVp8Encoder, VideoEncoderSettings, install_encoder
from rtclab.headlines import Headline, new_json_path, write_headlines
from rtclab.impair import Impairment
from rtclab.profiles import get_profile, load_profiles

HERE = Path(__file__).resolve().parent
WAYS = ("on-accept", "pre-connect", "early-media")
FRAME_BUDGET_MS = 1000 / 15  # the camera's 15 fps: the whole send path must fit in one frame interval


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    profiles: tuple[str, ...]
    runs: int  # calls per way and profile (the median is reported)
    ring_s: float  # how long the phone rings before the callee taps accept
    caps: tuple[int, ...]
    cap_seconds: float  # call length per cap
    filter_frames: int


QUICK = Size(("chrome-fast-4g", "chrome-3g"), 1, 1.5, (2000, 600, 250), 8.0, 15)
FULL = Size(("chrome-fast-4g", "chrome-slow-4g", "chrome-3g"), 5, 3.0, (2000, 1200, 600, 400, 250), 20.0, 60)


# --- the server process --------------------------------------------------------------------------------------


async def start_server(secret: bytes, backend_key: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start server.py on a free loopback port; the secrets go through its environment, never its arguments."""
    env = {**os.environ, "VIDEO_1V1_SECRET": secret.hex(), "VIDEO_1V1_BACKEND_KEY": backend_key}
    command = [sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", "0"]
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


# --- 1. the beauty filter ------------------------------------------------------------------------------------


# --8<-- [start:filter_cost]
async def filter_cost(frames: int) -> dict[str, tuple[float, float, float]]:
    """Per resolution: CPU ms per frame (process time), skin noise before and after (luma std)."""
    results = {}
    for name, width, height in (("360p", 640, 360), ("720p", 1280, 720)):
        camera = CameraTrack(width, height, fps=1000)
        source = [await camera.recv() for _ in range(frames)]
        beautify(source[0])  # warm up: first-call allocations are not the steady cost
        started = time.process_time()
        out = [beautify(frame) for frame in source]
        cpu_ms = (time.process_time() - started) * 1000 / frames
        before, after = source[-1].to_ndarray(format="yuv420p"), out[-1].to_ndarray(format="yuv420p")
        q = height // 4
        mask = skin_mask(
            before[height : height + q].reshape(height // 2, width // 2),
            before[height + q :].reshape(height // 2, width // 2),
        )
        skin = np.repeat(np.repeat(mask > 0.99, 2, axis=0), 2, axis=1)
        results[name] = (cpu_ms, float(before[:height][skin].std()), float(after[:height][skin].std()))
    return results


# --8<-- [end:filter_cost]


# --- 2. instant connect --------------------------------------------------------------------------------------


@dataclass
class Connect:
    """One call: ms from the tap on accept to each side's first decoded frame."""

    way: str
    callee_sees_ms: float | None = None  # the caller's video on the callee's screen
    caller_sees_ms: float | None = None
    connected_before_accept: bool = False


_PAIRING = asyncio.Lock()


async def _is_waiting(api: Api) -> bool:
    metrics = await api.call("GET", "/v1/metrics", token=api.backend_key, delayed=False)
    return metrics[1].get("waiting", 0) > 0


async def pair(api: Api, names: tuple[str, str], uplinks: tuple) -> tuple[User, User]:
    """Two users sign in and ask to be matched: the first waits, the second finds them."""
    caller, callee = User(api, names[0], uplinks[0]), User(api, names[1], uplinks[1])
    await asyncio.gather(caller.sign_in(), callee.sign_in())
    async with _PAIRING:  # the matchmaker pairs whoever waits: pair our test users one couple at a time
        waiting = asyncio.ensure_future(caller.match())
        while not waiting.done() and not await _is_waiting(api):
            await asyncio.sleep(0.01)
        await callee.match()
        await waiting
    assert (caller.role, callee.role) == ("caller", "callee"), (caller.role, callee.role)
    return caller, callee


# --8<-- [start:connect]
async def connect(api: Api, way: str, ring_s: float, uplinks: tuple, run: int) -> Connect:
    """A call set up one of three ways; the callee taps accept ``ring_s`` after the ring starts."""
    caller, callee = await pair(api, (f"a{run}-{way}", f"b{run}-{way}"), uplinks)
    caller_go, callee_go = asyncio.Event(), asyncio.Event()
    caller_cam = HeldTrack(BeautyTrack(CameraTrack(640, 360)), caller_go)
    callee_cam = HeldTrack(BeautyTrack(CameraTrack(640, 360)), callee_go)
    if way == "on-accept":  # nothing is held back: media starts as soon as the call connects
        caller_go.set()
        callee_go.set()
    elif way == "early-media":  # the callee's ring screen already shows the caller's live video
        caller_go.set()
    result = Connect(way)
    try:
        await caller.send("offer", await caller.offer(caller_cam))  # the offer is the ring
        offer = await callee.expect("offer")
        ring_started = time.monotonic()

        async def caller_side() -> None:
            await caller.complete((await caller.expect("answer"))["sdp"])
            await caller.expect("accept", timeout=ring_s + 15)
            caller_go.set()  # the callee said yes: our camera starts now

        waiting = asyncio.ensure_future(caller_side())
        if way != "on-accept":  # pre-connect: answer while it rings, media held back
            await callee.send("answer", await callee.answer(offer["sdp"], callee_cam))
        await asyncio.sleep(max(0.0, ring_s - (time.monotonic() - ring_started)))
        accepted = time.monotonic()  # the tap
        result.connected_before_accept = callee.pc is not None and callee.pc.connectionState == "connected"
        callee_go.set()
        if way == "on-accept":  # connect only now
            await callee.send("answer", await callee.answer(offer["sdp"], callee_cam))
        await callee.send("accept")
        await waiting
        await asyncio.gather(caller.wait_for_frame(20), callee.wait_for_frame(20))
        if callee.first_frame_at is not None:  # with early media this frame came during the ring: 0
            result.callee_sees_ms = max(0.0, callee.first_frame_at - accepted) * 1000
        if caller.first_frame_at is not None:
            result.caller_sees_ms = (caller.first_frame_at - accepted) * 1000
        await caller.send("hangup")
    finally:
        await asyncio.gather(caller.close(), callee.close())
    return result


# --8<-- [end:connect]


# --- 3. resolution under a bandwidth cap ----------------------------------------------------------------------


@dataclass
class Held:
    """What the receiver got under one cap."""

    cap_kbps: int
    heights: list[int] = field(default_factory=list)  # decoded frame heights in the second half
    fps: float = 0.0
    final_rung: str = ""
    changes: list[str] = field(default_factory=list)
    estimate_kbps: float = 0.0


# --8<-- [start:adapt]
async def hold_resolution(api: Api, cap_kbps: int, seconds: float, run: int) -> Held:
    """The caller sends a 720p camera through the ladder over an uplink capped at ``cap_kbps``."""
    uplink = Impairment(rate_kbps=cap_kbps, delay_ms=20, queue_ms=600, seed=run)
    caller, callee = await pair(api, (f"up{run}-{cap_kbps}", f"down{run}-{cap_kbps}"), (uplink, None))
    ladder = LadderTrack(CameraTrack(1280, 720, fps=15), start_rung=1)  # 360p until REMB allows more
    encoder = TunedVp8Encoder(
        VideoEncoderSettings(target_kbps=300, min_kbps=80, max_kbps=2500, vp8_cpu_used=-8)
    )
    held = Held(cap_kbps)
    try:
        await caller.send("offer", await caller.offer(ladder))
        offer = await callee.expect("offer")
        await callee.send("answer", await callee.answer(offer["sdp"], CameraTrack(320, 180, fps=5)))
        await callee.send("accept")
        await caller.complete((await caller.expect("answer"))["sdp"])
        install_encoder(caller.pc.getTransceivers()[0].sender, encoder)  # before its first frame
        started = time.monotonic()
        while (now := time.monotonic()) - started < seconds:  # the controller: twice a second
            await asyncio.sleep(0.5)
            if now - started >= 1.0:  # the first REMB comes about a second in; before it, the start value
                ladder.adapt(encoder.target_bitrate / 1000, now - started)
        half = started + seconds / 2
        late = [(t, h) for t, _, h in callee.frames if t >= half]
        held.heights = [h for _, h in late]
        held.fps = len(late) / (seconds / 2)
        held.final_rung = LADDER[ladder.rung].name
        held.changes = [f"{name}@{t:.1f}s" for t, name in ladder.changes]
        held.estimate_kbps = encoder.target_bitrate / 1000
        await caller.send("hangup")
    finally:
        await asyncio.gather(caller.close(), callee.close())
    return held


# --8<-- [end:adapt]


# --- 4. hostile input ----------------------------------------------------------------------------------------


# --8<-- [start:hostile]
async def hostile(api: Api, secret: bytes) -> tuple[list[tuple[str, int, str]], bool]:
    """Bad requests a real matchmaker meets, sent while a call is ringing: (what, status, expected)."""
    caller, callee = await pair(api, ("h-caller", "h-callee"), (None, None))
    stranger = User(api, "h-stranger")
    await stranger.sign_in()
    send = f"/v1/calls/{caller.call_id}/send"
    forged = caller.token[:-4] + ("AAAA" if not caller.token.endswith("AAAA") else "BBBB")
    expired = issue_token(secret, "late", 60, now=time.time() - 3600)
    fake_sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    loopback = fake_sdp + "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
    public = fake_sdp + "a=candidate:1 1 udp 1 203.0.113.9 9 typ host\r\n"
    stranger_hangup = await api.call("POST", send, token=stranger.token, body={"type": "hangup"})
    checks = [
        ("no token", await api.call("POST", "/v1/match", body={}), "401"),
        (
            "forged token (signature changed)",
            await api.call("POST", "/v1/match", token=forged, body={}),
            "401",
        ),
        ("expired token", await api.call("POST", "/v1/match", token=expired, body={}), "401"),
        ("malformed JSON", await api.call("POST", send, token=caller.token, raw=b'{"type": "offer",'), "400"),
        ("oversized body (64 KB)", await api.call("POST", send, token=caller.token, raw=b" " * 65536), "413"),
        ("callee sends the offer", await callee.send("offer", loopback), "403"),
        ("caller accepts its own call", await caller.send("accept"), "403"),
        ("stranger hangs up someone's call", stranger_hangup, "403"),
        ("answer before offer", await callee.send("answer", loopback), "409"),
        ("offer with a public IP candidate", await caller.send("offer", public), "422"),
    ]
    storm = await asyncio.gather(
        *(api.call("POST", "/v1/match", token=stranger.token, body={"wait_s": 0}) for _ in range(60))
    )
    throttled = next((r for r in storm if r[0] == 429), storm[-1])
    checks.append(("flood: 60 match requests at once", throttled, "429"))
    # the ringing call was not disturbed: the real offer and the hangup are accepted and arrive in order
    accepted = [(await caller.send("offer", loopback))[0], (await caller.send("hangup"))[0]]
    arrived = [(await callee.next_message())["type"], (await callee.next_message())["type"]]
    intact = accepted == [202, 202] and arrived == ["offer", "hangup"]
    return [(what, status, expected) for what, (status, _), expected in checks], intact


# --8<-- [end:hostile]


# --- report --------------------------------------------------------------------------------------------------


def _median(values: list[float | None], fmt: str = ".0f") -> str:
    values = [v for v in values if v is not None]
    return format(statistics.median(values), fmt) if values else "n/a"


def report(size, cost, connects, helds, checks, intact, healthy) -> str:
    lines = ["1. Beauty filter (guided filter on a skin mask), CPU per frame (process time)"]
    lines.append(f"   {'resolution':<12}{'ms/frame':>10}{'skin noise before':>19}{'after':>8}")
    for name, (ms, before, after) in cost.items():
        lines.append(f"   {name:<12}{ms:>10.1f}{before:>19.1f}{after:>8.1f}")
    lines.append("   published target: none; budget at 15 fps is 66.7 ms per frame for everything")
    lines.append("")
    lines.append(
        f"2. Time to first frame after the callee taps accept (ms, median of {size.runs}; ring {size.ring_s:g} s)"
    )
    lines.append(
        f"   {'profile':<16}{'way':<13}{'callee sees':>12}{'caller sees':>12}{'  connected in ring':>20}"
    )
    for profile, by_way in connects.items():
        for way in WAYS:
            runs = by_way[way]
            ring = sum(r.connected_before_accept for r in runs)
            lines.append(
                f"   {profile:<16}{way:<13}{_median([r.callee_sees_ms for r in runs]):>12}"
                f"{_median([r.caller_sees_ms for r in runs]):>12}{f'{ring}/{len(runs)}':>20}"
            )
    lines.append("")
    lines.append("3. Resolution held under an uplink cap (720p camera, ladder 720p/360p/180p on REMB)")
    lines.append(f"   {'cap kbit/s':<12}{'received (2nd half)':<22}{'fps':>6}{'REMB kbit/s':>13}  steps")
    for held in helds:
        counts = collections.Counter(held.heights)
        top = (
            ", ".join(f"{h}p {100 * n / len(held.heights):.0f}%" for h, n in counts.most_common(2)) or "none"
        )
        lines.append(
            f"   {held.cap_kbps:<12}{top:<22}{held.fps:>6.1f}{held.estimate_kbps:>13.0f}  "
            + (" ".join(held.changes) or "none")
        )
    lines.append("")
    lines.append("4. Hostile requests while a call rings")
    for what, status, expected in checks:
        verdict = "ok" if str(status) == expected else f"expected {expected}"
        lines.append(f"   {what:<36} -> {status}  {verdict}")
    lines.append(
        f"   the ringing call's own messages accepted and delivered in order: {'yes' if intact else 'NO'}"
    )
    lines.append(f"   server still answering: {'yes' if healthy else 'NO'}")
    return "\n".join(lines)


# --- headline figures for the scenario benchmark (--json) ----------------------------------------------------


def _median_or_nan(values: list[float | None]) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def headlines(size: Size, cost: dict, connects: dict[str, dict[str, list[Connect]]]) -> list[Headline]:
    """Time to first frame with and without pre-connect, and the filter's cost against the frame budget."""
    profile = size.profiles[-1]  # the last profile: the slowest in the default lists
    figures = [
        Headline(
            f"first frame after accept ({way})",
            _median_or_nan([r.caller_sees_ms for r in connects[profile][way]]),
            "ms",
            source="no published target (Agora defines first-frame time, without a number)",
            conditions=f"caller sees the callee; profile {profile} on media and signaling; "
            f"ring {size.ring_s:g} s; median of {size.runs} call(s)",
        )
        for way in ("on-accept", "pre-connect")
    ]
    figures += [
        Headline(
            f"beauty filter CPU per frame ({name})",
            cost[name][0],
            "ms",
            target=round(FRAME_BUDGET_MS, 1),
            source="frame budget: one interval at 15 fps for the whole send path (not a published target)",
            conditions=f"process CPU time, Python + numpy, mean of {size.filter_frames} frames",
        )
        for name in ("360p", "720p")
        if name in cost
    ]
    return figures


def save_headlines(path: Path, full: bool, figures: list[Headline]) -> bool:
    """Write the figures to a new file; False (and one line on stderr) when that fails."""
    try:
        write_headlines(path, "video-1v1", "full" if full else "quick", figures)
    except OSError as error:  # FileExistsError included: somebody created it during the run
        print(f"--json: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return False
    print(f"headline figures written to {path}")
    return True


# --- main ----------------------------------------------------------------------------------------------------


async def run(size: Size, full: bool, json_path: Path | None = None) -> int:
    secret, backend_key = secrets.token_bytes(32), secrets.token_urlsafe(24)  # new every run, never on disk
    cost = await filter_cost(size.filter_frames)  # first, while nothing else runs in this process
    proc, base_url = await start_server(secret, backend_key)
    print(
        f"1v1 video on {base_url}; mode: {'full' if full else 'quick'}; camera 360p for calls, 720p for the ladder"
    )
    print()
    connects: dict[str, dict[str, list[Connect]]] = {}
    helds: list[Held] = []
    try:
        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            for name in size.profiles:
                profile = get_profile(name)
                api = Api(http, base_url, backend_key, one_way_s=profile.uplink.delay_ms / 1000)
                connects[name] = {way: [] for way in WAYS}
                for run_index in range(size.runs):
                    for way in WAYS:
                        uplinks = (
                            profile.uplink_impairment(seed=run_index),
                            profile.uplink_impairment(seed=99 + run_index),
                        )
                        connects[name][way].append(await connect(api, way, size.ring_s, uplinks, run_index))
            api = Api(http, base_url, backend_key)
            # the caps run side by side: separate calls, separate links, one at a time would triple the wait
            helds = list(
                await asyncio.gather(*(hold_resolution(api, c, size.cap_seconds, 0) for c in size.caps))
            )
            checks, intact = await hostile(api, secret)
            healthy = (await api.call("GET", "/v1/health"))[0] == 200
    finally:
        proc.terminate()
        await proc.wait()
    print(report(size, cost, connects, helds, checks, intact, healthy))
    ok = healthy and intact and all(str(s) == e for _, s, e in checks)
    ok = ok and all(
        r.caller_sees_ms is not None for by in connects.values() for rs in by.values() for r in rs
    )
    if json_path is not None:
        ok = save_headlines(json_path, full, headlines(size, cost, connects)) and ok
    return 0 if ok else 1


def _caps(text: str) -> tuple[int, ...]:
    try:
        caps = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of kbit/s") from None
    if not caps or not all(50 <= c <= 20_000 for c in caps):
        raise argparse.ArgumentTypeError("each cap must be 50-20000 kbit/s")
    return caps


def _profiles(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    known = load_profiles()
    unknown = [n for n in names if n not in known]
    if not names or unknown:
        raise argparse.ArgumentTypeError(
            f"unknown profile(s) {', '.join(unknown) or text!r} (see `rtclab profiles`)"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Match two users, connect a 1v1 video call three ways, and measure it."
    )
    parser.add_argument(
        "--full", action="store_true", help="more profiles, runs and caps, longer (also LMA_MODE=full)"
    )
    parser.add_argument(
        "--profiles", type=_profiles, help="comma-separated rtclab profiles for the connect test"
    )
    parser.add_argument(
        "--runs", type=whole_number(1, 20), help="calls per way and profile (median reported)"
    )
    parser.add_argument(
        "--caps", type=_caps, help="comma-separated uplink caps in kbit/s for the ladder test"
    )
    parser.add_argument(
        "--json",
        type=new_json_path,
        metavar="PATH",
        help="also write the headline figures to this new JSON file",
    )
    args = parser.parse_args(argv)
    full = args.full or os.environ.get("LMA_MODE") == "full"
    base = FULL if full else QUICK
    size = Size(
        profiles=args.profiles or base.profiles,
        runs=args.runs or base.runs,
        ring_s=base.ring_s,
        caps=args.caps or base.caps,
        cap_seconds=base.cap_seconds,
        filter_frames=base.filter_frames,
    )
    return asyncio.run(run(size, full, args.json))


if __name__ == "__main__":
    sys.exit(main())
