"""Run a command in a fresh network namespace that has only `lo`, where this user may create one (root).

`make test` runs each of its stages this way in CI, so nothing a test, sample or browser does can reach
past 127.0.0.1 even by mistake; portal.traffic proves, under strace, that nothing tried. Where the user
is not root (or LMA_NETNS=0), the command runs as it is.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

# `ip link set lo up`: a new namespace's loopback starts down.
BRING_UP_LO = 'ip link set lo up && exec "$@"'


@functools.cache
def available() -> bool:
    if os.environ.get("LMA_NETNS", "1") == "0" or os.geteuid() != 0:
        return False
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "--net", "sh", "-c", BRING_UP_LO, "sh", "true"], capture_output=True)
    return probe.returncode == 0


def loopback_only(command: list[str]) -> list[str]:
    """`command`, wrapped to run in a namespace with only `lo` when that is available."""
    if not available():
        return command
    return ["unshare", "--net", "sh", "-c", BRING_UP_LO, "lma-netns", *command]
