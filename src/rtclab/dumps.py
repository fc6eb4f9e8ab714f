"""Read the call-stats files that real browsers and apps produce into one shape: per peer connection, its
state changes and a time series of every field of every stats object.

Three families of file, told apart by their content, never by their name:

- ``webrtc-internals``: the JSON that Chrome's ``chrome://webrtc-internals`` page downloads ("Create a
  WebRTC-Internals dump"). ``PeerConnections`` maps each connection to its ``updateLog`` (API calls and state
  changes) and its ``stats``: one entry per ``<stats id>-<field>`` holding ``statsType``, ``startTime``,
  ``endTime`` and ``values``, a JSON-encoded array of one value per getStats() poll. Chrome before about M90
  wrote no ``statsType``; the type is then read from the id (``RTCInboundRTPAudioStream_1234``).
- ``rtcstats``: one JSON value per line, as rtcstats.js and ``@jitsi/rtcstats`` send them to an rtcstats
  server: ``[method, connection id, payload, timestamp, ...]``. ``getstats`` payloads are delta-compressed
  (a field that did not change since the last poll is left out, a stats object that is gone is left out
  entirely, a timestamp equal to the poll's ``timestamp`` is written as 0).
- ``rtclab``: what ``rtclab probe --json`` prints, and the stats timelines `timeline_json` writes.

Every problem is a `DumpError` whose ``str()`` is one line naming the file and what is wrong, so a command
line can print it and exit 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_BYTES",
    "Connection",
    "Dump",
    "DumpError",
    "StatSeries",
    "parse_dump",
    "read_dump",
    "timeline_json",
]

MAX_BYTES = 25_000_000
"""Largest file read. A 10-minute call with a few streams dumps 2-5 MB; 25 MB leaves room and still keeps a
browser tab and the command line responsive."""
MAX_VALUES = 200_000
"""Most values in one series: a poll a second for more than two days. Beyond that the file is not a dump."""
MAX_DEPTH = 64
"""Deepest nesting accepted: real dumps nest four or five levels; much deeper is a hostile file."""

FORMATS = ("webrtc-internals", "rtcstats", "rtclab")

# Chrome before about M90: no statsType, the type is only in the id's prefix. Longest prefixes first, so that
# RTCRemoteInboundRtp... is not taken for RTCInboundRTP... (the comparison ignores case).
LEGACY_ID_TYPES = (
    ("RTCRemoteInboundRtp", "remote-inbound-rtp"),
    ("RTCRemoteOutboundRTP", "remote-outbound-rtp"),
    ("RTCInboundRTP", "inbound-rtp"),
    ("RTCOutboundRTP", "outbound-rtp"),
    ("RTCIceCandidatePair", "candidate-pair"),
    ("RTCIceCandidate", "candidate"),  # local or remote: isRemote tells
    ("RTCTransport", "transport"),
    ("RTCMediaStreamTrack", "track"),
    ("RTCMediaStream", "stream"),
    ("RTCAudioSource", "media-source"),
    ("RTCVideoSource", "media-source"),
    ("RTCCodec", "codec"),
    ("RTCCertificate", "certificate"),
    ("RTCPeerConnection", "peer-connection"),
    ("RTCDataChannel", "data-channel"),
)

# updateLog / rtcstats event names that carry a state, and the state they carry.
STATE_EVENTS = {
    "iceconnectionstatechange": "ice",
    "oniceconnectionstatechange": "ice",
    "connectionstatechange": "connection",
    "onconnectionstatechange": "connection",
    "icegatheringstatechange": "gathering",
    "onicegatheringstatechange": "gathering",
    "signalingstatechange": "signaling",
    "onsignalingstatechange": "signaling",
    "dtlsstatechange": "dtls",
}


class DumpError(ValueError):
    """A file that cannot be read as a dump; ``str()`` is one line: ``<file>: <what is wrong>``."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}")
        self.source = source
        self.problem = problem


@dataclass
class StatSeries:
    """One stats object over time.

    Attributes:
        id: The stats id.
        type: The W3C stats type (``inbound-rtp``, ``candidate-pair``...).
        fields: Field name to ``[(time in ms, value), ...]`` in time order; the time is None when the file
            gives none (the values are then in poll order).
    """

    id: str
    type: str
    fields: dict[str, list[tuple[float | None, Any]]] = field(default_factory=dict)

    def last(self, name: str) -> Any:
        """The field's last value, or None."""
        values = self.fields.get(name)
        return values[-1][1] if values else None

    def numbers(self, name: str) -> list[tuple[float | None, float]]:
        """The field's values that are finite numbers."""
        return [
            (t, float(v))
            for t, v in self.fields.get(name, ())
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
        ]


@dataclass
class Connection:
    """One peer connection: its state changes and its stats objects.

    Attributes:
        id: The connection's id in the file.
        states: ``(time in ms or None, what, value)`` in file order; ``what`` is ``ice``, ``connection``,
            ``gathering``, ``signaling`` or ``dtls``.
        stats: Stats id to its series.
    """

    id: str
    states: list[tuple[float | None, str, str]] = field(default_factory=list)
    stats: dict[str, StatSeries] = field(default_factory=dict)


@dataclass
class Dump:
    """A whole file.

    Attributes:
        source: The file name, as given.
        format: One of `FORMATS`.
        user_agent: The browser's user agent, when the file records it.
        connections: The peer connections, in file order.
        report: For ``rtclab`` files, the report as written (its numbers are already summarised).
    """

    source: str
    format: str
    user_agent: str | None
    connections: list[Connection]
    report: dict[str, Any] | None = None


# --- reading -------------------------------------------------------------------------------------------------


def read_dump(path: str | Path) -> Dump:
    """Read one file, whatever its format.

    Raises:
        DumpError: If the file cannot be read or is not a dump this module knows.
    """
    source = str(path)
    try:
        size = Path(path).stat().st_size
        if size > MAX_BYTES:
            raise DumpError(
                source, f"{size / 1e6:.1f} MB is larger than the {MAX_BYTES / 1e6:.0f} MB a dump can be"
            )
        data = Path(path).read_bytes()
    except OSError as error:
        raise DumpError(source, error.strerror or str(error)) from None
    return parse_dump(data, source)


def parse_dump(data: bytes | str, source: str = "<dump>") -> Dump:
    """Parse a dump from its bytes (or text).

    Raises:
        DumpError: If it is not a dump this module knows.
    """
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise DumpError(
                source, f"{len(data) / 1e6:.1f} MB is larger than the {MAX_BYTES / 1e6:.0f} MB a dump can be"
            )
        if b"\x00" in data[:4096]:
            raise DumpError(source, "a binary file, not a JSON or rtcstats dump")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise DumpError(source, f"not UTF-8 text (byte {error.start}); a dump is JSON") from None
    else:
        text = data
    text = text.strip()
    if not text:
        raise DumpError(source, "the file is empty")
    if text[0] not in "{[":
        raise DumpError(
            source, "not JSON: a dump starts with '{' (webrtc-internals, rtclab) or '[' (rtcstats)"
        )
    whole = _json(text, source, whole_file=True)
    if isinstance(whole, dict):
        if "PeerConnections" in whole:
            return _webrtc_internals(whole, source)
        if _is_rtclab(whole):
            return _rtclab(whole, source)
        raise DumpError(source, _not_a_dump(whole))  # one JSON object is never an rtcstats dump
    elif whole is not None:
        raise DumpError(source, "a JSON array, not a dump (rtcstats dumps hold one JSON value per line)")
    return _rtcstats(text, source)


def _json(text: str, source: str, *, whole_file: bool, line: int | None = None) -> Any:
    """Decode JSON; None when ``whole_file`` and the text is several JSON values (an rtcstats dump)."""
    where = f"line {line}: " if line else ""

    def refuse_constant(name: str) -> None:
        # json.loads reads NaN and Infinity, which JSON (and a browser's JSON.parse) does not have.
        raise DumpError(source, f"{where}not valid JSON (NaN and Infinity are not JSON)")

    try:
        value = json.loads(text, parse_constant=refuse_constant)
    except json.JSONDecodeError as error:
        if error.msg == "Extra data":
            if whole_file:
                return None
        elif error.pos >= len(text) - 1 or error.msg.startswith("Unterminated"):
            # An error at the very end, or an unterminated string: the text was cut short.
            raise DumpError(source, f"{where}the JSON ends early (truncated file?)") from None
        what = error.msg.removesuffix(" at")  # "Invalid control character at": the position follows
        raise DumpError(
            source, f"{where}not valid JSON ({what} at line {error.lineno} column {error.colno})"
        ) from None
    except RecursionError:
        raise DumpError(source, f"{where}JSON nested too deeply to be a dump") from None
    if _depth(value) > MAX_DEPTH:
        raise DumpError(source, f"{where}JSON nested more than {MAX_DEPTH} levels deep; not a dump")
    return value


def _depth(value: Any) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, level + 1) for child in children if isinstance(child, dict | list))
    return deepest


def _not_a_dump(value: Mapping[str, Any]) -> str:
    keys = ", ".join(sorted(value)[:5]) or "none"
    return (
        f"JSON, but not a dump: no 'PeerConnections' (webrtc-internals) and no rtclab report keys "
        f"(top-level keys: {keys})"
    )


def _time_ms(value: Any) -> float | None:
    """Milliseconds since the epoch from a number (ms) or a date string, or None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            pass
        for pattern in ("%m/%d/%Y, %I:%M:%S %p", "%d/%m/%Y, %H:%M:%S"):  # toLocaleString() in older dumps
            try:
                return datetime.strptime(text, pattern).timestamp() * 1000
            except ValueError:
                continue
    return None


def _legacy_type(stat_id: str) -> str | None:
    lowered = stat_id.lower()
    for prefix, stat_type in LEGACY_ID_TYPES:
        if lowered.startswith(prefix.lower()):
            return stat_type
    return None


def _candidate_type(series: StatSeries) -> None:
    """Legacy candidates: tell local from remote by ``isRemote``."""
    if series.type == "candidate":
        series.type = "remote-candidate" if series.last("isRemote") else "local-candidate"


def _webrtc_internals(whole: dict[str, Any], source: str) -> Dump:
    connections_in = whole.get("PeerConnections")
    if not isinstance(connections_in, dict):
        raise DumpError(source, "PeerConnections is not an object")
    connections = []
    for pc_id, record in connections_in.items():
        where = f"PeerConnections[{pc_id!r}]"
        if not isinstance(record, dict):
            raise DumpError(source, f"{where} is not an object")
        connection = Connection(id=str(pc_id))
        log = record.get("updateLog", [])
        if not isinstance(log, list):
            raise DumpError(source, f"{where}.updateLog is not a list")
        for event in log:
            if isinstance(event, dict) and str(event.get("type", "")).lower() in STATE_EVENTS:
                what = STATE_EVENTS[str(event["type"]).lower()]
                connection.states.append(
                    (
                        _time_ms(event.get("time", event.get("timestamp"))),
                        what,
                        str(event.get("value", "")).strip('"'),
                    )
                )
        stats = record.get("stats", {})
        if not isinstance(stats, dict):
            raise DumpError(source, f"{where}.stats is not an object")
        for key, entry in stats.items():
            # "<id>-<field>"; ids may hold "-" (codec ids), fields do not, except the series webrtc-internals
            # derives itself, such as "IT01V1-[framesReceived-framesDecoded-framesDropped]".
            key = str(key)
            stat_id, sep, name = key.partition("-[") if "-[" in key else key.rpartition("-")
            name = "[" + name if "-[" in key else name
            if not sep or not isinstance(entry, dict):
                continue  # not a series; webrtc-internals keeps nothing else here
            stat_type = entry.get("statsType") or _legacy_type(stat_id)
            if not stat_type:
                continue  # goog-era legacy stats (ssrc_..., Conn-...): not the standard API
            values = entry.get("values")
            if isinstance(values, str):
                values = _json(values, source, whole_file=False)
            if not isinstance(values, list):
                raise DumpError(source, f"{where}.stats[{key!r}].values is not an array")
            if len(values) > MAX_VALUES:
                raise DumpError(
                    source, f"{where}.stats[{key!r}] has {len(values)} values, more than {MAX_VALUES}"
                )
            series = connection.stats.setdefault(stat_id, StatSeries(id=stat_id, type=str(stat_type)))
            start, end = _time_ms(entry.get("startTime")), _time_ms(entry.get("endTime"))
            step = (
                (end - start) / (len(values) - 1)
                if start is not None and end is not None and len(values) > 1
                else None
            )
            series.fields[name] = [
                (start + i * step if step is not None else start, _decoded(v)) for i, v in enumerate(values)
            ]
        for series in connection.stats.values():
            _candidate_type(series)
        connections.append(connection)
    agent = whole.get("UserAgent") or whole.get("userAgent")
    return Dump(source, "webrtc-internals", agent if isinstance(agent, str) else None, connections)


def _decoded(value: Any) -> Any:
    """webrtc-internals writes object-valued fields (qualityLimitationDurations) as JSON strings."""
    if isinstance(value, str) and value[:1] == "{":
        try:
            return json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            return value
    return value


def _rtcstats(text: str, source: str) -> Dump:
    user_agent: str | None = None
    connections: dict[str, Connection] = {}
    current: dict[str, dict[str, dict[str, Any]]] = {}  # connection -> the stats as of the last poll
    entries = 0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        value = _json(line, source, whole_file=False, line=number)
        if isinstance(value, dict):  # a metadata line (rtcstats-server writes the client's details first)
            user_agent = user_agent or _agent_in(value)
            continue
        if not isinstance(value, list) or len(value) < 3 or not isinstance(value[0], str):
            raise DumpError(
                source, f"line {number}: not an rtcstats entry [method, connection, payload, time]"
            )
        method, pc_id, payload = value[0], value[1], value[2]
        at = _time_ms(value[3]) if len(value) > 3 else None
        entries += 1
        if method in ("identity", "userAgent", "navigator.userAgent"):
            user_agent = user_agent or (payload if isinstance(payload, str) else _agent_in(payload))
            continue
        if pc_id is None:
            continue  # getUserMedia and other calls outside a connection
        connection = connections.setdefault(str(pc_id), Connection(id=str(pc_id)))
        if isinstance(payload, str) and method == "getstats" and payload[:1] == "{":
            payload = _json(payload, source, whole_file=False, line=number)
        lowered = method.lower()
        if lowered in STATE_EVENTS:
            connection.states.append((at, STATE_EVENTS[lowered], str(payload)))
        elif method == "getstats" and isinstance(payload, dict):
            _merge_poll(connection, current.setdefault(str(pc_id), {}), payload, at, source, number)
    if not entries:
        raise DumpError(source, "no rtcstats entries (lines like [method, connection, payload, time])")
    return Dump(source, "rtcstats", user_agent, list(connections.values()))


def _agent_in(value: Any) -> str | None:
    if isinstance(value, dict):
        for key in ("userAgent", "user_agent", "navigator.userAgent"):
            if isinstance(value.get(key), str):
                return value[key]
        for child in value.values():
            if isinstance(child, dict) and (found := _agent_in(child)):
                return found
    return None


def _merge_poll(
    connection: Connection,
    state: dict[str, dict[str, Any]],
    poll: dict[str, Any],
    at: float | None,
    source: str,
    line: int,
) -> None:
    """Undo rtcstats' delta compression for one poll and append every field to its series."""
    poll_time = _time_ms(poll.get("timestamp")) or at
    present = [
        key for key, report in poll.items() if isinstance(report, dict)
    ]  # in poll order: streams keep it
    for gone in set(state) - set(present):
        del state[gone]
    for stat_id in present:
        report = dict(poll[stat_id])
        if report.get("timestamp") == 0:
            report["timestamp"] = poll_time
        merged = state.setdefault(stat_id, {})
        merged.update(report)
        stat_type = merged.get("type") or _legacy_type(stat_id)
        if not stat_type:
            continue
        series = connection.stats.setdefault(stat_id, StatSeries(id=stat_id, type=str(stat_type)))
        for name, value in merged.items():
            values = series.fields.setdefault(name, [])
            if len(values) >= MAX_VALUES:
                raise DumpError(source, f"line {line}: {stat_id}.{name} has more than {MAX_VALUES} values")
            values.append((poll_time, value))
        _candidate_type(series)


def _is_rtclab(whole: Mapping[str, Any]) -> bool:
    if whole.get("format") == "rtclab-stats-timeline":
        return True
    return {"profile", "probe", "media", "verdict"} <= set(whole)


def _rtclab(whole: dict[str, Any], source: str) -> Dump:
    if whole.get("format") == "rtclab-stats-timeline":
        snapshots = whole.get("snapshots")
        if not isinstance(snapshots, list):
            raise DumpError(source, "snapshots is not a list")
        freezes = whole.get("freezes") if isinstance(whole.get("freezes"), dict) else {}
        return Dump(
            source,
            "rtclab",
            None,
            [],
            report={"timeline": snapshots, "label": whole.get("label"), "freezes": freezes},
        )
    if not isinstance(whole.get("media"), dict):
        raise DumpError(
            source, "media is not an object (an rtclab probe report has media.audio, media.video)"
        )
    return Dump(source, "rtclab", None, [], report=whole)


def timeline_json(
    snapshots: Iterable[Any], *, label: str = "rtclab call", freezes: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A stats timeline (`rtclab.stats.MediaSnapshot` objects) as JSON that `read_dump` reads back.

    Args:
        snapshots: The timeline, e.g. ``LoopbackCall.timeline``.
        label: What the call was, shown as the connection's id.
        freezes: Per kind, the `rtclab.freezes.FreezeReport` of the received frames (aiortc's stats have no
            freeze counters, so the call's frame times are the only source).

    Returns:
        ``{"format": "rtclab-stats-timeline", "schema": 1, "label": ..., "snapshots": [...], "freezes": {...}}``.
    """
    return {
        "format": "rtclab-stats-timeline",
        "schema": 1,
        "label": label,
        "snapshots": [asdict(snapshot) for snapshot in snapshots],
        "freezes": {
            kind: {"count": len(report.events), "frozen_pct": round(100 * report.freeze_rate, 2)}
            for kind, report in (freezes or {}).items()
        },
    }
