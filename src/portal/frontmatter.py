"""The front matter every page carries, and its validation.

    python -m portal.frontmatter        # check every page under docs/ and every notebook

Each problem is reported on one line as `file: field: what is wrong`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from portal.paths import DOCS, NOTEBOOKS, ROOT

KINDS = ("landing", "tutorial", "how-to", "explanation", "reference")
AUDIENCES = ("developer", "trainer", "contributor", "support")
LEVELS = ("beginner", "intermediate", "advanced")
SCENARIOS = ("voice-room", "team-voice", "video-1v1", "live-cohost", "ai-agent")

# field: (required, description shown in errors and in the contributor guide)
FIELDS: dict[str, tuple[bool, str]] = {
    "title": (True, "the page title, under 80 characters"),
    "description": (True, "one sentence, 20 to 200 characters, used by search engines and link previews"),
    "kind": (True, f"one of {', '.join(KINDS)}"),
    "audience": (True, f"a list drawn from {', '.join(AUDIENCES)}"),
    "level": (True, f"one of {', '.join(LEVELS)}"),
    "minutes": (True, "reading or working time, a whole number from 1 to 480"),
    "scenarios": (False, f"a list drawn from {', '.join(SCENARIOS)} (may be empty)"),
    "last_reviewed": (True, "the date a person last checked the page, YYYY-MM-DD, not in the future"),
    "translated_from": (False, "Chinese pages: the hash of the English page they translate (`make stamp`)"),
    "generated": (False, "true for pages written by the build (execution report, translation status)"),
    "hide": (False, "Material option: a list of page parts to hide (navigation, toc, footer)"),
    "diagnose_tool": (
        False,
        "true on the page that runs rtclab diagnose in the browser (portal.diagnose_data adds its scripts)",
    ),
}


def _problem(where: str, field: str, what: str) -> str:
    return f"{where}: {field}: {what}"


def _is_list_of(value: Any, allowed: tuple[str, ...]) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v in allowed for v in value)


def problems(meta: dict[str, Any], where: str) -> list[str]:
    """Every way `meta` breaks the schema; an empty list means it is valid."""
    found = []
    for field in sorted(set(meta) - set(FIELDS), key=str):  # YAML keys may be numbers or null
        found.append(_problem(where, field, f"unknown field (known: {', '.join(FIELDS)})"))
    for field, (required, _) in FIELDS.items():
        if required and field not in meta:
            found.append(_problem(where, field, "missing"))
    checks = {
        "title": lambda v: isinstance(v, str) and 0 < len(v.strip()) < 80,
        "description": lambda v: isinstance(v, str) and 20 <= len(v.strip()) <= 200,
        "kind": lambda v: v in KINDS,
        "audience": lambda v: _is_list_of(v, AUDIENCES) and len(v) > 0,
        "level": lambda v: v in LEVELS,
        "minutes": lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 480,
        "scenarios": lambda v: _is_list_of(v, SCENARIOS),
        "last_reviewed": lambda v: _is_past_date(v),
        "translated_from": lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{12}", v) is not None,
        "generated": lambda v: isinstance(v, bool),
        "diagnose_tool": lambda v: isinstance(v, bool),
        "hide": lambda v: _is_list_of(v, ("navigation", "toc", "footer", "tags", "feedback")),
    }
    for field, check in checks.items():
        if field in meta and not check(meta[field]):
            found.append(_problem(where, field, f"{meta[field]!r} is not {FIELDS[field][1]}"))
    return found


def _is_past_date(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value)
        except ValueError:
            return False
    return isinstance(value, dt.date) and not isinstance(value, dt.datetime) and value <= dt.date.today()


class FrontMatterError(ValueError):
    """The front matter cannot be read at all (not YAML, not a mapping)."""


def read_markdown(path: Path) -> dict[str, Any]:
    """The front matter of a Markdown page; {} if it has none."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    end = text.find("\n---", 4)
    if end == -1:
        raise FrontMatterError(f"{_display(path)}: front matter: no closing '---' line")
    try:
        meta = yaml.safe_load(text[4:end]) or {}
    except (yaml.YAMLError, ValueError) as error:  # ValueError: a date that cannot exist, like 2024-13-01
        mark = getattr(error, "problem_mark", None)
        line = f" (line {mark.line + 2})" if mark else f" ({error})" if isinstance(error, ValueError) else ""
        raise FrontMatterError(f"{_display(path)}: front matter: not valid YAML{line}") from None
    if not isinstance(meta, dict):
        raise FrontMatterError(f"{_display(path)}: front matter: must be a mapping of field: value")
    return meta


def read_notebook(path: Path) -> dict[str, Any]:
    """The front matter of a notebook, kept in its metadata under `portal.page`."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise FrontMatterError(f"{_display(path)}: notebook: not valid JSON (line {error.lineno})") from None
    meta = nb
    for key in ("metadata", "portal", "page"):  # any of them may be missing, or not a mapping at all
        meta = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(meta, dict):
        raise FrontMatterError(
            f"{_display(path)}: metadata.portal.page: missing (the notebook's front matter)"
        )
    return meta


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def check_file(path: Path) -> list[str]:
    """Problems in one page or notebook, each on one line."""
    try:
        meta = read_notebook(path) if path.suffix == ".ipynb" else read_markdown(path)
    except FrontMatterError as error:
        return [str(error)]
    if path.suffix == ".md" and not meta:
        return [f"{_display(path)}: front matter: missing (start the page with a '---' block)"]
    return problems(meta, _display(path))


def all_pages() -> list[Path]:
    pages = [p for p in sorted(DOCS.rglob("*.md")) if "_templates" not in p.parts]
    notebooks = [p for p in sorted(NOTEBOOKS.rglob("*.ipynb")) if ".ipynb_checkpoints" not in p.parts]
    return pages + notebooks


def main() -> int:
    found = [line for path in all_pages() for line in check_file(path)]
    for line in found:
        print(line, file=sys.stderr)
    if found:
        print(f"{len(found)} front matter problem(s)", file=sys.stderr)
        return 1
    print(f"front matter ok in {len(all_pages())} pages and notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
