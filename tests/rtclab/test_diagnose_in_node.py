"""The browser page's diagnose.js gives the report `rtclab diagnose` gives: every captured dump through both.

Node runs the same file the page loads, with the same generated data, so drift between the two is caught in
the unit stage; tests/browser/test_diagnose_in_browser.py then checks the page itself in Chromium.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from synthetic_dumps import call_stats, rtcstats_lines, webrtc_internals

from portal.diagnose_data import data_script
from rtclab.diagnose import diagnose
from rtclab.dumps import DumpError, parse_dump

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "docs" / "assets" / "diagnose" / "diagnose.js"
DUMPS = ROOT / "samples" / "support" / "dumps"
NODE = shutil.which("node")
RUNNER = """
const fs = require("fs");
eval(fs.readFileSync(process.argv[2], "utf8"));
const api = require(process.argv[3]);
const out = [];
for (const path of process.argv.slice(4)) {
  const bytes = fs.readFileSync(path); // bytes, as the page reads a file
  const name = require("path").basename(path);
  try { out.push(api.diagnose(api.parseDump(bytes, name, bytes.length), "en")); }
  catch (e) { out.push({ error: e.message }); }
}
console.log(JSON.stringify(out));
"""

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed (make doctor names it)")


def in_node(paths: list[Path], tmp_path: Path) -> list[dict]:
    data = tmp_path / "data.js"
    data.write_text(data_script().replace("window.", "globalThis."), encoding="utf-8")
    runner = tmp_path / "run.js"
    runner.write_text(RUNNER, encoding="utf-8")
    result = subprocess.run(
        [NODE, str(runner), str(data), str(SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def same(a: object, b: object, where: str = "") -> None:
    """Equal, numbers within 0.051 (both sides round to 0.1 from floats that may differ in the last bit)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))}"
        for key in a:
            same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: {a} != {b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif (
        isinstance(a, int | float)
        and not isinstance(a, bool)
        and isinstance(b, int | float)
        and not isinstance(b, bool)
    ):
        assert math.isclose(a, b, abs_tol=0.051), f"{where}: {a} != {b}"
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def python_report(path: Path) -> dict:
    report = diagnose(parse_dump(path.read_bytes(), path.name))
    return json.loads(json.dumps(report))


def test_every_captured_dump_gives_the_same_report(tmp_path: Path) -> None:
    paths = sorted(p for p in DUMPS.iterdir() if p.suffix != ".md")
    for path, js in zip(paths, in_node(paths, tmp_path), strict=True):
        same(python_report(path), js, path.name)


def test_synthetic_dumps_in_both_formats(tmp_path: Path) -> None:
    stats = call_stats(10, lost_per_s=3, rtt_s=0.4)
    backwards = call_stats(10)
    backwards["IT01A1"]["jitterBufferDelay"] = [-1.0] * 10  # a broken counter: no MOS, no crash
    a, b, c = tmp_path / "a.json", tmp_path / "b.rtcstats", tmp_path / "c.json"
    a.write_text(json.dumps(webrtc_internals(stats)))
    b.write_text(rtcstats_lines(stats))
    c.write_text(json.dumps(webrtc_internals(backwards)))
    for path, js in zip([a, b, c], in_node([a, b, c], tmp_path), strict=True):
        same(python_report(path), js, path.name)


CLEAN = (DUMPS / "clean.webrtc-internals.json").read_bytes()
RTCSTATS = (DUMPS / "clean.rtcstats").read_bytes()
BAD = {
    "truncated.json": b'{"PeerConnections": {"1": {"stats": ',
    "not-a-dump.json": b'{"hello": 1}',
    "empty.json": b"",
    "array.json": b"[1, 2, 3]",
    "nothing.json": b'{"PeerConnections": {}}',
    "pretty-not-a-dump.json": b'{\n "hello": 1\n}\n',
    "cut-rtcstats.txt": b'{"userAgent": "x"}\n["getstats", "PC_0", {"A": {"type": "inbound-rtp"',
    "cut-string.txt": b'{"userAgent": "x"}\n["create", "PC_0", "unfinish',
    # Broken, not cut short: Python's message and position, which JSON.parse does not give.
    "broken-one-line.json": b'{"PeerConnections": {"1": {"stats": {}} x}',
    "broken-mid-file.json": CLEAN.replace(b'\n "PeerConnections"', b' ]\n "PeerConnections"', 1),
    "broken-line.rtcstats": RTCSTATS.replace(b"\n", b"\n[oops\n", 1),
    "garbage-after.json": CLEAN + b"xyz",
    "brace-after.json": b'{"PeerConnections": {}}}',  # one brace too many is not a cut-short file
    "control-character.json": b'{"PeerConnections": {"a\tb": {}}}',
    "nan.json": b'{"PeerConnections": {"1": {"stats": {"x": NaN}}}}',
    "nan-line.rtcstats": RTCSTATS.replace(b"\n", b'\n["getstats", "PC_0", {"a": -Infinity}, 1]\n', 1),
    # Bytes: the first ill-formed UTF-8 sequence is named wherever it is (counted after a BOM), a NUL only
    # in the first 4 KB means binary.
    "latin1-late.json": CLEAN[:150_000] + b"\xff" + CLEAN[150_000:],
    "latin1-after-bom.json": b"\xef\xbb\xbf" + CLEAN[:50] + b"\xc0\xaf" + CLEAN[50:],
    "nul-late.json": CLEAN[:5000] + b"\x00" + CLEAN[5000:],
}


def test_ids_that_are_javascript_property_names_are_ids(tmp_path: Path) -> None:
    """A stats id or event named like an Object property ("__proto__", "constructor") is data, as in Python."""
    dump = webrtc_internals(call_stats(5))
    connection = next(iter(dump["PeerConnections"].values()))
    connection["updateLog"] = [{"type": "constructor", "value": "x"}]
    connection["stats"] = {
        key.replace("IT01A1", "__proto__"): entry for key, entry in connection["stats"].items()
    }
    path = tmp_path / "odd-ids.json"
    path.write_text(json.dumps(dump))
    same(python_report(path), in_node([path], tmp_path)[0], path.name)


def test_local_times_are_read_as_python_reads_them(tmp_path: Path) -> None:
    """Older dumps write updateLog times with toLocaleString(); day-first ones must not be read month-first."""
    dump = webrtc_internals(call_stats(5))
    connection = next(iter(dump["PeerConnections"].values()))
    connection["updateLog"] = [
        {"type": "iceconnectionstatechange", "value": "checking", "time": "07/12/2025, 13:05:03"},
        {"type": "iceconnectionstatechange", "value": "connected", "time": "12/7/2025, 1:05:04 PM"},
        {"type": "connectionstatechange", "value": "connected", "time": "2025/12/07 13:05:05"},
    ]
    path = tmp_path / "local-times.json"
    path.write_text(json.dumps(dump))
    same(python_report(path), in_node([path], tmp_path)[0], path.name)


def test_bad_files_give_the_same_one_line_error(tmp_path: Path) -> None:
    paths = []
    for name, text in BAD.items():
        (tmp_path / name).write_bytes(text)
        paths.append(tmp_path / name)
    for path, js in zip(paths, in_node(paths, tmp_path), strict=True):
        with pytest.raises(DumpError) as caught:
            report = diagnose(parse_dump(path.read_bytes(), path.name))
            if not report["connections"]:
                raise DumpError(path.name, "the dump holds no peer connection")
        assert js == {"error": str(caught.value)}, path.name
