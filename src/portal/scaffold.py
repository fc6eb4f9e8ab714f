"""Create a new page from its template in docs/_templates/, or the Chinese twin of an existing English page.

    python -m portal.scaffold --kind how-to --slug tune-jitter-buffer            # make new-guide KIND=... SLUG=...
    python -m portal.scaffold --kind how-to --slug tune-jitter-buffer --lang zh  # ... LANG=zh

Bad input is reported on one line naming the field (KIND, SLUG, LANG), with exit status 2, and nothing is
written. A file that exists already is never overwritten.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import re
import string
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from portal import frontmatter, translations
from portal.paths import DEFAULT_LANGUAGE, DOCS, LANGUAGES, NOTEBOOKS, ROOT

TEMPLATES = DOCS / "_templates"
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
RESERVED_SLUGS = ("index",)
# Words that the title made from a slug spells the way readers know them.
WORDS = {
    "ai": "AI",
    "api": "API",
    "3g": "3G",
    "4g": "4G",
    "5g": "5G",
    "nat": "NAT",
    "rtc": "RTC",
    "rtp": "RTP",
    "rtcp": "RTCP",
    "sfu": "SFU",
    "tcp": "TCP",
    "turn": "TURN",
    "udp": "UDP",
    "webrtc": "WebRTC",
}


@dataclass(frozen=True)
class Kind:
    """Where pages of one kind live, and the template they start from."""

    name: str
    root: str  # "docs" or "notebooks"
    section: str  # folder under the root, which is also the page's place in the site
    suffix: str

    def template(self, lang: str) -> Path:
        stem = self.name if lang == DEFAULT_LANGUAGE else f"{self.name}.{lang}"
        return TEMPLATES / f"{stem}{self.suffix}"

    def page(self, slug: str, lang: str = DEFAULT_LANGUAGE) -> Path:
        base = DOCS if self.root == "docs" else NOTEBOOKS
        stem = slug if lang == DEFAULT_LANGUAGE else f"{slug}.{lang}"
        return base / self.section / f"{stem}{self.suffix}"

    def same_page(self, slug: str) -> list[Path]:
        """Every English source that would be published at this page's address (Markdown or notebook)."""
        return [DOCS / self.section / f"{slug}.md", NOTEBOOKS / self.section / f"{slug}.ipynb"]


KINDS = {
    kind.name: kind
    for kind in (
        Kind("tutorial", "docs", "get-started", ".md"),
        Kind("how-to", "docs", "how-to", ".md"),
        Kind("explanation", "docs", "explanation", ".md"),
        Kind("notebook", "notebooks", "tuning", ".ipynb"),
    )
}


class ScaffoldError(Exception):
    """Bad input, reported as `error: FIELD: what is wrong`."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")


def _display(path: Path) -> str:
    try:
        return path.relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def title_from_slug(slug: str) -> str:
    """`tune-webrtc-for-3g` → `Tune WebRTC for 3G`."""
    words = [WORDS.get(word, word) for word in slug.split("-")]
    first = words[0]
    words[0] = first if first in WORDS.values() else first[:1].upper() + first[1:]
    return " ".join(words)


def _check(kind_name: str, slug: str, lang: str) -> Kind:
    kind = KINDS.get(kind_name)
    if kind is None:
        raise ScaffoldError("KIND", f"{kind_name!r} is not one of {', '.join(KINDS)}")
    if SLUG.fullmatch(slug) is None:
        raise ScaffoldError(
            "SLUG", f"{slug!r} must be lowercase letters, digits and hyphens (like first-call)"
        )
    if slug in RESERVED_SLUGS:
        raise ScaffoldError("SLUG", f"{slug!r} is the section's own page; pick another slug")
    if lang not in LANGUAGES:
        raise ScaffoldError("LANG", f"{lang!r} is not one of {', '.join(LANGUAGES)}")
    if lang == DEFAULT_LANGUAGE:
        for path in kind.same_page(slug):
            if path.exists():
                raise ScaffoldError("SLUG", f"{_display(path)} exists already; pick another slug")
    else:
        english, target = kind.page(slug), kind.page(slug, lang)
        if not english.exists():
            raise ScaffoldError(
                "SLUG",
                f"{_display(english)} does not exist: a translation needs its English page "
                f"(make new-guide KIND={kind.name} SLUG={slug})",
            )
        if target.exists():
            raise ScaffoldError("SLUG", f"{_display(target)} exists already; edit it (and `make stamp` it)")
    if not kind.template(lang).exists():
        raise ScaffoldError("KIND", f"template {_display(kind.template(lang))} is missing")
    return kind


def _values(kind: Kind, slug: str, lang: str, today: dt.date) -> dict[str, Any]:
    """What the placeholders of a template stand for. A translation takes its page fields from its English page."""
    values: dict[str, Any] = {
        "title": title_from_slug(slug),
        "date": today,
        "audiences": ", ".join(frontmatter.AUDIENCES),
        "levels": ", ".join(frontmatter.LEVELS),
        "scenario_names": ", ".join(frontmatter.SCENARIOS),
    }
    if lang == DEFAULT_LANGUAGE:
        return values
    english = kind.page(slug)
    found = frontmatter.check_file(english)
    if found:
        raise ScaffoldError("SLUG", f"{found[0]} (fix the English page first)")
    meta = (
        frontmatter.read_notebook(english) if kind.suffix == ".ipynb" else frontmatter.read_markdown(english)
    )
    for field in ("title", "description", "kind", "audience", "level", "minutes", "scenarios"):
        values[field] = meta.get(field, [] if field == "scenarios" else None)
    return values


def _substitute(text: str, values: dict[str, Any], where: Path) -> str:
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as error:
        raise ScaffoldError("KIND", f"template {_display(where)}: bad placeholder ({error})") from None


def _yaml(value: Any) -> str:
    """`value` as a YAML scalar or flow list that reads back as the same value (JSON where quoting is needed)."""
    if isinstance(value, dt.date):
        return value.isoformat()
    plain = f"[{', '.join(map(str, value))}]" if isinstance(value, list) else str(value)
    try:
        if "\n" not in plain and yaml.safe_load(plain) == value:
            return plain
    except yaml.YAMLError:
        pass
    return json.dumps(value, ensure_ascii=False)


def render_markdown(template: Path, values: dict[str, Any]) -> str:
    """The page text: front matter placeholders get YAML values, body placeholders plain text."""
    text = template.read_text(encoding="utf-8")
    end = text.find("\n---", 4)
    if not text.startswith("---\n") or end == -1:
        raise ScaffoldError("KIND", f"template {_display(template)} has no front matter block")
    head, body = text[:end], text[end:]
    plain = {k: v.isoformat() if isinstance(v, dt.date) else str(v) for k, v in values.items()}
    return _substitute(head, {k: _yaml(v) for k, v in values.items()}, template) + _substitute(
        body, plain, template
    )


def _fill(node: Any, values: dict[str, Any], template: Path) -> Any:
    """Substitute placeholders in every string of a notebook; a string that is one placeholder keeps its type."""
    if isinstance(node, dict):
        return {key: _fill(value, values, template) for key, value in node.items()}
    if isinstance(node, list):
        return [_fill(item, values, template) for item in node]
    if isinstance(node, str):
        whole = re.fullmatch(r"\$(\w+)", node)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return _substitute(node, {k: str(v) for k, v in values.items()}, template)
    return node


def render_notebook(template: Path, values: dict[str, Any], english: Path | None = None) -> str:
    """The notebook JSON. A translation keeps the English notebook's cells (code must stay identical) and
    takes the Chinese template's text for each markdown cell still as the English template has it."""
    values = {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}
    try:
        nb = _fill(json.loads(template.read_text(encoding="utf-8")), values, template)
    except json.JSONDecodeError as error:
        raise ScaffoldError(
            "KIND", f"template {_display(template)}: not valid JSON (line {error.lineno})"
        ) from None
    if english is not None:
        source = json.loads(english.read_text(encoding="utf-8"))
        english_template = KINDS["notebook"].template(DEFAULT_LANGUAGE)
        untouched = _fill(json.loads(english_template.read_text(encoding="utf-8")), values, english_template)
        nb["cells"] = _twin_cells(source.get("cells", []), untouched["cells"], nb["cells"])
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def _twin_cells(english: list[dict], en_template: list[dict], zh_template: list[dict]) -> list[dict]:
    cells = []
    for index, cell in enumerate(copy.deepcopy(english)):
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        elif (
            index < min(len(en_template), len(zh_template))
            and en_template[index]["cell_type"] == zh_template[index]["cell_type"] == "markdown"
            and "".join(cell["source"]) == "".join(en_template[index]["source"])
        ):
            cell["source"] = zh_template[index]["source"]
        cells.append(cell)
    return cells


def _page_problems(text: str, suffix: str, where: str) -> list[str]:
    if suffix == ".ipynb":
        meta = json.loads(text).get("metadata", {}).get("portal", {}).get("page", {})
    else:
        try:
            meta = yaml.safe_load(text[4 : text.find("\n---", 4)])
        except (yaml.YAMLError, ValueError):
            return [f"{where}: front matter: not valid YAML"]
    return frontmatter.problems(meta if isinstance(meta, dict) else {}, where)


def scaffold(kind_name: str, slug: str, lang: str = DEFAULT_LANGUAGE, today: dt.date | None = None) -> Path:
    """Create the page and return its path; raise ScaffoldError (having written nothing) on bad input."""
    kind = _check(kind_name, slug, lang)
    today = today or dt.date.today()
    values = _values(kind, slug, lang, today)
    template, target = kind.template(lang), kind.page(slug, lang)
    english = kind.page(slug) if lang != DEFAULT_LANGUAGE else None
    if kind.suffix == ".ipynb":
        text = render_notebook(template, values, english)
    else:
        text = render_markdown(template, values)
    found = _page_problems(text, kind.suffix, _display(target))
    if found:
        raise ScaffoldError("KIND", f"template {_display(template)} makes an invalid page: {found[0]}")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        with target.open("x", encoding="utf-8") as file:  # "x": never overwrite, even a file made just now
            file.write(text)
    except FileExistsError:
        raise ScaffoldError("SLUG", f"{_display(target)} exists already; pick another slug") from None
    if english is not None:
        try:
            translations.stamp(target)
        except frontmatter.FrontMatterError as error:
            target.unlink()
            raise ScaffoldError("SLUG", str(error)) from None
    return target


def next_steps(kind: Kind, slug: str, lang: str, created: Path) -> str:
    shown = _display(created)
    rel = f"{kind.section}/{slug}{kind.suffix}"
    url = f"http://127.0.0.1:8000/{'' if lang == DEFAULT_LANGUAGE else lang + '/'}{kind.section}/{slug}/"
    if lang != DEFAULT_LANGUAGE:
        english = _display(kind.page(slug))
        title = title_from_slug(slug)
        steps = [
            f"Translate {english} into it, title and description included, for Chinese readers "
            "(terms from the glossary); keep code cells and samples exactly as they are.",
            f"Give its nav entry a Chinese title in mkdocs.yml, under i18n > zh > nav_translations: `{title}: ...`",
            f"`make serve` and open {url}",
            f"When {english} changes, bring the translation up to date and run `make stamp FILE={shown}`.",
        ]
        head = f"created {shown} (the {lang} twin of {english}, stamped with its current hash)"
    else:
        edit = (
            f"Open {shown} in Jupyter and replace every TODO; keep the `parameters` cell first, and save it "
            "without outputs (Edit > Clear Outputs of All Cells)."
            if kind.suffix == ".ipynb"
            else f"Write {shown}: replace every TODO, front matter included."
        )
        steps = [
            edit,
            f"Add it to the nav in mkdocs.yml, under its section:  - {title_from_slug(slug)}: {rel}",
            f"`make serve` and open {url}"
            + (" (`make serve` executes the notebook first)" if kind.suffix == ".ipynb" else ""),
            "`make lint` checks its front matter; `make test` runs everything CI runs.",
        ]
        head = f"created {shown} from {_display(kind.template(lang))}"
    return "\n".join([head, "", "Next steps:", *(f"  {n}. {step}" for n, step in enumerate(steps, 1))])


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (usage: make new-guide KIND=... SLUG=... [LANG=zh])\n")


def _bind_values(argv: list[str]) -> list[str]:
    """`--slug -x` → `--slug=-x`: make passes whatever was typed, and argparse would take `-x` for an option."""
    bound, args = [], iter(argv)
    for arg in args:
        bound.append(f"{arg}={next(args, '')}" if arg in ("--kind", "--slug", "--lang") else arg)
    return bound


def main(argv: list[str] | None = None) -> int:
    parser = _Parser(prog="python -m portal.scaffold", description=__doc__.splitlines()[0])
    parser.add_argument("--kind", required=True, help=", ".join(KINDS))
    parser.add_argument(
        "--slug", required=True, help="the file name without extension, like tune-jitter-buffer"
    )
    parser.add_argument(
        "--lang", default=DEFAULT_LANGUAGE, help=f"{DEFAULT_LANGUAGE} (a new page) or zh (its twin)"
    )
    args = parser.parse_args(_bind_values(sys.argv[1:] if argv is None else argv))
    try:
        created = scaffold(args.kind, args.slug, args.lang)
    except ScaffoldError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(next_steps(KINDS[args.kind], args.slug, args.lang, created))
    return 0


if __name__ == "__main__":
    sys.exit(main())
