"""Workshop editions of the notebooks, for trainers: a learner set and an instructor set.

    python -m portal.workshop build    # write build/workshop/learner/ and build/workshop/instructor/
    python -m portal.workshop serve    # build, then JupyterLab on 127.0.0.1 on the learner set (`make workshop`)

Cell tags (set them in JupyterLab's property inspector or in the cell metadata):
- `exercise`: where the learner writes code; kept in both editions.
- `solution`: the answer (code or markdown); removed from the learner edition.
- `check`: follows an exercise and its solutions, calls `rtclab.exercise.check()`; kept in both editions,
  so a learner runs it to find out whether their answer works.
- `instructor`: notes for the trainer (timing, common mistakes); removed from the learner edition and from
  the site.

The learner edition is the source notebook without outputs; the instructor edition is the copy the build
executed (outputs included) when there is one. Both languages are written. Nothing is written outside
build/workshop/, and the sources are never modified.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from portal.notebooks import Notebook, find_notebooks
from portal.paths import BUILD, LANGUAGES, NOTEBOOKS, ROOT

WORKSHOP = BUILD / "workshop"
LEARNER_DROPS = {"solution", "instructor"}


class WorkshopError(Exception):
    """A notebook breaks the exercise conventions; the message names the notebook and the cell."""


def tags(cell: nbformat.NotebookNode) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []))


def check_exercises(nb: nbformat.NotebookNode, name: str) -> None:
    """Every `exercise` cell must be followed, after its `solution` cells, by a `check` cell."""
    cells = nb.cells
    for index, cell in enumerate(cells):
        if "exercise" not in tags(cell):
            continue
        following = index + 1
        while following < len(cells) and "solution" in tags(cells[following]):
            following += 1
        if following == index + 1:
            raise WorkshopError(f"{name}: cell {index + 1}: an exercise with no `solution` cell after it")
        if following >= len(cells) or "check" not in tags(cells[following]):
            raise WorkshopError(
                f"{name}: cell {index + 1}: the exercise's solution must be followed by a cell tagged `check` "
                "(it tells learners whether their answer works)"
            )


def learner_edition(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without solutions, instructor notes and outputs."""
    learner = nbformat.from_dict(nb)
    learner.cells = [cell for cell in learner.cells if not tags(cell) & LEARNER_DROPS]
    for cell in learner.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    learner.metadata.get("portal", {}).pop("execution", None)
    return learner


def build() -> list[Path]:
    """Write both editions of every notebook (every language); return the files written."""
    if WORKSHOP.exists():
        shutil.rmtree(WORKSHOP)
    written = []
    for notebook in find_notebooks():
        for lang in LANGUAGES:
            written += _write_editions(notebook, lang)
    return written


def _write_editions(notebook: Notebook, lang: str) -> list[Path]:
    source = notebook.translation(lang)
    if not source.exists():
        return []
    name = str(source.relative_to(ROOT))
    nb = nbformat.read(source, as_version=4)
    check_exercises(nb, name)
    rel = source.relative_to(NOTEBOOKS)
    learner_path = WORKSHOP / "learner" / rel
    instructor_path = WORKSHOP / "instructor" / rel
    executed = notebook.executed(lang)
    instructor = nbformat.read(executed, as_version=4) if executed.exists() else nb
    for path, edition in ((learner_path, learner_edition(nb)), (instructor_path, instructor)):
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(edition, path)
    return [learner_path, instructor_path]


def serve(port: int) -> int:
    """Start JupyterLab on 127.0.0.1 on the learner edition (token-protected, as JupyterLab is by default)."""
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--no-browser",
        f"--ServerApp.root_dir={WORKSHOP / 'learner'}",
    ]
    print(f"learner notebooks: {WORKSHOP / 'learner'}\ninstructor notebooks: {WORKSHOP / 'instructor'}")
    print("starting JupyterLab on 127.0.0.1; open the URL with the token it prints (Ctrl-C stops it)")
    try:
        return subprocess.call(command)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.workshop", description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["build", "serve"], help="build the editions, or build and serve")
    parser.add_argument("--port", type=int, default=8888, help="JupyterLab's port on 127.0.0.1 (serve)")
    args = parser.parse_args(argv)
    try:
        written = build()
    except WorkshopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} notebooks into {WORKSHOP.relative_to(ROOT)}/ (learner/, instructor/)")
    return serve(args.port) if args.action == "serve" else 0


if __name__ == "__main__":
    sys.exit(main())
