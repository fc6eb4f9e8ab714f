"""Notebook figures as PNG files beside the page, with the alt text their cells carry, size and lazy loading.

Inline base64 figures made a notebook page several hundred KB that no browser could cache.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
import struct
from collections.abc import Iterable
from pathlib import Path

from mkdocs.exceptions import PluginError

_DATA_IMAGE = re.compile(
    r'<img alt="[^"]*"\s+class="[^"]*"\s*src="data:image/png;base64,([^"]+)"[^>]*>', re.S
)


def figure_alts(notebook: Path, where: str) -> list[str]:
    """The alt text of every figure a notebook shows, in page order, from its cells' `portal.alt`.

    A code cell whose outputs hold a figure carries `"portal": {"alt": "what the figure shows"}` in its
    metadata (a list when it draws several). Chinese notebooks carry Chinese alt text in the same place.
    `where` names the notebook in the error.
    """
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    alts: list[str] = []
    for index, cell in enumerate(nb["cells"]):
        images = sum("image/png" in out.get("data", {}) for out in cell.get("outputs", []))
        if not images or "remove-cell" in cell["metadata"].get("tags", []):
            continue
        given = cell["metadata"].get("portal", {}).get("alt")
        given = [given] if isinstance(given, str) else list(given or [])
        if len(given) != images or not all(isinstance(a, str) and a.strip() for a in given):
            raise PluginError(
                f"{where}: cell {index + 1}: metadata portal.alt: {images} figure(s) need {images} alt "
                f"text(s) saying what each shows; found {len(given)}"
            )
        alts += given
    return alts


def extract_figures(content: str, alts: Iterable[str], folder: Path, stem: str) -> str:
    """`content` with each inline PNG written to `folder` as `<stem>-figure-<n>.png` and linked from there.

    `alts` gives the alt text of each figure in order; the stem is the page's, as pages may share a folder
    in the offline bundle.
    """
    alts = iter(alts)
    count = 0

    def figure(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        data = base64.b64decode(match.group(1))
        width, height = struct.unpack(">II", data[16:24])  # the PNG header's IHDR chunk
        name = f"{stem}-figure-{count}.png"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(compress_png(data))
        alt = html.escape(next(alts), quote=True)
        return f'<img src="{name}" alt="{alt}" width="{width}" height="{height}" loading="lazy" decoding="async">'

    return _DATA_IMAGE.sub(figure, content)


def compress_png(data: bytes) -> bytes:
    """Plots use few colours: a 256-colour palette keeps them sharp at a third of the bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        quantized = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        out = io.BytesIO()
        quantized.save(out, format="PNG", optimize=True)
    return out.getvalue() if out.tell() < len(data) else data
