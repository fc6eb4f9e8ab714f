"""Prove that a command sends nothing past loopback: run it under `strace -f` and list every destination.

    python -m portal.traffic -- COMMAND...     # run COMMAND traced; exit 1 naming any process and address
                                               # that got a packet outside 127.0.0.0/8 and ::1

A destination counts when a packet was (or would have been) sent to it: a TCP connect(), a datagram sent
with an address (sendto, sendmsg, sendmmsg), or data written to a socket connected to it. A UDP connect()
alone sends nothing (Chromium connects UDP sockets to 8.8.8.8:53 only to learn its default route), so it
does not count. Failed calls count too: inside a namespace with only `lo` nothing can leave, and the
attempt is still the bug. The report goes to build/reports/traffic/<name>.txt.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from portal.paths import REPORTS

TRAFFIC = REPORTS / "traffic"
SYSCALLS = "connect,sendto,sendmsg,sendmmsg,write,writev,execve,clone,clone3,fork,vfork"

LINE = re.compile(r"^(?P<pid>\d+)\s+(?P<call>\w+)\((?P<args>.*)$")
# The socket annotation of `strace -yy`: 12<UDP:[127.0.0.1:5000->8.8.8.8:53]>, 7<TCPv6:[[::1]:80->[::1]:9]>
FD = re.compile(r"^\d+<(?P<proto>(?:TCP|UDP|UDPLITE|SCTP)(?:v6)?)(?::\[(?P<ends>.*?)\])?>")
IPV4 = re.compile(r'sin_port=htons\((?P<port>\d+)\), sin_addr=inet_addr\("(?P<addr>[^"]+)"\)')
IPV6 = re.compile(r'sin6_port=htons\((?P<port>\d+)\).*?inet_pton\(AF_INET6, "(?P<addr>[^"]+)"')
PEER = re.compile(r"->\[?(?P<addr>[0-9a-fA-F.:]+?)\]?:(?P<port>\d+)$")
EXECVE = re.compile(r'^"(?P<path>[^"]*)"')
CHILD = re.compile(r"= (?P<child>\d+)$")


@dataclass(frozen=True)
class Packet:
    """One destination outside loopback that a process sent to (or tried to)."""

    process: str
    pid: int
    call: str
    protocol: str
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.process} (pid {self.pid}) {self.call} {self.protocol} -> {self.address}:{self.port}"


def is_loopback(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    # 0.0.0.0 and :: as a destination mean "this host" on Linux.
    return ip.is_loopback or ip.is_unspecified


def _addresses(args: str) -> list[tuple[str, int]]:
    found = [(m["addr"], int(m["port"])) for m in IPV4.finditer(args)]
    return found + [(m["addr"], int(m["port"])) for m in IPV6.finditer(args)]


def destinations(lines: Iterable[str]) -> Iterator[Packet]:
    """Every non-loopback destination in `strace -f -yy` output (one line per call, `-s 0`)."""
    names: dict[int, str] = {}
    for line in lines:
        match = LINE.match(line.rstrip("\n"))
        if not match:
            continue  # "<... resumed>" halves and signals: the first half holds fd and address
        pid, call, args = int(match["pid"]), match["call"], match["args"]
        if call == "execve":
            if exe := EXECVE.match(args):
                names[pid] = os.path.basename(exe["path"])
            continue
        if call in {"clone", "clone3", "fork", "vfork"}:
            if child := CHILD.search(args):
                names.setdefault(int(child["child"]), names.get(pid, "?"))
            continue
        socket = FD.match(args)
        if not socket:
            continue  # files, pipes, Unix and netlink sockets
        protocol = socket["proto"]
        peer = PEER.search(socket["ends"] or "")
        if call == "connect":
            if protocol.startswith("UDP"):
                continue  # sets the default destination, sends nothing
            targets = _addresses(args)
        elif call in {"sendto", "sendmsg", "sendmmsg"}:
            targets = _addresses(args) or ([(peer["addr"], int(peer["port"]))] if peer else [])
        else:  # write, writev on a connected socket
            targets = [(peer["addr"], int(peer["port"]))] if peer else []
        for address, port in targets:
            if not is_loopback(address):
                yield Packet(names.get(pid, "?"), pid, call, protocol.lower(), address, port)


def traced(command: list[str], raw: Path) -> list[str]:
    return [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-s",
        "0",
        "-yy",
        "-e",
        f"trace={SYSCALLS}",
        "-o",
        str(raw),
        *command,
    ]


def run(name: str, command: list[str]) -> int:
    """Run `command` traced; return its exit code, or 1 when it sent anything past loopback."""
    if shutil.which("strace") is None:
        print(
            "traffic: strace is not installed: run `apt-get install strace` (or make doctor)", file=sys.stderr
        )
        return 2
    TRAFFIC.mkdir(parents=True, exist_ok=True)
    raw, report = TRAFFIC / f"{name}.strace", TRAFFIC / f"{name}.txt"
    code = subprocess.call(traced(command, raw))
    if not raw.exists() or " execve(" not in raw.read_text(encoding="utf-8", errors="replace")[:4096]:
        # strace could not attach (a process has one tracer: this one may already be traced), so it proves nothing.
        print(f"traffic: {name}: strace recorded nothing; run it outside another strace", file=sys.stderr)
        raw.unlink(missing_ok=True)
        return 2
    with raw.open(encoding="utf-8", errors="replace") as lines:
        packets = Counter(destinations(lines))
    raw.unlink()  # hundreds of MB for a whole stage; the report keeps what matters
    summary = [f"traffic of: {' '.join(command)}", f"destinations outside loopback: {len(packets)}"]
    summary += [f"  {packet}  x{count}" for packet, count in sorted(packets.items(), key=str)]
    report.write_text("\n".join(summary) + "\n", encoding="utf-8")
    if packets:
        print(f"traffic: {name}: sent past loopback ({report}):", file=sys.stderr)
        for line in summary[2:22]:
            print(line, file=sys.stderr)
        return code or 1
    print(f"traffic: {name}: every packet stayed on loopback (report: {report})")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.traffic", description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="command", help="report name under build/reports/traffic/")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- COMMAND...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command after --")
    return run(args.name, command)


if __name__ == "__main__":
    sys.exit(main())
