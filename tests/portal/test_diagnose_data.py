"""portal.diagnose_data: the browser page's rules and E-model numbers are the Python side's, written at build."""

from __future__ import annotations

import json
from types import SimpleNamespace

from portal.diagnose_data import DATA_PATH, data_script, diagnose_data, on_post_page
from rtclab.diagnose import load_rules
from rtclab.quality import CODECS, NO_CONCEALMENT_BPL, R0_MINUS_IS


def test_the_data_is_the_rules_file_and_the_emodel_constants() -> None:
    data = diagnose_data()
    assert [r["id"] for r in data["rules"]["rules"]] == [r["id"] for r in load_rules()["rules"]]
    assert data["emodel"] == {
        "r0_minus_is": R0_MINUS_IS,
        "opus_ie": CODECS["opus"].ie,
        "opus_bpl": CODECS["opus"].bpl,
        "no_concealment_bpl": NO_CONCEALMENT_BPL,
    }
    script = data_script()
    assert script.startswith("window.RTCLAB_DIAGNOSE_DATA = ")
    assert json.loads(script.removeprefix("window.RTCLAB_DIAGNOSE_DATA = ").rstrip(";\n")) == data


def test_only_the_tool_page_gets_the_scripts_with_paths_for_its_language() -> None:
    html = "<html><body><p>x</p></body></html>"
    en = on_post_page(html, SimpleNamespace(meta={"diagnose_tool": True}, url="support/diagnose-in-browser/"))
    zh = on_post_page(
        html, SimpleNamespace(meta={"diagnose_tool": True}, url="zh/support/diagnose-in-browser/")
    )
    assert f'src="../../{DATA_PATH}"' in en and f'src="../../../{DATA_PATH}"' in zh
    assert on_post_page(html, SimpleNamespace(meta={}, url="index.html")) == html
