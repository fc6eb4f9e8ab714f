"""Translation status (missing, outdated, unstamped, up to date) and the stamp that touches one line only."""

from __future__ import annotations

import json

import pytest
from repo_files import VALID_META, code_cell, markdown_cell, write_notebook, write_page

from portal import translations
from portal.frontmatter import FrontMatterError

ZH_META = {
    **VALID_META,
    "title": "测量抖动",
    "description": "在丢包网络上测量一次通话的抖动，并读懂它的含义。",
}


def states(repo) -> dict[str, str]:
    return {item.name: item.state for item in translations.status("zh")}


def test_status_of_every_english_page(repo):
    docs = repo / "docs"
    write_page(docs / "missing.md")
    write_page(docs / "current.md")
    translations.stamp(write_page(docs / "current.zh.md", ZH_META))
    write_page(docs / "changed.md")
    translations.stamp(write_page(docs / "changed.zh.md", ZH_META))
    write_page(docs / "changed.md", body="# Page\n\nThe English page moved on.\n")
    write_page(docs / "unstamped.md")
    write_page(docs / "unstamped.zh.md", ZH_META)
    write_page(docs / "_templates/how-to.md")
    write_page(docs / "reference/execution-report.md")
    write_notebook(repo / "notebooks/tuning/nb.ipynb", [code_cell("print(1)")])

    assert states(repo) == {
        "docs/changed.md": "outdated",
        "docs/current.md": "up to date",
        "docs/missing.md": "missing",
        "docs/unstamped.md": "unstamped",
        "notebooks/tuning/nb.ipynb": "missing",
    }


def test_status_of_a_notebook_follows_its_stamp(repo):
    english = write_notebook(repo / "notebooks/tuning/nb.ipynb", [code_cell("print(1)")])
    twin = write_notebook(repo / "notebooks/tuning/nb.zh.ipynb", [code_cell("print(1)")], ZH_META)
    assert states(repo) == {"notebooks/tuning/nb.ipynb": "unstamped"}

    translations.stamp(twin)
    assert states(repo) == {"notebooks/tuning/nb.ipynb": "up to date"}

    write_notebook(english, [markdown_cell("# Changed"), code_cell("print(1)")])
    assert states(repo) == {"notebooks/tuning/nb.ipynb": "outdated"}


def test_stamp_rewrites_only_the_translated_from_line(repo):
    english = write_page(repo / "docs/page.md")
    twin = write_page(repo / "docs/page.zh.md", {**ZH_META, "translated_from": "000000000000", "minutes": 15})
    before = twin.read_text(encoding="utf-8").splitlines(keepends=True)

    current = translations.stamp(twin)

    after = twin.read_text(encoding="utf-8").splitlines(keepends=True)
    assert current == translations.content_hash(english)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert [after[i] for i in changed] == [f"translated_from: {current}\n"]


def test_stamp_adds_the_line_at_the_end_of_the_front_matter(repo):
    write_page(repo / "docs/page.md")
    twin = write_page(repo / "docs/page.zh.md", ZH_META, body="# 页面\n\n正文。\n\n---\n\n分隔线之后。\n")
    before = twin.read_text(encoding="utf-8").splitlines(keepends=True)

    current = translations.stamp(twin)

    after = twin.read_text(encoding="utf-8").splitlines(keepends=True)
    end = before.index("---\n", 1)
    assert after == before[:end] + [f"translated_from: {current}\n"] + before[end:]


def test_stamp_of_a_notebook_changes_only_that_field(repo):
    english = write_notebook(repo / "notebooks/nb.ipynb", [code_cell("print(1)")])
    twin = write_notebook(
        repo / "notebooks/nb.zh.ipynb",
        [code_cell("print(1)")],
        {**ZH_META, "translated_from": "000000000000"},
    )
    before = twin.read_text(encoding="utf-8").splitlines(keepends=True)

    current = translations.stamp(twin)

    after = twin.read_text(encoding="utf-8").splitlines(keepends=True)
    assert current == translations.content_hash(english)
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert [after[i].strip() for i in changed] == [f'"translated_from": "{current}"']


def test_stamp_of_a_notebook_without_the_field_adds_only_it(repo):
    write_notebook(repo / "notebooks/nb.ipynb", [code_cell("print(1)")])
    twin = write_notebook(
        repo / "notebooks/nb.zh.ipynb", [markdown_cell("# 中文"), code_cell("print(1)")], ZH_META
    )
    before = json.loads(twin.read_text(encoding="utf-8"))

    current = translations.stamp(twin)

    after = json.loads(twin.read_text(encoding="utf-8"))
    before["metadata"]["portal"]["page"]["translated_from"] = current
    assert after == before
    assert "中文" in twin.read_text(encoding="utf-8")  # still UTF-8, not \\u escapes


def test_stamp_refuses_an_english_page(repo):
    english = write_page(repo / "docs/page.md")
    before = english.read_bytes()

    with pytest.raises(FrontMatterError, match="not a translation"):
        translations.stamp(english)
    assert english.read_bytes() == before


def test_stamp_refuses_a_translation_without_its_english_page(repo):
    twin = write_page(repo / "docs/orphan.zh.md", ZH_META)
    before = twin.read_bytes()

    with pytest.raises(FrontMatterError, match="no English page orphan.md"):
        translations.stamp(twin)
    assert twin.read_bytes() == before


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("page.zh.md", "---\ntitle: [unclosed\n---\n\n# 页面\n"),
        ("page.zh.md", "---\ntitle: 没有结束行\n\n# 页面\n"),
        ("page.zh.md", "# 没有 front matter 的页面\n"),
        ("nb.zh.ipynb", '{"cells": [\n'),
        ("nb.zh.ipynb", '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'),
    ],
    ids=["bad YAML", "no closing line", "no front matter", "notebook not JSON", "notebook without page"],
)
def test_stamp_refuses_broken_front_matter_and_changes_nothing(repo, name, text):
    if name.endswith(".ipynb"):
        write_notebook(repo / "docs/nb.ipynb", [code_cell("print(1)")])
    else:
        write_page(repo / "docs/page.md")
    twin = repo / "docs" / name
    twin.write_text(text, encoding="utf-8")

    with pytest.raises(FrontMatterError):
        translations.stamp(twin)
    assert twin.read_text(encoding="utf-8") == text


def test_stamp_command_reports_a_refusal_on_one_line(repo, capsys):
    english = write_page(repo / "docs/page.md")

    assert translations.main(["stamp", str(english)]) == 2
    assert translations.main(["stamp", str(repo / "docs/nothing.zh.md")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("error: ") for line in err)
    assert "not a translation" in err[0] and "no such file" in err[1]
