"""The execution badge above a notebook page: when it last ran, how long, with which versions, and a link
to download the notebook."""

from __future__ import annotations

import html
from typing import Any

from portal.paths import DEFAULT_LANGUAGE

BADGE_TEXT = {
    "en": ("Last verified", "run time", "Download the notebook", "quick mode", "full mode"),
    "zh": ("最近验证", "运行时间", "下载 notebook", "快速模式", "完整模式"),
}


def badge(record: dict[str, Any] | None, notebook_name: str, lang: str) -> str:
    """The badge's HTML from a notebook's recorded execution (see portal.execute); "" unless it passed."""
    if not record or record.get("status") != "passed":
        return ""  # `make serve` shows a notebook that is still running without outputs, and without a badge
    labels = BADGE_TEXT.get(lang, BADGE_TEXT[DEFAULT_LANGUAGE])
    v = record["versions"]
    mode = labels[3] if record.get("mode") == "quick" else labels[4]
    return (
        '<div class="lma-badge" role="note">'
        f"<span>✔ {labels[0]} {html.escape(record['date'])}</span>"
        f"<span>{labels[1]} {record['seconds']} s ({mode})</span>"
        f"<span>Python {v['python']} · aiortc {v['aiortc']} · av {v['av']}</span>"
        f'<a href="{html.escape(notebook_name)}" download>⬇ {labels[2]}</a>'
        "</div>"
    )
