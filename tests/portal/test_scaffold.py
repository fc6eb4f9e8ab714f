"""`make new-guide`: each kind of page from its template, Chinese twins, and one-line errors that write nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from repo_files import VALID_META, snapshot, write_page

from portal import frontmatter, scaffold, translations
from portal.paths import ROOT

TODAY = dt.date.today()
WHERE = {
    "tutorial": "docs/get-started/{slug}.md",
    "how-to": "docs/how-to/{slug}.md",
    "explanation": "docs/explanation/{slug}.md",
    "notebook": "notebooks/tuning/{slug}.ipynb",
}
HEADINGS = {
    "tutorial": [
        "## What you will learn",
        "## Prerequisites",
        "## Overview",
        "## Steps",
        "## Exercises",
        '??? success "Solution"',
        "## Conclusion",
        "## Further reading",
    ],
    "how-to": ["## Before you start", "## Steps", "## Check that it worked", "## Troubleshooting"],
    "explanation": ["## Context", "## How it works", "## Trade-offs", "## Further reading"],
}


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = scaffold.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def page_meta(path: Path) -> dict:
    if path.suffix == ".ipynb":
        return frontmatter.read_notebook(path)
    return frontmatter.read_markdown(path)


def code_sources(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


@pytest.mark.parametrize("kind", list(WHERE))
def test_each_kind_makes_a_valid_page_from_its_template(repo, capsys, kind):
    code, out, err = run(capsys, "--kind", kind, "--slug", "tune-jitter-buffer")

    assert (code, err) == (0, "")
    created = repo / WHERE[kind].format(slug="tune-jitter-buffer")
    assert created.is_file()
    assert frontmatter.check_file(created) == []
    meta = page_meta(created)
    assert meta["title"] == "Tune jitter buffer"
    assert str(meta["last_reviewed"]) == TODAY.isoformat()
    assert meta["kind"] == ("tutorial" if kind == "notebook" else kind)
    text = created.read_text(encoding="utf-8")
    assert re.search(r"\$\w", text) is None, "a template placeholder was left unfilled"
    for heading in HEADINGS.get(kind, []):
        assert heading in text
    assert WHERE[kind].format(slug="tune-jitter-buffer") in out
    assert "mkdocs.yml" in out and "make serve" in out


def test_title_from_slug_spells_known_words():
    assert scaffold.title_from_slug("first-call") == "First call"
    assert scaffold.title_from_slug("webrtc-on-3g") == "WebRTC on 3G"
    assert scaffold.title_from_slug("2-party-calls") == "2 party calls"


def test_a_title_that_looks_like_a_number_stays_text(repo, capsys):
    code, _, _ = run(capsys, "--kind", "how-to", "--slug", "2024")

    assert code == 0
    page = repo / "docs/how-to/2024.md"
    assert page_meta(page)["title"] == "2024"
    assert frontmatter.check_file(page) == []


def test_notebook_page_is_a_clean_runnable_template(repo, capsys):
    run(capsys, "--kind", "notebook", "--slug", "jitter")
    nb = json.loads((repo / "notebooks/tuning/jitter.ipynb").read_text(encoding="utf-8"))

    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert code[0]["metadata"]["tags"] == ["parameters"]
    assert 'os.environ.get("LMA_MODE", "quick")' in "".join(code[0]["source"])
    assert any("solution" in c["metadata"].get("tags", []) for c in code)
    assert "assert " in "".join(code[-1]["source"])
    assert nb["cells"][0]["cell_type"] == "markdown"
    assert "".join(nb["cells"][0]["source"]).startswith("# Jitter\n")


@pytest.mark.parametrize("kind", list(WHERE))
def test_chinese_twin_of_an_english_page_is_stamped(repo, capsys, kind):
    run(capsys, "--kind", kind, "--slug", "first-loss")
    english = repo / WHERE[kind].format(slug="first-loss")
    english_bytes = english.read_bytes()

    code, out, err = run(capsys, "--kind", kind, "--slug", "first-loss", "--lang", "zh")

    assert (code, err) == (0, "")
    twin = translations.translation_path(english, "zh")
    assert twin.is_file() and english.read_bytes() == english_bytes
    assert frontmatter.check_file(twin) == []
    meta, english_meta = page_meta(twin), page_meta(english)
    assert meta["translated_from"] == translations.content_hash(english)
    for field in ("title", "description", "kind", "audience", "level", "minutes", "scenarios"):
        assert meta[field] == english_meta[field]
    assert [s.state for s in translations.status() if s.english == english] == ["up to date"]
    assert twin.relative_to(repo).as_posix() in out and "make stamp" in out
    if kind == "notebook":
        assert code_sources(twin) == code_sources(english)
    else:
        assert "## " in twin.read_text(encoding="utf-8") and "TODO：" in twin.read_text(encoding="utf-8")


def test_notebook_twin_keeps_the_english_code_and_edited_text(repo, capsys):
    run(capsys, "--kind", "notebook", "--slug", "jitter")
    english = repo / "notebooks/tuning/jitter.ipynb"
    nb = json.loads(english.read_text(encoding="utf-8"))
    nb["cells"][2]["source"] = "## Step 1: measure the delay\n\nWritten by the author."
    nb["cells"][3]["source"] = "print('changed by the author')\n"
    english.write_text(json.dumps(nb, indent=1), encoding="utf-8")

    code, _, _ = run(capsys, "--kind", "notebook", "--slug", "jitter", "--lang", "zh")

    assert code == 0
    twin = json.loads((repo / "notebooks/tuning/jitter.zh.ipynb").read_text(encoding="utf-8"))
    assert code_sources(repo / "notebooks/tuning/jitter.zh.ipynb") == code_sources(english)
    assert "".join(twin["cells"][2]["source"]) == "## Step 1: measure the delay\n\nWritten by the author."
    assert "你将学到" in "".join(twin["cells"][0]["source"])  # untouched template text comes in Chinese


BAD_INPUT = [
    # (arguments, the error line, pages that exist beforehand)
    (
        ["--kind", "foo", "--slug", "x"],
        "error: KIND: 'foo' is not one of tutorial, how-to, explanation, notebook",
        [],
    ),
    (
        ["--kind", "", "--slug", "x"],
        "error: KIND: '' is not one of tutorial, how-to, explanation, notebook",
        [],
    ),
    (
        ["--kind", "tutorial", "--slug", "My Page"],
        "error: SLUG: 'My Page' must be lowercase letters, digits and hyphens (like first-call)",
        [],
    ),
    (["--kind", "how-to", "--slug", "my page"], "error: SLUG: 'my page' must be lowercase", []),
    (["--kind", "how-to", "--slug", "Upper"], "error: SLUG: 'Upper' must be lowercase", []),
    (["--kind", "how-to", "--slug", ""], "error: SLUG: '' must be lowercase", []),
    (["--kind", "how-to", "--slug", "../escape"], "error: SLUG: '../escape' must be lowercase", []),
    (["--kind", "how-to", "--slug", ".."], "error: SLUG: '..' must be lowercase", []),
    (["--kind", "how-to", "--slug", "a/b"], "error: SLUG: 'a/b' must be lowercase", []),
    (["--kind", "how-to", "--slug", "/tmp/x"], "error: SLUG: '/tmp/x' must be lowercase", []),
    (["--kind", "how-to", "--slug", "x.md"], "error: SLUG: 'x.md' must be lowercase", []),
    (["--kind", "how-to", "--slug", "-x"], "error: SLUG: '-x' must be lowercase", []),
    (["--kind", "how-to", "--slug", "index"], "error: SLUG: 'index' is the section's own page", []),
    (["--kind", "how-to", "--slug", "x", "--lang", "fr"], "error: LANG: 'fr' is not one of en, zh", []),
    (
        ["--kind", "how-to", "--slug", "x"],
        "error: SLUG: docs/how-to/x.md exists already; pick another slug",
        ["docs/how-to/x.md"],
    ),
    (
        ["--kind", "notebook", "--slug", "x"],
        "error: SLUG: notebooks/tuning/x.ipynb exists already; pick another slug",
        ["notebooks/tuning/x.ipynb"],
    ),
    (
        ["--kind", "explanation", "--slug", "x", "--lang", "zh"],
        "error: SLUG: docs/explanation/x.md does not exist",
        [],
    ),
    (
        ["--kind", "how-to", "--slug", "x", "--lang", "zh"],
        "error: SLUG: docs/how-to/x.zh.md exists already",
        ["docs/how-to/x.md", "docs/how-to/x.zh.md"],
    ),
    (["--slug", "x"], "error: the following arguments are required: --kind", []),
]


@pytest.mark.parametrize(("args", "message", "existing"), BAD_INPUT, ids=[" ".join(c[0]) for c in BAD_INPUT])
def test_bad_input_is_one_line_and_changes_nothing(repo, capsys, args, message, existing):
    for rel in existing:
        if rel.endswith(".ipynb"):
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            (repo / rel).write_text('{"cells": []}\n', encoding="utf-8")
        else:
            write_page(repo / rel)
    before = snapshot(repo)

    try:
        code = scaffold.main(args)
    except SystemExit as exit_:  # argparse's own errors
        code = exit_.code
    out, err = capsys.readouterr()

    assert code == 2
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert out == ""
    assert snapshot(repo) == before


def test_twin_of_an_english_page_with_broken_front_matter_is_refused(repo, capsys):
    write_page(repo / "docs/how-to/x.md", {**VALID_META, "level": "expert"})
    before = snapshot(repo)

    code, out, err = run(capsys, "--kind", "how-to", "--slug", "x", "--lang", "zh")

    assert code == 2
    assert err.startswith("error: SLUG: docs/how-to/x.md: level: 'expert'") and err.count("\n") == 1
    assert snapshot(repo) == before


def test_an_existing_file_is_never_overwritten(repo, capsys, monkeypatch):
    """Even if the file appears after the checks (another process), it is opened exclusively."""
    page = write_page(repo / "docs/how-to/x.md")
    monkeypatch.setattr(scaffold.Kind, "same_page", lambda self, slug: [])
    before = snapshot(repo)

    code, _, err = run(capsys, "--kind", "how-to", "--slug", "x")

    assert code == 2 and err == "error: SLUG: docs/how-to/x.md exists already; pick another slug\n"
    assert snapshot(repo) == before and page.read_bytes() == before["docs/how-to/x.md"]


def test_a_new_page_of_another_kind_may_not_take_a_notebook_s_address(repo, capsys):
    notebook = repo / "notebooks/get-started/measure.ipynb"
    notebook.parent.mkdir(parents=True)
    notebook.write_text("{}\n", encoding="utf-8")

    code, _, err = run(capsys, "--kind", "tutorial", "--slug", "measure")

    assert code == 2 and "notebooks/get-started/measure.ipynb exists already" in err
    assert not (repo / "docs/get-started").exists()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_new_guide_reports_a_bad_kind_on_one_line():
    # -o env: use the environment as it is instead of re-syncing it (which may need the network).
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", "env", "new-guide", "KIND=bogus", "SLUG=x"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "error: KIND: 'bogus' is not one of tutorial, how-to, explanation, notebook\n" in result.stderr
    assert (
        result.stderr.splitlines()[0]
        == "error: KIND: 'bogus' is not one of tutorial, how-to, explanation, notebook"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not [path for path in (ROOT / "docs").rglob("x.md")]
