"""Small dumps written by hand in each format, for tests that need an exact, known value.

The real dumps (captured from Chromium calling aiortc) live in samples/support/dumps/; these are only for
checking the parsers' arithmetic and edge cases.
"""

from __future__ import annotations

import json
from typing import Any

START_MS = 1_765_000_000_000.0  # any fixed epoch time


def _series(stat_type: str | None, values: list[Any], seconds: int) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "startTime": START_MS,
        "endTime": START_MS + (seconds - 1) * 1000,
        "values": json.dumps(values),
    }
    if stat_type is not None:
        entry["statsType"] = stat_type
    return entry


def call_stats(seconds: int = 10, *, lost_per_s: int = 0, rtt_s: float = 0.05) -> dict[str, dict[str, Any]]:
    """Stats objects of a receiving and sending browser over ``seconds`` polls: id -> {type, field: values}."""
    t = range(seconds)
    return {
        "T01": {"type": "transport", "selectedCandidatePairId": ["CPa_b"] * seconds},
        "CPa_b": {
            "type": "candidate-pair",
            "localCandidateId": ["Ia"] * seconds,
            "remoteCandidateId": ["Ib"] * seconds,
            "currentRoundTripTime": [rtt_s] * seconds,
            "bytesReceived": [i * 10_000 for i in t],
            "state": ["succeeded"] * seconds,
        },
        "Ia": {"type": "local-candidate", "candidateType": ["host"] * seconds, "protocol": ["udp"] * seconds},
        "Ib": {
            "type": "remote-candidate",
            "candidateType": ["srflx"] * seconds,
            "protocol": ["udp"] * seconds,
        },
        "IT01A1": {
            "type": "inbound-rtp",
            "kind": ["audio"] * seconds,
            "packetsReceived": [50 * i for i in t],
            "packetsLost": [lost_per_s * i for i in t],
            "jitter": [0.01] * seconds,
            "bytesReceived": [4000 * i for i in t],  # 32 kbps
            "concealedSamples": [480 * lost_per_s * i for i in t],
            "totalSamplesReceived": [48_000 * i for i in t],
            "jitterBufferDelay": [0.06 * 50 * i for i in t],
            "jitterBufferEmittedCount": [50 * i for i in t],
        },
        "OT01A1": {
            "type": "outbound-rtp",
            "kind": ["audio"] * seconds,
            "packetsSent": [50 * i for i in t],
            "bytesSent": [4000 * i for i in t],
        },
    }


def webrtc_internals(
    stats: dict[str, dict[str, Any]], *, legacy: bool = False, states: list[str] | None = None
) -> dict[str, Any]:
    """A webrtc-internals dump with one connection holding ``stats``."""
    seconds = max(len(v) for s in stats.values() for k, v in s.items() if k != "type")
    series = {}
    for stat_id, fields in stats.items():
        for name, values in fields.items():
            if name != "type":
                series[f"{stat_id}-{name}"] = _series(None if legacy else fields["type"], values, seconds)
    log = [
        {"time": START_MS + i, "type": "iceconnectionstatechange", "value": state}
        for i, state in enumerate(states if states is not None else ["checking", "connected"])
    ]
    return {
        "getUserMedia": [],
        "PeerConnections": {"1-1": {"pid": 1, "updateLog": log, "stats": series, "url": "http://127.0.0.1/"}},
        "UserAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36",
    }


def rtcstats_lines(stats: dict[str, dict[str, Any]], *, compress: bool = True) -> str:
    """The same stats as an rtcstats dump: a metadata line, state events, one delta-compressed getstats per poll."""
    seconds = max(len(v) for s in stats.values() for k, v in s.items() if k != "type")
    lines = [json.dumps({"userAgent": "Mozilla/5.0 Chrome/131.0.0.0", "clientProtocol": "3_STANDARD"})]
    lines.append(json.dumps(["create", "PC_0", {"iceServers": []}, START_MS]))
    lines.append(json.dumps(["oniceconnectionstatechange", "PC_0", "checking", START_MS + 1]))
    lines.append(json.dumps(["oniceconnectionstatechange", "PC_0", "connected", START_MS + 2]))
    previous: dict[str, dict[str, Any]] = {}
    for i in range(seconds):
        at = START_MS + i * 1000
        poll: dict[str, Any] = {}
        for stat_id, fields in stats.items():
            report = {"type": fields["type"], "timestamp": at}
            report.update({name: values[i] for name, values in fields.items() if name != "type"})
            full = dict(report)
            if compress and stat_id in previous:
                report = {k: v for k, v in report.items() if previous[stat_id].get(k) != v}
            if report.get("timestamp") == at:
                report["timestamp"] = 0  # rtcstats writes the poll's own timestamp as 0
            poll[stat_id] = report
            previous[stat_id] = full
        poll["timestamp"] = at
        lines.append(json.dumps(["getstats", "PC_0", poll, at]))
    return "\n".join(lines) + "\n"
