"""`make execute`: the cache runs only what changed, failures name notebook and cell, translations get outputs.

Each execution starts a Jupyter kernel (about 2 s), so the notebooks are tiny and the tests few.
"""

from __future__ import annotations

import json

import nbformat
import pytest
from repo_files import code_cell, markdown_cell, write_notebook

from portal import execute, scaffold, translations
from portal.notebooks import Notebook

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("LMA_MODE", "quick")  # also restores whatever run() sets it to


def run(capsys, force: bool = False) -> tuple[int, str, str]:
    code = execute.run(force=force)
    out, err = capsys.readouterr()
    return code, out, err


def executing(out: str) -> list[str]:
    return sorted(line.split()[1] for line in out.splitlines() if line.startswith("executing"))


def outputs(path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code" for o in c["outputs"]]


def test_the_cache_runs_only_what_changed(repo, capsys, quick):
    a = write_notebook(repo / "notebooks/a.ipynb", [code_cell("print(1)")])
    write_notebook(repo / "notebooks/tuning/b.ipynb", [code_cell("print(2)")])
    executed_b = repo / "build/executed/tuning/b.ipynb"

    code, out, _ = run(capsys)
    assert code == 0
    assert executing(out) == ["notebooks/a.ipynb", "notebooks/tuning/b.ipynb"]
    assert outputs(repo / "build/executed/a.ipynb") == ["1\n"] and outputs(executed_b) == ["2\n"]
    report = json.loads((repo / "build/executed/report.json").read_text(encoding="utf-8"))
    assert sorted(report) == ["a.ipynb", "sample_outputs", "tuning/b.ipynb"]
    assert report["sample_outputs"] == {}
    assert {report[n]["status"] for n in ("a.ipynb", "tuning/b.ipynb")} == {"passed"}
    b_written = executed_b.stat().st_mtime_ns

    code, out, _ = run(capsys)
    assert code == 0 and executing(out) == []
    assert out.count("up to date") == 2

    write_notebook(a, [code_cell("print(3)")])
    code, out, _ = run(capsys)
    assert code == 0 and executing(out) == ["notebooks/a.ipynb"]
    assert "up to date  notebooks/tuning/b.ipynb" in out
    assert outputs(repo / "build/executed/a.ipynb") == ["3\n"]
    assert executed_b.stat().st_mtime_ns == b_written

    code, out, _ = run(capsys, force=True)
    assert code == 0 and executing(out) == ["notebooks/a.ipynb", "notebooks/tuning/b.ipynb"]


def test_a_failing_cell_is_named_with_its_traceback(repo, capsys, quick):
    cells = [
        markdown_cell("# Fails"),
        code_cell("x = 1", 1),
        code_cell("raise ValueError('jitter too high')", 2),
    ]
    write_notebook(repo / "notebooks/tuning/broken.ipynb", cells)

    code, _, err = run(capsys)

    assert code == 1
    assert "notebooks/tuning/broken.ipynb: cell 3 (code cell 2) raised an error" in err
    assert "ValueError" in err and "jitter too high" in err
    assert err.rstrip().endswith("1 notebook(s) or sample(s) failed: notebooks/tuning/broken.ipynb")
    assert not (repo / "build/executed/tuning/broken.ipynb").exists()
    report = json.loads((repo / "build/executed/report.json").read_text(encoding="utf-8"))
    assert report["tuning/broken.ipynb"]["status"] == "failed"


def test_a_failing_second_cell_is_cell_2(repo, capsys, quick):
    write_notebook(repo / "notebooks/broken.ipynb", [code_cell("x = 1"), code_cell("1 / 0", 1)])

    code, _, err = run(capsys)

    assert code == 1
    assert "notebooks/broken.ipynb: cell 2 (code cell 2) raised an error" in err
    assert "ZeroDivisionError" in err


def test_a_translation_gets_the_english_outputs_and_keeps_its_own_text(repo, capsys, quick):
    """The scaffolded notebook and its Chinese twin, as `make new-guide` writes them, execute cleanly."""
    english = scaffold.scaffold("notebook", "jitter")
    twin = scaffold.scaffold("notebook", "jitter", "zh")
    translated = json.loads(twin.read_text(encoding="utf-8"))
    translated["metadata"]["portal"]["page"]["title"] = "抖动"
    twin.write_text(json.dumps(translated, ensure_ascii=False), encoding="utf-8")
    notebook = Notebook(english.relative_to(repo / "notebooks"))

    code, out, err = run(capsys)

    assert (code, err) == (0, ""), err
    assert executing(out) == ["notebooks/tuning/jitter.ipynb"]
    executed, executed_twin = notebook.executed(), notebook.executed("zh")
    assert outputs(executed_twin) == outputs(executed)
    assert any("the conclusions hold" in text for text in outputs(executed_twin))
    zh = json.loads(executed_twin.read_text(encoding="utf-8"))
    assert "你将学到" in "".join(zh["cells"][0]["source"])
    page = zh["metadata"]["portal"]["page"]  # the Chinese page's own front matter, not the English one
    assert page["title"] == "抖动" and page["translated_from"] == translations.content_hash(english)
    assert zh["metadata"]["portal"]["execution"]["status"] == "passed"
    assert json.loads(twin.read_text(encoding="utf-8"))["cells"][1]["outputs"] == []  # source left clean


def test_a_translation_with_different_code_is_rejected(repo, capsys, quick):
    write_notebook(repo / "notebooks/nb.ipynb", [markdown_cell("# Page"), code_cell("print(1)", 1)])
    write_notebook(repo / "notebooks/nb.zh.ipynb", [markdown_cell("# 页面"), code_cell("print('一')", 1)])

    code, out, err = run(capsys)

    assert code == 1
    assert executing(out) == ["notebooks/nb.ipynb"]  # the English notebook itself ran
    assert "notebooks/nb.zh.ipynb: cell 2: code differs from the English notebook" in err
    assert not (repo / "build/executed/nb.zh.ipynb").exists()
    report = json.loads((repo / "build/executed/report.json").read_text(encoding="utf-8"))
    assert report["nb.ipynb"]["status"] == "failed"

    write_notebook(repo / "notebooks/nb.zh.ipynb", [markdown_cell("# 页面"), code_cell("print(1)", 1)])
    code, out, err = run(capsys)
    assert (code, err) == (0, "")
    assert executing(out) == []  # fixing the translation does not re-run the English notebook
    assert outputs(repo / "build/executed/nb.zh.ipynb") == ["1\n"]


def test_a_translation_with_other_cells_is_rejected(repo):
    english = write_notebook(repo / "notebooks/nb.ipynb", [code_cell("print(1)")])
    twin = write_notebook(
        repo / "notebooks/nb.zh.ipynb", [markdown_cell("# 多了一个单元格"), code_cell("print(1)", 1)]
    )

    with pytest.raises(
        execute.ExecutionFailed, match=r"notebooks/nb.zh.ipynb: cells: .* \(2 cells here, 1 there\)"
    ):
        execute.check_same_code(nbformat.read(english, as_version=4), nbformat.read(twin, as_version=4), twin)


def test_an_unknown_mode_is_refused(monkeypatch, capsys):
    monkeypatch.setenv("LMA_MODE", "huge")

    assert execute.main([]) == 2
    assert capsys.readouterr().err == "error: LMA_MODE='huge': must be one of quick, full\n"


def test_notebooks_run_side_by_side_and_the_ones_that_measure_cpu_time_run_alone_after(
    repo, capsys, quick, monkeypatch
):
    monkeypatch.setenv("LMA_JOBS", "2")
    # Each notebook records when its cell ran; with two workers the two 5 s cells overlap.
    times = repo / "times"
    times.mkdir()
    cell = "import time; start = time.time(); time.sleep(5); open({path!r}, 'w').write(f'{{start}} {{time.time()}}')"
    for name in ("a", "b"):
        write_notebook(repo / f"notebooks/{name}.ipynb", [code_cell(cell.format(path=str(times / name)))])
    alone = write_notebook(repo / "notebooks/c.ipynb", [code_cell("print('c')")])
    nb = json.loads(alone.read_text(encoding="utf-8"))
    nb["metadata"].setdefault("portal", {})["run_alone"] = "measures CPU time"
    alone.write_text(json.dumps(nb), encoding="utf-8")
    code, out, err = run(capsys)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith(("executing", "executed"))]
    assert lines[-2] == "executing   notebooks/c.ipynb (alone: it measures CPU time) ..."
    assert lines[-1].startswith("executed    notebooks/c.ipynb")
    (a_start, a_end), (b_start, b_end) = ([float(x) for x in (times / n).read_text().split()] for n in "ab")
    assert a_start < b_end and b_start < a_end, "the two notebooks ran one after the other"


def test_lma_jobs_must_be_a_whole_number(repo, capsys, quick, monkeypatch):
    monkeypatch.setenv("LMA_JOBS", "many")
    assert execute.main([]) == 2
    assert "LMA_JOBS='many': must be a whole number of at least 1" in capsys.readouterr().err
