"""Convert a current chrome://webrtc-internals dump into the layout Chrome wrote before about M90, where a stat's
type was only in its id: we cannot run an old Chrome here, so the legacy fixture is made from a real dump.

What changes, per peer connection's ``stats``:

* ids are renamed by type (``IT01A123`` -> ``RTCInboundRTPAudioStream_123``, ``CP..`` ->
  ``RTCIceCandidatePair_<local>_<remote>``, ``T01`` -> ``RTCTransport_0_1``, ``CIT01_111..`` ->
  ``RTCCodec_0_Inbound_111``...), and every reference field (``localCandidateId``, ``transportId``,
  ``codecId``, ``selectedCandidatePairId``, ``remoteId``, ``localId``...) is rewritten to the new ids;
* ``statsType`` and the ``<id>-type`` series are dropped; media-playout stats (newer than M90) too;
* the receiver's track-level counters (jitter buffer, concealment, freezes, frames) move to a
  ``RTCMediaStreamTrack_receiver_<n>`` stat that inbound-rtp names in ``trackId``, as M8x reported them, and
  each sender gets a ``RTCMediaStreamTrack_sender_<n>``. Every value and time stays as captured.

    .venv/bin/python samples/support/harness/to_legacy_dump.py 3g.webrtc-internals.json 3g.legacy.webrtc-internals.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Members of RTCMediaStreamTrackStats (receiver) before M90; inbound-rtp got them later.
TRACK_FIELDS = {
    "audio": ["jitterBufferDelay", "jitterBufferEmittedCount", "totalSamplesReceived", "concealedSamples",
              "silentConcealedSamples", "concealmentEvents", "insertedSamplesForDeceleration",
              "removedSamplesForAcceleration", "audioLevel", "totalAudioEnergy", "totalSamplesDuration",
              "jitterBufferFlushes", "delayedPacketOutageSamples", "relativePacketArrivalDelay",
              "interruptionCount", "totalInterruptionDuration"],
    "video": ["jitterBufferDelay", "jitterBufferEmittedCount", "framesReceived", "framesDropped", "freezeCount",
              "pauseCount", "totalFreezesDuration", "totalPausesDuration"],
}  # fmt: skip
COPIED_TO_TRACK = ["frameWidth", "frameHeight", "framesDecoded"]  # on both in M8x
LEGACY_PREFIX = {
    "inbound-rtp": "RTCInboundRTP{Kind}Stream_",
    "outbound-rtp": "RTCOutboundRTP{Kind}Stream_",
    "remote-inbound-rtp": "RTCRemoteInboundRtp{Kind}Stream_",
    "remote-outbound-rtp": "RTCRemoteOutboundRTP{Kind}Stream_",
}


def split_key(key: str) -> tuple[str, str]:
    """``"<id>-<field>"`` -> (id, field). Fields never hold "-" except webrtc-internals' derived ``[a-b]``."""
    cut = key.index("-[") if "-[" in key else key.rindex("-")
    return key[:cut], key[cut + 1 :]


def compact(values: list) -> str:
    """A series' values as webrtc-internals encodes them: a JSON array string with no spaces."""
    return json.dumps(values, separators=(",", ":"))


def last(stats: dict, stat_id: str, field: str):
    series = stats.get(f"{stat_id}-{field}")
    return json.loads(series["values"])[-1] if series else None


def legacy_id(stat_id: str, stats_type: str, stats: dict) -> str | None:
    """The pre-M90 id of one stat, or None for a type that did not exist then."""
    if stats_type in LEGACY_PREFIX:
        kind = last(stats, stat_id, "kind").capitalize()
        return LEGACY_PREFIX[stats_type].format(Kind=kind) + str(last(stats, stat_id, "ssrc"))
    if stats_type == "candidate-pair":
        local, remote = last(stats, stat_id, "localCandidateId"), last(stats, stat_id, "remoteCandidateId")
        return f"RTCIceCandidatePair_{local[1:]}_{remote[1:]}"
    if stats_type in ("local-candidate", "remote-candidate"):
        return f"RTCIceCandidate_{stat_id[1:]}"
    if stats_type == "transport":  # T<name><component>
        return f"RTCTransport_{stat_id[1:-1]}_{stat_id[-1]}"
    if stats_type == "codec":  # C<I|O>T<name><component>_<pt>[_<fmtp>]
        direction = "Inbound" if stat_id[1] == "I" else "Outbound"
        transport, payload_type = stat_id[2:].split("_")[:2]
        return f"RTCCodec_{transport[1:-1]}_{direction}_{payload_type}"
    if stats_type == "certificate":
        return f"RTCCertificate_{stat_id[2:]}"
    if stats_type == "media-source":  # S<A|V><n>
        return f"RTC{'Audio' if stat_id[1] == 'A' else 'Video'}Source_{stat_id[2:]}"
    if stats_type == "peer-connection":
        return "RTCPeerConnection"
    if stats_type == "media-playout":
        return None
    return f"RTC{stats_type.title().replace('-', '')}_{stat_id}"


def convert_stats(stats: dict) -> dict:
    types = {}
    for key, series in stats.items():
        types.setdefault(split_key(key)[0], series["statsType"])
    renamed: dict[str, str | None] = {}
    for old, kind in types.items():
        new = legacy_id(old, kind, stats)
        while new is not None and new in renamed.values():  # e.g. one payload type with two fmtp lines
            new += "_"
        renamed[old] = new
    out: dict = {}
    for key, series in stats.items():
        stat_id, field = split_key(key)
        if renamed[stat_id] is None or field in ("type", "playoutId"):
            continue
        values = json.loads(series["values"])
        if field.endswith("Id"):  # a reference: before the pair is chosen a value may be "" and stays so
            values = [renamed.get(v) or v if isinstance(v, str) else v for v in values]
        out[f"{renamed[stat_id]}-{field}"] = {
            "startTime": series["startTime"], "endTime": series["endTime"], "values": compact(values),
        }  # fmt: skip
    add_tracks(stats, types, renamed, out)
    return out


def add_tracks(stats: dict, types: dict, renamed: dict, out: dict) -> None:
    """Move receiver track fields into RTCMediaStreamTrack_receiver_<n>; give each sender its track too."""
    senders = [i for i, t in types.items() if t == "outbound-rtp"]
    receivers = [i for i, t in types.items() if t == "inbound-rtp"]
    for number, stat_id in enumerate(senders + receivers, start=1):
        role = "sender" if stat_id in senders else "receiver"
        track = f"RTCMediaStreamTrack_{role}_{number}"
        new_id, kind = renamed[stat_id], last(stats, stat_id, "kind")
        timestamp = stats[f"{stat_id}-timestamp"]
        span, count = (
            {k: timestamp[k] for k in ("startTime", "endTime")},
            len(json.loads(timestamp["values"])),
        )
        constant = {"kind": kind, "remoteSource": role == "receiver", "ended": False, "detached": False}
        if role == "sender":
            source = last(stats, stat_id, "mediaSourceId")
            constant["trackIdentifier"] = last(stats, source, "trackIdentifier")
        for field, value in constant.items():
            out[f"{track}-{field}"] = {**span, "values": compact([value] * count)}
        out[f"{track}-timestamp"] = dict(out[f"{new_id}-timestamp"])
        for field in (TRACK_FIELDS[kind] + ["trackIdentifier"]) if role == "receiver" else []:
            if f"{new_id}-{field}" in out:
                out[f"{track}-{field}"] = out.pop(f"{new_id}-{field}")
        for field in COPIED_TO_TRACK if role == "receiver" else []:
            if f"{new_id}-{field}" in out:
                out[f"{track}-{field}"] = dict(out[f"{new_id}-{field}"])
        out[f"{new_id}-trackId"] = {**span, "values": compact([track] * count)}


def convert(dump: dict) -> dict:
    """The whole dump, each peer connection's stats converted; updateLog, getUserMedia and the rest as they were."""
    legacy = dict(dump)
    legacy["PeerConnections"] = {
        pc_id: {**pc, "stats": convert_stats(pc["stats"])} for pc_id, pc in dump["PeerConnections"].items()
    }
    return legacy


def convert_file(source: Path, target: Path) -> None:
    dump = json.loads(source.read_text(encoding="utf-8"))
    target.write_text(json.dumps(convert(dump), indent=1) + "\n", encoding="utf-8")  # as Chrome indents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rewrite a webrtc-internals dump in the pre-M90 layout.")
    parser.add_argument("source", type=Path, help="a current dump (with statsType)")
    parser.add_argument("target", type=Path, help="where to write the legacy dump")
    args = parser.parse_args(argv)
    convert_file(args.source, args.target)
    print(f"wrote {args.target} ({args.target.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
