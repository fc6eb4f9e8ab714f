"""MkDocs hook: the browser diagnosis page gets its rules and E-model numbers from the Python side, at build.

`diagnose_data()` is the rules file `rtclab/data/diagnose_rules.yaml` and the constants of
`rtclab.quality.score_speech`, as one object. The build writes it as ``assets/diagnose/diagnose-data.js`` (a
script, not JSON to fetch, so the page works from ``file://`` in the offline bundle), and a page whose front
matter says ``diagnose_tool: true`` gets that script and ``assets/diagnose/diagnose.js`` at its end, with paths
that work in both languages. Nothing is copied by hand, so the page and ``rtclab diagnose`` read one rules file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rtclab.diagnose import load_rules
from rtclab.quality import CODECS, NO_CONCEALMENT_BPL, R0_MINUS_IS

DATA_PATH = "assets/diagnose/diagnose-data.js"
SCRIPT_PATH = "assets/diagnose/diagnose.js"
PAGE_PATH = "assets/diagnose/page.js"


def diagnose_data() -> dict[str, Any]:
    """What diagnose.js needs: the rules, and the E-model's numbers."""
    return {
        "rules": json.loads(json.dumps(load_rules(), default=str)),  # dates as text, like the Python report
        "emodel": {
            "r0_minus_is": R0_MINUS_IS,
            "opus_ie": CODECS["opus"].ie,
            "opus_bpl": CODECS["opus"].bpl,
            "no_concealment_bpl": NO_CONCEALMENT_BPL,
        },
    }


def data_script() -> str:
    return "window.RTCLAB_DIAGNOSE_DATA = " + json.dumps(diagnose_data(), ensure_ascii=False) + ";\n"


def on_post_build(config: Any, **_: Any) -> None:
    # Written after the build rather than added as a generated file: mkdocs-static-i18n cannot place a file
    # that has no source path. Both languages load it from the site root.
    target = Path(config["site_dir"]) / DATA_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(data_script(), encoding="utf-8")


def on_post_page(output: str, page: Any, **_: Any) -> str:
    if not page.meta.get("diagnose_tool"):
        return output
    up = "../" * page.url.count("/")  # from the page's folder back to the site root, in either language
    tags = "".join(f'<script src="{up}{path}"></script>' for path in (DATA_PATH, SCRIPT_PATH, PAGE_PATH))
    return output.replace("</body>", tags + "</body>", 1)
