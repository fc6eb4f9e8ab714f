"""MkDocs hook: the diagnosis rules as a table, written from `rtclab/data/diagnose_rules.yaml` at build time.

A page asks for it with a line holding only ``<!-- diagnose-rules-table -->``; the hook puts the table there
in the page's language (a ``.zh.md`` page gets the Chinese titles). The rules file stays the one place a
threshold is written, so the reference page cannot disagree with `rtclab diagnose` or the browser page.
"""

from __future__ import annotations

from typing import Any

from rtclab.diagnose import load_rules

MARKER = "<!-- diagnose-rules-table -->"

HEADERS = {
    "en": ("rule", "reads", "severity when", "title", "source", "runbook"),
    "zh": ("规则", "指标", "严重等级条件", "标题", "来源", "处理手册"),
}


def _condition(level: dict[str, Any], unit: str) -> str:
    suffix = f" {unit}" if unit and unit != "MOS" else ""
    if "above" in level:
        return f"{level['severity']}: > {level['above']:g}{suffix}"
    if "below" in level:
        return f"{level['severity']}: < {level['below']:g}{suffix}"
    return f"{level['severity']}: " + " / ".join(f"`{value}`" for value in level["in"])


def rules_table(lang: str) -> str:
    """The rules as a Markdown table in ``lang`` (``en`` or ``zh``); runbook links are relative to a page in
    docs/reference/."""
    table = load_rules()
    lines = ["| " + " | ".join(HEADERS[lang]) + " |", "|" + " --- |" * len(HEADERS[lang])]
    for rule in table["rules"]:
        where = rule["scope"] + "".join(f", {k} {v}" for k, v in rule.get("when", {}).items())
        levels = "<br>".join(_condition(level, rule["unit"]) for level in rule["levels"])
        sources = sorted({level["source"] for level in rule["levels"]})
        cited = "<br>".join(
            f"[{table['sources'][key]['name']}]({table['sources'][key]['url']}) ({table['sources'][key]['as_of']})"
            for key in sources
        )
        runbook = f"[{rule['family']}](../support/runbooks/{rule['family']}.md)"
        lines.append(
            f"| `{rule['id']}` | `{rule['metric']}` ({where}) | {levels} | {rule['title'][lang]} | {cited} | {runbook} |"
        )
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if MARKER not in markdown:
        return markdown
    lang = "zh" if page.file.src_uri.endswith(".zh.md") else "en"
    return markdown.replace(MARKER, rules_table(lang))
