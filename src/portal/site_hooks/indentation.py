"""Pages without the template's indentation between tags (about 10 % of a page)."""

from __future__ import annotations

import re

# Where whitespace is content: left exactly as it is.
_VERBATIM = re.compile(r"(<(pre|textarea|script|style)\b.*?</\2>)", re.S | re.I)


def squeeze_indentation(output: str) -> str:
    """Drop the template indentation between tags, keeping one newline so that inline elements keep the
    space between them; <pre>, <textarea>, <script> and <style> are untouched."""
    parts = _VERBATIM.split(output)
    # split() returns [text, verbatim, tag name, text, verbatim, tag name, ...]
    for i in range(0, len(parts), 3):
        parts[i] = re.sub(r">[ \t]*\n\s*<", ">\n<", parts[i])
    return "".join(part for i, part in enumerate(parts) if i % 3 != 2)
