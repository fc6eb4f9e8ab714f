"""Diagnose one player's dump from Python: the connection's path and figures, then the findings.

`rtclab diagnose FILE` does the same on the command line. From Python you get the report as data, the same
shape `--json` prints, so a support tool or a ticket bot can act on it: here it prints the selected
candidate pair, the RTT, each stream's loss and jitter, the MOS with its delay and loss parts, and each
finding with the runbook that fixes it.

Run it (the default is the dump this project captured from Chromium calling aiortc under a 3G profile):

    .venv/bin/python samples/support/diagnose_dump.py
    .venv/bin/python samples/support/diagnose_dump.py path/to/dump.json --lang zh
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtclab.diagnose import diagnose_file
from rtclab.dumps import DumpError

DEFAULT = Path(__file__).parent / "dumps" / "3g.webrtc-internals.json"


def spread(stats: dict | None, unit: str) -> str:
    return "-" if not stats else f"p50 {stats['p50']:g} / p95 {stats['p95']:g} {unit}"


# --8<-- [start:main]
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dump", nargs="?", type=Path, default=DEFAULT, help="the dump (default: %(default)s)")
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="language of the findings")
    args = parser.parse_args()
    try:
        report = diagnose_file(str(args.dump), args.lang)
    except DumpError as error:
        print(f"diagnose_dump: {error}", file=sys.stderr)  # one line, the file and what is wrong
        return 2

    print(f"{args.dump.name}: {report['format']} dump, verdict {report['verdict']}")
    for connection in report["connections"]:
        pair = connection["candidate_pair"] or {}
        path = f"{pair.get('local_type')} -> {pair.get('remote_type')} over {pair.get('protocol')}"
        print(f"\nconnection {connection['id']}: {connection['ice_outcome']}, {path}")
        print(f"  RTT {spread(connection['rtt_ms'], 'ms')}")
        for stream in connection["streams"]:
            loss = "-" if stream["loss_pct"] is None else f"{stream['loss_pct']:g} %"
            print(
                f"  {stream['direction']:<8} {stream['kind']:<5} loss {loss:<8} jitter {spread(stream['jitter_ms'], 'ms')}"
            )
        mos = connection["mos"]
        if mos:
            # Id is what delay costs, Ie-eff what loss costs: the bigger one is the one to fix first.
            print(
                f"  MOS {mos['mos']:.2f}: R {mos['r']:g} = 93.2 - Id {mos['id']:g} - Ie-eff {mos['ie_eff']:g}"
            )

    print("\nfindings")
    for finding in report["findings"]:
        where = finding["stream"] or finding["connection"]
        print(f"  {finding['severity']} {finding['id']:<18} {finding['value']} {finding['unit']} on {where}")
        print(f"     {finding['title']} -> {finding['runbook']}")
    if not report["findings"]:
        print("  none")
    return 0


# --8<-- [end:main]


if __name__ == "__main__":
    sys.exit(main())
