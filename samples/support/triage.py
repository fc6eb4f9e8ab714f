"""Triage a queue of support tickets: diagnose every dump in a folder and list them worst first.

An on-call engineer starts a shift with a folder of dumps that players and the rtcstats collector sent in.
This reads each one with `rtclab.diagnose` (webrtc-internals, rtcstats or rtclab JSON, told apart by content),
sorts them by their most severe finding, and prints one line per file: what it is, the verdict, and the
findings to look at first. A file that is not a dump gets its one-line error and the queue goes on.

Run it (the folder defaults to the dumps this project captured from Chromium calling aiortc):

    .venv/bin/python samples/support/triage.py
    .venv/bin/python samples/support/triage.py path/to/tickets --lang zh
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtclab.diagnose import SEVERITIES, diagnose_file
from rtclab.dumps import DumpError

DUMPS = Path(__file__).parent / "dumps"
# Worst first: a call that never connected, then by the most severe finding, then calls with nothing found.
ORDER = {"failed": 0, "poor": 1, "fair": 2, "good": 3}


def worst(report: dict) -> str:
    severities = [f["severity"] for f in report["findings"]]
    return min(severities, key=SEVERITIES.index) if severities else "-"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "folder", nargs="?", type=Path, default=DUMPS, help="folder of dumps (default: %(default)s)"
    )
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the finding titles")
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{args.folder}: not a folder")

    # --8<-- [start:triage]
    reports, errors = [], []
    for path in sorted(p for p in args.folder.iterdir() if p.is_file() and p.suffix != ".md"):
        try:
            reports.append(diagnose_file(str(path), args.lang))
        except DumpError as error:
            errors.append(str(error))
    reports.sort(key=lambda r: (ORDER[r["verdict"]], (SEVERITIES + ("-",)).index(worst(r)), r["source"]))
    # --8<-- [end:triage]

    print(f"{len(reports)} dumps, worst first\n")
    print(f"{'file':<40} {'format':<17} {'verdict':<8} findings (severity id)")
    for report in reports:
        found = ", ".join(f"{f['severity']} {f['id']}" for f in report["findings"]) or "none"
        print(f"{Path(report['source']).name:<40} {report['format']:<17} {report['verdict']:<8} {found}")
    for error in errors:
        print(f"not a dump: {error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
