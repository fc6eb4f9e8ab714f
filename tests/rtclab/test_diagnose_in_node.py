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
  const text = fs.readFileSync(path, "utf8");
  const name = require("path").basename(path);
  try { out.push(api.diagnose(api.parseDump(text, name, fs.statSync(path).size), "en")); }
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


BAD = {
    "truncated.json": '{"PeerConnections": {"1": {"stats": ',
    "not-a-dump.json": '{"hello": 1}',
    "empty.json": "",
    "array.json": "[1, 2, 3]",
    "nothing.json": '{"PeerConnections": {}}',
    "pretty-not-a-dump.json": '{\n "hello": 1\n}\n',
    "cut-rtcstats.txt": '{"userAgent": "x"}\n["getstats", "PC_0", {"A": {"type": "inbound-rtp"',
    "cut-string.txt": '{"userAgent": "x"}\n["create", "PC_0", "unfinish',
}


def test_bad_files_give_the_same_one_line_error(tmp_path: Path) -> None:
    paths = []
    for name, text in BAD.items():
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    for path, js in zip(paths, in_node(paths, tmp_path), strict=True):
        with pytest.raises(DumpError) as caught:
            report = diagnose(parse_dump(path.read_bytes(), path.name))
            if not report["connections"]:
                raise DumpError(path.name, "the dump holds no peer connection")
        assert js == {"error": str(caught.value)}, path.name
