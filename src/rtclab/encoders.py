"""Choose the codecs of a call and tune aiortc's video encoders, per call, without patching aiortc globally.

What aiortc 1.16 does on its own (read from ``aiortc/codecs/vpx.py``, ``h264.py`` and ``rtcrtpsender.py``):

* Codecs: it offers audio Opus, G.722, PCMU, PCMA and video VP8, H.264 (two profile-level-ids, 42001f and
  42e01f), in that order, and the answerer keeps the offer's order, so a call sends Opus and VP8. The
  standard way to choose is ``RTCRtpTransceiver.setCodecPreferences`` before the offer (`codec_preferences`).
* VP8 (``Vp8Encoder``): libvpx in CBR (``minrate = maxrate = bit_rate``, a 1 s buffer), ``deadline=realtime``,
  ``cpu-used=-6`` (speed 6), ``lag-in-frames=0``, ``noise-sensitivity=4``, keyframes only on request (a GOP
  of 3000), quantizer 2-56. Starts at 500 kbit/s; REMB from the receiver moves the target, clamped to
  250 kbit/s-1.5 Mbit/s. None of this is a constructor argument.
* H.264 (``H264Encoder``): libx264, Baseline profile, level 3.1, ``tune=zerolatency`` and no preset (so
  x264's default, ``medium``); average bitrate 1 Mbit/s, clamped to 500 kbit/s-3 Mbit/s.
* The sender creates its encoder with ``get_encoder(codec)`` when the first frame arrives, and only if it
  has none yet (``RTCRtpSender._next_encoded_frame``): there is no public hook.

So `TunedVp8Encoder` and `TunedH264Encoder` subclass aiortc's encoders (keeping their packetization and
keyframe handling), open the codec context with the settings of a `VideoEncoderSettings` and replace the
bitrate clamp; `install_encoder` gives one to a single sender before its media starts. Nothing changes for
any other peer connection in the process. Both also time every ``encode`` call (`EncoderStats`), which
is how a test sees that a setting took effect.
"""

from __future__ import annotations

import fractions
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import RTCRtpSender
from aiortc.codecs import h264 as _h264
from aiortc.codecs import vpx as _vpx
from aiortc.codecs.base import Encoder
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription
from av.frame import Frame

__all__ = [
    "AUDIO_CODECS",
    "H264_PRESETS",
    "VIDEO_CODECS",
    "EncoderStats",
    "TunedH264Encoder",
    "TunedVp8Encoder",
    "VideoEncoderSettings",
    "benchmark_video_encoder",
    "codec_preferences",
    "install_encoder",
    "make_video_encoder",
    "negotiated_codecs",
]

AUDIO_CODECS: dict[str, str] = {
    "opus": "audio/opus",
    "pcmu": "audio/PCMU",
    "pcma": "audio/PCMA",
    "g722": "audio/G722",
}
"""Audio codecs aiortc offers, by lower-case name, with their MIME type."""
VIDEO_CODECS: dict[str, str] = {"vp8": "video/VP8", "h264": "video/H264"}
"""Video codecs aiortc offers, by lower-case name, with their MIME type."""
H264_PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
)
"""x264's presets, fastest first."""
_H264_TUNES = ("film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode", "zerolatency")
_VP8_DEADLINES = ("realtime", "good", "best")
_KINDS = {"audio": AUDIO_CODECS, "video": VIDEO_CODECS}


def codec_preferences(kind: str, name: str, *, rtx: bool = True) -> list[RTCRtpCodecCapability]:
    """The capabilities to pass to ``RTCRtpTransceiver.setCodecPreferences`` so that only ``name`` is offered.

    Offering one codec (rather than putting it first) makes the outcome certain whatever the answerer
    prefers. For H.264 both profile-level-ids aiortc knows are kept.

    Args:
        kind: ``"audio"`` or ``"video"``.
        name: A codec name, any case: ``opus``, ``PCMU``, ``PCMA``, ``G722`` for audio; ``VP8``, ``H264`` for
            video.
        rtx: For video, also offer RTX (retransmission of lost packets after a NACK), as aiortc does by
            default; without it a lost video packet is only repaired by the next keyframe.

    Returns:
        The capabilities, in aiortc's order.

    Raises:
        ValueError: On an unknown kind or a codec aiortc does not offer for that kind.
    """
    if kind not in _KINDS:
        raise ValueError(f"kind must be 'audio' or 'video', got {kind!r}")
    mime = _KINDS[kind].get(name.lower())
    if mime is None:
        choices = ", ".join(m.split("/")[1] for m in _KINDS[kind].values())
        raise ValueError(f"aiortc offers no {kind} codec {name!r}: choose one of {choices}")
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen = [c for c in capabilities if c.mimeType.lower() == mime.lower()]
    if kind == "video" and rtx:
        chosen += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen


def negotiated_codecs(sdp: str) -> dict[str, str]:
    """The codec each media section of a description will use: its first listed codec.

    Pass the answer: after negotiation the answer lists the codecs both sides accepted, in the order the
    sender will use them.

    Args:
        sdp: A session description.

    Returns:
        MIME type per media kind, e.g. ``{"audio": "audio/opus", "video": "video/VP8"}``.
    """
    description = SessionDescription.parse(sdp)
    return {m.kind: m.rtp.codecs[0].mimeType for m in description.media if m.rtp.codecs}


@dataclass(frozen=True)
class VideoEncoderSettings:
    """Video encoder settings for one call; None everywhere means "as aiortc does it" (see the module).

    Attributes:
        target_kbps: Bitrate the encoder starts at, in kbit/s (aiortc: VP8 500, H.264 1000).
        min_kbps: Lowest target the receiver's REMB may set (aiortc: VP8 250, H.264 500). Lower it to
            let a congested link actually get a smaller stream.
        max_kbps: Highest target (aiortc: VP8 1500, H.264 3000): a bitrate cap.
        vp8_deadline: libvpx ``deadline``: ``"realtime"`` (aiortc), ``"good"`` or ``"best"``; the two last
            spend far more time per frame and suit files, not calls.
        vp8_cpu_used: libvpx ``cpu-used``, -16 to 16 (aiortc: -6): the higher the magnitude, the faster and
            the worse the picture; in realtime mode negative values fix the speed, positive ones let libvpx
            adapt it to the CPU load.
        h264_preset: x264 preset, one of `H264_PRESETS` (aiortc sets none: x264's ``"medium"``).
        h264_tune: x264 tune (aiortc: ``"zerolatency"``, which removes frame reordering and lookahead).
    """

    target_kbps: float | None = None
    min_kbps: float | None = None
    max_kbps: float | None = None
    vp8_deadline: str | None = None
    vp8_cpu_used: int | None = None
    h264_preset: str | None = None
    h264_tune: str | None = None

    def __post_init__(self) -> None:
        """Check the values.

        Raises:
            ValueError: On a bitrate outside 10-50000 kbit/s, min above max, or an unknown option value.
        """
        for name in ("target_kbps", "min_kbps", "max_kbps"):
            value = getattr(self, name)
            if value is not None and not 10 <= value <= 50_000:
                raise ValueError(f"{name} must be between 10 and 50000 kbit/s")
        if self.min_kbps is not None and self.max_kbps is not None and self.min_kbps > self.max_kbps:
            raise ValueError("min_kbps must not exceed max_kbps")
        if self.vp8_deadline is not None and self.vp8_deadline not in _VP8_DEADLINES:
            raise ValueError(f"vp8_deadline must be one of {', '.join(_VP8_DEADLINES)}")
        if self.vp8_cpu_used is not None and not -16 <= self.vp8_cpu_used <= 16:
            raise ValueError("vp8_cpu_used must be between -16 and 16")
        if self.h264_preset is not None and self.h264_preset not in H264_PRESETS:
            raise ValueError(f"h264_preset must be one of {', '.join(H264_PRESETS)}")
        if self.h264_tune is not None and self.h264_tune not in _H264_TUNES:
            raise ValueError(f"h264_tune must be one of {', '.join(_H264_TUNES)}")

    def bitrate_limits(self, default: int, minimum: int, maximum: int) -> tuple[int, int, int]:
        """Start, floor and cap in bit/s, aiortc's values where a setting is None.

        Args:
            default: aiortc's starting bitrate for the codec, bit/s.
            minimum: aiortc's floor, bit/s.
            maximum: aiortc's cap, bit/s.

        Returns:
            ``(start, floor, cap)`` with the start clamped between floor and cap.
        """
        low = int(self.min_kbps * 1000) if self.min_kbps is not None else minimum
        high = int(self.max_kbps * 1000) if self.max_kbps is not None else maximum
        low = min(low, high)  # a cap below aiortc's floor lowers the floor with it
        start = int(self.target_kbps * 1000) if self.target_kbps is not None else default
        return max(low, min(start, high)), low, high


@dataclass
class EncoderStats:
    """What an encoder did: frames, time spent in ``encode`` and bytes produced.

    Attributes:
        frames: Frames encoded.
        encode_s: Wall-clock seconds spent in ``encode`` (conversion, encoding and packetizing).
        payload_bytes: RTP payload bytes produced.
        keyframes_forced: Frames encoded as keyframes because the receiver asked (PLI/FIR).
    """

    frames: int = 0
    encode_s: float = 0.0
    payload_bytes: int = 0
    keyframes_forced: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, seconds: float, payload_bytes: int, keyframe: bool) -> None:
        """Count one ``encode`` call (thread-safe: aiortc encodes in an executor thread)."""
        with self._lock:
            self.frames += 1
            self.encode_s += seconds
            self.payload_bytes += payload_bytes
            self.keyframes_forced += int(keyframe)

    @property
    def ms_per_frame(self) -> float | None:
        """Mean encode time per frame in ms (None before the first frame)."""
        return self.encode_s * 1000 / self.frames if self.frames else None


def _vp8_context(frame: av.VideoFrame, bitrate: int, settings: VideoEncoderSettings) -> Any:
    """Open-to-be libvpx context with aiortc's options (``Vp8Encoder.encode``), then the settings."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width = frame.width
    codec.height = frame.height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.gop_size = 3000
    codec.qmin = 2
    codec.qmax = 56
    options = {
        "bufsize": str(bitrate),
        "cpu-used": "-6",
        "deadline": "realtime",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "noise-sensitivity": "4",
        "overshoot-pct": "15",
        "partitions": "0",
        "static-thresh": "1",
        "undershoot-pct": "100",
    }
    if settings.vp8_deadline is not None:
        options["deadline"] = settings.vp8_deadline
    if settings.vp8_cpu_used is not None:
        options["cpu-used"] = str(settings.vp8_cpu_used)
    codec.options = options
    codec.thread_count = _vpx.number_of_threads(frame.width * frame.height, multiprocessing.cpu_count())
    return codec


def _h264_context(frame: av.VideoFrame, bitrate: int, settings: VideoEncoderSettings) -> Any:
    """Open-to-be libx264 context with aiortc's options (``H264Encoder._encode_frame``), then the settings."""
    codec = av.CodecContext.create("libx264", "w")
    codec.width = frame.width
    codec.height = frame.height
    codec.bit_rate = bitrate
    codec.pix_fmt = "yuv420p"
    codec.framerate = fractions.Fraction(_h264.MAX_FRAME_RATE, 1)
    codec.time_base = fractions.Fraction(1, _h264.MAX_FRAME_RATE)
    options = {"level": "31", "tune": settings.h264_tune or "zerolatency"}
    if settings.h264_preset is not None:
        options["preset"] = settings.h264_preset
    codec.options = options
    codec.profile = "Baseline"
    return codec


def _needs_new_context(codec: Any, frame: av.VideoFrame, bitrate: int) -> bool:
    # aiortc's own rule: a new context when the size changes or the target moves by more than 10 %.
    return (
        codec is None
        or frame.width != codec.width
        or frame.height != codec.height
        or abs(bitrate - codec.bit_rate) / codec.bit_rate > 0.1
    )


class TunedVp8Encoder(_vpx.Vp8Encoder):
    """aiortc's VP8 encoder with the libvpx options and bitrate limits of a `VideoEncoderSettings`.

    It opens the libvpx context itself (aiortc's options, then the settings on top) just before aiortc's
    ``encode`` would, so aiortc's packetizer, picture ids and keyframe requests are used unchanged.
    """

    def __init__(self, settings: VideoEncoderSettings | None = None) -> None:
        """Create the encoder.

        Args:
            settings: The settings; None: aiortc's behaviour, with timing.
        """
        super().__init__()
        self.settings = settings or VideoEncoderSettings()
        self._bitrate, self.min_bitrate, self.max_bitrate = self.settings.bitrate_limits(
            _vpx.DEFAULT_BITRATE, _vpx.MIN_BITRATE, _vpx.MAX_BITRATE
        )
        self.stats = EncoderStats()

    @property
    def target_bitrate(self) -> int:
        """Target bitrate in bit/s; REMB sets it, clamped to ``min_bitrate``-``max_bitrate``."""
        return self._bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._bitrate = max(self.min_bitrate, min(int(bitrate), self.max_bitrate))

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode one frame (see aiortc's ``Vp8Encoder.encode``), with this encoder's libvpx options.

        Args:
            frame: A video frame.
            force_keyframe: Encode it as a keyframe.

        Returns:
            RTP payloads and the 90 kHz timestamp.
        """
        start = time.perf_counter()
        assert isinstance(frame, av.VideoFrame)
        if _needs_new_context(self.codec, frame, self.target_bitrate):
            self.codec = _vp8_context(frame, self.target_bitrate, self.settings)
        payloads, timestamp = super().encode(frame, force_keyframe)
        self.stats.add(time.perf_counter() - start, sum(map(len, payloads)), force_keyframe)
        return payloads, timestamp


class TunedH264Encoder(_h264.H264Encoder):
    """aiortc's H.264 encoder with the x264 preset/tune and bitrate limits of a `VideoEncoderSettings`.

    Like `TunedVp8Encoder`, it opens the libx264 context just before aiortc would and leaves the rest
    (NAL splitting, STAP-A/FU-A packetization) to aiortc.
    """

    def __init__(self, settings: VideoEncoderSettings | None = None) -> None:
        """Create the encoder.

        Args:
            settings: The settings; None: aiortc's behaviour, with timing.
        """
        super().__init__()
        self.settings = settings or VideoEncoderSettings()
        self._bitrate, self.min_bitrate, self.max_bitrate = self.settings.bitrate_limits(
            _h264.DEFAULT_BITRATE, _h264.MIN_BITRATE, _h264.MAX_BITRATE
        )
        self.stats = EncoderStats()

    @property
    def target_bitrate(self) -> int:
        """Target bitrate in bit/s; REMB sets it, clamped to ``min_bitrate``-``max_bitrate``."""
        return self._bitrate

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        self._bitrate = max(self.min_bitrate, min(int(bitrate), self.max_bitrate))

    def _encode_frame(self, frame: av.VideoFrame, force_keyframe: bool) -> Any:
        if _needs_new_context(self.codec, frame, self.target_bitrate):
            self.buffer_data = b""
            self.buffer_pts = None
            self.codec = _h264_context(frame, self.target_bitrate, self.settings)
        yield from super()._encode_frame(frame, force_keyframe)

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        """Encode one frame (see aiortc's ``H264Encoder.encode``), with this encoder's x264 options.

        Args:
            frame: A video frame.
            force_keyframe: Encode it as a keyframe.

        Returns:
            RTP payloads and the 90 kHz timestamp.
        """
        start = time.perf_counter()
        payloads, timestamp = super().encode(frame, force_keyframe)
        self.stats.add(time.perf_counter() - start, sum(map(len, payloads)), force_keyframe)
        return payloads, timestamp


def make_video_encoder(
    mime_type: str, settings: VideoEncoderSettings | None = None
) -> TunedVp8Encoder | TunedH264Encoder:
    """A tuned encoder for a negotiated video codec.

    Args:
        mime_type: ``"video/VP8"`` or ``"video/H264"`` (any case).
        settings: The settings.

    Returns:
        The encoder.

    Raises:
        ValueError: For another codec.
    """
    name = mime_type.lower()
    if name == "video/vp8":
        return TunedVp8Encoder(settings)
    if name == "video/h264":
        return TunedH264Encoder(settings)
    raise ValueError(f"no tunable encoder for {mime_type}: use video/VP8 or video/H264")


_SENDER_ENCODER = "_RTCRtpSender__encoder"  # RTCRtpSender.__encoder, name-mangled (aiortc 1.16)


def install_encoder(sender: RTCRtpSender, encoder: Encoder) -> None:
    """Make one sender use ``encoder`` instead of the one aiortc would create.

    aiortc's ``RTCRtpSender`` creates its encoder lazily, on its first frame, only if its private
    ``__encoder`` is still None; setting it before media starts (for instance right after
    ``setRemoteDescription`` of the answer, as `rtclab.call.LoopbackCall` does) replaces aiortc's choice
    for this sender alone. The encoder must match the negotiated codec (`negotiated_codecs`).

    Args:
        sender: The sender, e.g. ``transceiver.sender``.
        encoder: The encoder to use.

    Raises:
        RuntimeError: If this aiortc has no such attribute (the hook moved: check the version) or the
            sender already encodes.
    """
    if not hasattr(sender, _SENDER_ENCODER):
        raise RuntimeError(
            "this aiortc's RTCRtpSender has no __encoder: install_encoder() was written for aiortc 1.16"
        )
    if getattr(sender, _SENDER_ENCODER) is not None:
        raise RuntimeError("the sender already has an encoder: install it before media starts")
    setattr(sender, _SENDER_ENCODER, encoder)


def benchmark_video_encoder(
    codec: str,
    settings: VideoEncoderSettings | None = None,
    *,
    width: int = 640,
    height: int = 480,
    frames: int = 30,
) -> EncoderStats:
    """Encode ``frames`` test-pattern frames offline and return what it cost.

    Args:
        codec: ``"VP8"`` or ``"H264"``.
        settings: The settings to try (None: aiortc's).
        width: Frame width.
        height: Frame height.
        frames: How many frames (at least 1); the first one is a keyframe.

    Returns:
        The encoder's statistics (``ms_per_frame``, ``payload_bytes``...).

    Raises:
        ValueError: On an unknown codec or fewer than 1 frame.
    """
    from rtclab.signals import VIDEO_CLOCK_RATE, color_bars

    if frames < 1:
        raise ValueError("frames must be at least 1")
    encoder = make_video_encoder(f"video/{codec}", settings)
    for index in range(frames):
        rgb = av.VideoFrame.from_ndarray(color_bars(width, height, index), format="rgb24")
        frame = rgb.reformat(format="yuv420p")  # what a camera or decoder delivers: time the encoder alone
        frame.pts = index * VIDEO_CLOCK_RATE // 30
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        encoder.encode(frame)
    return encoder.stats
