"""The agent: a server-side aiortc peer that listens, decides when the user's turn ends, streams a reply
from an OpenAI-compatible chat endpoint, speaks it with espeak-ng phrase by phrase, and stops the moment
the user talks over it (barge-in). Every step stamps ``time.monotonic()``, which on Linux is one clock for
every process of the machine, so the runner can line the agent's stamps up with the client's.

    turn:     user speaks -> VAD onset -> silence > hangover: end of turn -> LLM request -> first token
              -> first phrase -> espeak-ng -> first voiced frame handed to the encoder
    preemptive reply: a short pause (``preempt_after_ms`` of silence) already starts the LLM request and
              espeak-ng; their audio is held until the hangover confirms the turn, and thrown away if the
              user goes on talking. LLM and TTS then overlap the hangover instead of following it.
    barge-in: user speaks while the agent talks -> VAD onset -> cancel LLM + TTS, flush the outgoing queue

The agent plays what it hears through rtclab's adaptive jitter buffer (as a browser's NetEQ would) unless
``jitter_buffer="aiortc"``: aiortc's own buffer holds every frame until four more have arrived (80 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import ipaddress
import json
import os
import re
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any

import av
import numpy as np
import webrtcvad
from aiohttp import ClientSession, ClientTimeout
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtclab import loopback
from rtclab.jitter import AdaptivePlayout
from rtclab.loopback import LOOPBACK_ADDRESS, check_loopback_sdp, loopback_only, rtc_configuration

__all__ = ["Agent", "AgentConfig", "AgentVoiceTrack", "TurnDetector", "keep_loopback_candidates"]

RATE = 48000
FRAME = 960  # 20 ms at 48 kHz: webrtcvad takes 10, 20 or 30 ms frames at 8, 16, 32 or 48 kHz
FRAME_S = FRAME / RATE


@dataclass(frozen=True)
class AgentConfig:
    """The agent's knobs.

    Attributes:
        hangover_ms: Silence after the last voiced frame before the user's turn counts as over.
        onset_ms: Voiced audio needed to count as speech (a turn's start, or a barge-in).
        vad_mode: webrtcvad aggressiveness, 0 (least) to 3 (most eager to call a frame non-speech).
        min_level_dbfs: Frames quieter than this are silence whatever webrtcvad says (it calls faint
            hiss speech; the level gate is what keeps a quiet room from starting turns).
        llm_url: Base URL of an OpenAI-compatible API (``.../v1``); this lab allows loopback hosts only.
        model: The ``model`` field of the request.
        voice: The espeak-ng voice; words_per_minute: its speaking rate.
        preempt_after_ms: Silence after which the reply starts speculatively, before the hangover
            confirms the turn; None waits for the hangover.
        preempt_max_tries: Speculative replies per user turn at most (each one is an LLM request).
        jitter_buffer: "adaptive" (rtclab's NetEQ-style buffer) or "aiortc" (aiortc's fixed one).
    """

    hangover_ms: int = 500
    onset_ms: int = 80
    vad_mode: int = 2
    min_level_dbfs: float = -50.0
    llm_url: str = ""
    model: str = "stand-in"
    voice: str = "en-us"
    words_per_minute: int = 175
    preempt_after_ms: int | None = 100
    preempt_max_tries: int = 3
    jitter_buffer: str = "adaptive"
    profile: str | None = None  # lab only: an rtclab network profile for what the agent sends


# --- hearing: voice activity and end of turn ----------------------------------------------------------------


# --8<-- [start:vad]
class TurnDetector:
    """webrtcvad on 20 ms frames: speech starts after ``onset_ms`` of voiced frames in a row, and a turn ends
    once ``hangover_ms`` of unvoiced frames follow the last voiced one. With ``preempt_after_ms`` it also
    reports a "pause" that far into the silence, and "resume" when speech comes back before the turn ends."""

    def __init__(self, config: AgentConfig) -> None:
        self.vad = webrtcvad.Vad(config.vad_mode)
        self.min_rms = 32768 * 10 ** (config.min_level_dbfs / 20)
        self.onset_frames = max(1, round(config.onset_ms / 20))
        self.hangover_frames = max(1, round(config.hangover_ms / 20))
        preempt = config.preempt_after_ms
        self.pause_frames = max(1, round(preempt / 20)) if preempt is not None else None
        self.in_speech = False
        self.voiced_run = self.silent_run = 0
        self.last_voiced_at = 0.0

    def feed(self, pcm: bytes, at: float) -> str | None:
        """One 20 ms mono s16 frame that arrived at ``at``; returns "onset", "pause", "resume", "end" or None."""
        level = np.sqrt(np.mean(np.frombuffer(pcm, dtype=np.int16).astype(np.float64) ** 2))
        if level >= self.min_rms and self.vad.is_speech(pcm, RATE):
            paused = self._paused()
            self.voiced_run, self.silent_run, self.last_voiced_at = self.voiced_run + 1, 0, at
            if not self.in_speech and self.voiced_run >= self.onset_frames:
                self.in_speech = True
                return "onset"
            if paused:
                return "resume"
        else:
            self.voiced_run, self.silent_run = 0, self.silent_run + 1
            if self.in_speech and self.silent_run >= self.hangover_frames:
                self.in_speech = False
                return "end"
            if self.in_speech and self.silent_run == self.pause_frames:
                return "pause"
        return None

    def _paused(self) -> bool:
        return self.in_speech and self.pause_frames is not None and self.silent_run >= self.pause_frames


# --8<-- [end:vad]


# --- speaking: an outgoing track with a queue that can be flushed -------------------------------------------


class AgentVoiceTrack(MediaStreamTrack):
    """The agent's voice: 20 ms frames paced in real time from a queue, silence when the queue is empty.

    `flush` empties the queue: the next frame the encoder asks for is silence, at most 20 ms later.
    """

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.queue: deque[tuple[np.ndarray, int]] = deque()  # (960 int16 samples, utterance id)
        self.first_sent: dict[int, float] = {}  # utterance id -> when its first frame went to the encoder
        self.frames_sent: dict[int, int] = {}
        self._start: float | None = None
        self._pts = 0
        self._silence = np.zeros(FRAME, dtype=np.int16)

    def speak(self, samples: np.ndarray, utterance: int) -> None:
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
        pcm = np.concatenate([pcm, np.zeros(-pcm.size % FRAME, dtype=np.int16)])
        self.queue.extend((chunk, utterance) for chunk in pcm.reshape(-1, FRAME))

    def flush(self) -> int:
        dropped = len(self.queue)
        self.queue.clear()
        return dropped

    @property
    def speaking(self) -> bool:
        return bool(self.queue)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            await asyncio.sleep(self._start + self._pts / RATE - time.monotonic())
        pcm = self._silence
        if self.queue:
            pcm, utterance = self.queue.popleft()
            self.first_sent.setdefault(utterance, time.monotonic())
            self.frames_sent[utterance] = self.frames_sent.get(utterance, 0) + 1
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._pts, fractions.Fraction(1, RATE)
        return frame


# --- thinking and speaking: LLM stream -> phrases -> espeak-ng ----------------------------------------------


_PHRASE_END = re.compile(r"[.!?;:,]\s*$")


def phrases(min_words: int = 3, max_words: int = 14):
    """A splitter: feed text deltas, get back phrases worth speaking (a punctuation mark after a few words,
    or ``max_words`` without one). Short first phrases mean early audio; too short ones sound choppy."""
    buffer = ""

    def feed(delta: str | None) -> list[str]:
        nonlocal buffer
        if delta is None:  # end of stream
            out, buffer = ([buffer.strip()] if buffer.strip() else []), ""
            return out
        buffer += delta
        words = buffer.split()
        if (len(words) >= min_words and _PHRASE_END.search(buffer)) or len(words) >= max_words:
            out, buffer = [buffer.strip()], ""
            return out
        return []

    return feed


async def espeak(text: str, voice: str, words_per_minute: int) -> np.ndarray:
    """Speak one phrase with espeak-ng (``--stdout``), resampled to 48 kHz float32."""
    proc = await asyncio.create_subprocess_exec(
        "espeak-ng",
        "-v",
        voice,
        "-s",
        str(words_per_minute),
        "--stdout",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    wav, _ = await proc.communicate(text.encode("utf-8"))
    data = wav.find(b"data")
    if proc.returncode != 0 or data < 0:
        raise RuntimeError(f"espeak-ng failed on {text!r}")
    rate = int.from_bytes(wav[24:28], "little")
    pcm = np.frombuffer(wav[data + 8 : data + 8 + (len(wav) - data - 8) // 2 * 2], dtype="<i2") / 32768
    voiced = np.flatnonzero(np.abs(pcm) > 0.002)
    pcm = pcm[voiced[0] :] if voiced.size else pcm  # no leading silence: it only delays the first word
    times = np.arange(int(pcm.size * RATE / rate)) / RATE
    return np.interp(times, np.arange(pcm.size) / rate, pcm).astype(np.float32)


async def stream_chat(http: ClientSession, config: AgentConfig, messages: list[dict]):
    """Yield the text deltas of a streaming chat completion (OpenAI server-sent-events format)."""
    headers = (
        {"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"}
        if os.environ.get("OPENAI_API_KEY")
        else {}
    )
    body = {"model": config.model, "stream": True, "messages": messages}
    async with http.post(f"{config.llm_url}/chat/completions", json=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"the LLM endpoint answered {response.status}")
        async for raw in response.content:
            line = raw.decode("utf-8", "replace").strip()
            if not line.startswith("data:"):
                continue
            payload = line.removeprefix("data:").strip()
            if payload == "[DONE]":
                return
            delta = json.loads(payload)["choices"][0].get("delta", {}).get("content")
            if delta:
                yield delta


@dataclass
class Turn:
    """The stamps of one user turn and the agent's reply (``time.monotonic()`` seconds, None if not reached)."""

    index: int
    onset_at: float | None = None  # VAD: speech started
    last_voiced_at: float | None = None  # arrival of the last voiced frame
    end_at: float | None = None  # hangover elapsed: the turn is over
    preemptive: bool = False  # the reply that was spoken started before end_at
    replies_discarded: int = 0  # speculative replies thrown away because the user went on talking
    llm_request_at: float | None = None
    llm_first_token_at: float | None = None
    first_phrase_at: float | None = None
    first_phrase: str = ""
    tts_first_audio_at: float | None = None
    first_audio_sent_at: float | None = None  # first voiced frame handed to the encoder
    interrupted_at: float | None = None  # barge-in: queue flushed and reply cancelled
    barge_onset_at: float | None = None  # the VAD onset that caused it
    frames_flushed: int = 0
    spoken: list[str] = field(default_factory=list)  # phrases whose audio went out in full


# --- the agent ----------------------------------------------------------------------------------------------


def keep_loopback_candidates(sdp: str) -> tuple[str, int]:
    """The offer with only its UDP 127.0.0.1 candidates (a browser offers every interface), and how many."""
    sdp, kept, _ = loopback.keep_loopback_candidates(sdp)
    return sdp, len(kept)


class _LoopbackOnly:
    """Wraps an aioice socket transport: a datagram to anything but 127.0.0.1 is dropped."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def sendto(self, data: bytes, addr: Any = None) -> None:
        if addr and ipaddress.ip_address(addr[0]) == ipaddress.ip_address(LOOPBACK_ADDRESS):
            self._inner.sendto(data, addr)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class Agent:
    """One conversation: a peer connection, a turn detector, a reply pipeline and its timings."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.pc = RTCPeerConnection(rtc_configuration())  # iceServers=[]: no STUN, no TURN
        self.voice = AgentVoiceTrack()
        self.detector = TurnDetector(config)
        self.turns: list[Turn] = []
        self.history: list[dict] = [{"role": "system", "content": "You are a helpful voice assistant."}]
        self.frames_heard = 0
        self._reply: asyncio.Task | None = None
        self._release: asyncio.Event | None = None  # set when the reply's turn is confirmed
        self.playout: AdaptivePlayout | None = None
        self._tasks: list[asyncio.Task] = []
        self._http = ClientSession(timeout=ClientTimeout(total=60))
        self.pc.on("track", self._on_track)

    async def answer(self, offer_sdp: str) -> str:
        """Apply a caller's offer (loopback candidates only) and return the answer."""
        sdp, kept = keep_loopback_candidates(offer_sdp)
        if not kept:
            raise ValueError("the offer has no UDP candidate on 127.0.0.1")
        check_loopback_sdp(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        audio = [t for t in self.pc.getTransceivers() if t.kind == "audio"]
        if len(audio) != 1 or len(self.pc.getTransceivers()) != 1:
            raise ValueError("offer exactly one audio section")
        audio[0].sender.replaceTrack(self.voice)
        audio[0].direction = "sendrecv"
        if self.config.jitter_buffer == "adaptive":
            self.playout = AdaptivePlayout.attach(audio[0].receiver)
        with loopback_only():
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        for transceiver in self.pc.getTransceivers():  # no datagram leaves for another address
            for protocol in transceiver.receiver.transport.transport._connection._protocols:
                protocol.transport = _LoopbackOnly(protocol.transport)
        if self.config.profile:
            from rtclab.impair import impair_connection
            from rtclab.profiles import get_profile

            impair_connection(self.pc, get_profile(self.config.profile).downlink_impairment(seed=1))
        check_loopback_sdp(self.pc.localDescription.sdp)
        return self.pc.localDescription.sdp

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._tasks.append(asyncio.ensure_future(self._listen(track)))

    # --8<-- [start:listen]
    async def _listen(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()  # decoded: after the jitter buffer and the Opus decoder
                at = time.monotonic()
                pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1)
                self.frames_heard += 1
                event = self.detector.feed(pcm.astype(np.int16).tobytes(), at)
                if event == "onset":
                    if self._reply is not None and not self._reply.done() or self.voice.speaking:
                        self.barge_in(at)  # the user talks over the agent: stop speaking now
                    self.turns.append(Turn(len(self.turns), onset_at=at))
                elif event == "pause" and self.turns:  # maybe the end: start the reply, hold its audio
                    turn = self.turns[-1]
                    if turn.replies_discarded < self.config.preempt_max_tries:
                        turn.last_voiced_at = self.detector.last_voiced_at
                        self._start_reply(turn, preemptive=True)
                elif event == "resume" and self._release is not None and not self._release.is_set():
                    self._reply.cancel()  # only a pause: the held reply answered half a question
                    self._reply = self._release = None
                    self.turns[-1].replies_discarded += 1
                elif event == "end" and self.turns:
                    turn = self.turns[-1]
                    turn.last_voiced_at, turn.end_at = self.detector.last_voiced_at, at
                    if self._release is None or self._release.is_set():
                        self._start_reply(turn, preemptive=False)
                    self.history.append(self._user_message(turn))
                    self._release.set()  # the turn is confirmed: the reply may speak

    def _start_reply(self, turn: Turn, preemptive: bool) -> None:
        turn.preemptive = preemptive
        self._release = asyncio.Event()
        self._reply = asyncio.ensure_future(self.reply(turn, self._release))

    def barge_in(self, at: float) -> None:
        """Cancel the reply being generated and drop every queued frame of the agent's voice."""
        replying = next((t for t in reversed(self.turns) if t.end_at is not None), None)
        if self._reply is not None:
            self._reply.cancel()
        flushed = self.voice.flush()
        if replying is not None and replying.interrupted_at is None:
            replying.barge_onset_at, replying.interrupted_at = at, time.monotonic()
            replying.frames_flushed = flushed
            self.history.append(
                {"role": "assistant", "content": " ".join(replying.spoken) + " [interrupted by the user]"}
            )

    # --8<-- [end:listen]

    # --8<-- [start:reply]
    @staticmethod
    def _user_message(turn: Turn) -> dict:
        # No speech recognition in this lab: the agent sends what it knows about the turn.
        heard = (turn.last_voiced_at or 0) - (turn.onset_at or 0)
        return {"role": "user", "content": f"[user turn {turn.index}, {heard:.1f} s of speech]"}

    async def reply(self, turn: Turn, release: asyncio.Event) -> None:
        """LLM stream -> phrases -> espeak-ng -> the outgoing queue, each phrase as soon as it is ready and
        ``release`` is set (at once for a confirmed turn; after the hangover for a preemptive reply)."""
        turn.llm_first_token_at = turn.first_phrase_at = turn.tts_first_audio_at = None
        messages = [*self.history, self._user_message(turn)]
        phrase_queue: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.ensure_future(self._speak(turn, phrase_queue, release))
        split = phrases()
        try:
            turn.llm_request_at = time.monotonic()
            async for delta in stream_chat(self._http, self.config, messages):
                if turn.llm_first_token_at is None:
                    turn.llm_first_token_at = time.monotonic()
                for phrase in split(delta):
                    if turn.first_phrase_at is None:
                        turn.first_phrase_at, turn.first_phrase = time.monotonic(), phrase
                    phrase_queue.put_nowait(phrase)
            for phrase in split(None):
                phrase_queue.put_nowait(phrase)
            phrase_queue.put_nowait(None)
            await speaker
            self.history.append({"role": "assistant", "content": " ".join(turn.spoken)})
        finally:
            speaker.cancel()

    async def _speak(self, turn: Turn, phrase_queue: asyncio.Queue, release: asyncio.Event) -> None:
        utterance_ids = []
        while (phrase := await phrase_queue.get()) is not None:
            audio = await espeak(phrase, self.config.voice, self.config.words_per_minute)
            if turn.tts_first_audio_at is None:
                turn.tts_first_audio_at = time.monotonic()
            await release.wait()  # a preemptive reply speaks only once the turn is over
            uid = turn.index * 1000 + len(utterance_ids)
            utterance_ids.append((uid, phrase, -(-audio.size // FRAME)))
            self.voice.speak(audio, uid)
        while self.voice.speaking:  # wait until the last frame has gone to the encoder
            await asyncio.sleep(FRAME_S)
            self._note_sent(turn, utterance_ids)
        self._note_sent(turn, utterance_ids)

    # --8<-- [end:reply]

    def _note_sent(self, turn: Turn, utterance_ids: list) -> None:
        if turn.first_audio_sent_at is None and utterance_ids:
            turn.first_audio_sent_at = self.voice.first_sent.get(utterance_ids[0][0])
        turn.spoken = [p for uid, p, n in utterance_ids if self.voice.frames_sent.get(uid, 0) >= n]

    def report(self) -> dict:
        """Every turn's stamps (for the runner, a dashboard or a support engineer)."""
        for turn in self.turns:  # stamps the speaker could not write because it was cancelled
            if turn.first_audio_sent_at is None:
                first = min(
                    (t for u, t in self.voice.first_sent.items() if u // 1000 == turn.index), default=None
                )
                turn.first_audio_sent_at = first
        return {"turns": [asdict(t) for t in self.turns], "frames_heard": self.frames_heard}

    async def close(self) -> None:
        if self._reply is not None:
            self._reply.cancel()
        if self.playout is not None:
            await self.playout.stop()
        for task in self._tasks:
            task.cancel()
        self.voice.stop()
        await self.pc.close()
        await self._http.close()
