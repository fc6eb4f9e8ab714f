"""A voice chat room (语聊房), measured: a room server with seats, mute, kick and roles enforced from signed,
expiring tokens, filled with simulated members, run once forwarding the speakers and once mixing them.

It starts the server (server.py in this folder) as its own process on 127.0.0.1 with a fresh signing secret,
then for each audio mode creates a room, lets a host (real synthetic speech, espeak-ng), speakers (a
speech-like voice) and an audience join, has the host seat the speakers, later mute them, and measures what
a listener gets: join time (token request to first audio), PESQ of the host's voice, delay through the server,
freezes, and the server's CPU per room. Last, it sends the server hostile requests while the room talks.

    .venv/bin/python samples/scenarios/voice_room/voice_room.py            # quick: 1 host, 1 speaker, 2 audience
    .venv/bin/python samples/scenarios/voice_room/voice_room.py --full     # or LMA_MODE=full: bigger, longer
    .venv/bin/python samples/scenarios/voice_room/voice_room.py --profile philippines-mobile
    .venv/bin/python samples/scenarios/voice_room/voice_room.py --json room.json   # + headline figures as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from aiohttp import ClientSession, ClientTimeout
from client import Api, Participant
from tokens import issue_token

from rtclab.arguments import number, whole_number
from rtclab.headlines import Headline, new_json_path, write_headlines
from rtclab.quality import align, pesq_mos
from rtclab.signals import (
    SpeechAudioTrack,
    SpeechLikeAudioTrack,
    SpeechToolMissingError,
    synthesize_speech,
)

HERE = Path(__file__).resolve().parent
HOST_TEXT = "Welcome to the voice room. Please take a seat, the host will open your microphone in a moment."
FREEZE_GAP_S = 0.200  # Agora: audio freezes when rendering pauses for more than 200 ms
SETTLE_S = 0.4  # after a mute, skip what was already in flight and in the listener's jitter buffer


@dataclass(frozen=True)
class Size:
    """How big a run is."""

    speakers: int
    audience: int
    seconds: float  # room audio per mode: first everyone talks, then the host alone
    top_k: int


QUICK = Size(speakers=1, audience=2, seconds=5.0, top_k=2)
FULL = Size(speakers=5, audience=12, seconds=20.0, top_k=3)


@dataclass
class ModeResult:
    """What one room measured."""

    mode: str
    join_ms: list[float] = field(default_factory=list)
    pesq: list[float] = field(default_factory=list)
    delay_ms: list[float] = field(default_factory=list)
    freeze_rate: list[float] = field(default_factory=list)
    cpu_ms_per_s: float = float("nan")  # server CPU time per second of room audio
    muted_frames: int | None = None  # frames of muted speakers a listener still got (forward mode)


# --- the server process --------------------------------------------------------------------------------------


async def start_server(
    secret: bytes, backend_key: str, profile: str | None, mixer_buffer: str = "adaptive"
) -> tuple[asyncio.subprocess.Process, str]:
    """Start server.py on a free loopback port; the secrets go through its environment, never its arguments."""
    env = {**os.environ, "VOICE_ROOM_SECRET": secret.hex(), "VOICE_ROOM_BACKEND_KEY": backend_key}
    command = [sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", "0"]
    command += ["--mixer-buffer", mixer_buffer]
    if profile:
        command += ["--profile", profile]
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE)
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode().strip()
    if not line.startswith("listening on "):
        proc.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return proc, line.removeprefix("listening on ")


# --- one room, one mode --------------------------------------------------------------------------------------


def host_voice() -> tuple[SpeechAudioTrack | SpeechLikeAudioTrack, str]:
    try:
        return SpeechAudioTrack(synthesize_speech(HOST_TEXT), pause_s=0.4), "espeak-ng speech"
    except SpeechToolMissingError:
        return SpeechLikeAudioTrack(seed=7), "speech-like signal (espeak-ng not installed)"


def score_listener(listener: Participant, slot: int, host_track, since: float, until: float) -> tuple:
    """PESQ and delay of the host's voice as ``listener`` heard it on ``slot`` between two instants."""
    recorder = listener.recorders[slot]
    arrivals, offsets = recorder.arrival_s, recorder.frame_offsets
    first = int(np.searchsorted(arrivals, since))
    last = int(np.searchsorted(arrivals, until))
    if last - first < 50:  # under a second of audio: nothing to score
        return None, None
    samples = recorder.samples
    start, stop = int(offsets[first]), int(offsets[last - 1]) + 960
    received = samples[start:stop].astype(np.float64)
    rate = recorder.sample_rate
    # the reference from 1 s before the expected spot on, so the speech loop cannot match a wrong repeat
    expected_s = arrivals[first] - host_track.started_at
    ref_from = max(0, int((expected_s - 1.0) * rate))
    reference = host_track.reference(expected_s + received.size / rate + 1.0)[ref_from:].astype(np.float64)
    if not received.any():
        return None, None
    match = align(reference, received, rate, max_delay_ms=2000)
    position = ref_from + max(0, -match.delay_samples)  # index in the host's track of received[...]
    played_at = host_track.started_at + position / rate
    delay_ms = (recorder.arrival_of_sample(start + max(0, match.delay_samples)) - played_at) * 1000
    try:
        score = pesq_mos(match.reference, match.degraded, rate, "wb")
    except ValueError:
        score = None
    return score, delay_ms


def freeze_rate(recorder, since: float, until: float) -> float:
    """Share of [since, until] spent in gaps longer than FREEZE_GAP_S between decoded frames."""
    times = np.concatenate(
        [[since], recorder.arrival_s[(recorder.arrival_s > since) & (recorder.arrival_s < until)], [until]]
    )
    gaps = np.diff(times)
    return float(gaps[gaps > FREEZE_GAP_S].sum() / (until - since))


# --8<-- [start:room]
async def run_room(api: Api, mode: str, size: Size, uplink) -> tuple[ModeResult, list[Participant]]:
    room = f"room-{mode}"
    status, data = await api.backend("POST", "/v1/rooms", {"room": room, "mode": mode, "top_k": size.top_k})
    if status != 201:
        raise RuntimeError(f"cannot create {room}: {status} {data}")
    voice, _ = host_voice()
    host = Participant(api, room, "host", "host", voice, uplink=uplink)
    speakers = [
        Participant(
            api, room, f"speaker{i}", "speaker", SpeechLikeAudioTrack(seed=i, level=0.25), uplink=uplink
        )
        for i in range(1, size.speakers + 1)
    ]
    audience = [Participant(api, room, f"listener{i}", "audience") for i in range(1, size.audience + 1)]
    await host.join()
    await asyncio.gather(*(s.join() for s in speakers))
    for seat, speaker in enumerate(speakers, start=1):  # only the host can put someone on mic
        await host.request("POST", "seat", {"user": speaker.user, "seat": seat})
    await asyncio.sleep(0.3)  # the speakers are talking before the audience arrives
    await asyncio.gather(*(a.join() for a in audience))
    await asyncio.gather(*(a.wait_for_audio(15) for a in audience))

    cpu_before = (await api.backend("GET", "/v1/metrics"))[1]["cpu_s"]
    t_start = time.monotonic()
    await asyncio.sleep(size.seconds * 0.4)  # everyone talks
    for speaker in speakers:  # the host mutes the speakers: from now on only the host is heard
        await host.request("POST", "mute", {"user": speaker.user, "muted": True})
    t_mute = time.monotonic()
    await asyncio.sleep(size.seconds * 0.6)
    t_end = time.monotonic()
    cpu_after = (await api.backend("GET", "/v1/metrics"))[1]["cpu_s"]
    # --8<-- [end:room]

    result = ModeResult(mode, cpu_ms_per_s=(cpu_after - cpu_before) * 1000 / (t_end - t_start))
    result.join_ms = [a.join_ms for a in audience if a.join_ms is not None]
    result.muted_frames = 0 if mode == "forward" else None
    for listener in audience:
        slot = 0
        if mode == "forward":  # which of my streams carries the host? the server knows
            _, state = await listener.request("GET", "")
            slots = state.get("your_slots", [])
            slot = slots.index("host") if "host" in slots else 0
            others = [i for i in range(len(listener.recorders)) if i != slot]
            result.muted_frames += sum(listener.frames_since(t_mute + SETTLE_S, i) for i in others)
        score, delay = score_listener(listener, slot, voice, t_mute + SETTLE_S, t_end)
        if score is not None:
            result.pesq.append(score)
        if delay is not None:
            result.delay_ms.append(delay)
        result.freeze_rate.append(freeze_rate(listener.recorders[slot], t_start, t_end))
    return result, [host, *speakers, *audience]


# --- hostile input -------------------------------------------------------------------------------------------


def fake_offer(sending: bool, slots: int) -> dict:
    """A syntactically plausible offer (loopback candidate, audio sections) to test the rules, not to connect."""
    head = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    section = "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 127.0.0.1\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n"
    directions = (["sendonly"] if sending else []) + ["recvonly"] * slots
    return {"type": "offer", "sdp": head + "".join(f"{section}a={d}\r\n" for d in directions)}


# --8<-- [start:hostile]
async def hostile(
    api: Api, secret: bytes, members: list[Participant], slots: int
) -> list[tuple[str, int, str]]:
    """Bad requests a real room meets, each with the status it got: (what, status, expected)."""
    host, speaker, victim = members[0], members[1], members[-1]
    room = host.room
    join = f"/v1/rooms/{room}/join"
    forged = host.token[:-4] + ("AAAA" if not host.token.endswith("AAAA") else "BBBB")
    expired = issue_token(secret, room, "late", "speaker", 60, now=time.time() - 3600)
    checks = [
        ("no token", await api.call("POST", join, body=fake_offer(False, slots)), "401"),
        ("forged token (signature changed)", await api.call("GET", f"/v1/rooms/{room}", token=forged), "401"),
        ("expired token", await api.call("GET", f"/v1/rooms/{room}", token=expired), "401"),
        ("malformed JSON", await api.call("POST", join, token=victim.token, raw=b'{"type": "offer",'), "400"),
        ("oversized SDP (64 KB)", await api.call("POST", join, token=victim.token, raw=b" " * 65536), "413"),
    ]
    audience_token = await Participant(api, room, "sneaky", "audience").get_token()
    publish = await api.call("POST", join, token=audience_token, body=fake_offer(True, slots))
    checks.append(("audience offers to publish", publish, "403"))
    checks.append(("speaker tries to kick", await speaker.request("POST", "kick", {"user": "host"}), "403"))
    flood = await asyncio.gather(*(victim.request("GET", "") for _ in range(60)))
    throttled = next((r for r in flood if r[0] == 429), flood[-1])
    checks.append(("flood: 60 requests at once", throttled, "429"))
    await host.request("POST", "kick", {"user": victim.user})
    checks.append(("kicked user's token again", await victim.request("GET", ""), "403"))
    return [(what, status, expected) for what, (status, _), expected in checks]


# --8<-- [end:hostile]


# --- report --------------------------------------------------------------------------------------------------


def _median(values: list[float], fmt: str) -> str:
    return format(statistics.median(values), fmt) if values else "n/a"


def report(results: list[ModeResult], checks, kept: tuple[int, float], healthy: bool, note: str) -> str:
    by = {r.mode: r for r in results}
    modes = [m for m in ("forward", "mix") if m in by]
    lines = []
    header = f"{'metric':<34} {'published target':<34}" + "".join(f"{m:>10}" for m in modes)
    lines += [header, "-" * len(header)]

    def row(name: str, target: str, cells: list[str]) -> None:
        lines.append(f"{name:<34} {target:<34}" + "".join(f"{c:>10}" for c in cells))

    row("join: token -> first audio (ms)", "join within 5 s", [_median(by[m].join_ms, ".0f") for m in modes])
    row(
        "  slowest join (ms)",
        "",
        [format(max(by[m].join_ms), ".0f") if by[m].join_ms else "n/a" for m in modes],
    )
    row(
        "host's voice, PESQ-WB (MOS-LQO)",
        "1.04-4.64 scale, higher is better",
        [_median(by[m].pesq, ".2f") for m in modes],
    )
    row(
        "delay via server (ms)",
        "< 150 ms mouth-to-ear (G.114)",
        [_median(by[m].delay_ms, ".0f") for m in modes],
    )
    row(
        "audio freeze rate (%)",
        "freeze = gap > 200 ms",
        [_median([100 * f for f in by[m].freeze_rate], ".1f") for m in modes],
    )
    row(
        "server CPU (ms per s of room)", "lower is better", [format(by[m].cpu_ms_per_s, ".1f") for m in modes]
    )
    rooms = [format(1000 / by[m].cpu_ms_per_s, ".0f") if by[m].cpu_ms_per_s > 0 else "n/a" for m in modes]
    row("rooms per core (this size)", "", rooms)
    muted = [
        "0 frames"
        if by[m].muted_frames == 0
        else (f"{by[m].muted_frames} fr" if by[m].muted_frames else "n/a")
        for m in modes
    ]
    row("muted speakers still heard", "none", muted)
    lines.append(f"(host voice: {note}; median over the audience)")
    lines.append("")
    lines.append("Hostile requests while the room talks")
    for what, status, expected in checks:
        verdict = "ok" if str(status) == expected else f"expected {expected}"
        lines.append(f"  {what:<36} -> {status}  {verdict}")
    frames, share = kept
    lines.append(f"  the other listener kept its audio: {frames} frames, {share:.0%} of real time")
    lines.append(f"  server still answering: {'yes' if healthy else 'NO'}")
    return "\n".join(lines)


# --- headline figures for the scenario benchmark (--json) ----------------------------------------------------


def _median_or_nan(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def headlines(results: list[ModeResult], size: Size, profile: str | None, note: str) -> list[Headline]:
    """Join time, the host's PESQ and the delay through the server per mode, next to the page's targets."""
    room = f"1 host + {size.speakers} speaker(s) + {size.audience} audience"
    network = f"profile {profile} on every member's link" if profile else "loopback, no network delay"
    figures = [
        Headline(
            "join: token request -> first audio",
            _median_or_nan([ms for r in results for ms in r.join_ms]),
            "ms",
            target=5000.0,
            source="Alibaba Cloud RTC: share of joins within 5 s",
            conditions=f"median over the audience, {' and '.join(r.mode for r in results)}; {room}; {network}",
        )
    ]
    figures += [
        Headline(
            f"host's voice, PESQ-WB ({r.mode})",
            _median_or_nan(r.pesq),
            "MOS-LQO",
            better="higher",
            source="ITU-T P.862.2 scale 1.04-4.64; no published target",
            conditions=f"{r.mode} mode, median over the audience; host voice: {note}; {network}",
        )
        for r in results
    ]
    figures += [
        Headline(
            f"delay through the server ({r.mode})",
            _median_or_nan(r.delay_ms),
            "ms",
            target=150.0,
            source="ITU-T G.114: < 150 ms one-way, mouth to ear",
            conditions=f"{r.mode} mode, median over the audience; "
            + (network if profile else "loopback: the server's and the jitter buffers' share only"),
        )
        for r in results
    ]
    return figures


def save_headlines(path: Path, full: bool, figures: list[Headline]) -> bool:
    """Write the figures to a new file; False (and one line on stderr) when that fails."""
    try:
        write_headlines(path, "voice-room", "full" if full else "quick", figures)
    except OSError as error:  # FileExistsError included: somebody created it during the run
        print(f"--json: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return False
    print(f"headline figures written to {path}")
    return True


# --- main ----------------------------------------------------------------------------------------------------


async def run(
    size: Size,
    modes: list[str],
    profile: str | None,
    full: bool,
    json_path: Path | None = None,
    mixer_buffer: str = "adaptive",
) -> int:
    secret, backend_key = secrets.token_bytes(32), secrets.token_urlsafe(24)  # new every run, never on disk
    uplink = None
    if profile:
        from rtclab.profiles import get_profile

        uplink = get_profile(profile).uplink_impairment(seed=2)
    # scipy and pesq take seconds to import on a busy machine: do it while the server starts
    warm_up = asyncio.get_running_loop().run_in_executor(None, _import_scoring)
    proc, base_url = await start_server(secret, backend_key, profile, mixer_buffer)
    await warm_up
    _, note = host_voice()
    room_size = f"1 host + {size.speakers} speaker(s) + {size.audience} audience"
    print(f"Voice room on {base_url}: {room_size}, {size.seconds:g} s of audio per mode, top-K {size.top_k}")
    print(f"mode: {'full' if full else 'quick'}; network: {profile or 'loopback, unimpaired'}")
    print(
        f"mix mode buffers each speaker with {mixer_buffer}"
        f"{' (rtclab.jitter)' if mixer_buffer == 'adaptive' else ' (fixed, 80 ms)'}; listeners use aiortc's buffer"
    )
    print()
    results: list[ModeResult] = []
    try:
        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            api = Api(http, base_url, backend_key)
            members: list[Participant] = []
            for index, mode in enumerate(modes):
                result, members = await run_room(api, mode, size, uplink)
                results.append(result)
                if index < len(modes) - 1:
                    await asyncio.gather(*(m.close() for m in members))
            witness = next(m for m in members if m.role == "audience")
            await asyncio.sleep(
                0.5
            )  # scoring blocked this loop: let frames that queued meanwhile drain first
            t0 = time.monotonic()
            checks = await hostile(api, secret, members, 1 if modes[-1] == "mix" else size.top_k)
            await asyncio.sleep(1.0)  # and the room goes on for a second after the last one
            elapsed = time.monotonic() - t0
            frames = witness.frames_since(t0)
            kept = (frames, frames * 0.020 / elapsed)  # the host's stream only: muted speakers send nothing
            healthy = (await api.call("GET", "/v1/health"))[0] == 200
            await asyncio.gather(*(m.close() for m in members))
    finally:
        proc.terminate()
        await proc.wait()
    print(report(results, checks, kept, healthy, note))
    ok = healthy and all(str(s) == e for _, s, e in checks) and all(r.join_ms for r in results)
    if json_path is not None:
        ok = save_headlines(json_path, full, headlines(results, size, profile, note)) and ok
    return 0 if ok else 1


def _import_scoring() -> None:
    import pesq  # noqa: F401
    import scipy.signal  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run a voice room (forward and mix) on loopback and measure it."
    )
    parser.add_argument("--full", action="store_true", help="bigger room, longer (also LMA_MODE=full)")
    parser.add_argument("--speakers", type=whole_number(0, 15), help="speakers besides the host")
    parser.add_argument("--audience", type=whole_number(1, 40), help="listeners")
    parser.add_argument("--seconds", type=number(3, 120), help="room audio per mode")
    parser.add_argument("--top-k", type=whole_number(1, 4), help="speakers forwarded to each listener")
    parser.add_argument("--modes", default="forward,mix", help="comma-separated: forward, mix")
    parser.add_argument(
        "--profile", help="an rtclab network profile for every member's link (e.g. chrome-3g)"
    )
    parser.add_argument(
        "--mixer-buffer",
        choices=["adaptive", "aiortc"],
        default="adaptive",
        help="mix mode: buffer speakers with rtclab's adaptive jitter buffer or aiortc's fixed one",
    )
    parser.add_argument(
        "--json",
        type=new_json_path,
        metavar="PATH",
        help="also write the headline figures to this new JSON file",
    )
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"forward", "mix"}:
        parser.error("--modes: a comma-separated list of forward and mix")
    if args.profile:
        from rtclab.profiles import load_profiles

        if args.profile not in load_profiles():
            parser.error(f"--profile: unknown profile {args.profile!r} (see `rtclab profiles`)")
    full = args.full or os.environ.get("LMA_MODE") == "full"
    base = FULL if full else QUICK
    size = Size(
        speakers=base.speakers if args.speakers is None else args.speakers,
        audience=base.audience if args.audience is None else args.audience,
        seconds=base.seconds if args.seconds is None else args.seconds,
        top_k=base.top_k if args.top_k is None else args.top_k,
    )
    if size.speakers < 1:
        parser.error("--speakers: the hostile checks need at least one speaker")
    if size.audience < 2:
        parser.error("--audience: at least two (one is kicked in the hostile checks)")
    return asyncio.run(run(size, modes, args.profile, full, args.json, args.mixer_buffer))


if __name__ == "__main__":
    sys.exit(main())
