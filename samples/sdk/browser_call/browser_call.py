"""A Python bot joins a browser's call: headless Chromium (fake camera and microphone) calls an aiortc peer
through a small signaling server, and both sides report what they negotiated, sent and received.

This is how a server-side bot (a recorder, an AI agent, a moderator) meets real browsers: the browser offers,
the bot answers, and media flows both ways. Everything stays on 127.0.0.1: the server binds it, Chromium is
allowed to use loopback and shows raw addresses instead of mDNS names, the bot keeps only the browser's
UDP 127.0.0.1 candidates and offers only its own, and the selected pair is read back from the browser.

    .venv/bin/python samples/sdk/browser_call/browser_call.py
    .venv/bin/python samples/sdk/browser_call/browser_call.py --seconds 10

Needs Chromium (Debian: apt-get install chromium) and the Playwright package (in the project's .venv).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import textwrap
from collections import Counter
from typing import Any
from urllib.parse import urlsplit

import aiortc
from aiohttp import web
from bot import Bot, rtpmap
from server import make_app

from rtclab.arguments import number
from rtclab.chromium import ChromiumMissingError, chromium_path, launch

MAX_SECONDS = 30.0
CONNECT_TIMEOUT = 30.0  # seconds; generous, a loaded 2-core machine starts Chromium slowly

# --8<-- [start:flags]
# rtclab.chromium.launch adds the flags that keep Chromium on loopback (no DNS, no background fetches);
# these are the ones a WebRTC call between a browser and a bot on 127.0.0.1 needs on top.
WEBRTC_FLAGS = [
    "--use-fake-device-for-media-stream",  # a test pattern and a beep instead of a camera and a microphone
    "--use-fake-ui-for-media-stream",  # grant getUserMedia without a permission prompt
    "--allow-loopback-in-peer-connection",  # WebRTC skips 127.0.0.1 unless told otherwise
    "--disable-features=WebRtcHideLocalIpsWithMdns",  # raw addresses in candidates, not <uuid>.local names
    "--autoplay-policy=no-user-gesture-required",
]
# --8<-- [end:flags]


def is_loopback_url(url: str) -> bool:
    """Only requests to 127.0.0.1, plus URLs that never touch the network."""
    return url.startswith(("data:", "blob:")) or urlsplit(url).hostname == "127.0.0.1"


# --8<-- [start:run]
async def run_call(chromium: str, seconds: float) -> dict[str, Any]:
    """Start the server and the bot, let Chromium call, keep media flowing ``seconds``, collect both views."""
    from playwright.async_api import Route, async_playwright

    token = secrets.token_urlsafe(16)  # new every run: only this run's page can reach the bot
    bot = Bot()
    runner = web.AppRunner(make_app(token, bot.answer), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)  # loopback only, any free port
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with async_playwright() as pw:
            browser = await launch(pw.chromium, *WEBRTC_FLAGS, path=chromium)
            page = await (await browser.new_context()).new_page()

            async def guard(route: Route) -> None:  # abort any request to a host other than 127.0.0.1
                await (route.continue_() if is_loopback_url(route.request.url) else route.abort())

            await page.route("**/*", guard)
            await page.goto(f"http://127.0.0.1:{port}/?token={token}")
            sdp = await page.evaluate("call()")  # getUserMedia, offer, wait for gathering, POST, answer
            await page.wait_for_function("lab.connected || lab.error", timeout=CONNECT_TIMEOUT * 1000)
            if error := await page.evaluate("lab.error"):
                raise RuntimeError(f"the browser reports: {error}")
            await asyncio.wait_for(bot.connected.wait(), CONNECT_TIMEOUT)
            await asyncio.sleep(seconds)  # media flows both ways
            browser_stats = await page.evaluate("collectStats()")
            marks = await page.evaluate("lab.marks")
            version = browser.version
            await page.evaluate("lab.pc.close()")
            await browser.close()
        return {
            "version": version,
            "offer": sdp["offer"],
            "answer": sdp["answer"],
            "browser": browser_stats,
            "marks": marks,
            "bot_sent": await bot.sent(),
            "bot": bot,
        }
    finally:
        await bot.close()
        await runner.cleanup()


# --8<-- [end:run]


def media_sections(sdp: str) -> dict[str, list[str]]:
    """The lines of each media section of an SDP, by kind."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in sdp.splitlines():
        if line.startswith("m="):
            current = sections.setdefault(line[2:].split()[0], [line])
        elif current is not None:
            current.append(line)
    return sections


def codec_names(lines: list[str]) -> str:
    """``opus, red, G722 x2`` from the a=rtpmap lines of one media section, in order."""
    names = Counter(line.split()[1].split("/")[0] for line in lines if line.startswith("a=rtpmap:"))
    return ", ".join(name if n == 1 else f"{name} x{n}" for name, n in names.items()) or "-"


def feedback(lines: list[str]) -> str:
    """The distinct a=rtcp-fb types of one media section (``nack pli``, ``transport-cc``...)."""
    kinds = dict.fromkeys(line.split(" ", 1)[1] for line in lines if line.startswith("a=rtcp-fb:"))
    return ", ".join(kinds) or "-"


def extensions(lines: list[str]) -> str:
    """Short names of the a=extmap header extensions of one media section."""
    names = []
    for line in lines:
        if line.startswith("a=extmap:"):
            uri = line.split()[1]
            if "transport-wide-cc" in uri:
                names.append("transport-wide-cc")
            elif "rtp-hdrext:" in uri:
                names.append(uri.rsplit("rtp-hdrext:", 1)[1])
            else:
                names.append(uri.rstrip("/").rsplit("/", 1)[-1])
    return ", ".join(names) or "-"


def sdp_table(offer: str, answer: str) -> list[str]:
    """Chromium's offer against aiortc's answer, per media kind: codecs, RTCP feedback, header extensions."""
    rows = []
    offered, answered = media_sections(offer), media_sections(answer)
    for kind in offered:
        for label, describe in (("codecs", codec_names), ("rtcp-fb", feedback), ("extmap", extensions)):
            for side, text in (
                ("offer: ", describe(offered[kind])),
                ("answer:", describe(answered.get(kind, []))),
            ):
                head = f"  {kind if side == 'offer: ' else '':<6} {label if side == 'offer: ' else '':<8} {side} "
                rows += textwrap.wrap(
                    text, 108, initial_indent=head, subsequent_indent=" " * len(head), break_on_hyphens=False
                )
    trickle = "a=ice-options:trickle" in offer
    rows.append(f"  trickle         offer:  {'a=ice-options:trickle' if trickle else '-'}")
    done = "a=end-of-candidates" in answer
    rows.append(
        f"                  answer: {'a=end-of-candidates (every candidate is in the SDP)' if done else '-'}"
    )
    return rows


def candidate_summary(lines: list[str]) -> str:
    """``6 udp 127.0.0.1`` style counts of candidate lines by transport and address (other hosts hidden)."""
    counts: Counter[str] = Counter()
    for line in lines:
        parts = line.split()
        transport, address = parts[2].lower(), parts[4]
        where = address if address in ("127.0.0.1", "::1") else "other interfaces"
        counts[f"{transport} {where}"] += 1
    return ", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "none"


def codec_text(codec: dict | None) -> str:
    if not codec:
        return "-"
    text = f"{codec['mimeType'].split('/')[1]}/{codec['clockRate']}"
    return text + (f"/{codec['channels']}" if codec.get("channels") else "")


def report(result: dict[str, Any], seconds: float) -> str:
    """The readable report: candidates, SDP differences, timeline, codecs and media each way."""
    bot: Bot = result["bot"]
    stats = result["browser"]
    out = [
        f"Chromium {result['version']} (headless, fake camera and microphone) called an aiortc "
        f"{aiortc.__version__} bot through a signaling server on 127.0.0.1; {seconds:g} s of media.",
        "",
        "ICE candidates",
        f"  browser offer: {len(bot.candidates_kept) + len(bot.candidates_dropped)} "
        f"({candidate_summary(bot.candidates_kept + bot.candidates_dropped)})",
        f"  kept by the bot before setRemoteDescription: {candidate_summary(bot.candidates_kept)}",
        f"  bot answer: {candidate_summary([line[2:] for line in bot.answer_sdp.splitlines() if line.startswith('a=candidate:')])}",
    ]
    pair = stats["pair"]
    if pair:
        local, remote = pair["local"], pair["remote"]
        rtt = f", RTT {pair['rtt'] * 1000:.1f} ms" if pair["rtt"] is not None else ""
        out.append(
            f"  selected pair (browser getStats): {local['address']}:{local['port']} {local['protocol']} "
            f"{local['type']} <-> {remote['address']}:{remote['port']} {remote['protocol']} {remote['type']}, "
            f"{pair['state']}{rtt}"
        )
    else:
        out.append("  selected pair (browser getStats): none")
    pair_states = Counter(
        f"{'127.0.0.1' if p['local'] == '127.0.0.1' else 'another interface'} {p['state']}"
        for p in stats["pairs"]
    )
    out.append(
        "  pairs the browser checked: "
        + ", ".join(f"{n} from {what}" for what, n in sorted(pair_states.items()))
    )
    refused = len(bot.refused)
    why = " (answers to checks the browser sent from another interface's address)" if refused else ""
    out.append(f"  datagrams the bot refused to send to an address other than 127.0.0.1: {refused}{why}")

    out += [
        "",
        "SDP: what Chromium offered, what aiortc answered",
        *sdp_table(result["offer"], result["answer"]),
    ]

    marks = result["marks"]
    out += ["", "Timeline, browser clock (ms from the start of call())"]
    for name, label in (
        ("getUserMedia", "getUserMedia (fake devices open)"),
        ("offer created", "offer created"),
        ("gathering complete", "ICE gathering complete, offer sent"),
        ("answer received", "answer received (server + bot)"),
        ("ICE connected", "ICE connected"),
        ("connected", "connected (ICE + DTLS): connect time"),
        ("first bot video frame shown", "first bot video frame shown"),
    ):
        value = f"{marks[name]:8.1f}" if name in marks else "       -"
        out.append(f"  {label:<42}{value}")
    out.append("Timeline, bot clock (ms from the offer's arrival)")
    for name, label in (
        ("answer ready", "answer ready (apply offer, gather, answer)"),
        ("connected", "connected"),
        ("first audio frame", "first browser audio frame decoded"),
        ("first video frame", "first browser video frame decoded"),
    ):
        value = f"{bot.marks[name]:8.1f}" if name in bot.marks else "       -"
        out.append(f"  {label:<42}{value}")

    payloads = rtpmap(bot.answer_sdp)
    out += ["", "Codecs each way (what the sender says / what the receiver got)"]
    for kind in ("audio", "video"):
        sender = codec_text(stats["outbound"].get(kind, {}).get("codec"))
        seen = sorted({payloads[kind].get(pt, f"PT {pt}") for pt in bot.received[kind].payload_types})
        out.append(
            f"  browser -> bot  {kind:<6} {sender} (Chromium outbound-rtp) / "
            f"{', '.join(seen) or 'nothing'} (payload types of the packets the bot got)"
        )
    for kind in ("audio", "video"):
        receiver = codec_text(stats["inbound"].get(kind, {}).get("codec"))
        out.append(
            f"  bot -> browser  {kind:<6} {bot.send_codec(kind)} (first codec of aiortc's answer) / "
            f"{receiver} (Chromium inbound-rtp)"
        )

    out += ["", f"Media each way in {seconds:g} s after connecting"]
    for kind in ("audio", "video"):
        sent = stats["outbound"].get(kind, {})
        got = bot.received[kind]
        sent_text = f"sent {sent.get('packets', 0)} packets"
        if kind == "video":
            sent_text += f", {sent.get('framesEncoded', 0)} frames {sent.get('width')}x{sent.get('height')}"
        got_text = f"bot decoded {got.frames} frames"
        if got.size:
            got_text += f", {got.size[0]}x{got.size[1]}"
        out.append(f"  browser -> bot  {kind:<6} {sent_text:<38}{got_text}")
    for kind in ("audio", "video"):
        sent_text = f"sent {result['bot_sent'].get(kind, {}).get('packets', 0)} packets"
        got = stats["inbound"].get(kind, {})
        got_text = f"browser got {got.get('packets', 0)} packets, "
        if kind == "video":
            got_text += (
                f"decoded {got.get('framesDecoded', 0)} frames, {got.get('width')}x{got.get('height')}"
            )
        else:
            got_text += f"{got.get('samples', 0)} audio samples"
        out.append(f"  bot -> browser  {kind:<6} {sent_text:<38}{got_text}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the call, print the report; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--seconds",
        type=number(1, MAX_SECONDS, "seconds"),
        default=3.0,
        help=f"media time after connecting (default: %(default)g, at most {MAX_SECONDS:g})",
    )
    parser.add_argument(
        "--chromium",
        metavar="PATH",
        help="the Chromium executable (default: $CHROME_PATH or /usr/bin/chromium)",
    )
    args = parser.parse_args(argv)
    try:
        chromium = chromium_path(args.chromium)
    except ChromiumMissingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        from playwright.async_api import Error as PlaywrightError
    except ImportError:
        print(
            "error: the playwright package is missing: install it in .venv (pip install playwright)",
            file=sys.stderr,
        )
        return 1
    try:
        result = asyncio.run(run_call(chromium, args.seconds))
    except (TimeoutError, RuntimeError, PlaywrightError) as error:
        reason = str(error).splitlines()[0] if str(error) else "timed out"  # Playwright appends a JS stack
        print(f"error: the call did not connect: {reason}", file=sys.stderr)
        return 1
    print(report(result, args.seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
