"""Quality scores for lab calls: the E-model (ITU-T G.107) from delay and loss, the MOS estimates Twilio and
LiveKit compute from getStats, PESQ/STOI/ViSQOL on recorded audio, audio alignment, and SSIM/PSNR on frames.

Three ways to put a number on a call, from cheapest to most faithful:

* From network numbers alone (`r_factor` and `mos_from_r`, `twilio_mos`,
  `livekit_mos`): no audio needed, so they work on any ``getStats()`` timeline, but they only know what
  delay and loss *usually* do to speech.
* From the audio itself (`pesq_mos`, `stoi_score`, `visqol_mos`): compare what was sent with
  what came out, after `align` has found the delay between them.
* From video frames (`ssim`, `psnr`): compare a sent frame with the received one; and from the frame
  counter the test pattern carries (`match_video_frames`): per-frame end-to-end delay, lost frames, freezes.

How the three network-based estimates differ (each is a simplified E-model; inputs rtt, jitter, loss):

==================  =======================================  ==========================================
                    delay term                               loss term
==================  =======================================  ==========================================
`r_factor`    one-way delay d (you add buffering);     Ie,eff = Ie + (95 - Ie) * Ppl /
                    Id = 0.024 d + 0.11 (d - 177.3) H(...)   (Ppl / BurstR + Bpl), codec-specific
                    or G.107's Idd; R starts at 93.2         (Ppl in percent)
twilio_mos          d = rtt + 2 * jitter + 10 ms (the full   R -= 2.5 * loss, loss as passed; the
                    RTT, not half); R starts at 94.768;      preflight passes a fraction (0-1), so
                    d/40 below 160 ms, (d - 120)/10 above    5 % loss costs only 0.125 R points
livekit_mos         d = rtt / 2 + 2 * jitter; R starts at    R -= weight * loss percent: Opus 8, Opus
                    100; same two slopes as Twilio           with FEC 5.33, RED 4, video 10
==================  =======================================  ==========================================

So for the same call Twilio's score barely reacts to loss and counts the whole RTT as delay; LiveKit's
reacts to loss about three times more strongly than the classic "2.5 per percent" simplification (from
PingPlotter's article, which LiveKit's source cites) and counts half the RTT; the G.107 model's loss term
is non-linear and saturates (95 is the ceiling), and its delay term only bites past about 177 ms one way.
"""

from __future__ import annotations

import bisect
import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from math import gcd

import numpy as np
import numpy.typing as npt

from rtclab.freezes import FreezeReport, freezes

__all__ = [
    "CODECS",
    "LIVEKIT_LOSS_WEIGHTS",
    "Alignment",
    "CodecImpairment",
    "EModelScore",
    "FrameDelivery",
    "VideoFrameReport",
    "ToolNotInstalledError",
    "align",
    "delay_impairment",
    "effective_equipment_impairment",
    "livekit_mos",
    "livekit_quality",
    "livekit_score",
    "match_video_frames",
    "mos_from_r",
    "pesq_mos",
    "psnr",
    "r_factor",
    "resample",
    "score_speech",
    "ssim",
    "stoi_score",
    "to_gray",
    "twilio_mos",
    "visqol_mos",
]

FloatArray = npt.NDArray[np.float64]

R0_MINUS_IS = 93.2
"""Ro - Is of ITU-T G.107 with all its default parameters: the R of a perfect G.711 connection."""


class ToolNotInstalledError(ImportError):
    """An optional scoring tool (ViSQOL) is not installed; the message says how to get it."""


# --- the E-model (ITU-T G.107, simplified) ---------------------------------------------------------------


@dataclass(frozen=True)
class CodecImpairment:
    """How a codec fares in the E-model.

    Attributes:
        ie: Equipment impairment factor Ie with no loss (0 = as good as G.711).
        bpl: Packet-loss robustness factor Bpl (higher = degrades more slowly with loss).
        source: Where the two values come from, or why they are an assumption.
    """

    ie: float
    bpl: float
    source: str


CODECS: dict[str, CodecImpairment] = {
    "g711": CodecImpairment(
        ie=0.0,
        bpl=4.3,
        source="ITU-T G.113 Appendix I: G.711 with no packet-loss concealment, random loss (Ie 0, Bpl 4.3)",
    ),
    "g711-plc": CodecImpairment(
        ie=0.0,
        bpl=25.1,
        source="ITU-T G.113 Appendix I: G.711 with the G.711 Appendix I concealment, random loss (Ie 0, Bpl 25.1)",
    ),
    "opus": CodecImpairment(
        ie=0.0,
        bpl=25.1,
        source=(
            "assumption: ITU-T G.113 lists no Ie/Bpl for Opus. Ie 0 because wideband Opus at voice bitrates "
            "is at least as good as G.711 on this narrowband scale; Bpl 25.1 (G.711 with concealment) because "
            "the Opus decoder conceals lost frames. Note that stock aiortc does not run that concealment "
            "(a missing frame is skipped), which 'g711' (Bpl 4.3) models more closely."
        ),
    ),
}
"""E-model values per codec name, for `r_factor`."""


def mos_from_r(r: float) -> float:
    """Convert an E-model rating R to a MOS (ITU-T G.107 Annex B).

    Args:
        r: The rating R.

    Returns:
        ``1 + 0.035 R + 7e-6 R (R - 60) (100 - R)`` for 0 < R < 100; 1.0 at or below 0, 4.5 at or above 100.
        The cubic dips just below 1 for R under about 6.5 (to 0.94 near R = 3), so the result is floored at
        1.0, which keeps it rising with R (Twilio's estimate avoids the dip by never letting R fall below
        6.52).

    Raises:
        ValueError: If ``r`` is NaN.
    """
    if math.isnan(r):
        raise ValueError("R is NaN")
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return max(1.0, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r))


def delay_impairment(one_way_delay_ms: float, model: str = "cole-rosenbluth") -> float:
    """The E-model's delay impairment Id for a one-way mouth-to-ear delay.

    Args:
        one_way_delay_ms: One-way delay in ms, buffering included.
        model: ``"cole-rosenbluth"`` (default): ``Id = 0.024 d + 0.11 (d - 177.3) H(d - 177.3)``, the fit of
            G.107's Id (with default echo parameters) by Cole and Rosenbluth, "Voice over IP performance
            monitoring", ACM SIGCOMM CCR 31(2), 2001. ``"g107"``: G.107's too-long-delay term Idd alone,
            ``25 ((1 + X^6)^(1/6) - 3 (1 + (X/3)^6)^(1/6) + 2)`` with ``X = log2(d / 100)`` above 100 ms and 0
            below; its echo terms Idte and Idle are taken as 0, i.e. echo perfectly cancelled.

    Returns:
        Id, in R points.

    Raises:
        ValueError: If the delay is negative or NaN, or the model is unknown.
    """
    d = _non_negative(one_way_delay_ms, "one_way_delay_ms")
    if model == "cole-rosenbluth":
        return 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    if model == "g107":
        if d <= 100:
            return 0.0
        x = math.log2(d / 100)
        return 25 * ((1 + x**6) ** (1 / 6) - 3 * (1 + (x / 3) ** 6) ** (1 / 6) + 2)
    raise ValueError(f"unknown delay model {model!r}: use 'cole-rosenbluth' or 'g107'")


def _codec(codec: str | CodecImpairment) -> CodecImpairment:
    if isinstance(codec, CodecImpairment):
        return codec
    try:
        return CODECS[codec]
    except KeyError:
        raise ValueError(
            f"unknown codec {codec!r}: use one of {', '.join(CODECS)} or a CodecImpairment"
        ) from None


def effective_equipment_impairment(
    loss_fraction: float, codec: str | CodecImpairment = "opus", burst_ratio: float = 1.0
) -> float:
    """The E-model's Ie,eff: codec impairment plus the effect of packet loss (ITU-T G.107 section 3.5).

    ``Ie,eff = Ie + (95 - Ie) * Ppl / (Ppl / BurstR + Bpl)``, with Ppl the loss in percent.

    Args:
        loss_fraction: Packet loss, 0-1.
        codec: A name from `CODECS` or your own `CodecImpairment`.
        burst_ratio: G.107's BurstR: 1 for random loss, above 1 for bursty loss. For a two-state
            (Gilbert-Elliott) loss model it is ``1 / (p + r)`` (see `rtclab.profiles.Burst.burst_ratio`).

    Returns:
        Ie,eff, in R points: between Ie and 95 for random loss. G.107 gives the formula for losses up to
        20 %; with ``burst_ratio`` above 1 and far higher loss it exceeds 95 (the R is then hopeless anyway).

    Raises:
        ValueError: If the loss is outside 0-1, the burst ratio is not positive, or the codec is unknown.
    """
    if not 0 <= loss_fraction <= 1:
        raise ValueError("loss_fraction must be a fraction from 0 to 1")
    if not burst_ratio > 0:
        raise ValueError("burst_ratio must be positive")
    values = _codec(codec)
    ppl = loss_fraction * 100
    return values.ie + (95 - values.ie) * ppl / (ppl / burst_ratio + values.bpl)


def r_factor(
    one_way_delay_ms: float,
    loss_fraction: float,
    codec: str | CodecImpairment = "opus",
    burst_ratio: float = 1.0,
    *,
    delay_model: str = "cole-rosenbluth",
    advantage: float = 0.0,
) -> float:
    """The E-model rating ``R = (Ro - Is) - Id - Ie,eff + A`` with G.107's defaults for everything else.

    ``Ro - Is`` is 93.2 (G.107 defaults: no noise, loudness or sidetone problems). Delay and loss are the
    only inputs, which is what ``getStats()`` can give.

    Args:
        one_way_delay_ms: Mouth-to-ear delay in ms: network one-way delay plus jitter buffer (and codec)
            delay. With only an RTT, RTT / 2 is the usual network part.
        loss_fraction: Packet loss after any recovery, 0-1.
        codec: A name from `CODECS` or a `CodecImpairment`.
        burst_ratio: G.107's BurstR (1 = random loss).
        delay_model: See `delay_impairment`.
        advantage: Advantage factor A (G.107: 0 for wired, up to 10 for mobile, 20 for hard-to-reach places).

    Returns:
        R (not clamped; `mos_from_r` clamps).

    Raises:
        ValueError: On out-of-range inputs.
    """
    return (
        R0_MINUS_IS
        - delay_impairment(one_way_delay_ms, delay_model)
        - effective_equipment_impairment(loss_fraction, codec, burst_ratio)
        + advantage
    )


@dataclass(frozen=True)
class EModelScore:
    """An E-model estimate with the parts it is made of, so a reader sees what to fix first.

    Attributes:
        mos: The estimate, 1-4.5.
        r: ``R = (Ro - Is) - Id - Ie_eff`` (Ro - Is = 93.2).
        id: Delay impairment Id, in R points (`delay_impairment` of ``one_way_delay_ms``).
        ie_eff: Effective equipment impairment Ie,eff, in R points (codec plus loss).
        one_way_delay_ms: ``network_delay_ms + jitter_buffer_ms``: what Id was computed from.
        network_delay_ms: The network's one-way share (usually RTT / 2).
        jitter_buffer_ms: What the receiver's jitter buffer adds.
        loss_pct: The loss Ie,eff was computed from, in %.
        conceals: Whether the receiver conceals lost audio (the codec's Bpl) or plays nothing in its place.
    """

    mos: float
    r: float
    id: float
    ie_eff: float
    one_way_delay_ms: float
    network_delay_ms: float
    jitter_buffer_ms: float
    loss_pct: float
    conceals: bool

    def to_dict(self) -> dict[str, float | bool]:
        """Plain data, rounded: MOS to 0.01, the rest to 0.1."""
        return {
            "mos": round(self.mos, 2),
            "r": round(self.r, 1),
            "id": round(self.id, 1),
            "ie_eff": round(self.ie_eff, 1),
            "one_way_delay_ms": round(self.one_way_delay_ms, 1),
            "network_delay_ms": round(self.network_delay_ms, 1),
            "jitter_buffer_ms": round(self.jitter_buffer_ms, 1),
            "loss_pct": round(self.loss_pct, 2),
            "conceals": self.conceals,
        }


NO_CONCEALMENT_BPL = CODECS["g711"].bpl
"""Bpl of a receiver that plays nothing for a lost frame: ITU-T G.113 Appendix I gives 4.3 for G.711 without
packet-loss concealment, the nearest tabulated case to stock aiortc (which skips a missing Opus frame)."""


def score_speech(
    *,
    network_delay_ms: float,
    jitter_buffer_ms: float,
    loss_fraction: float,
    conceals: bool,
    burst_ratio: float = 1.0,
    codec: str = "opus",
) -> EModelScore:
    """The E-model MOS of a voice call from what its receiver really does: the one estimate `rtclab probe`,
    the notebooks and `rtclab diagnose` share.

    Mouth-to-ear delay is the network's one-way share plus the receiver's own jitter-buffer delay (a browser
    reports it as ``jitterBufferDelay / jitterBufferEmittedCount``; for aiortc use what rtclab measured, see
    `rtclab.stats.AIORTC_RECEIVER`). Loss is what the listener did not get in time: for a browser the
    concealed share of the audio, for aiortc the frames its buffer dropped. A receiver that conceals uses the
    codec's Bpl; one that does not uses `NO_CONCEALMENT_BPL`.

    Args:
        network_delay_ms: One-way network delay in ms (RTT / 2 when only the round trip is known).
        jitter_buffer_ms: Delay the receiver's jitter buffer adds, in ms.
        loss_fraction: Lost (or concealed) audio, 0-1.
        conceals: Whether the receiver conceals lost frames.
        burst_ratio: G.107's BurstR (1 = random loss).
        codec: A name from `CODECS`, for Ie and (when ``conceals``) Bpl.

    Returns:
        The MOS with R, Id and Ie,eff beside it.

    Raises:
        ValueError: On a negative or NaN delay, a loss outside 0-1, a non-positive burst ratio, or an unknown
            codec.
    """
    network = _non_negative(network_delay_ms, "network_delay_ms")
    buffer = _non_negative(jitter_buffer_ms, "jitter_buffer_ms")
    values = _codec(codec)
    if not conceals:
        values = CodecImpairment(ie=values.ie, bpl=NO_CONCEALMENT_BPL, source=CODECS["g711"].source)
    one_way = network + buffer
    delay = delay_impairment(one_way)
    equipment = effective_equipment_impairment(loss_fraction, values, burst_ratio)
    r = R0_MINUS_IS - delay - equipment
    return EModelScore(
        mos=mos_from_r(r),
        r=r,
        id=delay,
        ie_eff=equipment,
        one_way_delay_ms=one_way,
        network_delay_ms=network,
        jitter_buffer_ms=buffer,
        loss_pct=loss_fraction * 100,
        conceals=conceals,
    )


def _non_negative(value: float, name: str) -> float:
    if math.isnan(value) or value < 0:
        raise ValueError(f"{name} must be 0 or more")
    return float(value)


# --- what commercial SDKs compute from getStats ---------------------------------------------------------


def twilio_mos(rtt_ms: float, jitter_ms: float, loss_fraction: float) -> float:
    """MOS as twilio-video.js computes it in its preflight test (``lib/preflight/mos.ts``, ``calculateMOS``).

    Read from twilio/twilio-video.js: ``calculateMOS(rtt, jitter, fractionLost)`` sets the effective latency
    ``rtt + 2 * jitter + 10``; R = 94.768 - latency / 40 below 160, R = 94.768 - (latency - 120) / 10 below
    1000, else 0; then ``R = max(R - 2.5 * fractionLost, 6.52)`` if ``fractionLost <= R / 2.5``, else R = 0;
    then the G.107 R-to-MOS formula, without clamping (the floor of 6.52 keeps it near 1). The file says it
    was copied from Twilio's voice SDK; twilio-voice.js has the same function and documents
    ``fractionLost`` as ``packetsLost / totalPackets``.

    This function applies that formula to the arguments as named. How Twilio calls it matters:
    ``preflighttest.ts`` passes ``roundTripTime`` in ms (``getCombinedConnectionStats`` multiplies the
    candidate-pair RTT by 1000), ``jitter`` straight from ``inbound-rtp`` (seconds, so the jitter term is
    almost nothing) and ``fractionPacketLost`` as a fraction 0-1 (so 5 % loss lowers R by 0.125). To
    reproduce the preflight's own number, pass ``jitter_ms=jitter_in_seconds``.

    Args:
        rtt_ms: Round-trip time in ms.
        jitter_ms: Jitter in ms (see above).
        loss_fraction: Packet loss, 0-1.

    Returns:
        The MOS (about 1.0 to 4.42).

    Raises:
        ValueError: If an input is negative or NaN.
    """
    rtt = _non_negative(rtt_ms, "rtt_ms")
    jitter = _non_negative(jitter_ms, "jitter_ms")
    lost = _non_negative(loss_fraction, "loss_fraction")
    r0 = 94.768
    latency = rtt + jitter * 2 + 10
    r = 0.0
    if latency < 160:
        r = r0 - latency / 40
    elif latency < 1000:
        r = r0 - (latency - 120) / 10
    r = max(r - lost * 2.5, 6.52) if lost <= r / 2.5 else 0.0
    return 1 + 0.035 * r + 0.000007 * r * (r - 60) * (100 - r)


LIVEKIT_LOSS_WEIGHTS: dict[str, float] = {
    "opus": 8.0,
    "opus-fec": 8.0 / 1.5,
    "red": 4.0,
    "red-fec": 4.0 / 1.5,
    "video": 10.0,
}
"""R points LiveKit takes off per percent of loss (``getPacketLossWeight`` in ``connectionstats.go``)."""


def livekit_score(
    rtt_ms: float,
    jitter_ms: float,
    loss_fraction: float,
    *,
    track: str = "opus",
    include_rtt: bool = True,
    include_jitter: bool = True,
) -> float:
    """The 0-100 quality score LiveKit's server settles at for steady network conditions.

    Read from livekit/livekit, ``pkg/sfu/connectionquality/scorer.go`` (``calculatePacketScore``): effective
    delay = ``rttMax / 2`` + ``2 * jitterMax`` (LiveKit keeps jitter in microseconds and divides by 1000);
    delay effect = delay / 40, or (delay - 120) / 10 above 160 ms; loss effect = loss percent times a
    codec weight from ``connectionstats.go`` (`LIVEKIT_LOSS_WEIGHTS`); score = max(100 - both, 0).
    The comment in the code cites PingPlotter's simplified E-model. The server then smooths the score over
    5-second windows (0.4 weight when it rises, 0.8 when it falls), floors it at 30, and may lower it for a
    missing bitrate or video layer; with conditions held steady the smoothed score converges to
    ``max(packet score, 30)``, which is what this returns (no bitrate or layer terms). Outbound tracks
    have ``include_rtt`` off (no RTT upstream without RTCP-XR) in LiveKit; both default to on here.

    Args:
        rtt_ms: Round-trip time in ms.
        jitter_ms: Jitter in ms.
        loss_fraction: Packet loss, 0-1.
        track: Key of `LIVEKIT_LOSS_WEIGHTS` (``"opus"``, ``"opus-fec"``, ``"red"``, ``"red-fec"``,
            ``"video"``).
        include_rtt: Count RTT in the delay.
        include_jitter: Count jitter in the delay.

    Returns:
        The score, 30-100.

    Raises:
        ValueError: If an input is negative or NaN, or the track is unknown.
    """
    rtt = _non_negative(rtt_ms, "rtt_ms")
    jitter = _non_negative(jitter_ms, "jitter_ms")
    lost = _non_negative(loss_fraction, "loss_fraction")
    if track not in LIVEKIT_LOSS_WEIGHTS:
        raise ValueError(f"unknown track {track!r}: use one of {', '.join(LIVEKIT_LOSS_WEIGHTS)}")
    delay = (rtt / 2 if include_rtt else 0.0) + (jitter * 2 if include_jitter else 0.0)
    delay_effect = (delay - 120) / 10 if delay > 160 else delay / 40
    loss_effect = lost * 100 * LIVEKIT_LOSS_WEIGHTS[track]
    return max(100 - delay_effect - loss_effect, 30.0)


def livekit_mos(
    rtt_ms: float,
    jitter_ms: float,
    loss_fraction: float,
    *,
    track: str = "opus",
    include_rtt: bool = True,
    include_jitter: bool = True,
) -> float:
    """MOS from `livekit_score` the way LiveKit maps it (``scoreToMOS`` in ``scorer.go``).

    ``scoreToMOS``: 1.0 at or below 0, 4.5 at or above 100, else ``1 + 0.035 s + 7e-6 s (s - 60) (100 - s)``,
    the G.107 formula with the score in place of R.

    Args:
        rtt_ms: Round-trip time in ms.
        jitter_ms: Jitter in ms.
        loss_fraction: Packet loss, 0-1.
        track: Key of `LIVEKIT_LOSS_WEIGHTS`.
        include_rtt: Count RTT in the delay.
        include_jitter: Count jitter in the delay.

    Returns:
        The MOS (about 1.3 to 4.5, because the score never drops below 30).
    """
    score = livekit_score(
        rtt_ms, jitter_ms, loss_fraction, track=track, include_rtt=include_rtt, include_jitter=include_jitter
    )
    return mos_from_r(score)


def livekit_quality(score: float) -> str:
    """LiveKit's connection quality for a score (``scoreToConnectionQuality``): above 80 excellent, above 40
    good, else poor.

    Args:
        score: A score from `livekit_score`.

    Returns:
        ``"excellent"``, ``"good"`` or ``"poor"``.
    """
    if score > 80:
        return "excellent"
    if score > 40:
        return "good"
    return "poor"


# --- audio: resampling, alignment, PESQ, STOI, ViSQOL -----------------------------------------------------


def _mono(samples: npt.ArrayLike, name: str) -> FloatArray:
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of samples, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds NaN or infinite samples")
    return array


def resample(samples: npt.ArrayLike, from_rate: int, to_rate: int) -> FloatArray:
    """Resample audio with a polyphase filter (``scipy.signal.resample_poly``), anti-aliased.

    Args:
        samples: 1-D samples.
        from_rate: Their sample rate in Hz.
        to_rate: The wanted sample rate in Hz.

    Returns:
        The resampled samples as float64 (the same array values if the rates are equal).

    Raises:
        ValueError: If a rate is not a positive integer or the samples are not 1-D.
    """
    array = _mono(samples, "samples")
    if from_rate <= 0 or to_rate <= 0 or int(from_rate) != from_rate or int(to_rate) != to_rate:
        raise ValueError("sample rates must be positive integers")
    if from_rate == to_rate:
        return array.copy()
    common = gcd(int(from_rate), int(to_rate))
    from scipy import signal  # imported on use: loading scipy takes seconds, and most callers need a MOS only

    return np.asarray(signal.resample_poly(array, int(to_rate) // common, int(from_rate) // common))


@dataclass(frozen=True)
class Alignment:
    """A reference and a degraded recording cut to the stretch they share, and how far apart they were.

    Attributes:
        reference: The reference samples from the matched point on.
        degraded: The degraded samples, same length, sample for sample against ``reference``.
        delay_ms: How much later the degraded signal runs, in ms (negative: it runs early); refined to a
            fraction of a sample by fitting a parabola to the correlation peak.
        delay_samples: The whole-sample shift used to cut the pair.
        correlation: Normalized correlation of the aligned pair, -1 to 1 (near 1: a clean match).
    """

    reference: FloatArray
    degraded: FloatArray
    delay_ms: float
    delay_samples: int
    correlation: float


def align(
    reference: npt.ArrayLike,
    degraded: npt.ArrayLike,
    sample_rate: int,
    *,
    max_delay_ms: float | None = None,
) -> Alignment:
    """Find the delay between sent and received audio by FFT cross-correlation, and cut them to match.

    Args:
        reference: What was sent (1-D).
        degraded: What was received (1-D, same sample rate), typically starting later.
        sample_rate: Samples per second of both.
        max_delay_ms: Only look for delays up to this size either way (None: any).

    Returns:
        The aligned pair and the delay.

    Raises:
        ValueError: If a signal is empty, silent, not 1-D, or no overlap is left.
    """
    ref = _mono(reference, "reference")
    deg = _mono(degraded, "degraded")
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    if not ref.any() or not deg.any():
        raise ValueError("a silent signal cannot be aligned")
    from scipy import signal  # imported on use, see resample()

    corr = signal.correlate(deg, ref, mode="full", method="fft")
    lags = signal.correlation_lags(deg.size, ref.size, mode="full")
    if max_delay_ms is not None:
        window = np.abs(lags) <= max_delay_ms * sample_rate / 1000
        if not window.any():
            raise ValueError("max_delay_ms leaves no lag to search")
        corr = np.where(window, corr, -np.inf)
    peak = int(np.argmax(corr))
    lag = int(lags[peak])
    offset = 0.0
    if 0 < peak < corr.size - 1 and np.isfinite(corr[peak - 1]) and np.isfinite(corr[peak + 1]):
        before, at, after = corr[peak - 1], corr[peak], corr[peak + 1]
        curvature = before - 2 * at + after
        if curvature < 0:
            offset = float(0.5 * (before - after) / curvature)
    ref_part, deg_part = (ref, deg[lag:]) if lag >= 0 else (ref[-lag:], deg)
    length = min(ref_part.size, deg_part.size)
    if length == 0:
        raise ValueError("the signals do not overlap at the best delay")
    ref_part, deg_part = ref_part[:length], deg_part[:length]
    norm = float(np.linalg.norm(ref_part) * np.linalg.norm(deg_part))
    correlation = float(np.dot(ref_part, deg_part) / norm) if norm > 0 else 0.0
    return Alignment(
        reference=ref_part,
        degraded=deg_part,
        delay_ms=(lag + offset) * 1000 / sample_rate,
        delay_samples=lag,
        correlation=correlation,
    )


def pesq_mos(reference: npt.ArrayLike, degraded: npt.ArrayLike, sample_rate: int, band: str = "wb") -> float:
    """PESQ (ITU-T P.862) MOS-LQO of degraded speech against its reference, using the ``pesq`` package.

    PESQ aligns the two itself (in time, per utterance), but give it the same speech: a whole phrase or more,
    at least a few seconds.

    Args:
        reference: The clean speech (1-D).
        degraded: The received speech (1-D).
        sample_rate: Their sample rate; both are resampled to 16 kHz (``"wb"``) or 8 kHz (``"nb"``).
        band: ``"wb"`` (P.862.2 wideband, 1.04-4.64) or ``"nb"`` (P.862.1 narrowband, 1.02-4.55).

    Returns:
        MOS-LQO.

    Raises:
        ValueError: On a bad band or signal, or when PESQ cannot score the pair (no speech found, too short).
    """
    from pesq import PesqError
    from pesq import pesq as _pesq

    rates = {"wb": 16_000, "nb": 8_000}
    if band not in rates:
        raise ValueError("band must be 'wb' or 'nb'")
    rate = rates[band]
    ref = resample(reference, sample_rate, rate)
    deg = resample(degraded, sample_rate, rate)
    if not ref.any() or not deg.any():
        raise ValueError("PESQ cannot score this pair: a signal is silent")
    try:
        return float(_pesq(rate, ref, deg, band))
    except PesqError as error:
        raise ValueError(f"PESQ cannot score this pair: {type(error).__name__}: {error}") from error


def stoi_score(
    reference: npt.ArrayLike, degraded: npt.ArrayLike, sample_rate: int, *, extended: bool = False
) -> float:
    """STOI (short-time objective intelligibility, Taal et al. 2011) via ``pystoi``; ESTOI with ``extended``.

    STOI compares frame by frame without aligning: pass an aligned pair (see `align`). The longer
    signal is cut to the shorter one.

    Args:
        reference: The clean speech (1-D).
        degraded: The received speech (1-D), aligned to ``reference``.
        sample_rate: Their sample rate (pystoi resamples to 10 kHz itself).
        extended: Compute ESTOI instead of STOI.

    Returns:
        The score, roughly 0-1 (higher is more intelligible).

    Raises:
        ValueError: On a bad signal.
    """
    from pystoi import stoi

    ref = _mono(reference, "reference")
    deg = _mono(degraded, "degraded")
    length = min(ref.size, deg.size)
    return float(stoi(ref[:length], deg[:length], sample_rate, extended=extended))


def visqol_mos(
    reference: npt.ArrayLike, degraded: npt.ArrayLike, sample_rate: int, *, mode: str = "speech"
) -> float:
    """ViSQOL MOS-LQO, if a ViSQOL package is installed (rtclab does not depend on one).

    Uses ``visqol.api.VisqolApi`` of the pure-Python port (PyPI ``visqol-python``): speech mode at 16 kHz,
    audio mode at 48 kHz; the signals are resampled to that rate.

    Args:
        reference: The clean signal (1-D).
        degraded: The received signal (1-D).
        sample_rate: Their sample rate.
        mode: ``"speech"`` or ``"audio"``.

    Returns:
        MOS-LQO.

    Raises:
        ToolNotInstalledError: If no ViSQOL package can be imported.
        ValueError: On a bad mode or signal.
    """
    if mode not in ("speech", "audio"):
        raise ValueError("mode must be 'speech' or 'audio'")
    try:
        from visqol.api import VisqolApi  # type: ignore[import-not-found]
    except ImportError:
        raise ToolNotInstalledError(
            "ViSQOL is not installed and rtclab does not depend on it: install the pure-Python port with "
            "'pip install visqol-python' to use visqol_mos(), or score with pesq_mos() and stoi_score()"
        ) from None
    rate = 16_000 if mode == "speech" else 48_000
    api = VisqolApi()
    api.create(mode=mode)
    result = api.measure_from_arrays(
        resample(reference, sample_rate, rate), resample(degraded, sample_rate, rate), rate
    )
    return float(result.moslqo)


# --- video: SSIM and PSNR ------------------------------------------------------------------------------


def to_gray(frame: npt.ArrayLike) -> FloatArray:
    """A frame as a 2-D float array of luma.

    Args:
        frame: A 2-D grayscale frame, or an RGB frame of shape ``(height, width, 3)`` (luma by ITU-R BT.601:
            0.299 R + 0.587 G + 0.114 B). From PyAV, ``frame.to_ndarray(format="gray")`` gives the first kind.

    Returns:
        The luma as float64, on the input's scale.

    Raises:
        ValueError: For any other shape.
    """
    array = np.asarray(frame, dtype=np.float64)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] == 3:
        return np.asarray(array @ np.array([0.299, 0.587, 0.114]))
    raise ValueError(f"expected a (height, width) or (height, width, 3) frame, got shape {array.shape}")


def _pair(reference: npt.ArrayLike, degraded: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    ref = to_gray(reference)
    deg = to_gray(degraded)
    if ref.shape != deg.shape:
        raise ValueError(f"frames differ in size: {ref.shape} and {deg.shape}")
    if ref.size == 0:
        raise ValueError("frames are empty")
    return ref, deg


def psnr(reference: npt.ArrayLike, degraded: npt.ArrayLike, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio of two frames on the luma plane.

    Args:
        reference: The sent frame (see `to_gray` for shapes).
        degraded: The received frame, same size.
        data_range: Largest possible pixel value minus the smallest (255 for 8-bit).

    Returns:
        ``10 log10(data_range^2 / MSE)`` in dB; ``inf`` for identical frames.

    Raises:
        ValueError: If the frames differ in size.
    """
    ref, deg = _pair(reference, degraded)
    mse = float(np.mean((ref - deg) ** 2))
    if mse == 0:
        return math.inf
    return 10 * math.log10(data_range**2 / mse)


_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # an 11x11 window, as in Wang et al. 2004


def _gaussian_kernel() -> FloatArray:
    x = np.arange(-_SSIM_RADIUS, _SSIM_RADIUS + 1, dtype=np.float64)
    kernel = np.exp(-(x**2) / (2 * _SSIM_SIGMA**2))
    return np.asarray(kernel / kernel.sum())


def _filter_valid(image: FloatArray, kernel: FloatArray) -> FloatArray:
    """Separable 2-D filtering over the positions where the whole window fits ('valid')."""
    width = kernel.size
    rows = np.lib.stride_tricks.sliding_window_view(image, width, axis=0) @ kernel
    return np.asarray(np.lib.stride_tricks.sliding_window_view(rows, width, axis=1) @ kernel)


def ssim(reference: npt.ArrayLike, degraded: npt.ArrayLike, *, data_range: float = 255.0) -> float:
    """Mean structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) of two frames on the luma plane.

    An 11x11 gaussian window (sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, population statistics, averaged
    over the window positions that fit inside the frame: the same choices as the paper and as
    ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``.

    Args:
        reference: The sent frame (see `to_gray` for shapes), at least 11x11.
        degraded: The received frame, same size.
        data_range: Largest possible pixel value minus the smallest (255 for 8-bit).

    Returns:
        SSIM, at most 1 (1 for identical frames).

    Raises:
        ValueError: If the frames differ in size or are smaller than 11x11.
    """
    ref, deg = _pair(reference, degraded)
    side = 2 * _SSIM_RADIUS + 1
    if ref.shape[0] < side or ref.shape[1] < side:
        raise ValueError(f"SSIM needs frames of at least {side}x{side} pixels")
    kernel = _gaussian_kernel()
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x = _filter_valid(ref, kernel)
    mu_y = _filter_valid(deg, kernel)
    var_x = _filter_valid(ref * ref, kernel) - mu_x**2
    var_y = _filter_valid(deg * deg, kernel) - mu_y**2
    cov = _filter_valid(ref * deg, kernel) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    denominator = (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    return float(np.mean(numerator / denominator))


# --- video: frames matched by counter --------------------------------------------------------------------


@dataclass(frozen=True)
class FrameDelivery:
    """One sent frame that came out at the receiver.

    Attributes:
        index: Frame index at the sender (unwrapped, from 0).
        sent_s: When the sender handed it to the encoder, in seconds.
        received_s: When the receiver's decoder gave it out, same clock.
        delay_ms: ``received_s - sent_s`` in ms: capture-to-decode delay (encode, pacing, network,
            jitter buffer, decode), i.e. end to end minus rendering.
    """

    index: int
    sent_s: float
    received_s: float
    delay_ms: float


@dataclass(frozen=True)
class VideoFrameReport:
    """Sent frames matched with received ones by the counter in the picture.

    Attributes:
        frames_sent: Sent frames considered: from the first sent up to the last one received (frames sent
            later may still have been in flight when the recording stopped).
        frames_delivered: Sent frames that came out at least once.
        frames_lost: ``frames_sent - frames_delivered``: not matched with any received frame, i.e. never
            decoded (dropped on the network and not repaired, or skipped by the decoder until the next
            keyframe) or decoded with an unreadable counter (at most ``frames_unreadable`` of them).
        frames_unreadable: Received frames whose counter could not be read.
        frames_repeated: Received frames whose counter was already seen or is older than one already seen
            (not new pictures: a player would not show them).
        lost_indexes: The lost frame indexes, in order.
        deliveries: One `FrameDelivery` per delivered frame, in sending order.
        freezes: Stalls between new pictures (`rtclab.freezes.freezes`, video: above 600 ms by default).
    """

    frames_sent: int
    frames_delivered: int
    frames_lost: int
    frames_unreadable: int
    frames_repeated: int
    lost_indexes: tuple[int, ...]
    deliveries: tuple[FrameDelivery, ...]
    freezes: FreezeReport

    @property
    def loss_fraction(self) -> float:
        """Lost frames over sent frames (0 when nothing was sent)."""
        return self.frames_lost / self.frames_sent if self.frames_sent else 0.0

    @property
    def median_delay_ms(self) -> float | None:
        """Median end-to-end delay of delivered frames, ms (None if none)."""
        return statistics.median(d.delay_ms for d in self.deliveries) if self.deliveries else None

    def delay_percentile_ms(self, percent: float) -> float | None:
        """A percentile of the delivered frames' delay, ms (None if none).

        Args:
            percent: 0-100.
        """
        if not 0 <= percent <= 100:
            raise ValueError("percent must be between 0 and 100")
        if not self.deliveries:
            return None
        return float(np.percentile([d.delay_ms for d in self.deliveries], percent))


def match_video_frames(
    sent: Iterable[tuple[int, float]],
    received: Iterable[tuple[int | None, float]],
    *,
    modulus: int = 1 << 16,
    freeze_threshold_ms: float | None = None,
) -> VideoFrameReport:
    """Match received frames to sent ones by the counter drawn in the picture.

    Counters wrap (`rtclab.signals.COUNTER_MODULUS`), so a received counter is matched with the most recent
    sent frame carrying it that was sent before it arrived (with 10 ms of slack for clock granularity).
    Freezes are measured on the arrival of new pictures: unreadable frames count as new (we cannot tell),
    repeated or older counters do not.

    Args:
        sent: ``(frame index, sent time in s)`` per sent frame, e.g.
            `rtclab.signals.ColorBarsVideoTrack.sent_times`.
        received: ``(counter or None, arrival time in s)`` per decoded frame, on the same clock, e.g.
            `rtclab.recording.VideoRecorder.counters_and_times`.
        modulus: The counter's modulus.
        freeze_threshold_ms: Stall that counts as a freeze (None: 600 ms, `rtclab.freezes.FREEZE_THRESHOLDS_MS`).

    Returns:
        Delays, losses and freezes.

    Raises:
        ValueError: If a received counter is outside ``0..modulus-1`` or the modulus is not positive.
    """
    if modulus <= 0:
        raise ValueError("modulus must be positive")
    by_counter: dict[int, list[tuple[float, int]]] = {}
    sent_frames = sorted((int(i), float(t)) for i, t in sent)
    for index, sent_s in sent_frames:
        by_counter.setdefault(index % modulus, []).append((sent_s, index))
    delivered: dict[int, FrameDelivery] = {}
    unreadable = repeated = 0
    picture_times: list[float] = []
    newest = -1
    for counter, received_s in sorted(received, key=lambda pair: pair[1]):
        if counter is None:
            unreadable += 1
            picture_times.append(received_s)
            continue
        if not 0 <= counter < modulus:
            raise ValueError(f"counter {counter} outside 0..{modulus - 1}")
        candidates = by_counter.get(counter, [])
        position = bisect.bisect_right(candidates, (received_s + 0.010, math.inf)) - 1
        if position < 0:
            unreadable += 1  # a counter that was never sent: a misread the check bits let through
            continue
        sent_s, index = candidates[position]
        if index in delivered or index < newest:
            repeated += 1
            continue
        newest = index
        picture_times.append(received_s)
        delivered[index] = FrameDelivery(index, sent_s, received_s, (received_s - sent_s) * 1000)
    last = max(delivered, default=None)
    window = [index for index, _ in sent_frames if last is not None and index <= last]
    lost = tuple(index for index in window if index not in delivered)
    return VideoFrameReport(
        frames_sent=len(window),
        frames_delivered=len(delivered),
        frames_lost=len(lost),
        frames_unreadable=unreadable,
        frames_repeated=repeated,
        lost_indexes=lost,
        deliveries=tuple(delivered[i] for i in sorted(delivered)),
        freezes=freezes(picture_times, "video", threshold_ms=freeze_threshold_ms),
    )
