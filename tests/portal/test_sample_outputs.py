"""Sample outputs that pages include are produced by `make execute`, cached, and failures are named."""

from __future__ import annotations

import json

import pytest

from portal import execute, sample_outputs

PAGE = 'Output:\n\n```text\n--8<-- "build/outputs/demo/hello.txt"\n```\n'


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("LMA_MODE", "quick")


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_an_included_output_is_run_once_then_cached_until_the_sample_changes(repo, capsys, quick):
    write(repo / "docs/page.md", PAGE)
    write(repo / "docs/page.zh.md", PAGE)  # included twice, run once
    sample = repo / "samples/demo/hello.py"
    write(sample, "import os\nprint('hello', os.environ['LMA_MODE'])\n")

    assert execute.run() == 0
    out = capsys.readouterr().out
    assert out.count("running     samples/demo/hello.py") == 1
    assert (repo / "build/outputs/demo/hello.txt").read_text(encoding="utf-8") == "hello quick\n"
    report = json.loads((repo / "build/executed/report.json").read_text(encoding="utf-8"))
    assert report["sample_outputs"]["samples/demo/hello.py"]["status"] == "passed"

    assert execute.run() == 0
    assert "up to date  samples/demo/hello.py" in capsys.readouterr().out

    write(sample, "print('changed')\n")
    assert execute.run() == 0
    assert "running     samples/demo/hello.py" in capsys.readouterr().out
    assert (repo / "build/outputs/demo/hello.txt").read_text(encoding="utf-8") == "changed\n"


def test_a_failing_sample_fails_the_run_and_leaves_no_stale_output(repo, capsys, quick):
    write(repo / "docs/page.md", PAGE)
    sample = repo / "samples/demo/hello.py"
    write(sample, "print('ok')\n")
    assert execute.run() == 0
    capsys.readouterr()

    write(sample, "raise SystemExit('no microphone here')\n")
    assert execute.run() == 1
    err = capsys.readouterr().err
    assert "samples/demo/hello.py: exit code 1" in err and "no microphone here" in err
    assert not (repo / "build/outputs/demo/hello.txt").exists()


def test_an_include_of_a_missing_sample_names_the_page(repo, capsys, quick):
    write(repo / "docs/guide/page.md", PAGE)
    assert execute.run() == 1
    out = capsys.readouterr().err
    assert (
        "docs/guide/page.md: includes build/outputs/demo/hello.txt, but samples/demo/hello.py does not exist"
        in out
    )


def test_a_sample_in_a_folder_of_its_own_reruns_when_any_file_there_changes(repo, capsys, quick):
    write(
        repo / "docs/page.md",
        'Output:\n\n```text\n--8<-- "build/outputs/demo/app/app.txt"\n```\n',
    )
    write(repo / "samples/demo/app/app.py", "print(open('samples/demo/app/page.html').read())\n")
    write(repo / "samples/demo/app/page.html", "<p>one</p>")
    assert execute.run() == 0
    capsys.readouterr()
    write(repo / "samples/demo/app/page.html", "<p>two</p>")
    assert execute.run() == 0
    assert "running     samples/demo/app/app.py" in capsys.readouterr().out
    assert (repo / "build/outputs/demo/app/app.txt").read_text(encoding="utf-8") == "<p>two</p>\n"


def test_a_sample_reruns_when_the_data_or_module_it_reads_changes() -> None:
    from portal.sample_outputs import SampleOutput, sample_files

    triage = [p.name for p in sample_files(SampleOutput("support/triage"))]
    assert "triage.py" in triage and "clean.webrtc-internals.json" in triage
    assert "runbook_calls.py" in [p.name for p in sample_files(SampleOutput("support/reproduce"))]


def test_a_test_reads_the_run_the_page_shows_and_starts_one_only_when_it_is_stale(repo, capsys, quick):
    write(repo / "docs/page.md", PAGE)
    sample = repo / "samples/demo/hello.py"
    write(sample, "import time\nprint('ran at', time.monotonic_ns())\n")
    assert execute.run() == 0
    shown = (repo / "build/outputs/demo/hello.txt").read_text(encoding="utf-8")

    # make execute's run, not a new one
    assert sample_outputs.page_run("demo/hello", "quick") == (0, shown, "")

    write(sample, "print('changed')\n")
    assert sample_outputs.page_run("demo/hello", "quick") == (0, "changed\n", "")
    capsys.readouterr()
    assert execute.run() == 0  # the test's run is recorded for the page
    assert "up to date  samples/demo/hello.py" in capsys.readouterr().out

    write(sample, "raise SystemExit('no microphone here')\n")
    code, out, err = sample_outputs.page_run("demo/hello", "quick")
    assert code == 1 and out == "" and "no microphone here" in err
    assert not (repo / "build/outputs/demo/hello.txt").exists()


def test_a_scenario_runner_writes_its_headlines_beside_its_output_and_a_rerun_replaces_them(
    repo, monkeypatch, quick
):
    monkeypatch.setattr(sample_outputs, "WRITES_HEADLINES", {"demo/hello"})
    write(repo / "docs/page.md", PAGE)
    sample = repo / "samples/demo/hello.py"
    # Like the real runners: --json PATH refuses a file that exists.
    runner = (
        "import pathlib, sys\n"
        "path = pathlib.Path(sys.argv[sys.argv.index('--json') + 1])\n"
        "if path.exists():\n    sys.exit(f'{path} exists')\n"
        "path.write_text('{\"n\": %d}')\nprint('headline figures written to', path)\n"
    )
    write(sample, runner % 1)
    assert execute.run() == 0
    headlines = repo / "build/outputs/demo/hello.headlines.json"
    assert json.loads(headlines.read_text(encoding="utf-8")) == {"n": 1}
    assert "written to build/outputs/demo/hello.headlines.json" in (
        repo / "build/outputs/demo/hello.txt"
    ).read_text(encoding="utf-8")

    write(sample, runner % 2)
    assert execute.run() == 0
    assert json.loads(headlines.read_text(encoding="utf-8")) == {"n": 2}

    headlines.unlink()  # a record without its headline file is not up to date
    assert sample_outputs.page_run("demo/hello", "quick")[0] == 0 and headlines.exists()
