"""Pages and notebooks written into the throwaway repository of the portal tests, and a snapshot to compare."""

from __future__ import annotations

import json
from pathlib import Path


def write_page(path: Path, meta: dict | None = None, body: str = "# Page\n\nText.\n") -> Path:
    """A Markdown page with front matter (a valid English page unless `meta` says otherwise)."""
    meta = VALID_META if meta is None else meta
    lines = [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in meta.items()]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n" + "\n".join(lines) + "\n---\n\n" + body, encoding="utf-8")
    return path


def notebook_json(cells: list[dict], page: dict | None = None) -> str:
    """Notebook text as Jupyter saves it (indent 1, sorted keys, UTF-8)."""
    nb = {
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "portal": {"page": VALID_META if page is None else page},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def code_cell(source: str, index: int = 0) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": f"code-{index}",
        "metadata": {},
        "outputs": [],
        "source": source,
    }


def markdown_cell(source: str, index: int = 0) -> dict:
    return {"cell_type": "markdown", "id": f"text-{index}", "metadata": {}, "source": source}


def write_notebook(path: Path, cells: list[dict], page: dict | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(notebook_json(cells, page), encoding="utf-8")
    return path


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder under `root`, to show that a command changed nothing."""
    return {
        path.relative_to(root).as_posix(): (path.read_bytes() if path.is_file() else None)
        for path in sorted(root.rglob("*"))
    }


VALID_META = {
    "title": "Measure jitter",
    "description": "Measure the jitter of a call on a lossy network and read what it means.",
    "kind": "tutorial",
    "audience": ["developer"],
    "level": "beginner",
    "minutes": 15,
    "scenarios": ["voice-room"],
    "last_reviewed": "2024-05-01",
}
