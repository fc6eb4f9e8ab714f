"""A worked incident, end to end: a player's dump, the diagnosis, the incident review, the fix verified.

The ticket: "voice keeps cutting out". The player's browser dump is diagnosed on the command line, the
incident review is written with ``--incident`` (never over an existing file), and after the fix a second
dump from the same player is diagnosed: the findings that explained the ticket must be gone, and no new
P1 or P2 may appear. Both dumps are real: headless Chromium calling an aiortc peer, captured by this project
(samples/support/dumps/README.md says how each was made).

Run it:

    .venv/bin/python samples/support/worked_incident.py
    .venv/bin/python samples/support/worked_incident.py --lang zh
"""

from __future__ import annotations

import argparse
import contextlib
import io
import sys
import tempfile
from pathlib import Path

from rtclab.cli import main as rtclab
from rtclab.diagnose import diagnose_file

DUMPS = Path("samples/support/dumps")  # relative, as a reader types it from the repository root
BEFORE = DUMPS / "3g.webrtc-internals.json"  # the player's call as the ticket arrived
AFTER = DUMPS / "3g-near-server.webrtc-internals.json"  # the same player after the fix


def run(*args: str) -> str:
    """`rtclab ARGS` as a reader types it, its output captured to print under the command."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = rtclab(list(args))
    if code != 0:
        raise SystemExit(f"worked_incident: rtclab {' '.join(args)} exited {code}")
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="language of the report and review"
    )
    args = parser.parse_args()
    if not BEFORE.exists():
        parser.error(f"{BEFORE} not found: run this from the repository root")

    print(f"$ rtclab diagnose {BEFORE}")
    print(run("diagnose", str(BEFORE), "--lang", args.lang))

    with tempfile.TemporaryDirectory() as folder:
        review = Path(folder) / "incident.md"
        run("diagnose", str(BEFORE), "--lang", args.lang, "--incident", str(review))
        print(f"$ rtclab diagnose {BEFORE} --incident incident.md   # wrote:\n")
        print(review.read_text(encoding="utf-8"))

    before = diagnose_file(str(BEFORE), args.lang)
    after = diagnose_file(str(AFTER), args.lang)
    print(f"$ rtclab diagnose {AFTER}   # after the fix")
    print(run("diagnose", str(AFTER), "--lang", args.lang))

    # --8<-- [start:verify]
    # The fix is verified when the ticket's findings are gone and nothing serious took their place.
    was = {(f["id"], f["severity"]) for f in before["findings"]}
    now = {(f["id"], f["severity"]) for f in after["findings"]}
    print("verification")
    print(f"  verdict      {before['verdict']} -> {after['verdict']}")
    print(f"  gone         {', '.join(sorted(f'{s} {i}' for i, s in was - now)) or 'none'}")
    print(f"  still there  {', '.join(sorted(f'{s} {i}' for i, s in was & now)) or 'none'}")
    print(f"  new          {', '.join(sorted(f'{s} {i}' for i, s in now - was)) or 'none'}")
    fixed = not (was & now) and not any(s in ("P1", "P2") for _, s in now)
    print(f"  fixed        {'yes' if fixed else 'no'}")
    # --8<-- [end:verify]
    return 0 if fixed else 1


if __name__ == "__main__":
    sys.exit(main())
