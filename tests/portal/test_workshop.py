"""`make workshop`: the learner edition has no solutions and its checks say "not yet"; the instructor edition has
everything; notebooks that break the exercise conventions are named; sources are never touched."""

from __future__ import annotations

import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from repo_files import code_cell, markdown_cell, write_notebook

from portal import workshop
from portal.notebooks import find_notebooks
from portal.paths import NOTEBOOKS

SOLUTION = "answer = 42  # the solution"
CHECK = (
    "from rtclab.exercise import check, defined\n"
    "check(defined(globals(), 'answer') and answer == 42, success='right', hint='set answer')"
)


def tagged(cell: dict, *tags: str) -> dict:
    return {**cell, "metadata": {"tags": list(tags)}}


def exercise_notebook(repo, name: str = "lab.ipynb", *, with_check: bool = True):
    cells = [
        markdown_cell("# Lab"),
        tagged(markdown_cell("Instructor: allow 5 minutes.", 1), "instructor"),
        tagged(code_cell("answer = None", 2), "exercise"),
        tagged(code_cell(SOLUTION, 3), "solution"),
    ]
    if with_check:
        cells.append(tagged(code_cell(CHECK, 4), "check"))
    return write_notebook(repo / "notebooks" / name, cells)


@pytest.fixture
def editions(repo, monkeypatch):
    monkeypatch.setattr(workshop, "WORKSHOP", repo / "build" / "workshop")
    return repo / "build" / "workshop"


def sources(path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text(encoding="utf-8"))["cells"]]


def test_learner_edition_drops_solutions_and_notes_and_keeps_the_check(repo, editions):
    source = exercise_notebook(repo)
    before = source.read_bytes()

    workshop.build()

    learner = sources(editions / "learner/lab.ipynb")
    assert SOLUTION not in learner and "Instructor: allow 5 minutes." not in learner
    assert CHECK in learner and "answer = None" in learner
    instructor = sources(editions / "instructor/lab.ipynb")
    assert SOLUTION in instructor and "Instructor: allow 5 minutes." in instructor
    assert source.read_bytes() == before, "the source notebook was modified"


@pytest.mark.timeout(120)
def test_a_learner_running_the_edition_reads_not_yet_instead_of_an_error(repo, editions, monkeypatch):
    exercise_notebook(repo)
    workshop.build()
    nb = nbformat.read(editions / "learner/lab.ipynb", as_version=4)
    monkeypatch.delenv("LMA_STRICT_CHECKS", raising=False)
    # The kernel must import rtclab from this checkout, as JupyterLab started by `make workshop` does.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in sys.path if p))
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "✗ Not yet: set answer" in printed


def test_an_exercise_without_a_check_is_named(repo, editions):
    exercise_notebook(repo, "tuning/lab.ipynb", with_check=False)
    with pytest.raises(workshop.WorkshopError, match=r"notebooks/tuning/lab\.ipynb: cell 3: .*`check`"):
        workshop.build()


def test_every_real_notebook_follows_the_exercise_conventions():
    for notebook in find_notebooks(NOTEBOOKS):
        for path in (notebook.source, notebook.translation("zh")):
            if path.exists():
                workshop.check_exercises(nbformat.read(path, as_version=4), str(path))


def test_the_real_learner_editions_contain_no_solution(tmp_path, monkeypatch):
    monkeypatch.setattr(workshop, "WORKSHOP", tmp_path / "workshop")
    written = workshop.build()
    assert written, "no notebook was written"
    for notebook in find_notebooks(NOTEBOOKS):
        solutions = [
            "".join(c.source)
            for c in nbformat.read(notebook.source, as_version=4).cells
            if "solution" in c.metadata.get("tags", [])
        ]
        learner = "\n".join(sources(tmp_path / "workshop/learner" / notebook.rel))
        for solution in solutions:
            assert solution not in learner, f"{notebook.rel}: a solution reached the learner edition"
