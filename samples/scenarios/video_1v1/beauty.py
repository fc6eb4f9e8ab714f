"""A beauty filter in the send path: skin smoothing with an edge-preserving (guided) blur, applied only where a
skin-tone mask says there is skin, wrapped as a MediaStreamTrack so the encoder never sees the raw camera.

Everything works on the yuv420p planes the encoder wants anyway: the mask comes from the chroma planes
(Cb/Cr skin box), the smoothing from the luma plane, so no RGB conversion is paid per frame.
"""

from __future__ import annotations

import time

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

__all__ = ["BeautyTrack", "beautify", "skin_mask"]

# Skin in YCbCr (BT.601, 8-bit): the Cb/Cr box of Chai & Ngan (1999), widely used and cheap.
CB_RANGE = (77, 127)
CR_RANGE = (133, 173)


def _box_1d(image: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Mean over 2r+1 samples along ``axis`` with a running sum; edges replicate the border sample."""
    pad = [(0, 0), (0, 0)]
    pad[axis] = (radius + 1, radius)
    summed = np.cumsum(np.pad(image, pad, mode="edge"), axis=axis, dtype=np.float32)
    n = image.shape[axis]
    high = summed.take(np.arange(2 * radius + 1, 2 * radius + 1 + n), axis=axis)
    low = summed.take(np.arange(n), axis=axis)
    return (high - low) / (2 * radius + 1)


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window: two running sums, O(1) per pixel whatever the radius."""
    return _box_1d(_box_1d(image, radius, 0), radius, 1)


def _up(half: np.ndarray) -> np.ndarray:
    """Nearest-neighbour 2x upsampling (the chroma planes and the coefficients are half size)."""
    return np.repeat(np.repeat(half, 2, axis=0), 2, axis=1)


# --8<-- [start:filter]
def skin_mask(cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """1.0 where a chroma sample looks like skin, else 0.0, softened so the blend leaves no seam."""
    mask = (cb >= CB_RANGE[0]) & (cb <= CB_RANGE[1]) & (cr >= CR_RANGE[0]) & (cr <= CR_RANGE[1])
    return _box(mask.astype(np.float32), 2)


def beautify(frame: av.VideoFrame, strength: float = 0.8, radius: int | None = None) -> av.VideoFrame:
    """Smooth the skin of ``frame``: a guided filter on luma (it keeps edges: eyes, lips, hair) blended in
    by the skin mask. ``strength`` 0-1 is how much of the smoothed luma replaces the original."""
    planes = frame.to_ndarray(format="yuv420p")
    h, w = frame.height, frame.width
    y = planes[:h].astype(np.float32)
    cb = planes[h : h + h // 4].reshape(h // 2, w // 2)
    cr = planes[h + h // 4 :].reshape(h // 2, w // 2)
    r = radius if radius is not None else max(2, h // 90)  # the same blur on the face at any resolution
    # guided filter (He et al.) with the image as its own guide: flat areas are averaged, edges kept
    eps = 12.0**2  # luma variance below which a patch counts as "flat skin"
    # coefficients at half resolution ("fast guided filter"), applied at full: a quarter of the work
    small = y.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    mean = _box(small, r // 2)
    var = _box(small * small, r // 2) - mean * mean
    a = var / (var + eps)
    a_mean, b_mean = _box(a, r // 2), _box((1 - a) * mean, r // 2)
    smooth = _up(a_mean) * y + _up(b_mean)
    weight = strength * _up(skin_mask(cb, cr))
    out = planes.copy()
    out[:h] = np.clip(y + weight * (smooth - y), 0, 255).astype(np.uint8)
    result = av.VideoFrame.from_ndarray(out, format="yuv420p")
    result.pts = frame.pts
    if frame.time_base is not None:
        result.time_base = frame.time_base
    return result


# --8<-- [end:filter]


# --8<-- [start:track]
class BeautyTrack(MediaStreamTrack):
    """Wraps a video track: every frame is beautified before the sender encodes it. Keeps its own cost
    (CPU time of this thread, so other threads such as the encoder's are not counted)."""

    kind = "video"

    def __init__(self, track: MediaStreamTrack, strength: float = 0.8) -> None:
        super().__init__()
        self.track, self.strength = track, strength
        self.frames, self.cpu_s = 0, 0.0
        self.by_height: dict[int, list[float]] = {}

    async def recv(self) -> av.VideoFrame:
        frame = await self.track.recv()
        started = time.thread_time()
        out = beautify(frame, self.strength)
        spent = time.thread_time() - started
        self.frames += 1
        self.cpu_s += spent
        self.by_height.setdefault(frame.height, []).append(spent)
        return out

    def stop(self) -> None:
        super().stop()
        self.track.stop()


# --8<-- [end:track]
