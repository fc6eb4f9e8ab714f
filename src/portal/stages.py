"""Run one stage of `make test`, time it, and print the timings of every stage at the end.

python -m portal.stages run NAME -- COMMAND...   # run COMMAND, record how long stage NAME took
                                                 # (as root: in a network namespace with only lo)
python -m portal.stages report                   # print the recorded timings
python -m portal.stages reset                    # forget them (start of a run)
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from portal.netns import available as netns_available
from portal.netns import loopback_only
from portal.paths import REPORTS

TIMINGS = REPORTS / "timings.json"


def _load() -> list[dict]:
    try:
        return json.loads(TIMINGS.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []


def run(name: str, command: list[str]) -> int:
    where = "  (network namespace with only lo)" if netns_available() else ""
    print(f"\n━━ {name}: {' '.join(command)}{where}", flush=True)
    started = time.monotonic()
    code = subprocess.call(loopback_only(command))
    seconds = round(time.monotonic() - started, 1)
    timings = [t for t in _load() if t["stage"] != name]
    timings.append({"stage": name, "seconds": seconds, "status": "passed" if code == 0 else "failed"})
    REPORTS.mkdir(parents=True, exist_ok=True)
    TIMINGS.write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")
    print(f"━━ {name}: {'ok' if code == 0 else 'FAILED'} in {seconds} s", flush=True)
    return code


def report() -> int:
    timings = _load()
    print("\nstage timings")
    for t in timings:
        print(f"  {t['stage']:<14} {t['seconds']:>7.1f} s  {t['status']}")
    print(f"  {'total':<14} {sum(t['seconds'] for t in timings):>7.1f} s")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and len(argv) >= 4 and argv[2] == "--":
        return run(argv[1], argv[3:])
    if argv == ["report"]:
        return report()
    if argv == ["reset"]:
        TIMINGS.unlink(missing_ok=True)
        return 0
    print("usage: python -m portal.stages run NAME -- COMMAND... | report | reset", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
