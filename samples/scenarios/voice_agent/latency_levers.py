"""Two levers on a voice agent's response time, measured one at a time: the jitter buffers that play the
audio on both ends, and a preemptive reply that prepares the answer while the agent is still waiting for
the user's turn to end. Each row is a whole voice_agent.py run (same speech, same stand-in LLM, same 500 ms
VAD hangover, loopback); only the levers change.

    aiortc buffers   aiortc's fixed buffer on both peers: a frame waits until four more have arrived (80 ms)
    adaptive         rtclab's adaptive buffer on both peers, as a browser's or a phone's NetEQ would play it
    + preemptive     the reply starts after 100 ms of silence and is held until the 500 ms hangover ends

    .venv/bin/python samples/scenarios/voice_agent/latency_levers.py            # quick: 1 round per row
    .venv/bin/python samples/scenarios/voice_agent/latency_levers.py --rounds 3 # steadier medians
    .venv/bin/python samples/scenarios/voice_agent/latency_levers.py --first-token-ms 800
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from rtclab.headlines import Headline, read_headlines

HERE = Path(__file__).resolve().parent
TOTAL = "end of speech -> first agent audio"
RTC = "RTC both ways (uplink + downlink stages)"
BARGE = "barge-in: user speech onset -> agent audio stopped"

# --8<-- [start:rows]
# (label, voice_agent.py arguments): each row adds one lever to the row above
ROWS = [
    ("aiortc buffers, reply after the turn", ["--jitter-buffer", "aiortc", "--no-preempt"]),
    ("adaptive buffers, reply after the turn", ["--jitter-buffer", "adaptive", "--no-preempt"]),
    ("adaptive buffers + preemptive reply", ["--jitter-buffer", "adaptive"]),
]


def measure(arguments: list[str], rounds: int, first_token_ms: float, folder: Path) -> dict[str, Headline]:
    """Run voice_agent.py once with ``arguments``; its headline figures by metric."""
    path = folder / f"row{len(list(folder.iterdir()))}.json"
    command = [sys.executable, str(HERE / "voice_agent.py"), "--rounds", str(rounds), "--json", str(path)]
    command += ["--first-token-ms", f"{first_token_ms:g}", *arguments]
    run = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=HERE.parent.parent.parent)
    if run.returncode != 0:
        tail = (run.stdout + run.stderr).strip().splitlines()[-5:]
        raise RuntimeError(f"voice_agent.py {' '.join(arguments)} failed:\n  " + "\n  ".join(tail))
    return {h.metric: h for h in read_headlines(path)[2]}


# --8<-- [end:rows]


def table(rows: list[tuple[str, dict[str, Headline]]]) -> list[str]:
    """The rows side by side, each with what it saved against the row above and the Retell target."""
    target = rows[0][1][TOTAL].target
    lines = [
        f"{'':<40}{'RTC both ways':>14}{'end of speech':>15}{'saved':>8}{'vs ' + f'{target:g} ms':>11}"
        f"{'barge-in':>10}",
        f"{'':<40}{'ms':>14}{'-> first audio':>15}{'ms':>8}{'(Retell)':>11}{'ms':>10}",
    ]
    previous = None
    for label, figures in rows:
        total = figures[TOTAL].value
        saved = f"{previous - total:8.0f}" if previous is not None else f"{'':>8}"
        versus = f"{(total - target) / target:+.0%}" if target else "n/a"
        lines.append(
            f"{label:<40}{figures[RTC].value:14.0f}{total:15.0f}{saved}{versus:>11}{figures[BARGE].value:10.0f}"
        )
        previous = total
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Measure what each latency lever saves a voice agent.")
    parser.add_argument("--rounds", type=int, help="rounds of question + barge-in per row (1-5; quick: 1)")
    parser.add_argument(
        "--first-token-ms", type=float, default=300.0, help="stand-in LLM's first-token delay (ms)"
    )
    args = parser.parse_args(argv)
    if args.rounds is not None and not 1 <= args.rounds <= 5:
        parser.error("--rounds must be between 1 and 5")
    if not 0 <= args.first_token_ms <= 5000:
        parser.error("--first-token-ms must be between 0 and 5000")
    rounds = args.rounds or (3 if os.environ.get("LMA_MODE") == "full" else 1)
    print(
        f"Voice agent on loopback, {rounds} round(s) per row (median of {2 * rounds} turns, {rounds} barge-in(s)); "
        f"STAND-IN LLM, first token after {args.first_token_ms:g} ms; 500 ms VAD hangover; no ASR"
    )
    print()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, arguments in ROWS:
            try:
                rows.append((label, measure(arguments, rounds, args.first_token_ms, Path(folder))))
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                print(f"latency_levers: {error}", file=sys.stderr)
                return 1
    print("\n".join(table(rows)))
    print()
    first, last = rows[0][1][TOTAL].value, rows[-1][1][TOTAL].value
    print(f"both levers together: {first:.0f} -> {last:.0f} ms ({(last - first) / first:+.0%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
