"""`make serve`: show the site as soon as it builds, while the notebooks and samples that changed still run.

    python -m portal.serve --address 127.0.0.1:8000

On a fresh clone nothing is executed yet, and running everything takes minutes. So this starts
`python -m portal.execute` in the background and `mkdocs serve --strict` at once. A notebook or sample output
that has never run gets a stand-in first: the notebook without outputs (and without the "verified" badge), or a
line saying the sample is still running. Each result replaces its stand-in when it finishes, and MkDocs rebuilds
the page (it watches build/executed and build/outputs). A stand-in has no execution record, so `make build`,
`make test` and the next `make serve` run it for real.

Figures measured this way ran beside the site build, so they are noisier than CI's, which runs on a clean clone
with nothing beside it; the published site shows CI's.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys

import nbformat

from portal import execute, sample_outputs
from portal.notebooks import find_notebooks
from portal.paths import BUILD, DOCS, EXECUTED, ROOT

STAND_IN_SAMPLE = (
    "(This sample is still running for the local preview started by `make serve`; this page rebuilds with what\n"
    " it prints as soon as it finishes. `make build` and CI always show a finished run.)\n"
)
STAND_IN_NOTE = (
    '!!! note "Still running"\n\n'
    "    This notebook is still running for the local preview started by `make serve`: the page rebuilds with its\n"
    "    outputs as soon as it finishes. `make build` and CI always show an executed notebook."
)


def write_stand_ins(mode: str) -> int:
    """Stand-ins for every notebook and sample output that has never run here; returns how many still need a run."""
    stale = 0
    for notebook in find_notebooks():
        recorded = execute.recorded_execution(notebook.executed())
        if recorded and recorded.get("cache_key") == execute.cache_key(notebook, mode):
            continue
        stale += 1
        if notebook.executed().exists():
            continue  # an older run: better than a stand-in until the new one lands
        nb = nbformat.read(notebook.source, as_version=4)
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(STAND_IN_NOTE))
        nb.metadata.setdefault("portal", {})["execution"] = {"status": "running"}
        execute.write_atomically(notebook.executed(), nbformat.writes(nb) + "\n")
    _, stale_samples = sample_outputs.plan(mode)
    for item, _key in stale_samples:
        stale += 1
        if not item.output.exists():
            item.output.parent.mkdir(parents=True, exist_ok=True)
            item.output.write_text(_stand_in_output(item.name), encoding="utf-8")
    return stale


def _stand_in_output(name: str) -> str:
    """The 'still running' line, once more inside each section a page includes (`...txt:section`), so that
    the snippets extension (check_paths) finds every section it is asked for."""
    pattern = re.compile(rf'--8<--\s+"build/outputs/{re.escape(name)}\.txt:([\w-]+)"')
    sections = sorted(
        {m for page in DOCS.rglob("*.md") for m in pattern.findall(page.read_text(encoding="utf-8"))}
    )
    text = STAND_IN_SAMPLE
    for section in sections:
        text += f"# --8<-- [start:{section}]\n{STAND_IN_SAMPLE}# --8<-- [end:{section}]\n"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make serve", description=__doc__.splitlines()[0])
    parser.add_argument("--address", default="127.0.0.1:8000", help="host:port to serve on (loopback)")
    args = parser.parse_args(argv)
    try:
        mode = execute.current_mode()
    except execute.ExecutionFailed as error:
        print(f"serve: {error}", file=sys.stderr)
        return 2
    stale = write_stand_ins(mode)
    for folder in (EXECUTED, BUILD / "outputs"):
        folder.mkdir(parents=True, exist_ok=True)  # watched by mkdocs serve
    runner = None
    if stale:
        print(
            f"serve: {stale} notebook(s) and sample output(s) to run; serving now, pages update as they finish"
        )
        runner = subprocess.Popen([sys.executable, "-m", "portal.execute"], cwd=ROOT)
    mkdocs = [
        os.path.join(os.path.dirname(sys.executable), "mkdocs"),
        "serve",
        "--strict",
        "-a",
        args.address,
    ]
    mkdocs += ["-w", str(EXECUTED), "-w", str(BUILD / "outputs")]
    server = subprocess.Popen(mkdocs, cwd=ROOT)
    try:
        code = server.wait()
    except KeyboardInterrupt:
        server.send_signal(signal.SIGINT)
        code = server.wait()
    finally:
        if runner is not None and runner.poll() is None:
            runner.terminate()  # a half-finished run leaves no record: the next one starts it again
            runner.wait()
    return code


if __name__ == "__main__":
    sys.exit(main())
