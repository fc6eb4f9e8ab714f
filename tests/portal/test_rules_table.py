"""portal.rules_table: the reference page's rules table comes from the rules file, in the page's language."""

from __future__ import annotations

from types import SimpleNamespace

from portal.rules_table import MARKER, on_page_markdown, rules_table
from rtclab.diagnose import load_rules


def page(src_uri: str) -> SimpleNamespace:
    return SimpleNamespace(file=SimpleNamespace(src_uri=src_uri))


def test_every_rule_and_level_is_in_the_table() -> None:
    table = rules_table("en")
    for rule in load_rules()["rules"]:
        row = next(line for line in table.splitlines() if f"`{rule['id']}`" in line)
        assert rule["title"]["en"] in row
        assert f"support/runbooks/{rule['family']}.md" in row
        for level in rule["levels"]:
            assert f"{level['severity']}:" in row


def test_the_chinese_page_gets_chinese_titles() -> None:
    markdown = on_page_markdown(f"before\n\n{MARKER}\n\nafter", page("reference/diagnose.zh.md"))
    assert MARKER not in markdown
    assert "| 规则 |" in markdown and "往返时延（RTT）过高" in markdown


def test_pages_without_the_marker_are_untouched() -> None:
    assert on_page_markdown("# title\n", page("index.md")) == "# title\n"
