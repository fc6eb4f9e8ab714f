"""Notebooks are committed clean (no outputs, no execution counts), and a Chinese notebook runs the English code.

Covers every notebook under notebooks/ and the notebook templates in docs/_templates/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from portal.notebooks import language_of
from portal.paths import DEFAULT_LANGUAGE, DOCS, NOTEBOOKS, ROOT
from portal.translations import english_path

ALL = sorted(
    path
    for path in [*NOTEBOOKS.rglob("*.ipynb"), *(DOCS / "_templates").glob("*.ipynb")]
    if ".ipynb_checkpoints" not in path.parts
)
TRANSLATED = [path for path in ALL if language_of(path) != DEFAULT_LANGUAGE]


def _name(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _cells(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (json.JSONDecodeError, KeyError) as error:
        pytest.fail(f"{_name(path)}: not a notebook ({error})")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def test_there_are_notebooks_to_check():
    assert [p for p in ALL if p.parent == DOCS / "_templates"], "the notebook templates are missing"


@pytest.mark.parametrize("path", ALL, ids=_name)
def test_committed_without_outputs(path):
    dirty = [
        f"{_name(path)}: cell {index}: "
        + ("has outputs" if cell.get("outputs") else f"execution_count is {cell.get('execution_count')}")
        for index, cell in enumerate(_cells(path), 1)
        if cell.get("cell_type") == "code"
        and (cell.get("outputs") or cell.get("execution_count") is not None)
    ]
    assert not dirty, (
        "clear all outputs before committing (Jupyter: Edit > Clear Outputs of All Cells):\n"
        + "\n".join(dirty)
    )


@pytest.mark.parametrize("path", TRANSLATED, ids=_name)
def test_translation_has_the_english_code(path):
    english = english_path(path)
    assert english.exists(), f"{_name(path)}: no English notebook {english.name} beside it"
    ours, theirs = _cells(path), _cells(english)
    kinds, english_kinds = [c.get("cell_type") for c in ours], [c.get("cell_type") for c in theirs]
    assert kinds == english_kinds, (
        f"{_name(path)}: cells: {kinds} here, {english_kinds} in {_name(english)} (same cells, same order)"
    )
    different = [
        f"{_name(path)}: cell {index}: code differs from {_name(english)}"
        for index, (cell, twin) in enumerate(zip(ours, theirs, strict=True), 1)
        if cell.get("cell_type") == "code" and _source(cell) != _source(twin)
    ]
    assert not different, "\n".join(different)
