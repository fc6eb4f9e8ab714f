"""Which Chinese pages are missing or outdated, and the stamp that records what a translation was made from.

    python -m portal.translations                 # print the status table
    python -m portal.translations stamp FILE...   # record the English page a translation now matches

A translation records `translated_from: <hash>` (12 hex digits of the SHA-256 of the English file).
It is outdated when the English file's hash no longer matches.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from portal.frontmatter import FrontMatterError, read_markdown, read_notebook
from portal.notebooks import language_of
from portal.paths import DEFAULT_LANGUAGE, DOCS, NOTEBOOKS, ROOT

GENERATED_PAGES = ("reference/execution-report.md", "contribute/translation-status.md")


def content_hash(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def translation_path(english: Path, lang: str) -> Path:
    return english.with_name(f"{english.stem}.{lang}{english.suffix}")


def english_path(translation: Path) -> Path:
    lang = language_of(translation)
    return translation.with_name(translation.name.replace(f".{lang}.", ".", 1))


@dataclass(frozen=True)
class Status:
    english: Path
    state: str  # "up to date", "missing", "outdated", "unstamped"
    translated_from: str | None
    current: str

    @property
    def name(self) -> str:
        return str(self.english.relative_to(ROOT))


def _translated_from(path: Path) -> str | None:
    meta = read_notebook(path) if path.suffix == ".ipynb" else read_markdown(path)
    value = meta.get("translated_from")
    return value if isinstance(value, str) else None


def english_sources() -> list[Path]:
    pages = [
        p
        for p in sorted(DOCS.rglob("*.md"))
        if language_of(p) == DEFAULT_LANGUAGE
        and "_templates" not in p.parts
        and str(p.relative_to(DOCS)) not in GENERATED_PAGES
    ]
    notebooks = [
        p
        for p in sorted(NOTEBOOKS.rglob("*.ipynb"))
        if language_of(p) == DEFAULT_LANGUAGE and ".ipynb_checkpoints" not in p.parts
    ]
    return pages + notebooks


def status(lang: str = "zh") -> list[Status]:
    found = []
    for english in english_sources():
        current = content_hash(english)
        translation = translation_path(english, lang)
        if not translation.exists():
            found.append(Status(english, "missing", None, current))
            continue
        recorded = _translated_from(translation)
        if recorded is None:
            state = "unstamped"
        elif recorded == current:
            state = "up to date"
        else:
            state = "outdated"
        found.append(Status(english, state, recorded, current))
    return found


def stamp(translation: Path) -> str:
    """Write the current English hash into a translation's `translated_from`; return the new hash.

    Only that one line of the front matter (or notebook metadata) changes; nothing else is rewritten.
    """
    if language_of(translation) == DEFAULT_LANGUAGE:
        raise FrontMatterError(f"{translation}: not a translation (expected a name like page.zh.md)")
    english = english_path(translation)
    if not english.exists():
        raise FrontMatterError(f"{translation}: translated_from: no English page {english.name} beside it")
    current = content_hash(english)
    if translation.suffix == ".ipynb":
        read_notebook(translation)  # refuse a notebook that is not JSON or has no front matter to stamp
        nb = json.loads(translation.read_text(encoding="utf-8"))
        nb.setdefault("metadata", {}).setdefault("portal", {}).setdefault("page", {})["translated_from"] = (
            current
        )
        translation.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return current
    read_markdown(translation)  # refuse to touch a file whose front matter does not parse
    text = translation.read_text(encoding="utf-8")
    end = text.find("\n---", 4)
    if not text.startswith("---\n") or end == -1:
        raise FrontMatterError(f"{translation}: front matter: missing (start the page with a '---' block)")
    head, rest = text[:end], text[end:]
    line = f"translated_from: {current}"
    if re.search(r"^translated_from:.*$", head, flags=re.M):
        head = re.sub(r"^translated_from:.*$", line, head, flags=re.M)
    else:
        head = f"{head}\n{line}"
    translation.write_text(head + rest, encoding="utf-8")
    return current


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m portal.translations", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command")
    stamp_cmd = sub.add_parser("stamp", help="record that translations match their English pages now")
    stamp_cmd.add_argument("files", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "stamp":
        for path in args.files:
            if not path.exists():
                print(f"error: {path}: no such file", file=sys.stderr)
                return 2
            try:
                print(f"stamped {path}: translated_from {stamp(path)}")
            except FrontMatterError as error:
                print(f"error: {error}", file=sys.stderr)
                return 2
        return 0
    for item in status():
        print(f"{item.state:11}  {item.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
