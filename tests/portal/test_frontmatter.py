"""Front matter validation: every problem is one line naming the file and the field, and nothing raises."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st
from repo_files import VALID_META, code_cell, write_notebook, write_page

from portal import frontmatter

WHERE = "docs/how-to/x.md"
TOMORROW = (dt.date.today() + dt.timedelta(days=1)).isoformat()


def test_a_valid_page_has_no_problems():
    assert frontmatter.problems(VALID_META, WHERE) == []
    assert frontmatter.problems({**VALID_META, "last_reviewed": dt.date(2024, 5, 1)}, WHERE) == []
    optional = {"translated_from": "0123456789ab", "generated": True, "hide": ["toc"], "scenarios": []}
    assert frontmatter.problems({**VALID_META, **optional}, WHERE) == []


BAD_VALUES = [
    ("title", ""),
    ("title", "x" * 80),
    ("title", 42),
    ("description", "Too short."),
    ("description", "x" * 201),
    ("kind", "tutorials"),
    ("audience", []),
    ("audience", ["hacker"]),
    ("audience", "developer"),
    ("level", "expert"),
    ("minutes", 0),
    ("minutes", 481),
    ("minutes", "15"),
    ("minutes", True),
    ("minutes", 1.5),
    ("scenarios", ["moon-landing"]),
    ("scenarios", "voice-room"),
    ("last_reviewed", "2024-02-30"),
    ("last_reviewed", "last week"),
    ("last_reviewed", TOMORROW),
    ("last_reviewed", dt.datetime(2024, 5, 1, 12, 0)),
    ("translated_from", "not-a-hash"),
    ("translated_from", "0123456789AB"),
    ("generated", "yes"),
    ("hide", ["sidebar"]),
]


@pytest.mark.parametrize(("field", "value"), BAD_VALUES, ids=[f"{f}={v!r}" for f, v in BAD_VALUES])
def test_each_bad_value_is_one_problem_naming_file_and_field(field, value):
    found = frontmatter.problems({**VALID_META, field: value}, WHERE)

    assert len(found) == 1, found
    assert found[0].startswith(f"{WHERE}: {field}: {value!r} is not ")


@pytest.mark.parametrize("field", [f for f, (required, _) in frontmatter.FIELDS.items() if required])
def test_each_missing_required_field_is_named(field):
    meta = {k: v for k, v in VALID_META.items() if k != field}

    assert frontmatter.problems(meta, WHERE) == [f"{WHERE}: {field}: missing"]


def test_an_unknown_field_is_named_with_the_known_ones():
    found = frontmatter.problems({**VALID_META, "colour": "teal"}, WHERE)

    assert len(found) == 1
    assert found[0].startswith(f"{WHERE}: colour: unknown field (known: title, description")


def test_a_future_review_date_in_a_file_is_a_problem(tmp_path):
    page = tmp_path / "future.md"
    page.write_text(f"---\n{_yaml(VALID_META)}\n---\n".replace("2024-05-01", TOMORROW), encoding="utf-8")

    found = frontmatter.check_file(page)

    assert len(found) == 1
    assert found[0].startswith(f"{page}: last_reviewed: datetime.date(")


def _yaml(meta: dict) -> str:
    return "\n".join(f"{k}: {v}" for k, v in meta.items())


def test_a_page_without_front_matter_is_named(tmp_path):
    page = tmp_path / "bare.md"
    page.write_text("# Just a heading\n", encoding="utf-8")

    assert frontmatter.check_file(page) == [
        f"{page}: front matter: missing (start the page with a '---' block)"
    ]


@pytest.mark.parametrize(
    ("front", "what"),
    [
        ("title: [unclosed\n", "not valid YAML (line 2)"),
        ("title: x\n  bad: indent\n", "not valid YAML"),
        ("last_reviewed: 2024-13-01\n", "not valid YAML"),  # YAML reads it as a date that cannot exist
        ("- a list\n- not a mapping\n", "must be a mapping of field: value"),
    ],
)
def test_front_matter_that_cannot_be_read_is_one_line_naming_the_file(tmp_path, front, what):
    page = tmp_path / "broken.md"
    page.write_text(f"---\n{front}---\n\n# Page\n", encoding="utf-8")

    found = frontmatter.check_file(page)

    assert len(found) == 1 and "\n" not in found[0]
    assert found[0].startswith(f"{page}: front matter: ")
    assert what in found[0]


def test_front_matter_without_a_closing_line(tmp_path):
    page = tmp_path / "open.md"
    page.write_text("---\ntitle: x\n\n# Page\n", encoding="utf-8")

    assert frontmatter.check_file(page) == [f"{page}: front matter: no closing '---' line"]


def test_fields_that_yaml_reads_as_numbers_or_null_are_reported_not_raised(tmp_path):
    page = tmp_path / "keys.md"
    page.write_text(f"---\n{_yaml(VALID_META)}\n2024: x\nnull: y\ncolour: z\n---\n", encoding="utf-8")

    found = frontmatter.check_file(page)

    assert len(found) == 3
    assert all(line.startswith(f"{page}: ") and "unknown field" in line for line in found)


def test_notebook_front_matter_lives_in_its_metadata(tmp_path):
    good = write_notebook(tmp_path / "good.ipynb", [code_cell("print(1)")])
    bad = write_notebook(tmp_path / "bad.ipynb", [code_cell("print(1)")], {**VALID_META, "minutes": 0})
    missing = tmp_path / "missing.ipynb"
    missing.write_text('{"cells": [], "metadata": {}}', encoding="utf-8")
    broken = tmp_path / "broken.ipynb"
    broken.write_text('{"cells": [\n', encoding="utf-8")
    odd = [tmp_path / "list.ipynb", tmp_path / "portal-text.ipynb"]
    odd[0].write_text("[]", encoding="utf-8")
    odd[1].write_text('{"metadata": {"portal": "page"}}', encoding="utf-8")

    assert frontmatter.check_file(good) == []
    assert frontmatter.check_file(bad) == [f"{bad}: minutes: 0 is not {frontmatter.FIELDS['minutes'][1]}"]
    assert frontmatter.check_file(missing) == [
        f"{missing}: metadata.portal.page: missing (the notebook's front matter)"
    ]
    assert frontmatter.check_file(broken) == [f"{broken}: notebook: not valid JSON (line 2)"]
    for path in odd:
        assert frontmatter.check_file(path) == [
            f"{path}: metadata.portal.page: missing (the notebook's front matter)"
        ]


def test_main_checks_every_page_but_not_the_templates(repo, capsys):
    write_page(repo / "docs/index.md")
    write_page(repo / "docs/_templates/how-to.md", {"title": "$title"})
    write_notebook(repo / "notebooks/tuning/x.ipynb", [code_cell("print(1)")])
    assert frontmatter.main() == 0
    assert "front matter ok in 2 pages and notebooks" in capsys.readouterr().out

    write_page(repo / "docs/how-to/bad.md", {**VALID_META, "level": "expert"})
    assert frontmatter.main() == 1
    err = capsys.readouterr().err
    assert "docs/how-to/bad.md: level: 'expert' is not one of beginner, intermediate, advanced" in err
    assert err.endswith("1 front matter problem(s)\n")


VALUES = st.one_of(
    st.text(max_size=30),
    st.integers(),
    st.none(),
    st.lists(st.one_of(st.text(max_size=15), st.integers(), st.none()), max_size=4),
)
KEYS = st.one_of(st.sampled_from(list(frontmatter.FIELDS)), st.text(max_size=12))


@given(st.dictionaries(KEYS, VALUES, max_size=12))
def test_problems_never_raises_on_any_mapping(meta):
    found = frontmatter.problems(meta, WHERE)

    assert isinstance(found, list)
    assert all(isinstance(line, str) and line.startswith(f"{WHERE}: ") for line in found)


@given(st.dictionaries(st.sampled_from(list(frontmatter.FIELDS)), VALUES))
def test_a_valid_page_stays_valid_only_without_bad_fields(meta):
    """Overriding fields of a valid page: the problems name exactly the fields whose value is wrong."""
    merged = {**VALID_META, **meta}
    found = frontmatter.problems(merged, WHERE)

    named = {line.split(": ")[1] for line in found}
    assert named <= set(meta)
    for field in named:
        assert frontmatter.problems({**VALID_META, field: merged[field]}, WHERE) != []
