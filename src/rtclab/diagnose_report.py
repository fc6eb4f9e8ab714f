"""Write a diagnosis (`rtclab.diagnose`) for people: a text report for the terminal, a self-contained HTML
page, and a pre-filled incident review in Markdown. English or Chinese.

    from rtclab.diagnose import diagnose_file
    from rtclab.diagnose_report import format_text, incident_review
    report = diagnose_file("dump.json", lang="zh")
    print(format_text(report, "zh"))
"""

from __future__ import annotations

import html
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = ["SITE", "format_text", "incident_review", "render_html"]

SITE = os.environ.get("RTCLAB_DOCS_URL", "http://127.0.0.1:8000/")
"""Where the portal is read: ``make serve``'s address unless ``RTCLAB_DOCS_URL`` names a published copy. The
report links ``SITE + runbook`` (``zh/`` inserted for Chinese)."""

WORDS = {
    "en": {
        "connection": "connection",
        "connected": "connected",
        "not connected": "did not connect",
        "path": "path",
        "rtt": "RTT",
        "loss": "loss",
        "jitter": "jitter",
        "bitrate": "bitrate",
        "concealed": "concealed",
        "buffer": "jitter buffer",
        "freezes": "freezes",
        "frozen": "frozen",
        "limited": "limited by",
        "no findings": "no findings: nothing in this call crossed a threshold",
        "findings": "findings",
        "verdict": "verdict",
        "runbook": "runbook",
        "inbound": "received",
        "outbound": "sent",
        "states": "states",
        "mos": "MOS",
        "conceals": "receiver conceals loss",
        "no concealment": "receiver conceals nothing",
        "good": "good",
        "fair": "fair",
        "poor": "poor",
        "failed": "failed",
        "no stats": "no media stats",
        "threshold": "threshold",
        "audio": "audio",
        "video": "video",
    },
    "zh": {
        "connection": "连接",
        "connected": "已连通",
        "not connected": "未连通",
        "path": "路径",
        "rtt": "RTT",
        "loss": "丢包",
        "jitter": "抖动",
        "bitrate": "码率",
        "concealed": "丢包隐藏",
        "buffer": "抖动缓冲",
        "freezes": "卡顿",
        "frozen": "卡顿时长占比",
        "limited": "受限于",
        "no findings": "没有发现问题：本次通话没有任何指标越过阈值",
        "findings": "发现的问题",
        "verdict": "结论",
        "runbook": "处理手册",
        "inbound": "接收",
        "outbound": "发送",
        "states": "状态",
        "mos": "MOS",
        "conceals": "接收端做丢包隐藏",
        "no concealment": "接收端不做丢包隐藏",
        "good": "良好",
        "fair": "一般",
        "poor": "差",
        "failed": "失败",
        "no stats": "没有媒体统计",
        "threshold": "阈值",
        "audio": "音频",
        "video": "视频",
    },
}


def _number(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".rstrip()


def _spread(stats: Mapping[str, Any] | None, unit: str) -> str:
    if not stats:
        return "-"
    parts = [f"p50 {_number(stats['p50'])}"]
    if stats.get("p95") is not None:
        parts.append(f"p95 {_number(stats['p95'])}")
    if stats.get("max") is not None:
        parts.append(f"max {_number(stats['max'])}")
    return " / ".join(parts) + f" {unit}"


def runbook_url(runbook: str, lang: str) -> str:
    """The runbook's address on the site, in the report's language."""
    return SITE + ("zh/" if lang == "zh" else "") + runbook


def _path(connection: Mapping[str, Any]) -> str:
    pair = connection["candidate_pair"]
    if not pair:
        return "-"
    text = f"{pair['local_type'] or '?'} -> {pair['remote_type'] or '?'} {pair['protocol'] or '?'}"
    return text + (f" (TURN over {pair['relay_protocol']})" if pair["relay_protocol"] else "")


def _stream_line(stream: Mapping[str, Any], w: Mapping[str, str]) -> str:
    parts = [
        f"{w['loss']} {_number(stream['loss_pct'], '%')}",
        f"{w['jitter']} {_spread(stream['jitter_ms'], 'ms')}",
    ]
    if stream["bitrate_kbps"]:
        parts.append(f"{w['bitrate']} {_spread(stream['bitrate_kbps'], 'kbps')}")
    if stream.get("concealed_pct") is not None:
        parts.append(f"{w['concealed']} {_number(stream['concealed_pct'], '%')}")
    if stream.get("jitter_buffer_ms") is not None:
        parts.append(f"{w['buffer']} {_number(stream['jitter_buffer_ms'], 'ms')}")
    if stream.get("freeze_count") is not None:
        parts.append(f"{w['freezes']} {stream['freeze_count']}")
    if stream.get("freeze_pct") is not None:
        parts.append(f"{w['frozen']} {_number(stream['freeze_pct'], '%')}")
    limits = stream.get("quality_limitation_pct")
    if limits and any(limits.values()):
        shown = ", ".join(f"{k} {_number(v, '%')}" for k, v in limits.items() if v)
        parts.append(f"{w['limited']} {shown}")
    if stream["packets"] is not None:
        parts.insert(0, f"{stream['packets']} packets" if w is WORDS["en"] else f"{stream['packets']} 个包")
    return f"{w[stream['direction']]} {w[stream['kind']]} {stream['id']}: " + ", ".join(parts)


def _mos_line(mos: Mapping[str, Any], w: Mapping[str, str]) -> str:
    receiver = w["conceals"] if mos["conceals"] else w["no concealment"]
    return (
        f"{w['mos']} {mos['mos']:.2f} (R {mos['r']:g}: Id {mos['id']:g}, Ie-eff {mos['ie_eff']:g}; "
        f"{w['buffer']} {mos['jitter_buffer_ms']:g} ms, {w['loss']} {mos['loss_pct']:g} %, {receiver})"
    )


def _finding_line(finding: Mapping[str, Any], lang: str) -> str:
    where = finding["connection"] + (f" / {finding['stream']}" if finding["stream"] else "")
    threshold, unit = finding["threshold"], finding["unit"]
    shown = " | ".join(threshold) if isinstance(threshold, list) else _number(threshold, unit)
    return (
        f"{finding['severity']} {finding['id']}: {finding['title']} ({where}: {_number(finding['value'], unit)}, "
        f"{WORDS[lang]['threshold']} {shown}, {finding['source']['name']})\n      {finding['explain']}\n"
        f"      -> {runbook_url(finding['runbook'], lang)}"
    )


def format_text(report: Mapping[str, Any], lang: str = "en") -> str:
    """The report as text for a terminal."""
    w = WORDS[lang]
    agent = f", {report['user_agent']}" if report["user_agent"] else ""
    lines = [f"{report['source']}: {report['format']}{agent}"]
    for connection in report["connections"]:
        state = (
            w["connected"]
            if connection["connected"]
            else f"{w['not connected']} ({connection['ice_outcome']})"
        )
        lines.append(
            f"  {w['connection']} {connection['id']}: {state}, {w['path']} {_path(connection)}, {w['rtt']} {_spread(connection['rtt_ms'], 'ms')}"
        )
        changes = [
            f"{s['what']} {s['value']}" for s in connection["states"] if s["what"] in ("ice", "connection")
        ]
        if changes:
            lines.append(f"    {w['states']}: " + " -> ".join(changes))
        for stream in connection["streams"]:
            lines.append("    " + _stream_line(stream, w))
        if not connection["streams"]:
            lines.append(f"    {w['no stats']}")
        if connection["mos"]:
            lines.append("    " + _mos_line(connection["mos"], w))
    lines.append(f"  {w['findings']}:")
    lines += [f"    {_finding_line(f, lang)}" for f in report["findings"]] or [f"    {w['no findings']}"]
    lines.append(f"  {w['verdict']}: {w[report['verdict']]}")
    return "\n".join(lines)


def render_html(reports: Sequence[Mapping[str, Any]], lang: str = "en") -> str:
    """One self-contained page (no script, no request to any host) with every report.

    Each finding is an element with ``data-finding`` and ``data-severity``, each verdict one with
    ``data-verdict``, the same markup as the browser diagnosis page.
    """
    w = WORDS[lang]
    parts = []
    for report in reports:
        findings = (
            "".join(
                f'<li data-finding="{html.escape(f["id"])}" data-severity="{f["severity"]}"><strong>{f["severity"]}</strong> '
                f"{html.escape(f['title'])} <code>{html.escape(f['connection'] or '')} {html.escape(f['stream'] or '')}</code>: "
                f"{html.escape(_number(f['value']))} ({html.escape(f['explain'])}) "
                f'<a href="{html.escape(runbook_url(f["runbook"], lang))}">{w["runbook"]}</a></li>'
                for f in report["findings"]
            )
            or f"<li>{w['no findings']}</li>"
        )
        parts.append(
            f"<section><h2>{html.escape(report['source'])}</h2><pre>{html.escape(format_text(report, lang))}</pre>"
            f"<h3>{w['findings']}</h3><ul>{findings}</ul>"
            f'<p data-verdict="{report["verdict"]}">{w["verdict"]}: <strong>{w[report["verdict"]]}</strong></p></section>'
        )
    return (
        f'<!doctype html><html lang="{"zh-Hans" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
        f"<title>rtclab diagnose</title><style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
        f"padding:0 1rem}}pre{{white-space:pre-wrap;background:#f5f5f5;padding:1rem}}</style></head>"
        f"<body><h1>rtclab diagnose</h1>{''.join(parts)}</body></html>\n"
    )


INCIDENT = {
    "en": {
        "title": "Incident review",
        "summary": "Summary",
        "summary_text": "Verdict **{verdict}**, worst finding **{worst}**. Written by `rtclab diagnose --incident` on {now}; edit every section before you share it.",
        "severity": "Severity",
        "severity_text": "Proposed **{severity}** from the worst finding. Raise it if many players or a whole region are hit (see the severity levels page).",
        "timeline": "Timeline (from the dump)",
        "evidence": "Evidence",
        "cause": "Suspected cause",
        "cause_text": "From the findings; confirm with the runbook's 'How to confirm' step.",
        "fix": "Fix",
        "fix_text": "Follow the runbook's 'Fix' section; record what was changed, where and when.",
        "verify": "Verification",
        "verify_text": "Re-run `rtclab diagnose` on a dump taken after the fix; it should show none of the findings above.",
        "followups": "Follow-ups",
        "followups_text": "- [ ] Add a test or a probe profile that reproduces this\n- [ ] Check the other regions and app versions for the same finding",
        "none": "no findings",
    },
    "zh": {
        "title": "事故复盘",
        "summary": "概要",
        "summary_text": "结论 **{verdict}**，最严重的问题 **{worst}**。由 `rtclab diagnose --incident` 于 {now} 生成；分享前请逐节修改。",
        "severity": "严重等级",
        "severity_text": "按最严重的问题建议定为 **{severity}**。如果影响很多玩家或整个地区，请上调（见严重等级页面）。",
        "timeline": "时间线（来自 dump）",
        "evidence": "证据",
        "cause": "疑似原因",
        "cause_text": "依据上面的问题；请按处理手册“如何确认”一步核实。",
        "fix": "修复",
        "fix_text": "按处理手册“修复”一节操作；记录改了什么、在哪里、什么时候改的。",
        "verify": "验证",
        "verify_text": "修复后重新采集 dump 并运行 `rtclab diagnose`，上面的问题都不应再出现。",
        "followups": "后续事项",
        "followups_text": "- [ ] 增加能复现此问题的测试或探测配置\n- [ ] 检查其他地区和应用版本是否有同样的问题",
        "none": "无",
    },
}


def incident_review(report: Mapping[str, Any], lang: str = "en", *, now: datetime | None = None) -> str:
    """A pre-filled incident review in Markdown: timeline, severity, evidence, cause, fix, follow-ups."""
    t = INCIDENT[lang]
    w = WORDS[lang]
    findings = report["findings"]
    worst = findings[0] if findings else None
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    timeline = [
        f"- {_number(s['at_s'], 's')}: {c['id']} {s['what']} -> {s['value']}"
        for c in report["connections"]
        for s in c["states"]
        if s["what"] in ("ice", "connection", "dtls")
    ] or ["- -"]
    evidence = [
        f"- `{report['source']}` ({report['format']}{', ' + report['user_agent'] if report['user_agent'] else ''})"
    ]
    evidence += [f"- {_finding_line(f, lang)}".replace("\n      ", "\n  ") for f in findings]
    causes = sorted({f"- {f['title']}: {f['explain']}" for f in findings}) or [f"- {t['none']}"]
    runbooks = sorted({f"- [{f['id']}]({runbook_url(f['runbook'], lang)})" for f in findings})
    return "\n".join(
        [
            f"# {t['title']}: {report['source']}",
            "",
            f"## {t['summary']}",
            "",
            t["summary_text"].format(
                verdict=w[report["verdict"]], worst=worst["title"] if worst else t["none"], now=stamp
            ),
            "",
            f"## {t['severity']}",
            "",
            t["severity_text"].format(severity=worst["severity"] if worst else "P4"),
            "",
            f"## {t['timeline']}",
            "",
            *timeline,
            "",
            f"## {t['evidence']}",
            "",
            *evidence,
            "",
            f"## {t['cause']}",
            "",
            t["cause_text"],
            "",
            *causes,
            "",
            f"## {t['fix']}",
            "",
            t["fix_text"],
            "",
            *runbooks,
            "",
            f"## {t['verify']}",
            "",
            t["verify_text"],
            "",
            f"## {t['followups']}",
            "",
            t["followups_text"],
            "",
        ]
    )
