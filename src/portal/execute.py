"""Execute the notebooks in notebooks/ into build/executed/, and the samples whose output pages show
into build/outputs/ (see portal.sample_outputs), re-running only what changed.

    python -m portal.execute            # run stale notebooks (what `make execute` does)
    python -m portal.execute --force    # run all of them (`make execute FORCE=1`)

A notebook is stale when the hash of its source, the rtclab sources, the lock file or the mode
(LMA_MODE=quick|full) differs from the one recorded in its executed copy. Each cell gets a timeout;
an error stops the run naming the notebook, the cell and the traceback.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import datetime as dt
import hashlib
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

import nbformat
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from portal import sample_outputs
from portal.notebooks import Notebook, find_notebooks
from portal.paths import EXECUTED, LANGUAGES, ROOT

DEFAULT_CELL_TIMEOUT = 120  # seconds; a notebook may set metadata.portal.cell_timeout
MODES = ("quick", "full")
REPORT = EXECUTED / "report.json"


class ExecutionFailed(Exception):
    """A notebook could not be executed; the message names notebook, cell and error."""


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so `make serve` rebuilding meanwhile never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)


def current_mode() -> str:
    mode = os.environ.get("LMA_MODE", "quick")
    if mode not in MODES:
        raise ExecutionFailed(f"LMA_MODE={mode!r}: must be one of {', '.join(MODES)}")
    return mode


def cache_key(notebook: Notebook, mode: str) -> str:
    """Hash of everything an executed notebook depends on."""
    digest = hashlib.sha256()
    digest.update(notebook.source.read_bytes())
    for path in sorted((ROOT / "src" / "rtclab").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    lock = ROOT / "uv.lock"
    if lock.exists():
        digest.update(lock.read_bytes())
    digest.update(f"mode={mode}".encode())
    return digest.hexdigest()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("aiortc", "av"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def recorded_execution(path: Path) -> dict | None:
    """The execution record stored in an executed copy, or None if there is none."""
    if not path.exists():
        return None
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return nb.get("metadata", {}).get("portal", {}).get("execution")


def _cell_number(nb: nbformat.NotebookNode, cell_index: int) -> str:
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    position = code_cells.index(cell_index) + 1 if cell_index in code_cells else "?"
    return f"cell {cell_index + 1} (code cell {position})"


def execute_notebook(notebook: Notebook, mode: str, key: str) -> dict:
    """Run one notebook and write its executed copy; return its execution record."""
    return execute_file(notebook.source, notebook.executed(), notebook.display, mode, key)


def execute_file(source: Path, target: Path, display: str, mode: str, key: str) -> dict:
    """Run the notebook `source` and write its executed copy to `target` (plain paths: a worker process
    re-imports this module and must not depend on its globals)."""
    nb = nbformat.read(source, as_version=4)
    timeout = int(nb.metadata.get("portal", {}).get("cell_timeout", DEFAULT_CELL_TIMEOUT))
    failed_cell: list[int] = []
    ipc_dir = tempfile.mkdtemp(prefix="lma-kernel-")
    client = NotebookClient(
        nb,
        # IPC sockets in a temporary folder: no TCP port is opened for the kernel.
        km=(
            kernel := KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(ipc_dir) / "kernel"))
        ),
        timeout=timeout,
        kernel_name="python3",
        allow_errors=False,
        resources={"metadata": {"path": str(source.parent)}},
        on_cell_error=lambda cell, cell_index, execute_reply: failed_cell.append(cell_index),
    )
    os.environ["LMA_MODE"] = mode  # the parameters cell of each notebook reads it
    os.environ["LMA_STRICT_CHECKS"] = (
        "1"  # an exercise check that fails with the solution in place fails the run
    )
    started = time.monotonic()
    try:
        client.execute()
    except CellTimeoutError as error:
        where = _cell_number(nb, failed_cell[0]) if failed_cell else "a cell"
        raise ExecutionFailed(f"{display}: {where} ran longer than {timeout} s\n{error}") from None
    except CellExecutionError as error:
        where = _cell_number(nb, failed_cell[0]) if failed_cell else "a cell"
        raise ExecutionFailed(f"{display}: {where} raised an error\n{error}") from None
    finally:
        # nbclient shuts down only kernels it started itself; this one was handed to it.
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)
        shutil.rmtree(ipc_dir, ignore_errors=True)
    seconds = time.monotonic() - started
    record = {
        "status": "passed",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(seconds, 1),
        "mode": mode,
        "cell_timeout": timeout,
        "versions": versions(),
        "cache_key": key,
    }
    nb.metadata.setdefault("portal", {})["execution"] = record
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, nbformat.writes(nb) + "\n")
    return record


def write_translations(notebook: Notebook) -> list[str]:
    """Give each translated notebook the outputs of the executed English one.

    Code cells must be identical in every language, so outputs can be copied cell by cell.
    """
    executed = nbformat.read(notebook.executed(), as_version=4)
    written = []
    for lang in LANGUAGES[1:]:
        source_path = notebook.translation(lang)
        target = notebook.executed(lang)
        if not source_path.exists():
            target.unlink(missing_ok=True)
            continue
        translated = nbformat.read(source_path, as_version=4)
        check_same_code(executed, translated, source_path)
        merged = copy.deepcopy(translated)
        for cell, run in zip(merged.cells, executed.cells, strict=True):
            if cell.cell_type == "code":
                cell.outputs = run.outputs
                cell.execution_count = run.execution_count
        # The translation keeps its own front matter (`page`: Chinese title, translated_from) and gets the record.
        execution = executed.metadata["portal"]["execution"]
        merged.metadata["portal"] = {**translated.metadata.get("portal", {}), "execution": execution}
        write_atomically(target, nbformat.writes(merged) + "\n")
        written.append(lang)
    return written


def check_same_code(english: nbformat.NotebookNode, translated: nbformat.NotebookNode, path: Path) -> None:
    """Raise ExecutionFailed unless `translated` has the same cells and code as `english`."""
    name = path.relative_to(ROOT)
    kinds = [c.cell_type for c in english.cells]
    if [c.cell_type for c in translated.cells] != kinds:
        raise ExecutionFailed(
            f"{name}: cells: the translation must have the same cells in the same order as the English "
            f"notebook ({len(translated.cells)} cells here, {len(kinds)} there)"
        )
    for index, (a, b) in enumerate(zip(english.cells, translated.cells, strict=True)):
        if a.cell_type == "code" and a.source != b.source:
            raise ExecutionFailed(f"{name}: cell {index + 1}: code differs from the English notebook")


def jobs() -> int:
    """How many notebooks and samples run at once: LMA_JOBS, else 2 (the cores of the machines CI runs on).

    Their figures are timings, so no more than the cores at once. The ones that measure CPU time, and the
    scenarios (a server and several peers each), run alone afterwards (`run_alone`).
    """
    value = os.environ.get("LMA_JOBS", "2")
    if not value.isdigit() or int(value) < 1:
        raise ExecutionFailed(f"LMA_JOBS={value!r}: must be a whole number of at least 1")
    return int(value)


def run_alone(notebook: Notebook) -> str:
    """What a notebook with `portal.run_alone` in its metadata measures ("" when it may share the machine)."""
    nb = json.loads(notebook.source.read_text(encoding="utf-8"))
    return str(nb.get("metadata", {}).get("portal", {}).get("run_alone", ""))


def _execute_in_child(source: Path, target: Path, display: str, mode: str, key: str) -> dict | str:
    """execute_file in a worker process; an ExecutionFailed comes back as its message."""
    try:
        return execute_file(source, target, display, mode, key)
    except ExecutionFailed as error:
        return str(error)


def _child_args(notebook: Notebook, mode: str, key: str) -> tuple:
    return (notebook.source, notebook.executed(), notebook.display, mode, key)


def run(force: bool = False) -> int:
    mode = current_mode()
    workers = jobs()
    notebooks = find_notebooks()
    report: dict[str, dict] = {}
    failures: list[str] = []
    stale: list[tuple[Notebook, str]] = []
    for notebook in notebooks:
        key = cache_key(notebook, mode)
        recorded = recorded_execution(notebook.executed())
        if not force and recorded and recorded.get("cache_key") == key:
            print(f"up to date  {notebook.display}  (ran {recorded['date']}, {recorded['seconds']} s)")
            report[str(notebook.rel)] = recorded
        else:
            stale.append((notebook, key))
    samples, stale_samples = sample_outputs.plan(mode, force=force)
    failures += [name for name, record in samples.items() if record["status"] == "failed"]

    def finish_notebook(notebook: Notebook, outcome: dict | str) -> None:
        name = notebook.display
        if isinstance(outcome, str):
            print(f"FAILED      {outcome}", file=sys.stderr)
            notebook.executed().unlink(missing_ok=True)
            failures.append(name)
            report[str(notebook.rel)] = {"status": "failed", "date": _now(), "mode": mode}
            return
        print(f"executed    {name}  in {outcome['seconds']} s", flush=True)
        report[str(notebook.rel)] = outcome

    def finish_sample(item: sample_outputs.SampleOutput, outcome: tuple[dict, str | None]) -> None:
        record, error = outcome
        name = str(item.sample.relative_to(ROOT))
        if error:
            print(f"FAILED      {error}", file=sys.stderr)
            failures.append(name)
        else:
            print(f"ran         {name}  in {record['seconds']} s", flush=True)
        samples[name] = record

    # Notebooks run in worker processes (one kernel each), samples are subprocesses already.
    together = [(nb, key) for nb, key in stale if not run_alone(nb)]
    together_samples = [(item, key) for item, key in stale_samples if not item.run_alone]
    alone = [(nb, key) for nb, key in stale if run_alone(nb)]
    alone_samples = [(item, key) for item, key in stale_samples if item.run_alone]
    context = multiprocessing.get_context("spawn")
    with (
        concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=context) as kernels,
        concurrent.futures.ThreadPoolExecutor(max_workers=workers) as threads,
    ):
        slots = threading.Semaphore(workers)  # at most `workers` notebooks and samples at once, together

        def limited(function, *args):
            with slots:
                return function(*args)

        futures = {}
        for notebook, key in together:
            print(f"executing   {notebook.display} ...", flush=True)
            in_kernel = threads.submit(
                limited,
                lambda *a: kernels.submit(_execute_in_child, *a).result(),
                *_child_args(notebook, mode, key),
            )
            futures[in_kernel] = (finish_notebook, notebook)
        for item, key in together_samples:
            print(f"running     {item.sample.relative_to(ROOT)} ...", flush=True)
            futures[threads.submit(limited, sample_outputs.run_sample, item, mode, key)] = (
                finish_sample,
                item,
            )
        for future in concurrent.futures.as_completed(futures):
            finish, what = futures[future]
            finish(what, future.result())
        for notebook, key in alone:
            print(f"executing   {notebook.display} (alone: it {run_alone(notebook)}) ...", flush=True)
            finish_notebook(
                notebook, kernels.submit(_execute_in_child, *_child_args(notebook, mode, key)).result()
            )
        for item, key in alone_samples:
            print(
                f"running     {item.sample.relative_to(ROOT)} (alone: it measures {item.run_alone}) ...",
                flush=True,
            )
            finish_sample(item, sample_outputs.run_sample(item, mode, key))
    for notebook in notebooks:
        if report.get(str(notebook.rel), {}).get("status") != "passed":
            continue
        try:
            write_translations(notebook)
        except ExecutionFailed as error:
            print(f"FAILED      {error}", file=sys.stderr)
            failures.append(notebook.display)
            report[str(notebook.rel)] = {**report[str(notebook.rel)], "status": "failed"}
    _remove_orphans(notebooks)
    report["sample_outputs"] = dict(sorted(samples.items()))
    EXECUTED.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if failures:
        print(f"{len(failures)} notebook(s) or sample(s) failed: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _remove_orphans(notebooks: list[Notebook]) -> None:
    """Delete executed copies whose source notebook is gone."""
    keep = {nb.executed(lang) for nb in notebooks for lang in LANGUAGES}
    for path in EXECUTED.rglob("*.ipynb") if EXECUTED.exists() else []:
        if path not in keep:
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m portal.execute", description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="re-run every notebook, ignoring the cache")
    args = parser.parse_args(argv)
    try:
        return run(force=args.force)
    except ExecutionFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
