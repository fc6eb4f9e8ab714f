"""A throwaway repository for the portal tooling tests, so that no test writes into the real docs/ or notebooks/."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal import (
    execute,
    frontmatter,
    notebooks,
    paths,
    sample_outputs,
    scaffold,
    serve,
    translations,
    workshop,
)

MODULES = (paths, frontmatter, translations, notebooks, execute, scaffold, sample_outputs, workshop, serve)


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty repository root with docs/ and notebooks/, which every portal module now takes for the real one.

    The templates stay the real ones in docs/_templates/, so the tests check what `make new-guide` copies.
    """
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "notebooks").mkdir()
    where = {
        "ROOT": root,
        "DOCS": root / "docs",
        "NOTEBOOKS": root / "notebooks",
        "EXECUTED": root / "build" / "executed",
        "REPORTS": root / "build" / "reports",
        "SAMPLES": root / "samples",
        "OUTPUTS": root / "build" / "outputs",
    }
    for module in MODULES:
        for name, path in where.items():
            if hasattr(module, name):
                monkeypatch.setattr(module, name, path)
    monkeypatch.setattr(execute, "REPORT", where["EXECUTED"] / "report.json")
    # find_notebooks(root=NOTEBOOKS) took its default when it was defined.
    monkeypatch.setattr(notebooks.find_notebooks, "__defaults__", (where["NOTEBOOKS"],))
    return root
