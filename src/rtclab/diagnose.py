"""Diagnose a call from its stats file: per connection what happened (connected or not, over which path, with
what delay, loss, jitter, concealment and freezes, and an estimated MOS), then findings from the rules table
``rtclab/data/diagnose_rules.yaml``, each with a severity P1-P4 and the runbook that fixes it.

    from rtclab.diagnose import diagnose_file
    report = diagnose_file("dump.json")      # webrtc-internals, rtcstats or rtclab: told apart by content
    report["verdict"], [f["id"] for f in report["findings"]]

The report is plain data in the shape ``rtclab diagnose --json`` prints (``"schema": 1``, documented on the
reference page). Numbers are in ms, % and kbps, rounded; a value the file does not have is None, never a
guess. The browser diagnosis page (``docs/assets/diagnose/diagnose.js``) computes the same report from the
same rules; ``tests/rtclab/test_diagnose_in_node.py`` and ``tests/browser/test_diagnose_in_browser.py`` hold the
two to the same report on every captured dump.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from rtclab.dumps import Connection, Dump, DumpError, StatSeries, read_dump
from rtclab.quality import score_speech
from rtclab.stats import AIORTC_RECEIVER

__all__ = ["SCHEMA", "diagnose", "diagnose_file", "load_rules", "percentiles"]

SCHEMA = 1
SEVERITIES = ("P1", "P2", "P3", "P4")
VERDICTS = ("good", "fair", "poor", "failed")


# --- small numeric helpers (the page's JavaScript does exactly the same) --------------------------------------


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def percentiles(values: Sequence[float]) -> dict[str, float] | None:
    """p50, p95 and max of ``values`` (linear interpolation between ranks, as numpy's default), rounded to 0.1.

    Returns:
        None for no values.
    """
    ordered = sorted(v for v in values if math.isfinite(v))
    if not ordered:
        return None

    def rank(fraction: float) -> float:
        position = fraction * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return {"p50": round(rank(0.5), 1), "p95": round(rank(0.95), 1), "max": round(ordered[-1], 1)}


def _values(series: StatSeries | None, name: str, scale: float = 1.0) -> list[float]:
    return [] if series is None else [v * scale for _, v in series.numbers(name)]


def _last_number(series: StatSeries | None, name: str) -> float | None:
    numbers = [] if series is None else series.numbers(name)
    return numbers[-1][1] if numbers else None


def _rates_kbps(series: StatSeries, name: str) -> list[float]:
    """Bitrate between polls from a byte counter: bytes * 8 / ms = kbit/s."""
    points = [(t, v) for t, v in series.numbers(name) if t is not None]
    rates = []
    for (t0, b0), (t1, b1) in zip(points, points[1:], strict=False):
        if t1 > t0 and b1 >= b0:
            rates.append((b1 - b0) * 8 / (t1 - t0))
    return rates


# --- facts per connection ---------------------------------------------------------------------------------------


def _of_type(connection: Connection, stat_type: str) -> list[StatSeries]:
    return [s for s in connection.stats.values() if s.type == stat_type]


def _kind(series: StatSeries) -> str | None:
    kind = series.last("kind") or series.last("mediaType")
    if kind in ("audio", "video"):
        return kind
    lowered = series.id.lower()
    return "audio" if "audio" in lowered else "video" if "video" in lowered else None


def _selected_pair(connection: Connection) -> StatSeries | None:
    for transport in _of_type(connection, "transport"):
        pair = connection.stats.get(str(transport.last("selectedCandidatePairId") or ""))
        if pair is not None:
            return pair
    pairs = _of_type(connection, "candidate-pair")
    chosen = [p for p in pairs if p.last("selected") is True]
    if not chosen:
        chosen = [p for p in pairs if p.last("state") == "succeeded" and p.last("nominated")]
    if not chosen:
        return None
    return max(
        chosen, key=lambda p: (_last_number(p, "bytesReceived") or 0) + (_last_number(p, "bytesSent") or 0)
    )


def _candidate_pair(connection: Connection, pair: StatSeries | None) -> dict[str, Any] | None:
    if pair is None:
        return None
    local = connection.stats.get(str(pair.last("localCandidateId") or ""))
    remote = connection.stats.get(str(pair.last("remoteCandidateId") or ""))
    local_type = local.last("candidateType") if local else None
    relay = local.last("relayProtocol") if local and local_type == "relay" else None
    return {
        "local_type": local_type,
        "remote_type": remote.last("candidateType") if remote else None,
        "protocol": (local.last("protocol") if local else None)
        or (remote.last("protocol") if remote else None),
        "relay_protocol": relay,
    }


def _transport(pair: Mapping[str, Any] | None) -> str | None:
    """One word for the media path, the metric of the relayed-over-tcp rule."""
    if pair is None or pair["protocol"] is None:
        return None
    if pair["local_type"] == "relay":
        return f"relay-{pair['relay_protocol'] or 'udp'}"
    return "tcp" if pair["protocol"] == "tcp" else "udp"


def _states(connection: Connection, origin: float | None) -> list[dict[str, Any]]:
    return [
        {
            "at_s": None if t is None or origin is None else round((t - origin) / 1000, 3),
            "what": what,
            "value": value,
        }
        for t, what, value in connection.states
    ]


def _ice_outcome(connection: Connection, pair: StatSeries | None) -> tuple[bool, str]:
    """Whether the connection ever connected, and its ICE outcome in one word."""
    ice = [value for _, what, value in connection.states if what == "ice"]
    overall = [value for _, what, value in connection.states if what == "connection"]
    if "connected" in overall or any(v in ("connected", "completed") for v in ice):
        return True, "connected"
    if not connection.states and pair is not None and (_last_number(pair, "bytesReceived") or 0) > 0:
        return True, "connected"  # no state events in the file (some rtcstats builds): media flowed
    last = (overall or ice or ["new"])[-1]
    if "failed" in ice or "failed" in overall:
        return False, "failed"
    if last in ("new", ""):
        return False, "never-left-new"
    return False, last


def _stream(connection: Connection, series: StatSeries, direction: str) -> dict[str, Any]:
    kind = _kind(series)
    stream: dict[str, Any] = {"id": series.id, "kind": kind, "direction": direction}
    if direction == "inbound":
        # Chrome before about M90 kept playout figures on the receiver's track stats, not on inbound-rtp.
        track = connection.stats.get(str(series.last("trackId") or ""))

        def playout(name: str) -> float | None:
            value = _last_number(series, name)
            return value if value is not None else _last_number(track, name)

        received = _last_number(series, "packetsReceived")
        lost = _last_number(series, "packetsLost")
        stream["packets"] = None if received is None else int(received)
        lost = None if lost is None else max(lost, 0.0)  # duplicates make packetsLost negative: no loss
        stream["loss_pct"] = (
            _round(100 * lost / (received + lost), 2)
            if received is not None and lost is not None and received + lost > 0
            else None
        )
        stream["jitter_ms"] = percentiles(_values(series, "jitter", 1000))
        stream["bitrate_kbps"] = percentiles(_rates_kbps(series, "bytesReceived"))
        concealed, total = playout("concealedSamples"), playout("totalSamplesReceived")
        stream["concealed_pct"] = (
            _round(100 * concealed / total, 2)
            if kind == "audio" and concealed is not None and total
            else None
        )
        delay, emitted = playout("jitterBufferDelay"), playout("jitterBufferEmittedCount")
        stream["jitter_buffer_ms"] = _round(1000 * delay / emitted) if delay is not None and emitted else None
        freezes, frozen_s = playout("freezeCount"), playout("totalFreezesDuration")
        stream["freeze_count"] = None if kind != "video" or freezes is None else int(freezes)
        times = [t for t, _ in series.numbers("packetsReceived") if t is not None]
        span_s = (times[-1] - times[0]) / 1000 if len(times) >= 2 else None
        stream["freeze_pct"] = (
            _round(100 * frozen_s / span_s, 2)
            if kind == "video" and frozen_s is not None and span_s
            else None
        )
        dropped = playout("framesDropped")
        stream["frames_dropped"] = None if kind != "video" or dropped is None else int(dropped)
        return stream
    sent = _last_number(series, "packetsSent")
    remote = next(
        (r for r in _of_type(connection, "remote-inbound-rtp") if r.last("localId") == series.id), None
    )
    lost = _last_number(remote, "packetsLost")
    stream["packets"] = None if sent is None else int(sent)
    stream["loss_pct"] = _round(100 * lost / sent, 2) if lost is not None and sent else None
    stream["jitter_ms"] = percentiles(_values(remote, "jitter", 1000))
    stream["bitrate_kbps"] = percentiles(_rates_kbps(series, "bytesSent"))
    stream["freeze_count"] = None
    stream["concealed_pct"] = None
    durations = series.last("qualityLimitationDurations")
    if kind == "video" and isinstance(durations, dict):
        total = sum(v for v in durations.values() if isinstance(v, int | float))
        share = {
            k: _round(100 * v / total, 1) if total else None
            for k, v in durations.items()
            if isinstance(v, int | float)
        }
        stream["quality_limitation_pct"] = {
            "cpu": share.get("cpu"),
            "bandwidth": share.get("bandwidth"),
            "other": share.get("other"),
        }
    elif kind == "video" and series.fields.get("qualityLimitationReason"):
        reasons = [v for _, v in series.fields["qualityLimitationReason"]]  # older dumps: share of polls
        stream["quality_limitation_pct"] = {
            r: _round(100 * reasons.count(r) / len(reasons), 1) for r in ("cpu", "bandwidth", "other")
        }
    else:
        stream["quality_limitation_pct"] = None
    source = connection.stats.get(str(series.last("mediaSourceId") or ""))
    stream["echo_return_loss_enhancement_db"] = (
        _round(_last_number(source, "echoReturnLossEnhancement")) if kind == "audio" else None
    )
    return stream


def _mos(rtt: Mapping[str, float] | None, streams: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The E-model estimate for the audio this end heard, from the receiver's own buffer and concealment."""
    heard = [s for s in streams if s["kind"] == "audio" and s["direction"] == "inbound" and s["packets"]]
    if rtt is None or not heard:
        return None
    audio = max(heard, key=lambda s: s["packets"])
    if audio["jitter_buffer_ms"] is None or audio["jitter_buffer_ms"] < 0:
        return None  # without the receiver's (sane) buffer delay the estimate would be a guess
    conceals = audio["concealed_pct"] is not None
    loss_pct = audio["concealed_pct"] if conceals else audio["loss_pct"]
    if loss_pct is None:
        return None
    loss_pct = max(loss_pct, 0.0)  # a counter that went backwards is no loss
    score = score_speech(
        network_delay_ms=rtt["p50"] / 2,
        jitter_buffer_ms=audio["jitter_buffer_ms"],
        loss_fraction=min(loss_pct, 100) / 100,
        conceals=conceals,
    )
    return {"stream": audio["id"], **score.to_dict()}


def _connection(connection: Connection, origin: float | None) -> dict[str, Any]:
    pair = _selected_pair(connection)
    connected, outcome = _ice_outcome(connection, pair)
    candidate_pair = _candidate_pair(connection, pair)
    rtts = _values(pair, "currentRoundTripTime", 1000)
    if not rtts:
        rtts = [
            v for r in _of_type(connection, "remote-inbound-rtp") for v in _values(r, "roundTripTime", 1000)
        ]
    rtt = percentiles(rtts)
    streams = [_stream(connection, s, "inbound") for s in _of_type(connection, "inbound-rtp")]
    streams += [_stream(connection, s, "outbound") for s in _of_type(connection, "outbound-rtp")]
    streams = [s for s in streams if s["kind"] is not None]
    audio_in = sum(s["packets"] or 0 for s in streams if s["kind"] == "audio" and s["direction"] == "inbound")
    audio_out = sum(
        s["packets"] or 0 for s in streams if s["kind"] == "audio" and s["direction"] == "outbound"
    )
    return {
        "id": connection.id,
        "connected": connected,
        "ice_outcome": outcome,
        "states": _states(connection, origin),
        "candidate_pair": candidate_pair,
        "transport": _transport(candidate_pair),
        "rtt_ms": rtt,
        "streams": streams,
        "audio_one_way": "sent-but-nothing-received"
        if connected and audio_out > 0 and audio_in == 0
        else None,
        "mos": _mos(rtt, streams),
    }


def _origin(dump: Dump) -> float | None:
    times = [t for c in dump.connections for t, _, _ in c.states if t is not None]
    times += [
        values[0][0]
        for c in dump.connections
        for s in c.stats.values()
        for values in s.fields.values()
        if values and values[0][0] is not None
    ]
    return min(times) if times else None


# --- rtclab's own files ----------------------------------------------------------------------------------------

# rtclab's calls run on 127.0.0.1 host candidates over UDP (rtclab.loopback), and their files do not say so.
AIORTC_LOOPBACK_PAIR = {
    "local_type": "host",
    "remote_type": "host",
    "protocol": "udp",
    "relay_protocol": None,
}


def _rtclab_connection(report: Mapping[str, Any]) -> dict[str, Any]:
    """A probe report: one aiortc call, already summarised by rtclab.probe."""
    rtt = report.get("rtt_ms") or {}
    streams = []
    for kind, media in (report.get("media") or {}).items():
        if not isinstance(media, dict) or kind not in ("audio", "video"):
            continue
        jitter = media.get("jitter_ms_median")
        streams.append(
            {
                "id": f"probe-{kind}",
                "kind": kind,
                "direction": "inbound",
                "packets": media.get("packets_received"),
                "loss_pct": _round(media.get("loss_pct"), 2),
                "jitter_ms": None if jitter is None else {"p50": _round(jitter), "p95": None, "max": None},
                "bitrate_kbps": None
                if media.get("bitrate_kbps") is None
                else {"p50": _round(media["bitrate_kbps"]), "p95": None, "max": None},
                "concealed_pct": None,  # aiortc conceals nothing
                "jitter_buffer_ms": None,
                "freeze_count": media.get("freezes") if kind == "video" else None,
                "freeze_pct": None
                if kind != "video" or media.get("freeze_rate") is None
                else _round(100 * media["freeze_rate"], 2),
                "frames_dropped": None,
            }
        )
    connected = report.get("connect_ms") is not None
    mos = report.get("mos")
    return {
        "id": "probe",
        "connected": connected,
        "ice_outcome": "connected" if connected else "failed",
        "states": [],
        "candidate_pair": dict(AIORTC_LOOPBACK_PAIR),
        "transport": "udp",
        "rtt_ms": None
        if rtt.get("median") is None
        else {"p50": _round(rtt["median"]), "p95": _round(rtt.get("p95")), "max": None},
        "streams": streams,
        "audio_one_way": None,
        "mos": None if not isinstance(mos, dict) else {"stream": "probe-audio", **mos},
    }


def _timeline_connection(report: Mapping[str, Any]) -> dict[str, Any]:
    """A stats timeline written by `rtclab.dumps.timeline_json`: snapshots of an aiortc call per media kind."""
    snapshots = [s for s in report["timeline"] if isinstance(s, dict) and s.get("kind") in ("audio", "video")]
    freezes = report.get("freezes") or {}
    rtt = percentiles([s["rtt_ms"] for s in snapshots if isinstance(s.get("rtt_ms"), int | float)])
    streams = []
    lost_audio = 0
    for kind in ("audio", "video"):
        series = sorted((s for s in snapshots if s["kind"] == kind), key=lambda s: s.get("at_s") or 0)
        if not series:
            continue
        last = series[-1]
        received, lost = last.get("packets_received") or 0, max(last.get("packets_lost") or 0, 0)
        if kind == "audio":
            lost_audio = int(lost)
        frozen = freezes.get(kind) if isinstance(freezes.get(kind), dict) else {}
        rates = [
            (b["bytes_sent"] - a["bytes_sent"]) * 8 / (b["at_s"] - a["at_s"]) / 1000
            for a, b in zip(series, series[1:], strict=False)
            if isinstance(a.get("bytes_sent"), int | float)
            and isinstance(b.get("bytes_sent"), int | float)
            and isinstance(a.get("at_s"), int | float)
            and isinstance(b.get("at_s"), int | float)
            and b["at_s"] > a["at_s"]
            and b["bytes_sent"] >= a["bytes_sent"]
        ]
        streams.append(
            {
                "id": f"timeline-{kind}",
                "kind": kind,
                "direction": "inbound",
                "packets": received,
                "loss_pct": _round(100 * lost / (received + lost), 2) if received + lost > 0 else None,
                "jitter_ms": percentiles(
                    [s["jitter_ms"] for s in series if isinstance(s.get("jitter_ms"), int | float)]
                ),
                "bitrate_kbps": percentiles(rates),  # what the sender put on the wire
                "concealed_pct": None,  # aiortc conceals nothing
                "jitter_buffer_ms": None,
                "freeze_count": frozen.get("count") if kind == "video" else None,
                "freeze_pct": frozen.get("frozen_pct") if kind == "video" else None,
                "frames_dropped": None,
            }
        )
    return {
        "id": str(report.get("label") or "rtclab call"),
        "connected": bool(streams and any(s["packets"] for s in streams)),
        "ice_outcome": "connected" if any(s["packets"] for s in streams) else "never-left-new",
        "states": [],
        "candidate_pair": dict(AIORTC_LOOPBACK_PAIR),
        "transport": "udp",
        "rtt_ms": rtt,
        "streams": streams,
        "audio_one_way": None,
        "mos": _aiortc_mos(rtt, streams, lost_audio),
    }


def _aiortc_mos(
    rtt: Mapping[str, float] | None, streams: Sequence[Mapping[str, Any]], lost: int
) -> dict[str, Any] | None:
    """An aiortc receiver reports no buffer or concealment: use what rtclab measured of it (AIORTC_RECEIVER)."""
    audio = next((s for s in streams if s["kind"] == "audio" and s["packets"]), None)
    if rtt is None or audio is None or audio["loss_pct"] is None:
        return None
    receiver = AIORTC_RECEIVER
    score = score_speech(
        network_delay_ms=rtt["p50"] / 2,
        jitter_buffer_ms=receiver.jitter_buffer_ms(lost),
        loss_fraction=receiver.frame_loss(audio["loss_pct"] / 100),
        conceals=receiver.conceals,
    )
    return {"stream": audio["id"], **score.to_dict()}


# --- rules ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def load_rules() -> dict[str, Any]:
    """The rules table, ``rtclab/data/diagnose_rules.yaml``, as data (shared with the browser page)."""
    text = resources.files("rtclab").joinpath("data/diagnose_rules.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _metric(item: Mapping[str, Any], metric: str) -> Any:
    if metric == "bandwidth_limited_pct":
        return (item.get("quality_limitation_pct") or {}).get("bandwidth")
    if metric == "cpu_limited_pct":
        return (item.get("quality_limitation_pct") or {}).get("cpu")
    if metric == "rtt_p50_ms":
        return (item.get("rtt_ms") or {}).get("p50")
    if metric == "jitter_p95_ms":
        jitter = item.get("jitter_ms") or {}
        return jitter.get("p95") if jitter.get("p95") is not None else jitter.get("p50")
    if metric == "mos":
        return (item.get("mos") or {}).get("mos")
    return item.get(metric)


def _level(levels: Iterable[Mapping[str, Any]], value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    for level in levels:
        if "in" in level and value in level["in"]:
            return level
        if "above" in level and isinstance(value, int | float) and value > level["above"]:
            return level
        if "below" in level and isinstance(value, int | float) and value < level["below"]:
            return level
    return None


def _matches(stream: Mapping[str, Any], when: Mapping[str, Any]) -> bool:
    return all(stream.get(key) == wanted for key, wanted in when.items())


def findings(connections: Sequence[Mapping[str, Any]], lang: str = "en") -> list[dict[str, Any]]:
    """Every rule applied to every connection (and stream), most severe first."""
    table = load_rules()
    found = []
    for rule in table["rules"]:
        for connection in connections:
            if rule["id"] != "not-connected" and not connection["connected"]:
                continue  # a call that never connected has one finding: that
            items = (
                [(None, connection)]
                if rule["scope"] == "connection"
                else [(s["id"], s) for s in connection["streams"] if _matches(s, rule.get("when", {}))]
            )
            for stream_id, item in items:
                value = _metric(item, rule["metric"])
                level = _level(rule["levels"], value)
                if level is None:
                    continue
                source = table["sources"][level["source"]]
                threshold = level.get("above", level.get("below", level.get("in")))
                found.append(
                    {
                        "id": rule["id"],
                        "severity": level["severity"],
                        "connection": connection["id"],
                        "stream": stream_id,
                        "value": value,
                        "threshold": threshold,
                        "unit": rule["unit"],
                        "title": rule["title"][lang],
                        "explain": rule["explain"][lang],
                        "runbook": f"support/runbooks/{rule['family']}/",
                        "source": {
                            "name": source["name"],
                            "url": source["url"],
                            "as_of": str(source["as_of"]),
                        },
                    }
                )
    return sorted(found, key=lambda f: SEVERITIES.index(f["severity"]))


def _verdict(connections: Sequence[Mapping[str, Any]], found: Sequence[Mapping[str, Any]]) -> str:
    if connections and not any(c["connected"] for c in connections):
        return "failed"
    severities = {f["severity"] for f in found}
    if severities & {"P1", "P2"}:
        return "poor"
    return "fair" if "P3" in severities else "good"


def diagnose(dump: Dump, lang: str = "en") -> dict[str, Any]:
    """The report for one parsed dump, in ``lang`` (``en`` or ``zh``) for the findings' words."""
    if lang not in ("en", "zh"):
        raise ValueError(f"unknown language {lang!r}: use en or zh")
    if dump.format == "rtclab":
        timeline = (dump.report or {}).get("timeline")
        connections = [
            _timeline_connection(dump.report) if timeline is not None else _rtclab_connection(dump.report)
        ]
    else:
        origin = _origin(dump)
        connections = [_connection(c, origin) for c in dump.connections]
    found = findings(connections, lang)
    return {
        "schema": SCHEMA,
        "source": dump.source,
        "format": dump.format,
        "user_agent": dump.user_agent,
        "connections": connections,
        "findings": found,
        "verdict": _verdict(connections, found),
    }


def diagnose_file(path: str, lang: str = "en") -> dict[str, Any]:
    """Read and diagnose one file.

    Raises:
        DumpError: If the file is not a dump (one line naming the file and the problem).
    """
    dump = read_dump(path)
    report = diagnose(dump, lang)
    if not report["connections"] and dump.format != "rtclab":
        raise DumpError(path, "the dump holds no peer connection")
    return report
