"""Check one page the way `make test` would, in seconds: what a contributor runs while writing it.

    python -m portal.check_page docs/sdk/video.md           # `make check PAGE=docs/sdk/video.md`
    python -m portal.check_page notebooks/tuning/jitter-buffer.ipynb

For the page and its other language (docs/x.md and docs/x.zh.md, or a notebook and its .zh twin) it checks
the front matter, that the translation exists and is up to date, every `--8<--` include (file and named
section), executes the sample outputs and the notebook the page shows if they are stale (the same cache as
`make execute`), renders the Markdown with the site's own extensions, and checks every internal link and
anchor. Each problem is one line, `file:line: what is wrong`. `make test` still builds the whole site.
"""

from __future__ import annotations

import argparse
import html.parser
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

from portal import frontmatter, translations
from portal.notebooks import Notebook, language_of
from portal.paths import DEFAULT_LANGUAGE, DOCS, LANGUAGES, NOTEBOOKS, ROOT

INCLUDE = re.compile(r'--8<--\s+"(?P<target>[^"]+)"')
SECTION_START = "--8<-- [start:{}]"
SECTION_END = "--8<-- [end:{}]"
CONFIG = ROOT / "mkdocs.yml"  # the site's Markdown extensions, as the build uses them
OUTPUT = re.compile(r"^build/outputs/(?P<name>[\w./-]+?)\.txt(?::[\w-]+)?$")  # whole, or a section


class PageNotFound(Exception):
    """The PAGE given is not a page of the site."""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)

    def fail(self, path: Path, line: int | None, what: str) -> None:
        where = f"{path.relative_to(ROOT)}:{line}" if line else str(path.relative_to(ROOT))
        self.problems.append(f"{where}: {what}")


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        if tag == "img" and values.get("src"):
            self.links.append(values["src"] or "")


def page_set(page: str) -> list[Path]:
    """The page given and its other-language versions that exist (English first)."""
    path = (ROOT / page).resolve()
    if not path.is_file() or path.suffix not in {".md", ".ipynb"}:
        raise PageNotFound(f"{page}: no such page (give docs/<path>.md or notebooks/<path>.ipynb)")
    if not (path.is_relative_to(DOCS) or path.is_relative_to(NOTEBOOKS)):
        raise PageNotFound(f"{page}: not under docs/ or notebooks/")
    english = translations.english_path(path) if language_of(path) != DEFAULT_LANGUAGE else path
    return [english, *(translations.translation_path(english, lang) for lang in LANGUAGES[1:])]


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        import json

        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    text = path.read_text(encoding="utf-8")
    return re.sub(
        r"\A---\n.*?\n---\n", lambda m: "\n" * m[0].count("\n"), text, flags=re.S
    )  # keep line numbers


def line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def check_front_matter(pages: list[Path], report: Report) -> None:
    for page in pages:
        if page.exists():
            report.problems += frontmatter.check_file(page)
    english, *others = pages
    current = translations.content_hash(english)
    for other in others:
        if not other.exists():
            lang = language_of(other)
            report.fail(
                other, None, f"missing translation of {english.name} (make new-guide ... LANG={lang})"
            )
            continue
        try:
            recorded = translations._translated_from(other)
        except frontmatter.FrontMatterError as error:
            report.problems.append(str(error))
            continue
        if recorded != current:
            report.fail(
                other,
                None,
                f"translated_from: {recorded} but {english.name} is now {current}: update the translation, "
                f"then make stamp FILE={other.relative_to(ROOT)}",
            )
    report.done.append("front matter and translation")


def check_includes(pages: list[Path], report: Report) -> list[str]:
    """Every include resolves to a file and a section; returns the sample outputs the pages show."""
    outputs = []
    for page in pages:
        if not page.exists() or page.suffix != ".md":
            continue
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            for match in INCLUDE.finditer(line):
                target = match["target"]
                if output := OUTPUT.match(target):
                    outputs.append(output["name"])
                    sample = ROOT / "samples" / f"{output['name']}.py"
                    if not sample.exists():
                        report.fail(
                            page, number, f'include "{target}": {sample.relative_to(ROOT)} does not exist'
                        )
                    continue
                file, _, section = target.partition(":")
                path = ROOT / file
                if not path.is_file():
                    report.fail(page, number, f'include "{target}": {file} does not exist')
                    continue
                text = path.read_text(encoding="utf-8")
                if section and (
                    SECTION_START.format(section) not in text or SECTION_END.format(section) not in text
                ):
                    report.fail(
                        page,
                        number,
                        f'include "{target}": {file} has no section "{section}" (start and end markers)',
                    )
    report.done.append("includes")
    return sorted(set(outputs))


def execute_stale(pages: list[Path], outputs: list[str], report: Report) -> None:
    """Run what the page shows if its cached run is stale: its notebook, the samples whose output it includes."""
    from portal import execute, sample_outputs

    mode = execute.current_mode()
    english = pages[0]
    if english.suffix == ".ipynb":
        notebook = Notebook(english.relative_to(NOTEBOOKS))
        key = execute.cache_key(notebook, mode)
        recorded = execute.recorded_execution(notebook.executed())
        if not (recorded and recorded.get("cache_key") == key):
            print(f"executing   {notebook.display} ...", flush=True)
            try:
                execute.execute_notebook(notebook, mode, key)
            except execute.ExecutionFailed as error:
                report.problems.append(str(error))
                return
        try:
            execute.write_translations(notebook)
        except execute.ExecutionFailed as error:
            report.problems.append(str(error))
    for name in outputs:
        item = sample_outputs.SampleOutput(name)
        if not item.sample.exists():
            continue
        key = sample_outputs.cache_key(item, mode)
        if sample_outputs.up_to_date(item, key):
            continue
        print(f"running     {item.sample.relative_to(ROOT)} ...", flush=True)
        _, error = sample_outputs.run_sample(item, mode, key)
        if error:
            report.problems.append(error)
    report.done.append("notebook and sample outputs")


def _renderer():
    import markdown
    from mkdocs.config import load_config

    config = load_config(str(CONFIG))
    return markdown.Markdown(
        extensions=config["markdown_extensions"], extension_configs=config["mdx_configs"]
    )


def render(path: Path, renderer, report: Report) -> _Anchors | None:
    renderer.reset()
    try:
        body = renderer.convert(markdown_of(path))
    except Exception as error:  # a snippet that cannot be included raises from inside Markdown
        name = str(path.relative_to(ROOT))
        already = type(error).__name__ == "SnippetMissingError" and any(
            p.startswith(f"{name}:") and ": include " in p for p in report.problems
        )
        if not already:
            report.fail(path, None, f"does not render: {type(error).__name__}: {str(error).splitlines()[0]}")
        return None
    parsed = _Anchors()
    parsed.feed(body)
    return parsed


def source_of_url(url: str) -> Path | None:
    """The source of a site URL path such as `tuning/jitter-buffer/` (relative to the site root)."""
    stem = url.strip("/")
    for candidate in (DOCS / f"{stem}.md", DOCS / stem / "index.md", NOTEBOOKS / f"{stem}.ipynb"):
        if candidate.exists():
            return candidate
    return None


def url_of(page: Path) -> str:
    """The site URL path of a source page (language suffix dropped): docs/a/b.md -> a/b/, a/index.md -> a/."""
    english = translations.english_path(page) if language_of(page) != DEFAULT_LANGUAGE else page
    rel = english.relative_to(DOCS if english.is_relative_to(DOCS) else NOTEBOOKS).with_suffix("")
    return (
        ""
        if rel.name == "index" and rel.parent == Path(".")
        else (f"{rel.parent}/" if rel.name == "index" else f"{rel}/")
    )


def resolve(page: Path, link: str) -> Path | None:
    """The source file a relative link from `page` points to (in the page's language when one exists)."""
    if link.endswith("/") or not Path(link).suffix:  # a site URL, as notebooks write their links
        import posixpath

        url = posixpath.normpath(posixpath.join("/" + url_of(page), unquote(link)))
        target = source_of_url(url)
        if target is None:
            return None
        return _in_language(page, target)
    base = page.parent
    target = (base / unquote(link)).resolve()
    if page.is_relative_to(NOTEBOOKS) and not target.exists():
        target = (DOCS / page.parent.relative_to(NOTEBOOKS) / unquote(link)).resolve()
    if not target.exists() and target.is_relative_to(DOCS) and target.suffix == ".ipynb":
        target = NOTEBOOKS / target.relative_to(DOCS)
    if target.is_dir():
        target = target / "index.md"
    generated = target.is_relative_to(DOCS) and str(target.relative_to(DOCS)) in translations.GENERATED_PAGES
    if not target.exists() and generated:
        return target  # written by the build (execution report, translation status)
    return _in_language(page, target) if target.exists() else None


def _in_language(page: Path, target: Path) -> Path:
    lang = language_of(page)
    if (
        lang != DEFAULT_LANGUAGE
        and target.suffix in {".md", ".ipynb"}
        and language_of(target) == DEFAULT_LANGUAGE
    ):
        translated = translations.translation_path(target, lang)
        if translated.exists():
            return translated
    return target


def documented(target: Path, anchor: str) -> bool:
    """An anchor mkdocstrings makes at build time: the page has `::: rtclab.x` and the anchor is in rtclab.x."""
    identifiers = re.findall(r"^::: ([\w.]+)", target.read_text(encoding="utf-8"), flags=re.M)
    return any(anchor == name or anchor.startswith(name + ".") for name in identifiers)


def check_links(pages: list[Path], report: Report) -> None:
    renderer = _renderer()
    anchors: dict[Path, set[str] | None] = {}

    def ids_of(path: Path) -> set[str] | None:
        if path not in anchors:
            readable = path.suffix in {".md", ".ipynb"} and path.exists()
            parsed = render(path, renderer, Report()) if readable else None
            anchors[path] = parsed.ids if parsed else None
        return anchors[path]

    for page in pages:
        if not page.exists():
            continue
        parsed = render(page, renderer, report)
        if parsed is None:
            continue
        anchors[page] = parsed.ids
        text = markdown_of(page)
        for link in parsed.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:", "javascript:")):
                continue
            target = resolve(page, parts.path) if parts.path else page
            needle = parts.path or f"#{parts.fragment}"
            if target is None:
                report.fail(page, line_of(text, needle), f"link {link}: no such page or file")
                continue
            if parts.fragment:
                ids = ids_of(target)
                if ids is not None and parts.fragment not in ids and not documented(target, parts.fragment):
                    report.fail(
                        page,
                        line_of(text, needle),
                        f"link {link}: {target.name} has no anchor #{parts.fragment}",
                    )
    report.done.append("rendering, links and anchors")


def check(page: str) -> Report:
    pages = page_set(page)
    os.chdir(ROOT)  # includes are relative to the repository root, as in the build
    report = Report()
    check_front_matter(pages, report)
    outputs = check_includes(pages, report)
    execute_stale(pages, outputs, report)
    check_links(pages, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make check PAGE=...", description=__doc__.splitlines()[0])
    parser.add_argument("page", help="docs/<path>.md or notebooks/<path>.ipynb (either language)")
    args = parser.parse_args(argv)
    started = time.monotonic()
    try:
        report = check(args.page)
    except PageNotFound as error:
        print(f"check: {error}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - started
    for problem in report.problems:
        print(problem, file=sys.stderr)
    verdict = f"{len(report.problems)} problem(s)" if report.problems else "ok"
    print(f"check: {args.page}: {verdict} ({', '.join(report.done)}; {seconds:.1f} s)")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
