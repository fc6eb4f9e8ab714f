"""Opus through libopus itself (ctypes): the encoder and decoder controls FFmpeg's wrapper lacks.

aiortc encodes and decodes Opus through PyAV, that is FFmpeg's libopus wrapper. That wrapper has no DTX switch,
and its decoder never decodes in-band FEC (LBRR) data: it decodes each packet that arrives and nothing else. This
module calls libopus directly, from the copy PyAV's wheel already bundles (``av.libs/libopus-*.so``), so no new
package is needed:

* `OpusEncoder`: mono 48 kHz, with bitrate, frame size, in-band FEC, expected packet loss and DTX;
* `OpusDecoder`: decodes a packet, rebuilds the frame *before* a packet from its FEC data
  (``decode(packet, fec=True)``), or conceals a missing frame (``decode(None)``);
* `has_lbrr`, `packet_samples`: what a packet carries, read without decoding it.

Example:
    ```python
    encoder = OpusEncoder(24_000, fec=True, packet_loss_percent=10)
    decoder = OpusDecoder()
    packets = encoder.encode_signal(pcm16(speech))  # one packet per 20 ms frame
    first = decoder.decode(packets[0])  # 960 samples
    lost_second = decoder.decode(packets[2], fec=True)  # frame 1, rebuilt from packet 2's FEC data
    third = decoder.decode(packets[2])
    ```
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import weakref
from pathlib import Path

import numpy as np
import numpy.typing as npt

__all__ = [
    "APPLICATIONS",
    "FRAME_MS",
    "MAX_PACKET_BYTES",
    "SAMPLE_RATE",
    "LibopusNotFoundError",
    "OpusEncoder",
    "OpusDecoder",
    "OpusError",
    "find_libopus",
    "has_lbrr",
    "libopus_version",
    "load_libopus",
    "packet_samples",
    "pcm16",
]

SAMPLE_RATE = 48_000
"""Samples per second of everything this module encodes and decodes (Opus' native rate)."""
FRAME_MS = (2.5, 5.0, 10.0, 20.0, 40.0, 60.0)
"""Frame durations an Opus encoder accepts, in ms (RFC 7587 section 4.2)."""
MAX_PACKET_BYTES = 4000
"""Output buffer per encoded packet: the size opus.h recommends."""
LIBOPUS_ENV = "RTCLAB_LIBOPUS"
"""Environment variable naming a libopus shared library to load instead of PyAV's copy."""

APPLICATIONS = {"voip": 2048, "audio": 2049, "restricted-lowdelay": 2051}
"""``OPUS_APPLICATION_*`` values of opus_defines.h, by name."""

# Request numbers from opus_defines.h (libopus' public header).
_SET_BITRATE = 4002
_GET_BITRATE = 4003
_SET_INBAND_FEC = 4012
_SET_PACKET_LOSS_PERC = 4014
_SET_DTX = 4016
_GET_LOOKAHEAD = 4027

_ERRORS = {
    -1: "bad argument",
    -2: "buffer too small",
    -3: "internal error",
    -4: "invalid packet",
    -5: "unimplemented",
    -6: "invalid state",
    -7: "memory allocation failed",
}

Int16Array = npt.NDArray[np.int16]


class LibopusNotFoundError(OSError):
    """No libopus shared library could be found or loaded; the message says where it looked."""


class OpusError(RuntimeError):
    """A libopus call returned an error code.

    Attributes:
        code: The negative ``OPUS_*`` error code.
    """

    def __init__(self, call: str, code: int) -> None:
        self.code = code
        super().__init__(f"{call} failed: {_ERRORS.get(code, 'unknown error')} ({code})")


def find_libopus() -> str:
    """Where the libopus shared library is: ``$RTCLAB_LIBOPUS``, else PyAV's bundled copy, else the system's.

    Returns:
        A path (or a library name ``ctypes.CDLL`` resolves).

    Raises:
        LibopusNotFoundError: If none of the three has it.
    """
    override = os.environ.get(LIBOPUS_ENV)
    if override:
        if not Path(override).exists():
            raise LibopusNotFoundError(f"${LIBOPUS_ENV} names {override!r}, which does not exist")
        return override
    looked = []
    try:
        import av  # the wheel's shared libraries sit next to the package, in av.libs/

        libs = Path(av.__file__).resolve().parent.parent / "av.libs"
        bundled = sorted(libs.glob("libopus*.so*"))
        if bundled:
            return str(bundled[0])
        looked.append(f"{libs}/libopus*.so*")
    except ImportError:
        looked.append("PyAV (not installed)")
    system = ctypes.util.find_library("opus")
    if system:
        return system
    looked.append("the system's libraries (ctypes.util.find_library('opus'))")
    raise LibopusNotFoundError(
        "libopus not found; looked in " + ", ".join(looked)
        + f". Install PyAV (`uv sync`), or libopus0 (`apt-get install libopus0`), or set ${LIBOPUS_ENV}"
    )  # fmt: skip


@functools.cache
def load_libopus(path: str | None = None) -> ctypes.CDLL:
    """Load libopus once and declare the C signatures this module uses.

    Args:
        path: The shared library to load; `find_libopus` when None.

    Returns:
        The loaded library (cached per ``path``).

    Raises:
        LibopusNotFoundError: If it cannot be found or loaded.
    """
    name = path if path is not None else find_libopus()
    try:
        lib = ctypes.CDLL(name)
    except OSError as error:
        raise LibopusNotFoundError(f"cannot load libopus from {name!r}: {error}") from error
    c_int, c_int32, c_void_p, c_char_p = ctypes.c_int, ctypes.c_int32, ctypes.c_void_p, ctypes.c_char_p
    signatures = {
        "opus_get_version_string": (c_char_p, []),
        "opus_encoder_create": (c_void_p, [c_int32, c_int, c_int, ctypes.POINTER(c_int)]),
        "opus_encoder_destroy": (None, [c_void_p]),
        "opus_encode": (c_int32, [c_void_p, c_void_p, c_int, c_char_p, c_int32]),
        "opus_decoder_create": (c_void_p, [c_int32, c_int, ctypes.POINTER(c_int)]),
        "opus_decoder_destroy": (None, [c_void_p]),
        "opus_decode": (c_int, [c_void_p, c_char_p, c_int32, c_void_p, c_int, c_int]),
        "opus_packet_get_nb_samples": (c_int, [c_char_p, c_int32, c_int32]),
    }
    for function, (restype, argtypes) in signatures.items():
        try:
            symbol = getattr(lib, function)
        except AttributeError:
            raise LibopusNotFoundError(f"{name!r} is not libopus: it has no {function}()") from None
        symbol.restype, symbol.argtypes = restype, argtypes
    # opus_encoder_ctl is variadic: its arguments are passed C-typed, one by one, never declared.
    if hasattr(lib, "opus_packet_has_lbrr"):  # libopus 1.5 and later
        lib.opus_packet_has_lbrr.restype = c_int
        lib.opus_packet_has_lbrr.argtypes = [c_char_p, c_int32]
    return lib


def libopus_version() -> str:
    """The loaded libopus' version string, e.g. ``"libopus 1.5.2"``.

    Raises:
        LibopusNotFoundError: If libopus cannot be loaded.
    """
    return load_libopus().opus_get_version_string().decode()


def pcm16(samples: npt.ArrayLike) -> Int16Array:
    """Convert float samples in [-1, 1] to 16-bit PCM (clipped, rounded), the input `OpusEncoder` takes."""
    floats = np.asarray(samples, dtype=np.float64)
    return np.round(np.clip(floats, -1.0, 1.0) * 32767).astype(np.int16)


def _frame_samples(frame_ms: float) -> int:
    if frame_ms not in FRAME_MS:
        raise ValueError(f"frame_ms must be one of {', '.join(f'{f:g}' for f in FRAME_MS)}, got {frame_ms!r}")
    return int(SAMPLE_RATE * frame_ms / 1000)


class OpusEncoder:
    """A mono 48 kHz libopus encoder: one frame of 16-bit PCM in, one packet out.

    FEC and the expected loss work together: with ``fec=True`` the encoder adds a low-bitrate copy of the
    previous frame (LBRR) to a packet only when it expects loss, so give it ``packet_loss_percent``. Those
    bits come out of the same target bitrate. LBRR exists in the SILK (speech) layer only, so a packet coded
    in CELT mode (music, or a high bitrate) carries none.

    Attributes:
        bitrate_bps: Target bitrate, bits per second.
        frame_ms: Duration of one frame, ms.
        frame_samples: Samples in one frame.
        fec: In-band FEC on.
        packet_loss_percent: Loss the encoder is told to expect (0-100).
        dtx: Discontinuous transmission on (a packet of 2 bytes or less need not be sent).
    """

    def __init__(
        self,
        bitrate_bps: int = 24_000,
        *,
        frame_ms: float = 20,
        fec: bool = False,
        packet_loss_percent: int = 0,
        dtx: bool = False,
        application: str = "voip",
    ) -> None:
        """Create the encoder.

        Args:
            bitrate_bps: Target bitrate, 6000 to 510000 bits per second.
            frame_ms: Frame duration: 2.5, 5, 10, 20, 40 or 60 ms.
            fec: Turn in-band FEC on (``OPUS_SET_INBAND_FEC``).
            packet_loss_percent: Expected loss, 0-100 (``OPUS_SET_PACKET_LOSS_PERC``); FEC needs it above 0.
            dtx: Turn DTX on (``OPUS_SET_DTX``).
            application: ``"voip"`` (speech), ``"audio"`` or ``"restricted-lowdelay"``.

        Raises:
            ValueError: If an argument is out of range.
            LibopusNotFoundError: If libopus cannot be loaded.
            OpusError: If libopus refuses a setting.
        """
        if application not in APPLICATIONS:
            raise ValueError(f"application must be one of {', '.join(APPLICATIONS)}, got {application!r}")
        if not 0 <= packet_loss_percent <= 100:
            raise ValueError(f"packet_loss_percent must be 0-100, got {packet_loss_percent!r}")
        if not 6_000 <= bitrate_bps <= 510_000:
            raise ValueError(f"bitrate_bps must be 6000-510000, got {bitrate_bps!r}")
        self.frame_samples = _frame_samples(frame_ms)
        self.frame_ms = frame_ms
        self._lib = load_libopus()
        error = ctypes.c_int()
        state = self._lib.opus_encoder_create(SAMPLE_RATE, 1, APPLICATIONS[application], ctypes.byref(error))
        if error.value != 0 or not state:
            raise OpusError("opus_encoder_create", error.value or -7)
        self._state = ctypes.c_void_p(state)
        self._finalizer = weakref.finalize(self, self._lib.opus_encoder_destroy, self._state)
        self.bitrate_bps = 0
        self.set_bitrate(bitrate_bps)
        self.fec = fec
        self._ctl(_SET_INBAND_FEC, int(fec))
        self.packet_loss_percent = packet_loss_percent
        self._ctl(_SET_PACKET_LOSS_PERC, packet_loss_percent)
        self.dtx = dtx
        self._ctl(_SET_DTX, int(dtx))

    def _check_open(self) -> None:
        if not self._finalizer.alive:
            raise ValueError("the encoder is closed")

    def _ctl(self, request: int, value: int) -> None:
        self._check_open()
        # Variadic C function: pass C-typed values, never bare Python ints.
        result = self._lib.opus_encoder_ctl(self._state, ctypes.c_int(request), ctypes.c_int32(value))
        if result != 0:
            raise OpusError(f"opus_encoder_ctl({request}, {value})", result)

    def _get(self, request: int) -> int:
        self._check_open()
        value = ctypes.c_int32()
        result = self._lib.opus_encoder_ctl(self._state, ctypes.c_int(request), ctypes.byref(value))
        if result != 0:
            raise OpusError(f"opus_encoder_ctl({request})", result)
        return value.value

    def set_bitrate(self, bitrate_bps: int) -> None:
        """Change the target bitrate; takes effect from the next frame (Opus allows it at any time).

        Raises:
            OpusError: If libopus refuses the value.
        """
        self._ctl(_SET_BITRATE, bitrate_bps)
        self.bitrate_bps = bitrate_bps

    def set_packet_loss_percent(self, percent: int) -> None:
        """Change the loss the encoder expects (for example from RTCP receiver reports), 0-100.

        Raises:
            OpusError: If libopus refuses the value.
        """
        self._ctl(_SET_PACKET_LOSS_PERC, percent)
        self.packet_loss_percent = percent

    @property
    def lookahead_samples(self) -> int:
        """Samples of delay the codec adds on top of the frame (``OPUS_GET_LOOKAHEAD``): the decoded signal
        starts this many samples late."""
        return self._get(_GET_LOOKAHEAD)

    @property
    def lookahead_ms(self) -> float:
        """`lookahead_samples` in milliseconds."""
        return self.lookahead_samples * 1000 / SAMPLE_RATE

    def encode(self, frame: npt.NDArray[np.int16]) -> bytes:
        """Encode one frame into one packet.

        Args:
            frame: Exactly `frame_samples` 16-bit samples (convert floats with `pcm16`).

        Returns:
            The packet. With DTX on, a packet of 2 bytes or less need not be transmitted.

        Raises:
            TypeError: If ``frame`` is not 16-bit PCM.
            ValueError: If it does not hold exactly one frame.
            OpusError: If libopus fails.
        """
        self._check_open()
        pcm = np.asarray(frame)
        if pcm.dtype != np.int16:
            raise TypeError(f"frame must be int16 PCM (use pcm16() on floats), got {pcm.dtype}")
        if pcm.ndim != 1 or pcm.size != self.frame_samples:
            raise ValueError(f"frame must hold {self.frame_samples} samples, got shape {pcm.shape}")
        pcm = np.ascontiguousarray(pcm)
        out = ctypes.create_string_buffer(MAX_PACKET_BYTES)
        size = self._lib.opus_encode(self._state, pcm.ctypes.data, pcm.size, out, MAX_PACKET_BYTES)
        if size < 0:
            raise OpusError("opus_encode", size)
        return out.raw[:size]

    def encode_signal(self, pcm: npt.NDArray[np.int16]) -> list[bytes]:
        """Encode a whole signal frame by frame; a tail shorter than a frame is dropped.

        Args:
            pcm: 16-bit mono samples at 48 kHz.

        Returns:
            One packet per whole frame, in order.
        """
        n = self.frame_samples
        return [self.encode(pcm[start : start + n]) for start in range(0, len(pcm) - n + 1, n)]

    def close(self) -> None:
        """Free the libopus state now (it is freed with the object otherwise); the encoder is unusable after."""
        self._finalizer()

    def __enter__(self) -> OpusEncoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class OpusDecoder:
    """A mono 48 kHz libopus decoder that can also decode FEC data and conceal lost frames.

    Three calls, for the three things a receiver does with the slot of frame N:

    * ``decode(packet_n)``: packet N arrived;
    * ``decode(packet_n_plus_1, fec=True)``: packet N was lost but N+1 is here; rebuild frame N from the LBRR
      copy in N+1 (then decode N+1 normally for frame N+1). If N+1 carries no LBRR data, libopus conceals;
    * ``decode(None)``: nothing to go on; the decoder conceals frame N (PLC).

    Attributes:
        frame_samples: Default frame length for `decode`, in samples.
    """

    def __init__(self, *, frame_ms: float = 20) -> None:
        """Create the decoder.

        Args:
            frame_ms: The frame duration the stream uses: what `decode` rebuilds or conceals by default.

        Raises:
            ValueError: If ``frame_ms`` is not an Opus frame duration.
            LibopusNotFoundError: If libopus cannot be loaded.
            OpusError: If libopus fails.
        """
        self.frame_samples = _frame_samples(frame_ms)
        self._lib = load_libopus()
        error = ctypes.c_int()
        state = self._lib.opus_decoder_create(SAMPLE_RATE, 1, ctypes.byref(error))
        if error.value != 0 or not state:
            raise OpusError("opus_decoder_create", error.value or -7)
        self._state = ctypes.c_void_p(state)
        self._finalizer = weakref.finalize(self, self._lib.opus_decoder_destroy, self._state)

    def decode(
        self, packet: bytes | None, *, fec: bool = False, frame_samples: int | None = None
    ) -> Int16Array:
        """Decode one frame.

        Args:
            packet: The packet; None conceals a missing frame.
            fec: Decode the FEC (LBRR) copy of the frame *before* ``packet`` instead of ``packet`` itself.
            frame_samples: Samples to rebuild or conceal (a multiple of 2.5 ms); `frame_samples` when None.
                A normal decode returns however many samples the packet holds, up to 120 ms.

        Returns:
            16-bit mono samples.

        Raises:
            OpusError: If libopus fails (for example on a corrupt packet).
            ValueError: If the decoder is closed.
        """
        if not self._finalizer.alive:
            raise ValueError("the decoder is closed")
        wanted = self.frame_samples if frame_samples is None else frame_samples
        # A normal decode may hold up to 120 ms; FEC and concealment must ask for exactly the missing frame.
        capacity = wanted if (fec or packet is None) else max(wanted, SAMPLE_RATE * 120 // 1000)
        pcm = np.zeros(capacity, dtype=np.int16)
        size = 0 if packet is None else len(packet)
        got = self._lib.opus_decode(self._state, packet, size, pcm.ctypes.data, capacity, int(fec))
        if got < 0:
            raise OpusError("opus_decode", got)
        return pcm[:got]

    def conceal(self, frame_samples: int | None = None) -> Int16Array:
        """Conceal one missing frame (the same as ``decode(None)``)."""
        return self.decode(None, frame_samples=frame_samples)

    def close(self) -> None:
        """Free the libopus state now (it is freed with the object otherwise); the decoder is unusable after."""
        self._finalizer()

    def __enter__(self) -> OpusDecoder:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def has_lbrr(packet: bytes) -> bool:
    """True if ``packet`` carries FEC (LBRR) data for the frame before it (``opus_packet_has_lbrr``).

    Raises:
        OpusError: If the packet is not a valid Opus packet.
        RuntimeError: If the loaded libopus is older than 1.5, which added the call.
    """
    lib = load_libopus()
    if not hasattr(lib, "opus_packet_has_lbrr"):
        raise RuntimeError(
            f"{libopus_version()} has no opus_packet_has_lbrr(): it needs libopus 1.5 or later"
        )
    result = lib.opus_packet_has_lbrr(packet, len(packet))
    if result < 0:
        raise OpusError("opus_packet_has_lbrr", result)
    return result == 1


def packet_samples(packet: bytes) -> int:
    """Samples per channel ``packet`` decodes to at 48 kHz (``opus_packet_get_nb_samples``).

    Raises:
        OpusError: If the packet is not a valid Opus packet.
    """
    result = load_libopus().opus_packet_get_nb_samples(packet, len(packet), SAMPLE_RATE)
    if result < 0:
        raise OpusError("opus_packet_get_nb_samples", result)
    return result
