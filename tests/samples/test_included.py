"""Samples and pages stay in step: every sample is shown by a page, every include points at a real section, and
every section marked in a sample is shown somewhere (one test for all pages and samples)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal.paths import DOCS, ROOT, SAMPLES

INCLUDE = re.compile(r'--8<--\s+"([^"]+)"')


def includes() -> list[tuple[Path, str, str | None]]:
    """(page, file, section) for every snippet include in every page."""
    found = []
    for page in sorted(DOCS.rglob("*.md")):
        if "_templates" in page.parts:
            continue
        for target in INCLUDE.findall(page.read_text(encoding="utf-8")):
            file, _, section = target.partition(":")
            found.append((page, file, section or None))
    return found


def sections(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    starts = set(re.findall(r"--8<-- \[start:([\w-]+)\]", text))
    ends = set(re.findall(r"--8<-- \[end:([\w-]+)\]", text))
    return starts & ends


def test_every_sample_is_included_by_a_page():
    included = {file for _, file, _ in includes()}
    # A harness (samples/<track>/harness/) runs and measures the lessons and is never shown on a page.
    samples = sorted(str(p.relative_to(ROOT)) for p in SAMPLES.rglob("*.py") if "harness" not in p.parts)
    assert samples, "no samples found under samples/"
    orphans = [s for s in samples if s not in included]
    assert not orphans, f"samples no page includes (add them to a page or delete them): {orphans}"


@pytest.mark.parametrize(
    ("page", "file", "section"),
    includes(),
    ids=lambda value: str(value.relative_to(ROOT)) if isinstance(value, Path) else str(value),
)
def test_include_points_at_an_existing_file_and_section(page, file, section):
    where = page.relative_to(ROOT)
    if file.startswith("build/outputs/"):
        # What a sample prints, written by `make execute` (portal.sample_outputs), which runs after this stage
        # on a fresh clone: the sample must exist.
        sample = SAMPLES / (file.removeprefix("build/outputs/").removesuffix(".txt") + ".py")
        assert sample.is_file(), f"{where}: includes {file}, but {sample.relative_to(ROOT)} does not exist"
        return
    target = ROOT / file
    assert target.is_file(), f"{where}: includes {file}, which does not exist"
    if section:
        assert section in sections(target), (
            f"{where}: includes section '{section}' of {file}, which has no "
            f"'# --8<-- [start:{section}]' ... '# --8<-- [end:{section}]' pair"
        )


def test_every_marked_section_is_shown_by_a_page():
    """A section marker no page includes is noise in the file a learner reads (or an include that was lost)."""
    shown = {(file, section) for _, file, section in includes() if section}
    unshown = [
        f"{path.relative_to(ROOT)}:{section}"
        for path in sorted(SAMPLES.rglob("*"))
        if path.is_file() and path.suffix in {".py", ".html", ".js"} and "harness" not in path.parts
        for section in sorted(sections(path))
        if (str(path.relative_to(ROOT)), section) not in shown
    ]
    assert not unshown, f"sections no page includes (include them or remove the markers): {unshown}"


def test_a_translation_shows_what_its_english_page_shows():
    """The same samples, sections and outputs, so a reader in either language runs and reads the same code."""
    by_page: dict[Path, set[tuple[str, str | None]]] = {}
    for page, file, section in includes():
        by_page.setdefault(page, set()).add((file, section))
    differ = []
    for page in sorted(DOCS.rglob("*.zh.md")):
        shown = by_page.get(page, set())
        english = page.with_name(page.name.removesuffix(".zh.md") + ".md")
        if english.exists() and shown != by_page.get(english, set()):
            missing = sorted(f"{f}:{s}" if s else f for f, s in by_page.get(english, set()) - shown)
            extra = sorted(f"{f}:{s}" if s else f for f, s in shown - by_page.get(english, set()))
            differ.append(f"{page.relative_to(ROOT)}: missing {missing}, extra {extra}")
    assert not differ, "\n".join(differ)
