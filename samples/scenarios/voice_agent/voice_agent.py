"""A conversational voice agent (智能语音助手), measured: a server-side agent joins the call, detects the end
of the user's turn with webrtcvad, streams a reply from an OpenAI-compatible endpoint, speaks it phrase by
phrase with espeak-ng, and stops when the user talks over it. The run reports, stage by stage, the time
from the end of the user's speech to the agent's first audio, and from the start of a barge-in to the
agent falling silent; then it sends the service hostile requests.

The language model is a STAND-IN (llm_standin.py: canned text after a set first-token delay), so the run
works offline and measures the pipeline around the model; pass --llm-url to measure a real endpoint.
There is no speech recognition: a real agent adds its ASR time between the end of turn and the request.

    .venv/bin/python samples/scenarios/voice_agent/voice_agent.py              # quick: 1 question, 1 barge-in
    .venv/bin/python samples/scenarios/voice_agent/voice_agent.py --full       # or LMA_MODE=full: 3 rounds
    .venv/bin/python samples/scenarios/voice_agent/voice_agent.py --hangover-ms 300 --first-token-ms 800
    .venv/bin/python samples/scenarios/voice_agent/voice_agent.py --no-preempt --jitter-buffer aiortc  # before
    .venv/bin/python samples/scenarios/voice_agent/voice_agent.py --browser    # the user is headless Chromium
    .venv/bin/python samples/scenarios/voice_agent/voice_agent.py --json agent.json   # + headline figures as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout
from client import Api, Caller
from server import add_agent_options, check_agent_options
from tokens import issue_token

from rtclab.chromium import ChromiumMissingError
from rtclab.headlines import Headline, new_json_path, write_headlines
from rtclab.signals import SpeechToolMissingError, synthesize_speech

HERE = Path(__file__).resolve().parent
QUESTION = "What will the weather be like in Lagos this afternoon"
INTERRUPTION = "Wait wait, stop please"
BARGE_AFTER_S = 1.5  # the user cuts in this long after the agent's voice starts
FRAME_S = 0.020


async def start_server(secret: bytes, backend_key: str, args: argparse.Namespace):
    """Start server.py on a free loopback port; secrets go through its environment, never its arguments."""
    env = {**os.environ, "VOICE_AGENT_SECRET": secret.hex(), "VOICE_AGENT_BACKEND_KEY": backend_key}
    command = [
        sys.executable,
        str(HERE / "server.py"),
        "--port",
        "0",
        "--hangover-ms",
        str(args.hangover_ms),
        "--onset-ms",
        str(args.onset_ms),
        "--first-token-ms",
        str(args.first_token_ms),
    ]
    if args.llm_url:
        command += ["--llm-url", args.llm_url]
    if args.profile:
        command += ["--profile", args.profile]
    command += ["--jitter-buffer", args.jitter_buffer, "--preempt-after-ms", str(args.preempt_after_ms)]
    if args.no_preempt:
        command.append("--no-preempt")
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.PIPE)
    lines = []
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=60)).decode().strip()
        if not line:
            proc.kill()
            raise RuntimeError(f"the server did not start: {lines}")
        lines.append(line)
        if line.startswith("listening on "):
            llm = next(
                (x.removeprefix("LLM: ") for x in lines if x.startswith("LLM: ")), f"endpoint {args.llm_url}"
            )
            return proc, line.removeprefix("listening on "), llm.split(", on http")[0]


# --8<-- [start:script]
async def converse(caller: Caller, rounds: int) -> list[dict]:
    """Per round: ask, let the agent talk, cut in, let it answer the interruption. Returns the client's stamps."""
    question, interruption = synthesize_speech(QUESTION).samples, synthesize_speech(INTERRUPTION).samples
    log = []
    for _ in range(rounds):
        asked = caller.mic.play(question)
        await caller.wait_for(lambda asked=asked: asked.end_at is not None, 30)
        heard = await caller.wait_for_voice(asked.end_at, 15)  # end of speech -> first agent audio
        if heard is None:
            raise RuntimeError("the agent never answered the question")
        await asyncio.sleep(BARGE_AFTER_S)
        cut = caller.mic.play(interruption)  # barge-in: talk over the agent
        await caller.wait_for(lambda cut=cut: cut.end_at is not None, 30)
        reply = await caller.wait_for_voice(cut.end_at + 0.2, 15)
        # the agent's last sound between the cut-in and its next reply: when its voice stopped
        stopped = max(caller.voiced_between(cut.onset_at, min(reply or 1e18, cut.end_at + 0.2)), default=None)
        await caller.wait_for_quiet(0.6, 30)
        log += [
            {"kind": "turn", "end_at": asked.end_at, "heard_at": heard},
            {"kind": "barge", "onset_at": cut.onset_at, "stopped_at": stopped},
            {"kind": "turn", "end_at": cut.end_at, "heard_at": reply},
        ]
    return log


# --8<-- [end:script]


def breakdown(log: list[dict], turns: list[dict]) -> tuple[dict, dict, list[str]]:
    """Join the client's stamps with the agent's, turn by turn, in ms. The path stages (uplink .. downlink)
    telescope to the total; the reply's own stages (LLM, phrase, TTS) are reported beside them, because a
    preemptive reply runs them during the hangover."""
    stages: dict[str, list[float]] = {}
    barge: dict[str, list[float]] = {}
    problems = []
    replies = [t for t in turns if t["end_at"] is not None]
    client_turns = [e for e in log if e["kind"] == "turn"]
    if len(replies) != len(client_turns):
        problems.append(f"the agent saw {len(replies)} turns, the user spoke {len(client_turns)}")
    for event, turn in zip(client_turns, replies, strict=False):
        if event["heard_at"] is None or turn["first_audio_sent_at"] is None:
            continue
        reply_marks = [
            turn["llm_request_at"],
            turn["llm_first_token_at"],
            turn["first_phrase_at"],
            turn["tts_first_audio_at"],
        ]
        if None in reply_marks or turn["last_voiced_at"] is None:
            continue
        ready_at = max(turn["end_at"], turn["tts_first_audio_at"])  # the first phrase is spoken and may go
        marks = [
            event["end_at"],
            turn["last_voiced_at"],
            turn["end_at"],
            ready_at,
            turn["first_audio_sent_at"],
            event["heard_at"],
        ]
        for name, a, b in zip(STAGES, marks, marks[1:], strict=False):
            stages.setdefault(name, []).append((b - a) * 1000)
        stages.setdefault("total", []).append((event["heard_at"] - event["end_at"]) * 1000)
        for name, a, b in zip(REPLY_STAGES, reply_marks, reply_marks[1:], strict=False):
            stages.setdefault(name, []).append((b - a) * 1000)
        stages.setdefault("started", []).append((turn["llm_request_at"] - turn["last_voiced_at"]) * 1000)
        stages.setdefault("preemptive", []).append(float(turn["preemptive"]))
    interrupted = [t for t in turns if t["interrupted_at"] is not None]
    for event, turn in zip([e for e in log if e["kind"] == "barge"], interrupted, strict=False):
        if event["stopped_at"] is None:
            continue
        stop = event["stopped_at"] + FRAME_S  # the end of the last frame with sound
        marks = [event["onset_at"], turn["barge_onset_at"], turn["interrupted_at"], stop]
        for name, a, b in zip(BARGE_STAGES, marks, marks[1:], strict=False):
            barge.setdefault(name, []).append((b - a) * 1000)
        barge.setdefault("total", []).append((stop - event["onset_at"]) * 1000)
    if len(interrupted) != sum(e["kind"] == "barge" for e in log):
        problems.append(
            f"the agent stopped for {len(interrupted)} of {sum(e['kind'] == 'barge' for e in log)} barge-ins"
        )
    return stages, barge, problems


STAGES = {
    "uplink": (
        "uplink: user's last sound -> agent's last voiced frame",
        "RTC 150-300 (whole path)",
    ),
    "hangover": ("VAD hangover: silence that ends the turn", "VAD + AIVAD 720-940"),
    "ready": ("reply still being prepared when the turn ended", ""),
    "queue": ("audio queued -> handed to the encoder", ""),
    "downlink": ("downlink: encoder -> network -> jitter buffer -> heard", "(RTC, above)"),
}
REPLY_STAGES = {
    "llm": ("LLM request -> first token (STAND-IN)", "LLM first byte 250-1000"),
    "phrase": ("first token -> first phrase to speak", ""),
    "tts": ("TTS: espeak-ng speaks the first phrase", "TTS first byte 100-350"),
}
BARGE_STAGES = {
    "detect": (
        "uplink + VAD onset: user's first sound -> agent reacts",
        "Agora example: speaking_interrupt_duration_ms 320",
    ),
    "flush": ("cancel LLM + TTS, flush the queue", ""),
    "drain": ("frames in flight + jitter buffer -> silence heard", ""),
}


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):7.0f}" if values else "    n/a"


def report(stages: dict, barge: dict, n_turns: int, n_barge: int) -> list[str]:
    width = 62
    lines = [
        f"{'End of user speech -> first agent audio (median of ' + str(n_turns) + ')':<{width}}{'ms':>7}   "
        "published stage budget (Agora, cascaded agent)"
    ]
    for key, (label, target) in STAGES.items():
        lines.append(f"  {label:<{width - 2}}{_ms(stages.get(key, []))}   {target}")
    lines.append(
        f"  {'total (no ASR here: Agora lists ASR at 400-700)':<{width - 2}}{_ms(stages.get('total', []))}   Retell: as low as 600 ms (with ASR)"
    )
    preemptive = stages.get("preemptive", [])
    if preemptive and all(preemptive):
        when = f"preemptive: started {_ms(stages['started']).strip()} ms into the silence, held until the turn ended"
    elif preemptive and not any(preemptive):
        when = "started when the turn ended"
    else:
        when = f"preemptive in {sum(preemptive):.0f} of {len(preemptive)} turns"
    lines += ["", f"The reply's own stages ({when})"]
    for key, (label, target) in REPLY_STAGES.items():
        lines.append(f"  {label:<{width - 2}}{_ms(stages.get(key, []))}   {target}")
    lines += [
        "",
        f"{'Barge-in: user speech onset -> agent audio stopped (median of ' + str(n_barge) + ')':<{width}}{'ms':>7}",
    ]
    for key, (label, target) in BARGE_STAGES.items():
        lines.append(f"  {label:<{width - 2}}{_ms(barge.get(key, []))}   {target}")
    lines.append(f"  {'total':<{width - 2}}{_ms(barge.get('total', []))}")
    return [line.rstrip() for line in lines]


# --8<-- [start:hostile]
async def hostile(api: Api, secret: bytes, session: str, caller_token: str) -> list[tuple[str, int, str]]:
    """Bad requests an agent service meets, each with the status it got: (what, status, expected)."""
    offer_path, turns_path = f"/v1/sessions/{session}/offer", f"/v1/sessions/{session}/turns"
    fake = {"type": "offer", "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}
    forged = caller_token[:-4] + ("AAAA" if not caller_token.endswith("AAAA") else "BBBB")
    expired = issue_token(secret, session, "late", "caller", 60, now=time.time() - 3600)
    observer = await api.token(session, "support", "observer")
    elsewhere = await api.token("other-session", "user1", "caller")
    checks = [
        ("no token", await api.call("POST", offer_path, body=fake), "401"),
        ("forged token (signature changed)", await api.call("GET", turns_path, token=forged), "401"),
        ("expired token", await api.call("GET", turns_path, token=expired), "401"),
        ("token for another session", await api.call("GET", turns_path, token=elsewhere), "403"),
        ("observer posts an offer", await api.call("POST", offer_path, token=observer, body=fake), "403"),
        (
            "malformed JSON",
            await api.call("POST", offer_path, token=caller_token, raw=b'{"type": "offer",'),
            "400",
        ),
        (
            "oversized SDP (64 KB)",
            await api.call("POST", offer_path, token=caller_token, raw=b" " * 65536),
            "413",
        ),
        (
            "second call into a busy session",
            await api.call("POST", offer_path, token=caller_token, body=fake),
            "409",
        ),
    ]
    flood = await asyncio.gather(*(api.call("GET", turns_path, token=observer) for _ in range(60)))
    checks.append(("flood: 60 requests at once", next((r for r in flood if r[0] == 429), flood[-1]), "429"))
    return [(what, status, expected) for what, (status, _), expected in checks]


# --8<-- [end:hostile]


def _median_or_nan(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def headlines(stages: dict, barge: dict, args: argparse.Namespace) -> list[Headline]:
    """The response time, its network and TTS stages, and the barge-in stop time, next to the page's targets."""
    llm = (
        f"LLM at {args.llm_url}"
        if args.llm_url
        else f"stand-in LLM, first token after {args.first_token_ms:g} ms"
    )
    network = f"profile {args.profile} both ways" if args.profile else "loopback, no network delay"
    network += f"; {args.jitter_buffer} jitter buffers"
    turns = f"median of {len(stages.get('total', []))} turn(s)"
    reply = (
        "reply after the turn ends"
        if args.no_preempt
        else f"preemptive reply after {args.preempt_after_ms} ms"
    )
    both_ways = [u + d for u, d in zip(stages.get("uplink", []), stages.get("downlink", []), strict=False)]
    return [
        Headline(
            "end of speech -> first agent audio",
            _median_or_nan(stages.get("total", [])),
            "ms",
            target=600.0,
            source="Retell AI: as low as 600 ms (with ASR)",
            conditions=f"no ASR; {llm}; VAD hangover {args.hangover_ms} ms; {reply}; espeak-ng TTS; "
            f"{network}; {turns}",
        ),
        Headline(
            "RTC both ways (uplink + downlink stages)",
            _median_or_nan(both_ways),
            "ms",
            target=300.0,
            source="Agora: RTC typically 150-300 ms (upper end)",
            conditions=f"encode, network, jitter buffers, decode; {network}; {turns}",
        ),
        Headline(
            "TTS: first phrase -> first audio",
            _median_or_nan(stages.get("tts", [])),
            "ms",
            target=350.0,
            source="Agora: TTS first byte typically 100-350 ms (upper end)",
            conditions=f"espeak-ng in the agent's process, per phrase; {turns}",
        ),
        Headline(
            "barge-in: user speech onset -> agent audio stopped",
            _median_or_nan(barge.get("total", [])),
            "ms",
            source="no published stop time (Agora example: speaking_interrupt_duration_ms 320)",
            conditions=f"interrupts after {args.onset_ms} ms of speech; {network}; "
            f"median of {len(barge.get('total', []))} barge-in(s)",
        ),
    ]


def save_headlines(path: Path, full: bool, figures: list[Headline]) -> bool:
    """Write the figures to a new file; False (and one line on stderr) when that fails."""
    try:
        write_headlines(path, "ai-agent", "full" if full else "quick", figures)
    except OSError as error:  # FileExistsError included: somebody created it during the run
        print(f"--json: cannot write {path}: {error.strerror or error}", file=sys.stderr)
        return False
    print(f"headline figures written to {path}")
    return True


async def run(args: argparse.Namespace, full: bool) -> int:
    secret, backend_key = secrets.token_bytes(32), secrets.token_urlsafe(24)  # new every run, never on disk
    synthesize_speech(QUESTION), synthesize_speech(INTERRUPTION)  # cached before the clock starts
    proc, base_url, llm = await start_server(secret, backend_key, args)
    rounds = args.rounds or (3 if full else 1)
    print(
        f"Voice agent on {base_url}; mode: {'full' if full else 'quick'}, {rounds} round(s) of question + barge-in"
    )
    print(f"LLM: {llm}")
    print(f"network: {args.profile or 'loopback, unimpaired'}")
    print(
        f"turn end: {args.hangover_ms} ms of silence (webrtcvad); barge-in: {args.onset_ms} ms of speech; "
        f"TTS: espeak-ng per phrase; user: {'headless Chromium' if args.browser else 'espeak-ng speech from an aiortc peer'}"
    )
    print(
        "reply: "
        + (
            "starts when the turn ends"
            if args.no_preempt
            else f"preemptive, starts after {args.preempt_after_ms} ms of silence and waits for the turn's end"
        )
        + f"; received audio played through {args.jitter_buffer} jitter buffers"
        + (" (the browser uses its own)" if args.browser else "")
    )
    print()
    try:
        async with ClientSession(timeout=ClientTimeout(total=60)) as http:
            api = Api(http, base_url, backend_key)
            if args.browser:
                from browser import browser_conversation

                log, turns = await browser_conversation(api, base_url, args.browser_seconds)
                print(f"browser: headless Chromium, fake microphone playing {QUESTION!r} in a loop")
                agent_turns = turns["turns"]
                print(
                    f"agent turns: {len(agent_turns)}, frames the agent heard: {turns['frames_heard']}, "
                    f"replies it cut short when the loop talked over it: "
                    f"{sum(t['interrupted_at'] is not None for t in agent_turns)}"
                )
                inside = [
                    (t["first_audio_sent_at"] - t["last_voiced_at"]) * 1000
                    for t in agent_turns
                    if t["first_audio_sent_at"] and t["last_voiced_at"]
                ]
                if inside:
                    print(
                        f"agent side, last voiced frame -> first reply frame sent: {statistics.median(inside):.0f} ms"
                    )
                print(
                    f"browser heard agent audio: {log['energy'] > 0} (totalAudioEnergy {log['energy']:.4f}, "
                    f"{log['packets']} packets)"
                )
                ok = log["energy"] > 0 and any(t["first_audio_sent_at"] for t in turns["turns"])
                healthy = (await api.call("GET", "/v1/health"))[0] == 200
                return 0 if ok and healthy else 1
            session = "s-" + secrets.token_hex(4)
            caller = Caller(api, session, profile=args.profile, jitter_buffer=args.jitter_buffer)
            await caller.call()
            if not await caller.wait_for(lambda: len(caller.heard) > 10, 30):
                raise RuntimeError("no audio from the agent: the call did not connect")
            log = await converse(caller, rounds)
            _, agent_view = await api.call("GET", f"/v1/sessions/{session}/turns", token=caller.token)
            frames_before = agent_view["frames_heard"]
            t0 = time.monotonic()
            checks = await hostile(api, secret, session, caller.token)
            await asyncio.sleep(0.5)
            _, after = await api.call("GET", f"/v1/sessions/{session}/turns", token=caller.token)
            kept = (after["frames_heard"] - frames_before) * FRAME_S / (time.monotonic() - t0)
            healthy = (await api.call("GET", "/v1/health"))[0] == 200
            await api.call("POST", f"/v1/sessions/{session}/hangup", token=caller.token)
            await caller.close()
    finally:
        proc.terminate()
        await proc.wait()
    turns = agent_view["turns"]
    stages, barge, problems = breakdown(log, turns)
    n_turns, n_barge = len(stages.get("total", [])), len(barge.get("total", []))
    print("\n".join(report(stages, barge, n_turns, n_barge)))
    print()
    print("Turn-taking")
    print(
        f"  turns the user took: {sum(e['kind'] == 'turn' for e in log)}; turns the agent detected: "
        f"{sum(t['end_at'] is not None for t in turns)}; barge-ins it obeyed: "
        f"{sum(t['interrupted_at'] is not None for t in turns)} of {sum(e['kind'] == 'barge' for e in log)}"
    )
    print(
        "  speculative replies thrown away because the user only paused: "
        f"{sum(t['replies_discarded'] for t in turns)}"
    )
    first = next((t for t in turns if t["interrupted_at"] is not None), None)
    if first:
        print(f"  queued agent audio dropped at the first barge-in: {first['frames_flushed'] * 20} ms")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    print()
    print("Hostile requests during the call")
    for what, status, expected in checks:
        print(f"  {what:<36} -> {status}  {'ok' if str(status) == expected else 'expected ' + expected}")
    print(f"  the agent kept hearing the caller: {kept:.0%} of real time")
    print(f"  server still answering: {'yes' if healthy else 'NO'}")
    ok = healthy and not problems and all(str(s) == e for _, s, e in checks) and n_turns and n_barge
    if args.json is not None:
        ok = save_headlines(args.json, full, headlines(stages, barge, args)) and ok
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Talk to a voice agent on loopback and measure its turn-taking."
    )
    parser.add_argument(
        "--full", action="store_true", help="three rounds instead of one (also LMA_MODE=full)"
    )
    parser.add_argument("--rounds", type=int, help="rounds of question + barge-in (1-10)")
    parser.add_argument(
        "--browser", action="store_true", help="the user is headless Chromium with a fake microphone"
    )
    parser.add_argument(
        "--browser-seconds", type=float, default=8.0, help="how long the browser call lasts (3-60)"
    )
    parser.add_argument(
        "--json",
        type=new_json_path,
        metavar="PATH",
        help="also write the headline figures to this new JSON file",
    )
    add_agent_options(parser)
    args = parser.parse_args(argv)
    if args.json is not None and args.browser:
        parser.error("--json: the browser run measures no stage breakdown; leave out --browser")
    check_agent_options(parser, args)
    if args.rounds is not None and not 1 <= args.rounds <= 10:
        parser.error("--rounds must be between 1 and 10")
    if not 3 <= args.browser_seconds <= 60:
        parser.error("--browser-seconds must be between 3 and 60")
    try:
        return asyncio.run(run(args, args.full or os.environ.get("LMA_MODE") == "full"))
    # The user's speech comes from espeak-ng; --browser needs Chromium.
    except (SpeechToolMissingError, ChromiumMissingError) as error:
        print(f"voice_agent: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
