"""Co-host live streaming (连麦直播), measured: a host goes live, viewers join, the host invites a co-host, the
media server composes both pictures into one (and mixes both voices) and streams the composite to every viewer.

It starts the media server (server.py in this folder) as its own process on 127.0.0.1 with a fresh signing
secret and backend key, then measures, with every simulated person in this process:

1. joining: each viewer's time from the tap to the first composite frame and first audio; the time from the
   host's invitation to the co-host's picture on the viewers' screens, and from removal to the empty seat;
2. delay and sync, once per co-host network (the co-host's uplink follows an rtclab profile): capture-to-screen
   delay of the host's and the co-host's pictures in the composite, how much later the co-host shows up than
   the host (picture and voice), and the delay between the two people on stage;
3. composite quality: SSIM of what viewers receive against the ideal composite of the two source frames;
4. the server's cost, and hostile requests against it while it streams.

    .venv/bin/python samples/scenarios/live_cohost/live_cohost.py              # quick (CI)
    .venv/bin/python samples/scenarios/live_cohost/live_cohost.py --full       # or LMA_MODE=full
    .venv/bin/python samples/scenarios/live_cohost/live_cohost.py --viewers 5 --cohosts loopback,chrome-3g
    .venv/bin/python samples/scenarios/live_cohost/live_cohost.py --json build/live_cohost.json
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout
from client import Api, StageMember, Viewer
from compositor import LAYOUTS, Layout
from measure import composite_ssim, median, percentile, picture_delays, picture_offsets, voice_delays
from tokens import issue_token

from rtclab.arguments import number, whole_number
from rtclab.headlines import Headline, new_json_path, write_headlines
from rtclab.profiles import get_profile, load_profiles

HERE = Path(__file__).resolve().parent
ROOM = "stage1"
CLEAN = "loopback"  # a co-host network with no impairment
AGORA_AUDIENCE_MS = 800.0  # Agora Interactive Live Streaming: audience latency 400-800 ms at the lowest
AGORA_HOSTS_MS = 400.0  # Agora Interactive Live Streaming: latency between hosts <= 400 ms
JOIN_MS = 5000.0  # Alibaba Cloud RTC counts joins within 5 s (FiveSecJoinRate)


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    viewers: int
    cohosts: tuple[str, ...]  # one co-host after the other, each on this network ("loopback" or a profile)
    seconds: float  # measuring window per co-host
    layout: str = "side-by-side"
    noise: int = 4  # camera-like noise in the test pattern, so the encoders work as with a real camera


QUICK = Size(viewers=3, cohosts=(CLEAN, "loadero-3g"), seconds=4.0)
FULL = Size(viewers=6, cohosts=(CLEAN, "chrome-slow-4g", "loadero-3g", "chrome-3g"), seconds=15.0)


# --- the server process --------------------------------------------------------------------------------------


async def start_server(secret: bytes, backend_key: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start server.py on a free loopback port; the secrets go through its environment, never its arguments."""
    env = {**os.environ, "LIVE_COHOST_SECRET": secret.hex(), "LIVE_COHOST_BACKEND_KEY": backend_key}
    command = [sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", "0"]
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


# --- one co-host on stage ------------------------------------------------------------------------------------


@dataclass
class Stint:
    """What was measured while one co-host was on stage."""

    network: str
    invite_to_screen_ms: float | None = None
    remove_to_empty_ms: float | None = None
    host_to_viewer: list[float] = field(default_factory=list)  # picture delays, ms, all viewers
    cohost_to_viewer: list[float] = field(default_factory=list)
    offsets: list[float] = field(default_factory=list)  # co-host picture older than the host's, ms
    host_voice: list[float] = field(default_factory=list)  # in the viewers' mix, ms
    cohost_voice: list[float] = field(default_factory=list)
    host_to_cohost: list[float] = field(default_factory=list)  # the host's picture on the co-host's screen
    host_voice_to_cohost: list[float] = field(default_factory=list)
    ssim: list[tuple[float, float, float]] = field(default_factory=list)  # whole, host tile, co-host tile
    server_cpu: float | None = None  # server CPU seconds per second of stream
    compose_ms: float | None = None  # server time to lay out one composite frame
    runner_cpu: float | None = None  # this process (every simulated person) CPU seconds per second
    window: tuple[float, float] = (0.0, 0.0)  # when it was measured (time.monotonic())


# --8<-- [start:score]
def score(result: Stint, host: StageMember, guest: StageMember, viewers: list[Viewer]) -> None:
    """Fill ``result`` from what everyone received during its window (after the run: scoring takes CPU, and
    doing it while media flows would stall this process's own senders and receivers)."""
    window, watcher = result.window, viewers[0]
    for viewer in viewers:
        result.host_to_viewer += picture_delays(
            host.camera, [(f.slots[0], f.at) for f in viewer.frames], window
        )
        result.cohost_to_viewer += picture_delays(
            guest.camera, [(f.slots[1], f.at) for f in viewer.frames], window
        )
        result.offsets += picture_offsets(host.camera, guest.camera, viewer.frames, window)
        result.ssim += composite_ssim(
            viewer.layout, host.camera, guest.camera, viewer.frames, window, limit=10
        )
    if watcher.heard is not None:
        result.host_voice = voice_delays(watcher.heard, host.voice, window)
        result.cohost_voice = voice_delays(watcher.heard, guest.voice, window)
    result.host_to_cohost = picture_delays(host.camera, guest.seen, window)
    result.host_voice_to_cohost = voice_delays(guest.heard, host.voice, window, min_correlation=0.4)


# --8<-- [end:score]


async def wait_until(check: object, timeout: float) -> float | None:
    """``time.monotonic()`` when ``check()`` first held, or None after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.005)
    return time.monotonic()


# --8<-- [start:cohost]
async def bring_on_stage(api: Api, host: StageMember, guest: StageMember, network: str, seed: int) -> float:
    """The host invites ``guest`` (a viewer's audience token); the guest accepts, gets a co-host token minted by
    the server, and publishes over ``network``. Returns when the invitation was sent."""
    invited_at = time.monotonic()
    status, data = await api.room_call("invite", host.token, {"user": guest.name})
    if status != 202:
        raise RuntimeError(f"invite refused: {status} {data}")
    for _ in range(100):  # the guest's app polls the room until it shows the invitation
        if (await api.room_call("", guest.token, method="GET"))[1].get("invited"):
            break
        await asyncio.sleep(0.1)
    status, data = await api.room_call("accept", guest.token)
    if status != 200:
        raise RuntimeError(f"accept refused: {status} {data}")
    guest.token = data["token"]  # role: cohost, short-lived, and only as good as the seat
    uplink = None if network == CLEAN else get_profile(network).uplink_impairment(seed=seed)
    await guest.publish(uplink)
    return invited_at


# --8<-- [end:cohost]


async def stint(
    api: Api,
    host: StageMember,
    viewers: list[Viewer],
    network: str,
    index: int,
    size: Size,
    late: list[Viewer],
) -> tuple[Stint, StageMember]:
    """One co-host: on stage, (late viewers join), measured for ``size.seconds``; left on stage for the caller."""
    result = Stint(network)
    guest = StageMember(api, f"guest{index}", seed=100 + index, noise=size.noise)
    guest.token = await api.token(guest.name, "audience")
    watcher = viewers[0]
    invited_at = await bring_on_stage(api, host, guest, network, seed=index)
    on_screen = await wait_until(
        lambda: any(f.at > invited_at and f.slots[1] is not None for f in watcher.frames[-5:]), 20.0
    )
    result.invite_to_screen_ms = None if on_screen is None else (on_screen - invited_at) * 1000
    for viewer in late:  # more viewers join while the co-host is on stage
        await viewer.watch()
        await viewer.wait_for(lambda v=viewer: v.first_video_at is not None, 20.0)
        viewers.append(viewer)
    await asyncio.sleep(1.0)  # let the bitrate estimates settle
    before = (await api.call("GET", "/v1/metrics", token=api.backend_key))[1]
    result.window = (time.monotonic(), time.monotonic() + size.seconds)
    own = time.process_time()
    await asyncio.sleep(size.seconds)
    result.runner_cpu = (time.process_time() - own) / size.seconds
    after = (await api.call("GET", "/v1/metrics", token=api.backend_key))[1]
    result.server_cpu = (after["cpu_s"] - before["cpu_s"]) / size.seconds
    frames = after["frames_composed"] - before["frames_composed"]
    result.compose_ms = 1000 * (after["compose_s"] - before["compose_s"]) / frames if frames else None
    return result, guest


async def take_off_stage(api: Api, host: StageMember, guest: StageMember, watcher: Viewer) -> float | None:
    """The host removes the co-host; ms until the viewers' composite shows the empty seat."""
    removed_at = time.monotonic()
    status, data = await api.room_call("remove", host.token, {"user": guest.name})
    if status != 200:
        raise RuntimeError(f"remove refused: {status} {data}")
    empty = await wait_until(
        lambda: any(f.at > removed_at and f.slots[1] is None for f in watcher.frames[-3:]), 10.0
    )
    guest.stop_media()
    await guest.close()
    return None if empty is None else (empty - removed_at) * 1000


# --- hostile input -------------------------------------------------------------------------------------------

FAKE_OFFER = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na={direction}\r\n"
    "a=candidate:1 1 udp 1 {address} 9 typ host\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 127.0.0.1\r\na={direction}\r\n"
)


def fake_offer(direction: str, address: str = "127.0.0.1") -> dict:
    return {"type": "offer", "sdp": FAKE_OFFER.format(direction=direction, address=address)}


# --8<-- [start:hostile]
async def hostile(api: Api, secret: bytes, host: StageMember, cohost: StageMember, viewer: Viewer) -> list:
    """Bad requests a live room meets, sent while it streams: (what, status, expected)."""
    other_room = issue_token(secret, "another-room", viewer.name, "audience", 60)
    expired = issue_token(secret, ROOM, "late", "audience", 60, now=time.time() - 3600)
    payload, _ = viewer.token.split(".")
    forged_cohost = issue_token(b"not-the-secret" * 3, ROOM, viewer.name, "cohost", 60)
    watch = f"/v1/rooms/{ROOM}/watch"
    checks = [
        ("no token", await api.call("POST", watch, body=fake_offer("recvonly")), "401"),
        ("forged token (signature changed)", await api.call("POST", watch, token=payload + ".AAAA"), "401"),
        (
            "co-host token signed with another key",
            await api.room_call("publish", forged_cohost, fake_offer("sendrecv")),
            "401",
        ),
        ("expired token", await api.call("POST", watch, token=expired, body=fake_offer("recvonly")), "401"),
        ("token for another room", await api.call("POST", watch, token=other_room, body={}), "403"),
        (
            "malformed JSON",
            await api.call("POST", watch, token=viewer.token, raw=b'{"type": "offer",'),
            "400",
        ),
        (
            "oversized body (64 KB)",
            await api.call("POST", watch, token=viewer.token, raw=b" " * 65536),
            "413",
        ),
        ("viewer publishes", await api.room_call("publish", viewer.token, fake_offer("sendrecv")), "403"),
        (
            "viewer sends media on watch",
            await api.room_call("watch", viewer.token, fake_offer("sendrecv")),
            "403",
        ),
        ("viewer invites a co-host", await api.room_call("invite", viewer.token, {"user": "friend"}), "403"),
        ("viewer accepts without invitation", await api.room_call("accept", viewer.token), "403"),
        ("co-host invites", await api.room_call("invite", cohost.token, {"user": "friend"}), "403"),
        (
            "viewer removes the co-host",
            await api.room_call("remove", viewer.token, {"user": cohost.name}),
            "403",
        ),
        (
            "host invites while the seat is taken",
            await api.room_call("invite", host.token, {"user": "x"}),
            "409",
        ),
        (
            "the host goes live twice",
            await api.room_call("publish", host.token, fake_offer("sendrecv")),
            "409",
        ),
        (
            "offer with a public IP candidate",
            await api.room_call("watch", viewer.token, fake_offer("recvonly", "203.0.113.9")),
            "422",
        ),
        (
            "user token on a backend endpoint",
            await api.call("POST", "/v1/tokens", token=viewer.token, body={}),
            "401",
        ),
    ]
    storm = await asyncio.gather(*(api.room_call("", viewer.token, method="GET") for _ in range(60)))
    checks.append(("flood: 60 requests at once", next((r for r in storm if r[0] == 429), storm[-1]), "429"))
    return [(what, status, expected) for what, (status, _), expected in checks]


# --8<-- [end:hostile]


# --- report --------------------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}"


def _ms1(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def report(
    size: Size, layout: Layout, joins, stints: list[Stint], checks, after_removal, flowing, healthy
) -> str:
    width, height = layout.size
    lines = ["1. Joining (ms)"]
    lines.append(f"   {'viewer':<10}{'joined':<24}{'first picture':>14}{'first audio':>13}")
    for name, when, video_ms, audio_ms in joins:
        lines.append(f"   {name:<10}{when:<24}{_ms(video_ms):>14}{_ms(audio_ms):>13}")
    for s in stints:
        lines.append(
            f"   co-host on {s.network}: invite -> on the viewers' screen {_ms(s.invite_to_screen_ms)}, "
            f"removed -> empty seat {_ms(s.remove_to_empty_ms)}"
        )
    lines.append("")
    lines.append(
        f"2. Delay and sync (ms, median over {len(joins)} viewers; voices from the first viewer's mix)"
    )
    lines.append(f"   {'':<18}{'capture -> viewer':>20}{'co-host behind host':>22}{'host -> co-host':>18}")
    lines.append(
        f"   {'co-host network':<18}{'host':>10}{'co-host':>10}{'picture':>12}{'voice':>10}"
        f"{'picture':>10}{'voice':>8}"
    )
    for s in stints:
        voice_offset = None
        if median(s.cohost_voice) is not None and median(s.host_voice) is not None:
            voice_offset = median(s.cohost_voice) - median(s.host_voice)
        lines.append(
            f"   {s.network:<18}{_ms(median(s.host_to_viewer)):>10}{_ms(median(s.cohost_to_viewer)):>10}"
            f"{_ms(median(s.offsets)):>12}{_ms(voice_offset):>10}{_ms(median(s.host_to_cohost)):>10}"
            f"{_ms(median(s.host_voice_to_cohost)):>8}"
        )
    lines.append(
        f"   published targets: audience {AGORA_AUDIENCE_MS:.0f} ms at most (Agora, 400-800 ms); "
        f"between hosts {AGORA_HOSTS_MS:.0f} ms (Agora)"
    )
    lines.append("")
    lines.append(
        f"3. Composite quality: SSIM of the viewers' {width}x{height} picture vs the ideal composite"
    )
    lines.append(
        f"   {'co-host network':<18}{'frames':>8}{'median':>8}{'p10':>8}{'host tile':>11}{'co-host tile':>14}"
    )
    for s in stints:
        whole = [w for w, _, _ in s.ssim]
        lines.append(
            f"   {s.network:<18}{len(whole):>8}{_score(median(whole)):>8}{_score(percentile(whole, 10)):>8}"
            f"{_score(median(h for _, h, _ in s.ssim)):>11}{_score(median(c for _, _, c in s.ssim)):>14}"
        )
    lines.append("   published target: none (1.000 = identical)")
    lines.append("")
    lines.append("4. Cost, % of a core (server: one room, one video and one audio encode per viewer)")
    lines.append(f"   {'co-host network':<18}{'server':>8}{'layout ms/frame':>17}{'simulated people':>18}")
    for s in stints:
        lines.append(
            f"   {s.network:<18}{_pct(s.server_cpu):>8}{_ms1(s.compose_ms):>17}{_pct(s.runner_cpu):>18}"
        )
    lines.append("   (all simulated people share one Python process: near 100 %, it inflates every delay)")
    lines.append("")
    lines.append("5. Hostile requests while live")
    for what, status, expected in checks:
        verdict = "ok" if str(status) == expected else f"expected {expected}"
        lines.append(f"   {what:<42} -> {status}  {verdict}")
    lines.append(
        f"   removed co-host publishes again with their token -> {after_removal}  "
        + ("ok" if after_removal == 403 else "expected 403")
    )
    lines.append(f"   the viewers' stream kept flowing: {'yes' if flowing else 'NO'}")
    lines.append(f"   server still answering: {'yes' if healthy else 'NO'}")
    return "\n".join(lines)


def headlines(size: Size, joins, first: Stint) -> list[Headline]:
    where = f"loopback, {len(joins)} viewers, {size.layout} composite at 15 fps, co-host on {first.network}"
    join_ms = [v for _, _, v, _ in joins if v is not None]
    return [
        Headline(
            "host -> viewer delay (picture, median)",
            _value(median(first.host_to_viewer)),
            "ms",
            AGORA_AUDIENCE_MS,
            "lower",
            "Agora Interactive Live Streaming: audience 400-800 ms",
            where,
        ),
        Headline(
            "host -> co-host delay (picture, median)",
            _value(median(first.host_to_cohost)),
            "ms",
            AGORA_HOSTS_MS,
            "lower",
            "Agora Interactive Live Streaming: between hosts <= 400 ms",
            where,
        ),
        Headline(
            "co-host offset in the composite (picture, median)",
            _value(median(first.offsets)),
            "ms",
            None,
            "lower",
            "",
            where,
        ),
        Headline(
            "composite SSIM vs ideal (median)",
            _value(median(w for w, _, _ in first.ssim)),
            "",
            None,
            "higher",
            "",
            where,
        ),
        Headline(
            "viewer join: tap -> first picture (worst viewer)",
            _value(max(join_ms, default=None)),
            "ms",
            JOIN_MS,
            "lower",
            "Alibaba Cloud RTC: joins within 5 s (FiveSecJoinRate)",
            where,
        ),
    ]


def _value(value: float | None) -> float:
    return float("nan") if value is None else float(value)


# --- main ----------------------------------------------------------------------------------------------------


async def run(size: Size, full: bool, json_path: Path | None) -> int:
    secret, backend_key = secrets.token_bytes(32), secrets.token_urlsafe(24)  # new every run, never on disk
    layout = LAYOUTS[size.layout]
    proc, base_url = await start_server(secret, backend_key)
    print(f"co-host live room on {base_url}; mode: {'full' if full else 'quick'}")
    print(
        f"{size.viewers} viewers; {size.layout} composite {layout.size[0]}x{layout.size[1]} at 15 fps; "
        f"cameras 320x240; co-host networks: {', '.join(size.cohosts)}"
    )
    print()
    stints: list[Stint] = []
    guests: list[StageMember] = []
    people: list = []
    try:
        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            api = Api(http, base_url, backend_key, ROOM)
            status, data = await api.call(
                "POST", "/v1/rooms", token=backend_key, body={"room": ROOM, "layout": size.layout}
            )
            if status != 201:
                raise RuntimeError(f"room not created: {status} {data}")
            host = StageMember(api, "host", seed=1, noise=size.noise)
            host.token = await api.token("host", "host")
            await host.publish()
            people.append(host)
            viewers = []
            for i in range(size.viewers):
                viewer = Viewer(api, f"viewer{i + 1}", layout, record_audio=i == 0)
                viewer.token = await api.token(viewer.name, "audience")
                people.append(viewer)
                viewers.append(viewer)
            first = viewers[0]
            await first.watch()  # the first viewer joins while the host is alone
            await first.wait_for(lambda: first.first_video_at is not None, 20.0)
            watching = [first]
            checks, after_removal, flowing = [], None, False
            for index, network in enumerate(size.cohosts):
                result, guest = await stint(
                    api, host, watching, network, index, size, viewers[1:] if index == 0 else []
                )
                people.append(guest)
                if index == 0:  # hostile requests while the first co-host is on stage
                    checks = await hostile(api, secret, host, guest, first)
                    count = len(first.frames)
                    await asyncio.sleep(1.0)
                    flowing = len(first.frames) > count + 2
                old_token = guest.token
                result.remove_to_empty_ms = await take_off_stage(api, host, guest, first)
                if index == 0:
                    after_removal = (await api.room_call("publish", old_token, fake_offer("sendrecv")))[0]
                stints.append(result)
                guests.append(guest)
            healthy = (await api.call("GET", "/v1/health"))[0] == 200
    finally:
        await asyncio.gather(*(p.close() for p in people), return_exceptions=True)
        proc.terminate()
        await proc.wait()
    for result, guest in zip(stints, guests, strict=True):
        score(result, host, guest, [v for v in viewers if v.first_video_at is not None])
    joins = [
        (
            v.name,
            "host alone" if v is viewers[0] else "co-host on stage",
            None if v.first_video_at is None else (v.first_video_at - v.tapped_at) * 1000,
            None if v.first_audio_at is None else (v.first_audio_at - v.tapped_at) * 1000,
        )
        for v in viewers
    ]
    print(report(size, layout, joins, stints, checks, after_removal, flowing, healthy))
    if json_path is not None:
        write_headlines(
            json_path, "live-cohost", "full" if full else "quick", headlines(size, joins, stints[0])
        )
        print(f"\nheadline figures written to {json_path}")
    ok = healthy and flowing and after_removal == 403 and all(str(s) == e for _, s, e in checks)
    ok = ok and all(j[2] is not None for j in joins) and all(s.host_to_viewer and s.offsets for s in stints)
    return 0 if ok else 1


def _cohosts(text: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in text.split(",") if v.strip())
    known = load_profiles()
    unknown = [n for n in names if n != CLEAN and n not in known]
    if not names or unknown or len(names) > 5:
        raise argparse.ArgumentTypeError(
            f"expected 1-5 of '{CLEAN}' or rtclab profiles (see `rtclab profiles`), got {text!r}"
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Go live, bring a co-host on stage, compose both for the viewers, and measure it."
    )
    parser.add_argument(
        "--full", action="store_true", help="more viewers and co-host networks, longer (also LMA_MODE=full)"
    )
    parser.add_argument("--viewers", type=whole_number(1, 20), help="how many viewers watch (1-20)")
    parser.add_argument(
        "--cohosts", type=_cohosts, help=f"comma-separated co-host networks: '{CLEAN}' or rtclab profiles"
    )
    parser.add_argument(
        "--seconds", type=number(2, 120, "seconds"), help="measuring window per co-host, in seconds"
    )
    parser.add_argument("--layout", choices=sorted(LAYOUTS), help="side-by-side (default) or pip")
    parser.add_argument(
        "--json",
        type=new_json_path,
        metavar="PATH",
        help="also write the headline figures to PATH (a new file)",
    )
    args = parser.parse_args(argv)
    full = args.full or os.environ.get("LMA_MODE") == "full"
    base = FULL if full else QUICK
    size = Size(
        viewers=args.viewers or base.viewers,
        cohosts=args.cohosts or base.cohosts,
        seconds=args.seconds or base.seconds,
        layout=args.layout or base.layout,
        noise=base.noise,
    )
    return asyncio.run(run(size, full, args.json))


if __name__ == "__main__":
    sys.exit(main())
