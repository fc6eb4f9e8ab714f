"""Markdown for the pages the build writes itself: the execution report and the translation status."""

from __future__ import annotations

import json
from pathlib import Path

from portal.notebooks import find_notebooks
from portal.paths import EXECUTED, REPORTS
from portal.translations import status

SAMPLES_REPORT = REPORTS / "samples.json"

TEXT = {
    "en": {
        "report_title": "Execution report",
        "report_intro": (
            "Every notebook and sample on this site runs in CI. This page is written by the build from "
            "the results of the run that produced it."
        ),
        "notebooks": "Notebooks",
        "samples": "Samples",
        "outputs": "Sample outputs shown on pages",
        "outputs_intro": "Pages show what these samples printed when the build ran them (`build/outputs/`).",
        "item": "Notebook",
        "sample": "Sample",
        "status": "Status",
        "seconds": "Run time (s)",
        "date": "Date",
        "mode": "Mode",
        "versions": "Python / aiortc / av",
        "no_samples": (
            "No sample results in this build: they are recorded by `make test` "
            "(`tests/samples/`), which `make serve` does not run."
        ),
        "status_title": "Translation status",
        "status_intro": (
            "Written by the build. A Chinese page is *outdated* when its English page changed after the "
            "translation was made (its `translated_from` hash no longer matches); run "
            "`make stamp FILE=...` after bringing it up to date."
        ),
        "page": "English source",
        "state": "Chinese page",
        "summary": "{done} of {total} pages translated and up to date.",
        "states": {
            "missing": "missing",
            "outdated": "outdated",
            "unstamped": "not stamped",
            "up to date": "up to date",
        },
    },
    "zh": {
        "report_title": "执行报告",
        "report_intro": "本站的每个 notebook 和示例程序都在 CI 中运行。本页由构建过程根据生成本站的那次运行结果自动写成。",
        "notebooks": "Notebook",
        "samples": "示例程序",
        "outputs": "页面展示的示例输出",
        "outputs_intro": "页面展示的是构建运行这些示例程序时打印的结果（`build/outputs/`）。",
        "item": "Notebook",
        "sample": "示例",
        "status": "状态",
        "seconds": "运行时间（秒）",
        "date": "日期",
        "mode": "模式",
        "versions": "Python / aiortc / av",
        "no_samples": "本次构建没有示例程序的运行结果：它们由 `make test`（`tests/samples/`）记录，`make serve` 不运行它们。",
        "status_title": "翻译状态",
        "status_intro": (
            "由构建自动生成。英文页面在翻译完成后又有改动时（`translated_from` 哈希不再匹配），中文页面即为"
            "*过期*；更新译文后运行 `make stamp FILE=...`。"
        ),
        "page": "英文源文件",
        "state": "中文页面",
        "summary": "{total} 个页面中有 {done} 个已翻译且为最新。",
        "states": {"missing": "缺失", "outdated": "过期", "unstamped": "未标记", "up to date": "最新"},
    },
}

FRONT_MATTER = """---
title: {title}
description: {description}
kind: reference
audience: [contributor, trainer]
level: beginner
minutes: 2
last_reviewed: {today}
generated: true
---
"""


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def _front(title: str, description: str, today: str) -> str:
    # JSON strings are valid YAML scalars, whatever characters the text holds.
    return FRONT_MATTER.format(title=json.dumps(title), description=json.dumps(description), today=today)


def execution_report(lang: str, today: str) -> str:
    t = TEXT[lang]
    lines = [
        _front(t["report_title"], t["report_intro"][:190], today),
        f"# {t['report_title']}",
        "",
        t["report_intro"],
        "",
    ]
    executed = _load(EXECUTED / "report.json")
    lines += [
        f"## {t['notebooks']}",
        "",
        f"| {t['item']} | {t['status']} | {t['seconds']} | {t['date']} | {t['mode']} | {t['versions']} |",
        "|---|---|---|---|---|---|",
    ]
    for notebook in find_notebooks():
        record = executed.get(str(notebook.rel), {})
        v = record.get("versions", {})
        version = f"{v.get('python', '?')} / {v.get('aiortc', '?')} / {v.get('av', '?')}" if v else "–"
        lines.append(
            f"| `{notebook.display}` | {record.get('status', 'not run')} | {record.get('seconds', '–')} "
            f"| {record.get('date', '–')} | {record.get('mode', '–')} | {version} |"
        )
    outputs = executed.get("sample_outputs", {})
    if outputs:
        lines += ["", f"## {t['outputs']}", "", t["outputs_intro"], ""]
        lines += [f"| {t['sample']} | {t['status']} | {t['seconds']} | {t['date']} | {t['mode']} |"]
        lines += ["|---|---|---|---|---|"]
        for name, record in sorted(outputs.items()):
            lines.append(
                f"| `{name}` | {record.get('status', 'not run')} | {record.get('seconds', '–')} "
                f"| {record.get('date', '–')} | {record.get('mode', '–')} |"
            )
    lines += ["", f"## {t['samples']}", ""]
    samples = _load(SAMPLES_REPORT)
    if not samples:
        lines.append(t["no_samples"])
    else:
        lines += [f"| {t['sample']} | {t['status']} | {t['seconds']} | {t['date']} |", "|---|---|---|---|"]
        for name, record in sorted(samples.items()):
            lines.append(f"| `{name}` | {record['status']} | {record['seconds']} | {record['date']} |")
    return "\n".join(lines) + "\n"


def translation_status(lang: str, today: str) -> str:
    t = TEXT[lang]
    items = status("zh")
    done = sum(1 for item in items if item.state == "up to date")
    lines = [
        _front(t["status_title"], t["status_intro"][:190], today),
        f"# {t['status_title']}",
        "",
        t["status_intro"],
        "",
        t["summary"].format(done=done, total=len(items)),
        "",
        f"| {t['page']} | {t['state']} |",
        "|---|---|",
    ]
    order = {"missing": 0, "outdated": 1, "unstamped": 2, "up to date": 3}
    for item in sorted(items, key=lambda i: (order[i.state], i.name)):
        lines.append(f"| `{item.name}` | {t['states'][item.state]} |")
    return "\n".join(lines) + "\n"
