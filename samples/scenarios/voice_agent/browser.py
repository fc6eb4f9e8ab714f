"""The user is a browser: headless Chromium whose fake microphone plays a WAV file (the question, then
silence, in a loop) talks to the agent through page.html. Everything stays on 127.0.0.1: Chromium may use
loopback (``--allow-loopback-in-peer-connection``), shows raw addresses instead of mDNS names, every page
request to another host is aborted, and the agent keeps only the offer's UDP 127.0.0.1 candidates.

Needs Chromium (Debian: apt-get install chromium) and the Playwright package; run it with
``voice_agent.py --browser``.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import wave
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from client import Api

from rtclab.chromium import launch
from rtclab.signals import synthesize_speech

QUESTION = "What will the weather be like in Lagos this afternoon"
SILENCE_S = 4.0  # after the question: time for the agent to answer before the file loops (and barges in)


# --8<-- [start:flags]
def chromium_args(wav: Path) -> list[str]:
    return [
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",  # the microphone plays this WAV, in a loop
        "--use-fake-ui-for-media-stream",  # grant getUserMedia without a prompt
        "--allow-loopback-in-peer-connection",  # WebRTC skips 127.0.0.1 unless told otherwise
        "--disable-features=WebRtcHideLocalIpsWithMdns",  # raw addresses, not <uuid>.local names
        "--autoplay-policy=no-user-gesture-required",
    ]  # rtclab.chromium.launch adds the flags that keep Chromium on loopback


# --8<-- [end:flags]


def write_microphone_wav(path: Path) -> None:
    """The question then SILENCE_S of silence, 48 kHz mono 16-bit."""
    speech = synthesize_speech(QUESTION).samples
    samples = np.concatenate([speech, np.zeros(int(SILENCE_S * 48000), dtype=np.float32)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48000)
        out.writeframes(np.round(np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


async def browser_conversation(api: Api, base_url: str, seconds: float) -> tuple[dict, dict]:
    """Let Chromium talk to the agent for ``seconds``; returns what the browser heard and the agent's turns."""
    from playwright.async_api import async_playwright

    session = "b-" + secrets.token_hex(4)
    token = await api.token(session, "browser-user", "caller")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "microphone.wav"
        write_microphone_wav(wav)
        async with async_playwright() as pw:
            browser = await launch(pw.chromium, *chromium_args(wav))
            try:
                page = await (await browser.new_context()).new_page()

                async def guard(route) -> None:  # abort any request to a host other than 127.0.0.1
                    host = urlsplit(route.request.url).hostname
                    await (route.continue_() if host == "127.0.0.1" else route.abort())

                await page.route("**/*", guard)
                await page.goto(base_url + "/")
                await page.evaluate("([s, t]) => call(s, t)", [session, token])
                await page.wait_for_function("lab.connected || lab.error", timeout=30_000)
                if error := await page.evaluate("lab.error"):
                    raise RuntimeError(f"the browser reports: {error}")
                await asyncio.sleep(seconds)
                heard = await page.evaluate("heard()")
                _, turns = await api.call("GET", f"/v1/sessions/{session}/turns", token=token)
                await api.call("POST", f"/v1/sessions/{session}/hangup", token=token)
            finally:
                await browser.close()
    return heard, turns
