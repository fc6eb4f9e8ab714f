"""portal.check_page (`make check PAGE=...`): a broken include, link or anchor, a missing or outdated translation are
each one line naming the file and the line; a clean page passes; a path that is not a page exits 2."""

from __future__ import annotations

import pytest

from portal import check_page, translations

FRONT = """---
title: {title}
description: A page written for this test, long enough to be a real description.
kind: how-to
audience: [developer]
level: beginner
minutes: 5
last_reviewed: 2026-11-24
{extra}---

"""


def write_page(repo, rel: str, body: str, title: str = "A page", extra: str = "") -> None:
    path = repo / "docs" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(FRONT.format(title=title, extra=extra) + body, encoding="utf-8")


@pytest.fixture
def site(repo, monkeypatch):
    monkeypatch.setattr(check_page, "DOCS", repo / "docs")
    monkeypatch.setattr(check_page, "NOTEBOOKS", repo / "notebooks")
    monkeypatch.setattr(check_page, "ROOT", repo)
    monkeypatch.setattr(translations, "DOCS", repo / "docs")
    monkeypatch.setattr(translations, "NOTEBOOKS", repo / "notebooks")
    monkeypatch.chdir(repo)  # the snippets extension reads includes relative to the working directory
    (repo / "samples").mkdir()
    (repo / "samples" / "demo.py").write_text(
        "# --8<-- [start:call]\nprint('hi')\n# --8<-- [end:call]\n", encoding="utf-8"
    )
    write_page(repo, "other.md", "# Other\n\n## Known anchor\n")
    write_page(repo, "other.zh.md", "# 另一页\n\n## Known anchor\n", extra=stamp_of(repo, "other.md"))
    return repo


def stamp_of(repo, rel: str) -> str:
    return f"translated_from: {translations.content_hash(repo / 'docs' / rel)}\n"


GOOD = '# Page\n\nSee [other](other.md#known-anchor).\n\n```python\n--8<-- "samples/demo.py:call"\n```\n'


def test_a_clean_page_and_its_translation_pass(site):
    write_page(site, "page.md", GOOD)
    write_page(site, "page.zh.md", GOOD, extra=stamp_of(site, "page.md"))
    report = check_page.check("docs/page.md")
    assert report.problems == []
    assert report.done == [
        "front matter and translation",
        "includes",
        "notebook and sample outputs",
        "rendering, links and anchors",
    ]


def test_a_broken_include_names_the_file_and_the_line(site):
    body = (
        "# Page\n\n"
        "Text.\n\n"
        '```python\n--8<-- "samples/demo.py:nosuchsection"\n```\n\n'
        '```python\n--8<-- "samples/gone.py"\n```\n'
    )
    write_page(site, "page.md", body)  # the front matter is lines 1-10: the first include is on line 16
    problems = check_page.check("docs/page.md").problems
    assert problems == [
        "docs/page.zh.md: missing translation of page.md (make new-guide ... LANG=zh)",
        'docs/page.md:16: include "samples/demo.py:nosuchsection": samples/demo.py has no section "nosuchsection" '
        "(start and end markers)",
        'docs/page.md:20: include "samples/gone.py": samples/gone.py does not exist',
    ]


def test_a_broken_link_or_anchor_names_the_file_and_the_line(site):
    write_page(
        site,
        "page.md",
        "# Page\n\nSee [a missing page](nowhere.md) and [an anchor](other.md#no-such-anchor).\n",
    )
    write_page(
        site, "page.zh.md", "# 页\n\n见[另一页](other.md#known-anchor)。\n", extra=stamp_of(site, "page.md")
    )
    assert check_page.check("docs/page.md").problems == [
        "docs/page.md:13: link nowhere.md: no such page or file",
        "docs/page.md:13: link other.md#no-such-anchor: other.md has no anchor #no-such-anchor",
    ]


def test_an_outdated_translation_says_how_to_restamp(site):
    write_page(site, "page.md", GOOD)
    write_page(site, "page.zh.md", GOOD, extra="translated_from: abcdef123456\n")
    problems = check_page.check("docs/page.zh.md").problems
    assert len(problems) == 1
    assert problems[0].startswith("docs/page.zh.md: translated_from: abcdef123456 but page.md is now ")
    assert problems[0].endswith("then make stamp FILE=docs/page.zh.md")


def test_bad_front_matter_is_reported(site):
    write_page(site, "page.md", GOOD, title="")
    write_page(site, "page.zh.md", GOOD, extra=stamp_of(site, "page.md"))
    assert any("title" in p for p in check_page.check("docs/page.md").problems)


def test_something_that_is_not_a_page_exits_2_with_one_line(site, capsys):
    assert check_page.main(["docs/nope.md"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "check: docs/nope.md: no such page (give docs/<path>.md or notebooks/<path>.ipynb)"
