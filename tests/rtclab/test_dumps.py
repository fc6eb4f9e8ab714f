"""rtclab.dumps: every format read into the same series, told apart by content; bad files give one line."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from synthetic_dumps import call_stats, rtcstats_lines, webrtc_internals

from rtclab.dumps import MAX_BYTES, DumpError, parse_dump, read_dump, timeline_json
from rtclab.stats import MediaSnapshot

LEGACY_IDS = {
    "T01": "RTCTransport_0_1",
    "CPa_b": "RTCIceCandidatePair_a_b",
    "Ia": "RTCIceCandidate_a",
    "Ib": "RTCIceCandidate_b",
    "IT01A1": "RTCInboundRTPAudioStream_1",
    "OT01A1": "RTCOutboundRTPAudioStream_1",
}


def legacy(stats: dict) -> dict:
    """The same stats under Chrome-before-M90 ids, references rewritten, candidates marked by isRemote."""
    out = {}
    for stat_id, fields in stats.items():
        renamed = {
            k: [LEGACY_IDS.get(v, v) if isinstance(v, str) else v for v in vs] if k != "type" else vs
            for k, vs in fields.items()
        }
        if fields["type"].endswith("candidate"):
            renamed["isRemote"] = [fields["type"] == "remote-candidate"] * len(next(iter(renamed.values())))
        out[LEGACY_IDS[stat_id]] = renamed
    return out


def encode(value: object) -> bytes:
    return json.dumps(value).encode()


def test_webrtc_internals_series_carry_types_times_and_values() -> None:
    dump = parse_dump(encode(webrtc_internals(call_stats(5))), "a.json")
    assert dump.format == "webrtc-internals"
    assert dump.user_agent.startswith("Mozilla/5.0")
    (connection,) = dump.connections
    inbound = connection.stats["IT01A1"]
    assert inbound.type == "inbound-rtp"
    times = [t for t, _ in inbound.fields["packetsReceived"]]
    assert times[1] - times[0] == pytest.approx(1000)
    assert inbound.last("packetsReceived") == 200
    assert [s[1:] for s in connection.states] == [("ice", "checking"), ("ice", "connected")]


def test_legacy_dump_types_come_from_the_ids() -> None:
    dump = parse_dump(encode(webrtc_internals(legacy(call_stats(5)), legacy=True)), "old.json")
    types = {s.id: s.type for s in dump.connections[0].stats.values()}
    assert types["RTCInboundRTPAudioStream_1"] == "inbound-rtp"
    assert types["RTCIceCandidate_a"] == "local-candidate"
    assert types["RTCIceCandidate_b"] == "remote-candidate"
    assert types["RTCTransport_0_1"] == "transport"


def test_rtcstats_delta_compression_is_undone() -> None:
    stats = call_stats(6)
    dump = parse_dump(rtcstats_lines(stats), "x.rtcstats")
    assert dump.format == "rtcstats"
    assert dump.user_agent == "Mozilla/5.0 Chrome/131.0.0.0"
    connection = dump.connections[0]
    # kind was sent once (it never changed) but is known at every poll
    assert [v for _, v in connection.stats["IT01A1"].fields["kind"]] == ["audio"] * 6
    assert connection.stats["IT01A1"].last("packetsReceived") == 250
    # a timestamp written as 0 is the poll's own
    assert all(v != 0 for _, v in connection.stats["IT01A1"].fields["timestamp"])


def test_rtcstats_and_webrtc_internals_give_the_same_values() -> None:
    stats = call_stats(6, lost_per_s=2)
    a = parse_dump(encode(webrtc_internals(stats)), "a").connections[0].stats["IT01A1"]
    b = parse_dump(rtcstats_lines(stats), "b").connections[0].stats["IT01A1"]
    assert [v for _, v in a.fields["packetsLost"]] == [v for _, v in b.fields["packetsLost"]]


def test_a_report_gone_from_a_poll_is_dropped() -> None:
    lines = [
        json.dumps(
            [
                "getstats",
                "PC_0",
                {"A": {"type": "inbound-rtp", "kind": "audio", "packetsReceived": 1}, "timestamp": 1},
                1,
            ]
        ),
        json.dumps(["getstats", "PC_0", {"timestamp": 2}, 2]),
        json.dumps(
            ["getstats", "PC_0", {"A": {"type": "inbound-rtp", "packetsReceived": 3}, "timestamp": 3}, 3]
        ),
    ]
    series = parse_dump("\n".join(lines), "x").connections[0].stats["A"]
    # after it vanished its kind is forgotten: the new object only has what the third poll sent
    assert series.fields["kind"] == [(1.0, "audio")]
    assert series.last("packetsReceived") == 3


def test_rtclab_timeline_round_trips() -> None:
    text = json.dumps(timeline_json([MediaSnapshot(kind="audio", at_s=1.0, packets_received=5)], label="lab"))
    dump = parse_dump(text, "t.json")
    assert dump.format == "rtclab"
    assert dump.report["timeline"][0]["packets_received"] == 5


BAD = [
    (b"", "the file is empty"),
    (b"   \n", "the file is empty"),
    (b'{"PeerConnections": {"1": {"stats": ', "the JSON ends early"),
    (b'{"hello": 1}', "JSON, but not a dump"),
    (b'{\n "hello": 1\n}\n', "JSON, but not a dump"),
    (b"[1, 2, 3]", "a JSON array, not a dump"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "a binary file"),
    (b"\xff\xfe\x41", "not UTF-8 text"),
    (b"hello", "not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested"),
    (b'{"PeerConnections": {"1": []}}', "is not an object"),
    (b'{"PeerConnections": {"1": {"stats": {"A-b": {"statsType": "x", "values": "[1,"}}}}}', "ends early"),
    (b'["getstats"]\n["x", 1]', "not an rtcstats entry"),
    (b'{"PeerConnections": {}}}', "not valid JSON (Extra data at line 1 column 24)"),  # not cut short
    (b'{"PeerConnections": {"a\tb": {}}}', "(Invalid control character at line 1 column 24)"),
    (b'{"PeerConnections": {"1": {"x": NaN}}}', "NaN and Infinity are not JSON"),
]


@pytest.mark.parametrize(("data", "problem"), BAD, ids=[p for _, p in BAD])
def test_bad_input_is_one_line_naming_the_file(data: bytes, problem: str) -> None:
    with pytest.raises(DumpError) as caught:
        parse_dump(data, "player.json")
    message = str(caught.value)
    assert message.startswith("player.json: ")
    assert problem in message
    assert "\n" not in message


def test_huge_arrays_are_refused() -> None:
    entry = {"statsType": "inbound-rtp", "values": json.dumps([0] * 200_001)}
    with pytest.raises(DumpError, match="more than 200000"):
        parse_dump(encode({"PeerConnections": {"1": {"stats": {"A-packetsReceived": entry}}}}), "big.json")


def test_too_large_a_file_is_refused_before_reading(tmp_path) -> None:
    path = tmp_path / "huge.json"
    with path.open("wb") as out:
        out.truncate(MAX_BYTES + 1)  # sparse: no 25 MB written
    with pytest.raises(DumpError, match="larger than"):
        read_dump(path)


def test_missing_file_names_it(tmp_path) -> None:
    with pytest.raises(DumpError, match="nope.json: No such file"):
        read_dump(tmp_path / "nope.json")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_either_parse_or_raise_dump_error(data: bytes) -> None:
    try:
        parse_dump(data, "fuzz")
    except DumpError as error:
        assert "\n" not in str(error)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_either_parses_or_raises_dump_error(value: object) -> None:
    for wrapped in (
        value,
        {"PeerConnections": value},
        {"PeerConnections": {"1": value}},
        {"PeerConnections": {"1": {"stats": value, "updateLog": value}}},
    ):
        with contextlib.suppress(DumpError):
            parse_dump(json.dumps(wrapped), "fuzz")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(json_values, min_size=0, max_size=5), max_size=6))
def test_any_rtcstats_lines_parse_or_raise_dump_error(lines: list) -> None:
    text = "\n".join(json.dumps(["getstats" if i % 2 else "x", "PC", *line]) for i, line in enumerate(lines))
    with contextlib.suppress(DumpError):
        parse_dump(text or "[]", "fuzz")
