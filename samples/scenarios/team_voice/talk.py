"""When a player's microphone is on the air: push-to-talk, open mic gated by a voice activity detector (VAD),
or off. The gate sits between the microphone track and aiortc's sender and passes or swallows whole 20 ms
frames, so a closed gate sends nothing at all: no bandwidth, no CPU at the server, nothing to forward.

The VAD is WebRTC's (the ``webrtcvad`` module, from the webrtcvad-wheels package): 16-bit mono PCM at 8, 16,
32 or 48 kHz in 10, 20 or 30 ms frames, aggressiveness 0 (keeps most) to 3 (drops most).
"""

from __future__ import annotations

import av
import numpy as np
import webrtcvad
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

__all__ = ["MODES", "TalkGate"]

MODES = ("off", "ptt", "vad", "open")
"""off: muted locally; ptt: on the air while the key is held; vad: open mic, speech only; open: always."""


# --8<-- [start:gate]
class TalkGate(MediaStreamTrack):
    """Pass the microphone's frames to the sender only while the player is on the air.

    ``hangover_ms`` keeps the gate open a little after the key is released or speech stops. It saves the end
    of the last word, and it matters for aiortc in particular: its receiver's jitter buffer hands a frame to
    the decoder only once four later ones have arrived, so the last frames before a silence would sit in
    the listener's buffer until the next talk spurt; with a hangover of 100 ms or more, the frames stuck
    there are silence.
    """

    kind = "audio"

    def __init__(
        self, microphone: MediaStreamTrack, mode: str = "vad", *, vad_level: int = 2, hangover_ms: int = 200
    ) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.microphone, self.mode = microphone, mode
        self.vad = webrtcvad.Vad(vad_level)
        self.hangover_frames = max(0, hangover_ms // 20)
        self.pressed = False  # the push-to-talk key
        self.frames_in = self.frames_sent = 0
        self._open_for = 0  # frames the hangover still lets through

    def press(self) -> None:
        self.pressed = True

    def release(self) -> None:
        self.pressed = False

    def _on_air(self, frame: av.AudioFrame) -> bool:
        if self.mode == "open":
            return True
        if self.mode == "ptt":
            now = self.pressed
        elif self.mode == "vad":
            pcm = frame.to_ndarray().astype(np.int16).reshape(-1)  # mono s16: 960 samples of 20 ms
            now = self.vad.is_speech(pcm.tobytes(), frame.sample_rate)
        else:
            now = False
        if now:
            self._open_for = self.hangover_frames
            return True
        if self._open_for > 0:
            self._open_for -= 1
            return True
        return False

    async def recv(self) -> av.AudioFrame:
        while True:  # the microphone paces us: one frame per 20 ms whether it goes out or not
            if self.readyState != "live":
                raise MediaStreamError
            frame = await self.microphone.recv()
            self.frames_in += 1
            if self._on_air(frame):
                self.frames_sent += 1
                return frame

    def stop(self) -> None:
        super().stop()
        self.microphone.stop()

    @property
    def share_sent(self) -> float:
        """Frames sent over frames the microphone produced (0 before any)."""
        return self.frames_sent / self.frames_in if self.frames_in else 0.0


# --8<-- [end:gate]
