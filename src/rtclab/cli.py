"""The ``rtclab`` command: list the network profiles, and probe one with a short loopback call whose report
(connect time, RTT, jitter, loss, freezes, MOS and a verdict against published thresholds) a person can read.

Run ``rtclab --help`` (or ``python -m rtclab --help``). This module parses the arguments and prints; the call,
the measurements and the verdict are `rtclab.probe`'s. Exit codes: 0 when the command ran (whatever the
verdict), 1 when the call did not connect, 2 on a bad argument or profile.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from rtclab.freezes import FREEZE_THRESHOLDS_MS
from rtclab.probe import (
    DEFAULT_SECONDS,
    GOOD,
    SECONDS_RANGE,
    THRESHOLDS,
    ProbeError,
    ProbeReport,
    _link_dict,
    format_percent,
    run_probe,
)
from rtclab.profiles import Link as ProfileLink
from rtclab.profiles import Profile, ProfileError, get_profile, load_profiles

__all__ = ["format_profiles", "format_report", "main", "profile_rows"]


# --- text output ---------------------------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _pair(up: float | None, down: float | None, digits: int = 2) -> str:
    a, b = _num(up, digits), _num(down, digits)
    return a if a == b else f"{a}/{b}"


def _hosts(profile: Profile) -> list[str]:
    hosts: list[str] = []
    for source in profile.sources:
        host = urlsplit(source.url).hostname if source.url else None
        if host:
            host = host.removeprefix("www.")
            if host not in hosts:
                hosts.append(host)
    return hosts


def profile_rows(profiles: Iterable[Profile]) -> list[dict[str, Any]]:
    """The profiles as plain data for ``rtclab profiles --json``: the file format plus derived numbers.

    Args:
        profiles: Profiles, e.g. ``load_profiles().values()``.

    Returns:
        One dict per profile, with the same keys for every profile: those of
        `rtclab.profiles.Profile.to_dict` (``blackouts``, ``assumed`` and ``notes`` always present)
        plus ``rtt_ms`` and ``source_hosts``; each direction also gets ``mean_loss``.
    """
    rows = []
    for profile in profiles:
        row = profile.to_dict()
        row.setdefault("blackouts", [])
        row.setdefault("assumed", [])
        row.setdefault("notes", "")
        for direction in ("uplink", "downlink"):
            row[direction] = _link_dict(getattr(profile, direction))
        row["rtt_ms"] = profile.rtt_ms
        row["source_hosts"] = _hosts(profile)
        rows.append(row)
    return rows


def format_profiles(profiles: Iterable[Profile]) -> str:
    """Format profiles as a table: one line each, up/down values as ``up/down`` where they differ.

    Args:
        profiles: The profiles to list.

    Returns:
        The table and a legend, without a trailing newline.
    """
    header = [
        "name",
        "up kbit/s",
        "down kbit/s",
        "delay ms",
        "jitter ms",
        "loss %",
        "burst",
        "blackouts",
        "source",
    ]
    rows: list[list[str] | None] = [header, None]
    for p in profiles:
        up, down = p.uplink, p.downlink
        bursts = [link.burst.mean_burst_packets if link.burst else None for link in (up, down)]
        hosts = _hosts(p)
        rows.append(
            [
                p.name,
                "no cap" if up.rate_kbps is None else _num(up.rate_kbps),
                "no cap" if down.rate_kbps is None else _num(down.rate_kbps),
                _pair(up.delay_ms, down.delay_ms),
                _pair(up.jitter_ms, down.jitter_ms),
                _pair(up.mean_loss * 100, down.mean_loss * 100),
                "-" if bursts == [None, None] else _pair(*bursts, digits=1) + " pkts",
                ", ".join(f"{_num(b.start_s)}-{_num(b.start_s + b.duration_s)} s" for b in p.blackouts)
                or "-",
                (hosts[0] + (f" +{len(hosts) - 1}" if len(hosts) > 1 else "")) if hosts else "-",
            ]
        )
    legend = [
        "",
        "delay: one way; up/down where the two directions differ; loss: long-run mean, bursts included;",
        "burst: mean packets lost in a row; blackouts: seconds after the call starts; source: host of the",
        "first source (+N more). Add --json for every field, sources and notes included.",
    ]
    return "\n".join(_table(rows, right=range(1, 6)) + legend)


def _table(rows: Sequence[Sequence[str] | None], right: Iterable[int] = ()) -> list[str]:
    """Lay rows out in columns, two spaces apart; columns in ``right`` are right-aligned; None is a rule."""
    right = set(right)
    cells = [row for row in rows if row is not None]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return [
        "  ".join(
            "-" * width if row is None else row[i].rjust(width) if i in right else row[i].ljust(width)
            for i, width in enumerate(widths)
        ).rstrip()
        for row in rows
    ]


def _describe_link(link: ProfileLink) -> str:
    rate = "no cap" if link.rate_kbps is None else f"{_num(link.rate_kbps)} kbit/s"
    loss = f"{_num(link.mean_loss * 100)} % loss"
    if link.burst is not None:
        loss += f" in bursts of {_num(link.burst.mean_burst_packets, 1)} packets"
    return f"{rate}, {_num(link.delay_ms)} ms one way, jitter {_num(link.jitter_ms)} ms, {loss}"


def _profile_lines(report: ProbeReport) -> list[str]:
    p = report.profile
    lines = [
        f"rtclab probe: {p.name} ({report.profile_source}), {_num(report.seconds)} s, loopback only, "
        f"seed {report.seed}",
        f"  models     {p.description}",
        f"  uplink     {_describe_link(p.uplink)}  (carries the media)",
        f"  downlink   {_describe_link(p.downlink)}  (carries RTCP back)",
    ]
    for b in report.blackouts():
        end = b["start_s"] + b["duration_s"]
        where = (
            "inside the probe"
            if b["in_probe"]
            else f"after the probe: --seconds {math.ceil(end) + 1} covers it"
        )
        lines.append(f"  blackout   {_num(b['start_s'])}-{_num(end)} s, {where}")
    lines.append(f"  sources    {', '.join(_hosts(p)) or 'no URL given'}")
    if p.assumed:
        lines.append(f"  assumed    {', '.join(p.assumed)} (no source gives these numbers)")
    return lines


def _measurement_lines(report: ProbeReport) -> list[str]:
    p = report.profile
    first = "".join(
        f", first {kind} frame {_num(m.first_frame_ms, 0)} ms"
        for kind, m in report.media.items()
        if m.first_frame_ms is not None
    )
    connect = "did not connect" if report.connect_ms is None else f"{report.connect_ms:.0f} ms"
    lines = [f"Connect      {connect} (ICE + DTLS through the impaired links){first}"]
    if report.rtt_ms:
        lines.append(
            f"RTT          median {report.rtt_median_ms:.0f} ms, p95 {report.rtt_p95_ms:.0f} ms "
            f"({len(report.rtt_ms)} reading{'s' if len(report.rtt_ms) != 1 else ''} from receiver reports; the "
            f"profile's delays add up to "
            f"{_num(p.rtt_ms)} ms)"
        )
        if report.media_s is not None and report.media_s > report.seconds + 0.5:
            lines.append(
                f"             media flowed {report.media_s:.1f} s, not {_num(report.seconds)} s: no RTT had come "
                "back sooner"
            )
    else:
        lines.append(
            "RTT          not measured: no receiver report answered a sender report (RTCP lost or queued)"
        )
    loss = report.loss_pct
    lines.append(f"Loss         {format_percent(loss)} of RTP packets, audio and video")
    for direction, counters in report.links.items():
        drops = ", ".join(
            f"{name.removeprefix('dropped_')} {n}"
            for name, n in counters.items()
            if name.startswith("dropped_") and n
        )
        lines.append(
            f"{direction.capitalize():<12} {counters['sent']} datagrams sent, {counters['delivered']} delivered, "
            + (f"dropped: {drops}" if drops else "none dropped")
        )
    lines.append("")

    media = list(report.media.values())
    gaps = "/".join(_num(FREEZE_THRESHOLDS_MS[m.kind]) for m in media)
    rows = [
        ["", *(m.kind for m in media)],
        ["packets sent", *(str(m.packets_sent) for m in media)],
        [
            "packets received",
            *("-" if m.packets_received is None else str(m.packets_received) for m in media),
        ],
        ["loss", *(format_percent(m.loss_pct) + ("" if m.loss_basis == "arrivals" else " *") for m in media)],
        [
            "jitter, median of reports",
            *("-" if m.jitter_ms is None else f"{m.jitter_ms:.1f} ms" for m in media),
        ],
        ["bitrate sent", *("-" if m.bitrate_kbps is None else f"{m.bitrate_kbps:.0f} kbit/s" for m in media)],
        ["frames decoded", *(str(m.frames) for m in media)],
        [f"freezes > {gaps} ms", *("-" if m.freeze is None else str(len(m.freeze.events)) for m in media)],
        [
            "frozen time",
            *(
                "-" if m.freeze is None else f"{m.freeze.frozen_s:.1f} s ({m.freeze.freeze_rate * 100:.1f} %)"
                for m in media
            ),
        ],
    ]
    lines += _table(rows, right=range(1, len(media) + 1))
    if any(m.loss_basis != "arrivals" for m in media):
        lines.append(
            "* from RTCP receiver reports, a lower bound: the receiver's count of arrivals could not be read"
        )
    lines.append("")
    mos = report.mos
    if mos is None:
        lines.append(f"MOS          no estimate ({report.mos_problem})")
    else:
        lines.append(f"MOS          {str(mos).removeprefix('MOS ')}")
        lines.append(
            f"             mouth-to-ear {mos.one_way_delay_ms:.0f} ms = RTT/2 + {mos.jitter_buffer_ms:.0f} ms jitter "
            f"buffer, network loss {format_percent(mos.loss_fraction * 100)}"
        )
    return lines


def _verdict_lines(report: ProbeReport) -> list[str]:
    checks = report.checks
    below = sum(c.level != GOOD for c in checks)
    lines = [f"Verdict: {report.verdict.upper()} ({below} of {len(checks)} checks below 'good')"]
    lines += [
        "  " + line
        for line in _table([[c.level, f"[{c.rule_set}]", f"{c.subject}: {c.reason}"] for c in checks])
    ]
    lines += ["", "Rule sets"]
    used: dict[str, str] = {}
    for check in checks:
        for key in check.thresholds:
            used.setdefault(THRESHOLDS[key].rule_set, THRESHOLDS[key].url)
    lines += ["  " + line for line in _table([[rule_set, url] for rule_set, url in used.items()])]
    return lines


def format_report(report: ProbeReport) -> str:
    """Format a probe report for a person: the profile, the measurements, the verdict and its sources.

    Args:
        report: A probe's report.

    Returns:
        The text, without a trailing newline.
    """
    return "\n".join([*_profile_lines(report), "", *_measurement_lines(report), "", *_verdict_lines(report)])


# --- the command line ----------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with usage errors reported on one line as ``rtclab: error: ...`` (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(2, f"rtclab: error: {text} (see '{self.prog} --help')\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    low, high = SECONDS_RANGE
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{text} is not between {low:g} and {high:g} seconds")
    return value


def _parser() -> _Parser:
    parser = _Parser(
        prog="rtclab",
        description="Last Mile Academy's lab toolkit: network profiles, a loopback call probe and call diagnosis from stats files.",
        epilog="Exit codes: 0 ran, 1 the call did not connect, 2 bad argument or profile.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    listing = commands.add_parser(
        "profiles",
        help="list the network profiles",
        description="List the built-in network profiles, or those of a YAML/JSON profile file.",
    )
    listing.add_argument(
        "--file", metavar="PATH", help="list this profile file instead (only read, never written)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")

    probe = commands.add_parser(
        "probe",
        help="run a loopback call under a profile and judge it",
        description=(
            "Run a loopback call (audio + video, 127.0.0.1 only) under a profile's uplink and downlink "
            "impairments and report connect time, RTT, jitter, loss, freezes, an estimated MOS and a verdict "
            "against published thresholds."
        ),
    )
    probe.add_argument(
        "--profile",
        required=True,
        metavar="NAME_OR_FILE",
        help="a built-in profile name (see 'rtclab profiles'), a file with one profile, or FILE#NAME",
    )
    probe.add_argument(
        "--seconds",
        type=_seconds,
        default=DEFAULT_SECONDS,
        metavar="N",
        help=f"how long media flows after connecting (default {DEFAULT_SECONDS:g}, {SECONDS_RANGE[0]:g}-{SECONDS_RANGE[1]:g})",
    )
    probe.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seed of the random impairments (default 0)"
    )
    probe.add_argument("--json", action="store_true", help="print the report as JSON")

    check = commands.add_parser(
        "diagnose",
        help="diagnose calls from their stats files (webrtc-internals, rtcstats, rtclab)",
        description=(
            "Read call-stats files (Chrome's webrtc-internals dump, an rtcstats dump, or rtclab's JSON; "
            "the format is told by content) and report per connection whether it connected, its path, RTT, "
            "loss, jitter, concealment, freezes and an estimated MOS, then findings graded P1-P4 with the "
            "runbook for each. Files are only read."
        ),
        epilog="Exit codes: 0 every file diagnosed, 2 a file could not be read (the others are still reported).",
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="a dump file (several allowed)")
    check.add_argument(
        "--json", action="store_true", help="print the report as JSON (schema 1; a list for several files)"
    )
    check.add_argument(
        "--lang", choices=("en", "zh"), default="en", help="language of the report (default en)"
    )
    check.add_argument(
        "--html", metavar="OUT", help="also write a self-contained HTML report (never overwrites)"
    )
    check.add_argument(
        "--incident",
        metavar="OUT",
        help="also write a pre-filled incident review in Markdown (never overwrites)",
    )
    return parser


def _fail(message: str, code: int) -> int:
    print(f"rtclab: error: {' '.join(str(message).split())}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rtclab`` command.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code: 0 ran (whatever the verdict), 1 the call did not connect, 2 bad argument or profile,
        130 interrupted. Every error is one line on stderr starting with ``rtclab: error:``.
    """
    args = _parser().parse_args(argv)
    if args.command == "diagnose":
        return _diagnose(args)
    try:
        if args.command == "profiles":
            return _list_profiles(args.file, as_json=args.json)
        profile = get_profile(args.profile)
    except (ProfileError, OSError, ValueError) as error:
        return _fail(str(error), 2)

    source = "built-in" if args.profile in load_profiles() else args.profile
    try:
        report = asyncio.run(run_probe(profile, seconds=args.seconds, seed=args.seed, profile_source=source))
    except ProbeError as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    print(json.dumps(report.to_dict(), indent=2, allow_nan=False) if args.json else format_report(report))
    return 0


def _write_new(path: str, text: str) -> str | None:
    """Write a new file; the error line if it exists or cannot be written (nothing a user wrote is replaced)."""
    try:
        with open(path, "x", encoding="utf-8") as out:
            out.write(text)
    except FileExistsError:
        return f"{path}: already exists; choose another name (rtclab never overwrites a file)"
    except OSError as error:
        return f"{path}: {error.strerror or error}"
    return None


def _diagnose(args: argparse.Namespace) -> int:
    from rtclab.diagnose import diagnose_file
    from rtclab.diagnose_report import format_text, incident_review, render_html
    from rtclab.dumps import DumpError

    for out in (args.html, args.incident):
        if out and Path(out).exists():  # checked first, so a long run never ends in a refusal
            return _fail(f"{out}: already exists; choose another name (rtclab never overwrites a file)", 2)
    reports, failed = [], False
    for path in args.paths:
        try:
            reports.append(diagnose_file(path, args.lang))
        except DumpError as error:
            failed = True
            _fail(str(error), 2)
            if args.json:
                reports.append({"schema": 1, "source": path, "error": error.problem})
    good = [r for r in reports if "error" not in r]
    if args.json:
        print(
            json.dumps(
                reports[0] if len(args.paths) == 1 and reports else reports,
                indent=2,
                ensure_ascii=False,
                allow_nan=False,
            )
        )
    else:
        print("\n\n".join(format_text(r, args.lang) for r in good))
    if args.html and good and (problem := _write_new(args.html, render_html(good, args.lang))):
        return _fail(problem, 2)
    if args.incident and good:
        text = "\n".join(incident_review(r, args.lang) for r in good)
        if problem := _write_new(args.incident, text):
            return _fail(problem, 2)
    return 2 if failed else 0


def _list_profiles(path: str | None, *, as_json: bool) -> int:
    profiles = list(load_profiles(path).values())  # raises ProfileError before anything is printed
    source = "built-in" if path is None else str(Path(path))
    if as_json:
        print(json.dumps({"source": source, "profiles": profile_rows(profiles)}, indent=2, allow_nan=False))
        return 0
    count = f"{len(profiles)} profile{'s' if len(profiles) != 1 else ''}"
    if path is None:
        print(f"{count} in rtclab/data/profiles.yaml; 'rtclab probe --profile NAME' runs one")
    else:
        print(f"{count} in {source}; 'rtclab probe --profile {source}#NAME' runs one")
    print()
    print(format_profiles(profiles))
    return 0


if __name__ == "__main__":
    sys.exit(main())
