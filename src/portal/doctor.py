"""Check that this machine has what Last Mile Academy needs, and install what is missing when it can.

    python3 src/portal/doctor.py                     # `make doctor`: every requirement, found or missing
    python3 src/portal/doctor.py --for serve         # only what `make serve` needs (port 8000 included)
    python3 src/portal/doctor.py --for test --install   # what `make test` and .ci/run do first

It checks the Python version, the system packages in system-packages.toml, the Node.js version, the
ports a target serves on and the free disk. For anything missing it prints the one command that fixes
it. With --install, missing Debian packages are installed with apt-get when that needs no password
(root, as in CI, or passwordless sudo); otherwise it stops at once with the command to run.
Exit 0 only when everything is there.

It runs with the system's python3 before any environment exists, so it uses the standard library only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES_FILE = ROOT / "system-packages.toml"
MIN_PYTHON = (3, 11)  # pyproject.toml: requires-python
MIN_NODE = (18, 16)  # Lighthouse 12's engines field
PORTS = {"serve": [8000]}  # mkdocs serve -a 127.0.0.1:8000
MIN_FREE_GB = {"fresh": 3.0, "set up": 1.0}  # .venv ~0.7 GB, node_modules ~0.2 GB, build/ ~0.5 GB
TARGETS = ("serve", "test")  # what a package's `for` may name
CHOICES = ("serve", "build", "test")  # build: what serve needs, without its port
README_START = "<!-- system-packages: generated from system-packages.toml by `python3 src/portal/doctor.py --readme-table` -->"
README_END = "<!-- /system-packages -->"


@dataclass(frozen=True)
class Package:
    name: str
    found_by: str
    targets: tuple[str, ...]
    needed_by: str
    why: str

    def is_installed(self) -> bool:
        if self.found_by.startswith("python-module:"):
            return importlib.util.find_spec(self.found_by.split(":", 1)[1]) is not None
        if self.found_by.startswith("/"):
            return Path(self.found_by).exists()
        return shutil.which(self.found_by) is not None


@dataclass
class Check:
    label: str
    ok: bool
    detail: str = ""
    fix: str = ""


class PackagesFileError(Exception):
    """system-packages.toml is unreadable or an entry lacks a field; the message names the field."""


def load_packages(path: Path | None = None) -> list[Package]:
    import tomllib  # only after the Python version check: tomllib is 3.11+

    path = path or PACKAGES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise PackagesFileError(f"{path.name}: {error}") from None
    packages = []
    for index, entry in enumerate(data.get("package", []), start=1):
        for field in ("name", "found_by", "for", "needed_by", "why"):
            if field not in entry:
                raise PackagesFileError(f"{path.name}: package {index}: missing field {field!r}")
        unknown = set(entry["for"]) - set(TARGETS)
        if unknown:
            raise PackagesFileError(
                f"{path.name}: package {entry['name']}: for: {sorted(unknown)} (allowed: {', '.join(TARGETS)})"
            )
        packages.append(
            Package(entry["name"], entry["found_by"], tuple(entry["for"]), entry["needed_by"], entry["why"])
        )
    return packages


def check_python() -> Check:
    version = ".".join(map(str, sys.version_info[:3]))
    ok = sys.version_info[:2] >= MIN_PYTHON
    wanted = ".".join(map(str, MIN_PYTHON))
    return Check(
        f"Python {version}",
        ok,
        f"{sys.executable} (needs >= {wanted})",
        ""
        if ok
        else f"install Python {wanted} or newer and run make with it first on PATH (Debian 12: apt-get install python3)",
    )


def check_node() -> Check | None:
    node = shutil.which("node")
    if node is None:
        return None  # reported as the missing nodejs package
    try:
        output = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        output = ""
    match = re.match(r"v(\d+)\.(\d+)", output.strip())
    wanted = ".".join(map(str, MIN_NODE))
    if not match:
        return Check(
            "Node.js version", False, f"{node} --version printed {output.strip()!r}", "reinstall nodejs"
        )
    found = (int(match[1]), int(match[2]))
    ok = found >= MIN_NODE
    return Check(
        f"Node.js {output.strip()}",
        ok,
        f"needs >= {wanted}",
        "" if ok else f"install Node.js {wanted} or newer (https://nodejs.org/en/download/package-manager)",
    )


def check_port(port: int) -> Check:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
            ok = True
        except OSError:
            ok = False
    return Check(
        f"port 127.0.0.1:{port}",
        ok,
        "free" if ok else "in use",
        "" if ok else f"stop what listens there (ss -ltnp 'sport = :{port}' shows it)",
    )


def check_disk() -> Check:
    set_up = (ROOT / ".venv").exists() and (ROOT / "node_modules").exists()
    needed = MIN_FREE_GB["set up" if set_up else "fresh"]
    free = shutil.disk_usage(ROOT).free / 1e9
    ok = free >= needed
    return Check(
        "disk",
        ok,
        f"{free:.1f} GB free in {ROOT} (needs {needed:g} GB)",
        "" if ok else f"free at least {needed - free:.1f} GB more on that disk",
    )


def install_command(names: list[str]) -> list[str]:
    """apt-get, as root or through sudo; a prefix of `sudo` only where the user is not root."""
    prefix = [] if os.geteuid() == 0 else ["sudo"]
    return [*prefix, "apt-get", "install", "-y", "--no-install-recommends", *names]


def can_install_without_password() -> bool:
    if shutil.which("apt-get") is None:
        return False
    if os.geteuid() == 0:
        return True
    if shutil.which("sudo") is None:
        return False
    return subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


def install(names: list[str]) -> bool:
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    print(f"doctor: installing {' '.join(names)} with apt-get ...", flush=True)
    update = [*sudo, "apt-get", "update", "-qq"]
    add = [*sudo, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *names]
    for command in (update, add):
        result = subprocess.run(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no message"])[-1]
            print(f"doctor: {' '.join(command)} failed: {last}", file=sys.stderr)
            return False
    return True


def run_checks(target: str | None, packages: list[Package]) -> tuple[list[Check], list[Package]]:
    needs = "serve" if target == "build" else target
    wanted = [p for p in packages if needs is None or needs in p.targets]
    missing = [p for p in wanted if not p.is_installed()]
    checks = [check_python()]
    for package in wanted:
        ok = package not in missing
        checks.append(Check(package.name, ok, package.needed_by, ""))
    node = check_node()
    if node:
        checks.append(node)
    for name in [target] if target else TARGETS:
        checks += [check_port(port) for port in PORTS.get(name, [])]
    checks.append(check_disk())
    return checks, missing


def print_report(target: str | None, checks: list[Check], missing: list[Package]) -> None:
    print(f"doctor: what {'make ' + target if target else 'Last Mile Academy'} needs")
    for check in checks:
        print(f"  {'ok' if check.ok else 'MISSING':<8} {check.label:<22} {check.detail}")
    if missing:
        names = [p.name for p in missing]
        if shutil.which("apt-get"):
            print(f"  fix: {' '.join(install_command(names))}")
        else:
            print(f"  fix: install these with your system's package manager: {' '.join(names)}")
    for check in checks:
        if not check.ok and check.fix:
            print(f"  fix: {check.fix}")


def readme_table(packages: list[Package]) -> str:
    rows = ["| package | needed by | why |", "| --- | --- | --- |"]
    rows += [f"| `{p.name}` | {p.needed_by} | {p.why} |" for p in packages]
    return "\n".join([README_START, *rows, README_END])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make doctor", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--for", dest="target", choices=CHOICES, help="check only what this make target needs"
    )
    parser.add_argument("--port", type=int, help="the port `make serve` will use (default 8000)")
    parser.add_argument(
        "--install", action="store_true", help="install missing packages if no password is needed"
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when everything is there")
    parser.add_argument("--readme-table", action="store_true", help="print the README's table of packages")
    args = parser.parse_args(argv)
    python = check_python()
    if not python.ok:
        print(f"doctor: {python.label} is too old: {python.fix}", file=sys.stderr)
        return 1
    try:
        packages = load_packages()
    except PackagesFileError as error:
        print(f"doctor: {error}", file=sys.stderr)
        return 2
    if args.readme_table:
        print(readme_table(packages))
        return 0
    if args.port:
        PORTS["serve"] = [args.port]
    checks, missing = run_checks(args.target, packages)
    if missing and args.install and can_install_without_password() and install([p.name for p in missing]):
        checks, missing = run_checks(args.target, packages)
    ok = all(check.ok for check in checks)
    if ok and args.quiet:
        return 0
    print_report(args.target, checks, missing)
    if not ok and args.install and missing and not can_install_without_password():
        print(
            "doctor: cannot install without a password; run the fix line above, then make again",
            file=sys.stderr,
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
