"""Capture the support desk's dump fixtures: headless Chromium calls an aiortc peer that plays one fault per
scenario, and the browser's stats are saved the two ways a team gets them from users.

(a) chrome://webrtc-internals, opened in a tab of the same browser before the call, then its "Create a
WebRTC-Internals dump" download (uncompressed), saved as ``<scenario>.webrtc-internals.json``;
(b) @jitsi/rtcstats loaded in the call page (bundled here with esbuild), sending its trace to
samples/support/rtcstats_collector.py, saved as ``<scenario>.rtcstats``.

Then the 3g dump is converted to the legacy (pre-M90) layout and the fixtures' README is rewritten.
Everything runs in a network namespace with only ``lo`` (the script re-executes itself under ``unshare``;
needs root), on 127.0.0.1:

    .venv/bin/python samples/support/harness/capture_dumps.py                   # every scenario, ~4 min
    .venv/bin/python samples/support/harness/capture_dumps.py --scenario 3g --seconds 10 --out /tmp/dumps
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import queue
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web
from call_peer import CallPeer
from fixtures_readme import write_readme
from scenarios import SCENARIOS, Scenario
from to_legacy_dump import convert_file

from rtclab.chromium import launch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
COLLECTOR = ROOT / "samples" / "support" / "rtcstats_collector.py"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
JS_UTILS = ROOT / "node_modules" / "@jitsi" / "js-utils" / "dist" / "browser-detection" / "index.js"
IN_NETNS = "LMA_CAPTURE_IN_NETNS"
MAX_FIXTURE_BYTES = 300_000
WEBRTC_FLAGS = [
    "--use-fake-device-for-media-stream",  # a test pattern and a beep instead of a camera and a microphone
    "--use-fake-ui-for-media-stream",  # grant getUserMedia without a prompt
    "--allow-loopback-in-peer-connection",  # WebRTC skips 127.0.0.1 unless told otherwise
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # raw addresses, not <uuid>.local names
    "--autoplay-policy=no-user-gesture-required",
]


def reexec_in_netns() -> None:
    """Run this script again in a new network namespace whose only interface is ``lo`` (root only)."""
    if os.environ.get(IN_NETNS) == "1":
        return
    if os.geteuid() != 0 or not shutil.which("unshare"):
        sys.exit(
            "capture_dumps.py: needs root (unshare --net) to keep the call inside a loopback-only namespace"
        )
    os.environ[IN_NETNS] = "1"
    script = 'ip link set lo up && exec "$@"'  # a new namespace's lo starts down
    os.execvp("unshare", ["unshare", "--net", "sh", "-c", script, "capture", sys.executable, *sys.argv])


def build_rtcstats_bundle(folder: Path) -> Path:
    """@jitsi/rtcstats and its imports as one IIFE file; js-utils' exports map a folder, hence the alias."""
    bundle = folder / "rtcstats.js"
    subprocess.run(
        [str(ESBUILD), str(HERE / "rtcstats_entry.js"), "--bundle", "--format=iife", "--log-level=warning",
         f"--alias:@jitsi/js-utils/browser-detection={JS_UTILS}", f"--outfile={bundle}"],
        cwd=ROOT, check=True,
    )  # fmt: skip
    return bundle


class Collector:
    """samples/support/rtcstats_collector.py in its own process, with a token made for this call."""

    def __init__(self, out: Path) -> None:
        self.token = secrets.token_urlsafe(24)
        env = {**os.environ, "RTCSTATS_TOKEN": self.token}
        command = [sys.executable, str(COLLECTOR), "--port", "0", "--out", str(out)]
        self.proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("listening on http://127.0.0.1:"):
            raise RuntimeError(f"the collector did not start: {line!r}")
        self.endpoint = f"ws://{line.removeprefix('listening on http://')}/{self.token}"
        self.closed: queue.Queue[str] = queue.Queue()
        threading.Thread(
            target=lambda: [self.closed.put(x.strip()) for x in self.proc.stdout], daemon=True
        ).start()

    def next_session(self, timeout: float) -> tuple[str, Path]:
        line = self.closed.get(timeout=timeout)  # "session <id>: <n> entries, ... -> <file>"
        return line, Path(line.rsplit(" -> ", 1)[1])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def page_app(token: str, bundle: Path, peer: CallPeer) -> web.Application:
    """GET /call (the page), GET /rtcstats.js (the bundle), POST /offer (the answer): 127.0.0.1 only."""

    async def offer(request: web.Request) -> web.Response:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(presented.encode(), token.encode()):
            raise web.HTTPForbidden(text='{"error": "wrong token"}', content_type="application/json")
        body = await request.json()
        return web.json_response({"type": "answer", "sdp": await peer.answer(body["sdp"])})

    app = web.Application(client_max_size=64 * 1024)
    app.router.add_get("/call", lambda _: web.FileResponse(HERE / "call_page.html"))
    app.router.add_get("/rtcstats.js", lambda _: web.FileResponse(bundle))
    app.router.add_post("/offer", offer)
    return app


async def download_internals_dump(internals, target: Path) -> None:
    """Expand "Create a WebRTC-Internals dump", untick "Compress result", click the download, save it."""
    await internals.click("summary:has-text('Create a WebRTC-Internals dump')")
    await internals.set_checked("#dump-checkbox", False)
    async with internals.expect_download() as download_info:
        await internals.click("#dump-click-target")
    await (await download_info.value).save_as(target)


async def capture(scenario: Scenario, seconds: float, out: Path, bundle: Path, collector: Collector) -> dict:
    """One call: returns what the README needs (Chromium version, link counters)."""
    from playwright.async_api import async_playwright

    token = secrets.token_urlsafe(16)
    peer = CallPeer(scenario.fault)
    runner = web.AppRunner(page_app(token, bundle, peer), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/call?scenario={scenario.name}"
    config = {
        "token": token,
        "collector": collector.endpoint,
        "scenario": scenario.name,
        "camera": scenario.fault.camera,
    }
    try:
        async with async_playwright() as pw:
            browser = await launch(pw.chromium, *WEBRTC_FLAGS)
            context = await browser.new_context(accept_downloads=True)
            internals = await context.new_page()
            await internals.goto("chrome://webrtc-internals")  # before the call, so it sees every event
            page = await context.new_page()
            await page.add_init_script(f"window.captureConfig = {json.dumps(config)};")
            await page.route("**/*", lambda route: (
                route.continue_() if urlsplit(route.request.url).hostname == "127.0.0.1" else route.abort()
            ))  # fmt: skip
            await page.goto(url)
            await page.evaluate("call()")
            wanted = "failed" if scenario.fault.unreachable else "connected"
            await page.wait_for_function(f"lab.states.includes('{wanted}')", timeout=90_000)
            if wanted == "connected":
                await asyncio.sleep(seconds)  # media flows both ways under the fault
            else:
                await asyncio.sleep(3)  # a few stats samples after the failure
            await download_internals_dump(internals, out / f"{scenario.name}.webrtc-internals.json")
            await page.evaluate("hangUp()")
            line, dump = await asyncio.to_thread(collector.next_session, 15)
            shutil.move(dump, out / f"{scenario.name}.rtcstats")
            version = browser.version
            await browser.close()
    finally:
        await peer.close()
        await runner.cleanup()
    counters = {direction: link.counters.as_dict() for direction, link in peer.links.items()}
    print(
        f"{scenario.name}: Chromium {version}; collector: {line}; links: {json.dumps(counters)}", flush=True
    )
    return {"version": version, "counters": counters}


async def run(names: list[str], seconds: float, out: Path) -> dict[str, dict]:
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="lma-dumps-") as scratch:
        bundle = build_rtcstats_bundle(Path(scratch))
        for name in names:
            # A collector per call: a client that reconnects late can never pass for the next call's session.
            (Path(scratch) / name).mkdir()
            collector = Collector(Path(scratch) / name)
            try:
                results[name] = await capture(SCENARIOS[name], seconds, out, bundle, collector)
            finally:
                collector.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Capture webrtc-internals and rtcstats dumps of faulty calls."
    )
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="(repeatable; default all)"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="media time per connected call (15)")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "samples" / "support" / "dumps", help="output folder"
    )
    args = parser.parse_args(argv)
    reexec_in_netns()
    names = args.scenario or list(SCENARIOS)
    results = asyncio.run(run(names, args.seconds, args.out))
    if "3g" in results:
        convert_file(args.out / "3g.webrtc-internals.json", args.out / "3g.legacy.webrtc-internals.json")
    browser = next(iter(results.values()))["version"] if results else "Chromium"
    write_readme(
        args.out, {name: SCENARIOS[name].how for name in SCENARIOS}, f"Chromium {browser}", args.seconds
    )
    too_big = [p.name for p in args.out.iterdir() if p.stat().st_size > MAX_FIXTURE_BYTES]
    if too_big:
        print(f"over {MAX_FIXTURE_BYTES} bytes (shorten --seconds): {', '.join(too_big)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
