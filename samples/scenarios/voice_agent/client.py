"""The user's side: an aiortc peer (loopback only) whose microphone plays scripted speech, and which
records when each bit of the agent's voice arrives. It knows to the sample when its own speech starts and
ends (the first and last sample above a threshold, stamped when their frame goes to the encoder), and it
stamps every decoded frame of the agent's audio with its arrival time and level.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time
from collections import deque
from dataclasses import dataclass

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from rtclab.jitter import AdaptivePlayout
from rtclab.loopback import check_loopback_sdp, loopback_only, rtc_configuration
from rtclab.service import JsonClient

__all__ = ["Api", "Caller", "MicrophoneTrack"]

RATE, FRAME = 48000, 960
SPEECH_LEVEL = 0.01  # a sample above this (full scale 1.0) counts as sound
HEARD_RMS = 0.005  # a received frame above this RMS counts as the agent's voice


class Api(JsonClient):
    """HTTP calls to the agent service; every answer is (status, JSON body) (see rtclab.service)."""

    async def token(self, session: str, user: str, role: str, ttl_s: int = 600) -> str:
        status, data = await self.call(
            "POST",
            "/v1/tokens",
            token=self.backend_key,
            body={"session": session, "user": user, "role": role, "ttl_s": ttl_s},
        )
        if status != 200:
            raise RuntimeError(f"token refused: {status} {data}")
        return data["token"]


@dataclass
class Played:
    """When one scripted utterance's first and last sound went to the encoder (time.monotonic())."""

    onset_at: float | None = None
    end_at: float | None = None
    position: int = 0  # samples handed out so far


class MicrophoneTrack(MediaStreamTrack):
    """A microphone that plays silence, or a speech sample when told to, in real-time 20 ms frames."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pending: deque[tuple[np.ndarray, Played, int, int]] = deque()
        self._start: float | None = None
        self._pts = 0

    def play(self, samples: np.ndarray) -> Played:
        loud = np.flatnonzero(np.abs(samples) > SPEECH_LEVEL)
        played = Played()
        pcm = np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16)
        self._pending.append((pcm, played, int(loud[0]), int(loud[-1])))
        return played

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += FRAME
            await asyncio.sleep(self._start + self._pts / RATE - time.monotonic())
        now = time.monotonic()
        out = np.zeros(FRAME, dtype=np.int16)
        if self._pending:
            pcm, played, first, last = self._pending[0]
            position = played.position
            chunk = pcm[position : position + FRAME]
            out[: chunk.size] = chunk
            if position <= first < position + FRAME:
                played.onset_at = now + (first - position) / RATE
            if position <= last < position + FRAME:
                played.end_at = now + (last - position) / RATE
            played.position = position + FRAME
            if position + FRAME >= pcm.size:
                self._pending.popleft()
        frame = av.AudioFrame.from_ndarray(out.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._pts, fractions.Fraction(1, RATE)
        return frame


class Caller:
    """The user: a token, an offer with one sendrecv audio section, and a log of what it heard."""

    def __init__(
        self,
        api: Api,
        session: str,
        user: str = "user1",
        profile: str | None = None,
        jitter_buffer: str = "adaptive",
    ) -> None:
        self.api, self.session, self.user, self.profile = api, session, user, profile
        self.jitter_buffer = jitter_buffer
        self.playout: AdaptivePlayout | None = None
        self.mic = MicrophoneTrack()
        self.pc = RTCPeerConnection(rtc_configuration())
        self.token = ""
        self.heard: list[tuple[float, float]] = []  # (arrival time, RMS) of every decoded agent frame
        self._tasks: list[asyncio.Task] = []

    # --8<-- [start:call]
    async def call(self) -> None:
        self.token = await self.api.token(self.session, self.user, "caller")
        self.pc.addTransceiver(self.mic, direction="sendrecv")
        self.pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._record(track))))
        with loopback_only():
            await self.pc.setLocalDescription(await self.pc.createOffer())
        if self.profile:  # lab only: impair what the user sends (the server impairs what the agent sends)
            from rtclab.impair import impair_connection
            from rtclab.profiles import get_profile

            impair_connection(self.pc, get_profile(self.profile).uplink_impairment(seed=2))
        check_loopback_sdp(self.pc.localDescription.sdp)
        offer = {"type": "offer", "sdp": self.pc.localDescription.sdp}
        status, answer = await self.api.call(
            "POST", f"/v1/sessions/{self.session}/offer", token=self.token, body=offer
        )
        if status != 200:
            raise RuntimeError(f"the agent refused the call: {status} {answer}")
        check_loopback_sdp(answer["sdp"])
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
        if self.jitter_buffer == "adaptive":  # a phone's WebRTC stack adapts its buffer (NetEQ); so does this
            self.playout = AdaptivePlayout.attach(self.pc.getTransceivers()[0].receiver)

    # --8<-- [end:call]

    async def _record(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                pcm = frame.to_ndarray().astype(np.float64) / 32768
                self.heard.append((time.monotonic(), float(np.sqrt(np.mean(pcm**2)))))

    def voiced_between(self, since: float, until: float) -> list[float]:
        return [t for t, rms in self.heard if since <= t <= until and rms > HEARD_RMS]

    async def wait_for(self, condition, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    async def wait_for_voice(self, since: float, timeout: float) -> float | None:
        """Arrival time of the first agent frame with sound after ``since``, or None."""
        found = await self.wait_for(lambda: self.voiced_between(since, float("inf")), timeout)
        return self.voiced_between(since, float("inf"))[0] if found else None

    async def wait_for_quiet(self, quiet_s: float, timeout: float) -> bool:
        """Wait until the agent has been silent for ``quiet_s``."""

        def quiet() -> bool:
            now = time.monotonic()
            return (
                bool(self.heard)
                and not self.voiced_between(now - quiet_s, now)
                and self.heard[-1][0] > now - 0.1
            )

        return await self.wait_for(quiet, timeout)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.playout is not None:
            await self.playout.stop()
        await self.pc.close()
