"""The diagnosis page in Chromium: every captured dump dropped on it gives the findings and verdict that
`rtclab diagnose` gives, in both languages, and nothing leaves the page while it works."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Page

from rtclab.diagnose import diagnose_file

if TYPE_CHECKING:
    from conftest import Recorder

ROOT = Path(__file__).resolve().parents[2]
DUMPS = sorted(p for p in (ROOT / "samples" / "support" / "dumps").iterdir() if p.suffix != ".md")
PAGES = {"en": "/support/diagnose-in-browser/", "zh": "/zh/support/diagnose-in-browser/"}


def page_report(page: Page, files: list[Path]) -> list[dict]:
    page.set_input_files("#diagnose-files", [str(f) for f in files])
    page.wait_for_function(
        f"document.querySelectorAll('#diagnose-output [data-verdict], #diagnose-output [data-error]').length === {len(files)}",
        timeout=60_000,  # 15 dumps, up to 3 MB, read by the page's script while other browser tests share the cores
    )
    return page.eval_on_selector_all(
        "#diagnose-output > *",
        """sections => sections.map(s => s.matches('[data-error]') ? {error: s.textContent} : {
            source: s.dataset.source,
            findings: [...s.querySelectorAll('[data-finding]')].map(f => [f.dataset.finding, f.dataset.severity, f.dataset.connection, f.dataset.stream]),
            verdict: s.querySelector('[data-verdict]').dataset.verdict,
        })""",
    )


@pytest.mark.parametrize("lang", sorted(PAGES))
def test_the_page_gives_the_command_lines_findings(page: Page, recorder: Recorder, lang: str) -> None:
    page.goto(PAGES[lang], wait_until="networkidle")  # the page's own files first, then count
    before = len(recorder.requests)
    shown = page_report(page, DUMPS)
    for path, report in zip(DUMPS, shown, strict=True):
        expected = diagnose_file(str(path), lang)
        assert report["source"] == path.name
        expected_findings = [
            [f["id"], f["severity"], f["connection"], f["stream"] or ""] for f in expected["findings"]
        ]
        assert report["findings"] == expected_findings, path.name
        assert report["verdict"] == expected["verdict"], path.name
    assert recorder.requests[before:] == [], "diagnosing sent requests"  # read in the page, nothing uploaded
    assert recorder.page_errors == []


def test_a_bad_file_is_one_line_naming_it_and_the_others_still_show(page: Page, tmp_path: Path) -> None:
    bad = tmp_path / "truncated.json"
    bad.write_text('{"PeerConnections": {"1": {"stats": ')
    page.goto(PAGES["en"])
    shown = page_report(page, [bad, DUMPS[0]])
    assert shown[0] == {"error": "truncated.json: the JSON ends early (truncated file?)"}
    assert "verdict" in shown[1]
