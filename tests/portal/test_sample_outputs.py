"""Sample outputs that pages include are produced by `make execute`, cached, and failures are named."""

from __future__ import annotations

import json

import pytest

from portal import execute

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
