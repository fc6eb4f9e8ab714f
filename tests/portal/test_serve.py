"""portal.serve (`make serve`): what has never run gets a stand-in so the site can be served at once; a stand-in
carries no execution record, so the next `make execute` runs it for real and replaces it."""

from __future__ import annotations

import json

import pytest
from repo_files import code_cell, write_notebook

from portal import execute, serve

PAGE = 'Output:\n\n```text\n--8<-- "build/outputs/demo/hello.txt"\n```\n'


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setenv("LMA_MODE", "quick")


def test_stand_ins_then_the_real_runs(repo, quick, capsys):
    write_notebook(repo / "notebooks/a.ipynb", [code_cell("print(6 * 7)")])
    (repo / "docs/page.md").write_text(PAGE, encoding="utf-8")
    (repo / "samples/demo").mkdir(parents=True)
    (repo / "samples/demo/hello.py").write_text("print('hello')\n", encoding="utf-8")

    assert serve.write_stand_ins("quick") == 2
    stand_in = json.loads((repo / "build/executed/a.ipynb").read_text(encoding="utf-8"))
    assert stand_in["metadata"]["portal"]["execution"] == {"status": "running"}  # no badge, no cache key
    assert "Still running" in "".join(stand_in["cells"][0]["source"])
    assert "still running" in (repo / "build/outputs/demo/hello.txt").read_text(encoding="utf-8")

    assert execute.run() == 0
    executed = json.loads((repo / "build/executed/a.ipynb").read_text(encoding="utf-8"))
    assert executed["metadata"]["portal"]["execution"]["status"] == "passed"
    assert "".join(executed["cells"][0]["outputs"][0]["text"]) == "42\n"
    assert (repo / "build/outputs/demo/hello.txt").read_text(encoding="utf-8") == "hello\n"
    assert serve.write_stand_ins("quick") == 0  # everything is up to date: nothing to run beside the server


def test_a_stand_in_output_holds_every_section_a_page_includes() -> None:
    from portal import serve

    text = serve._stand_in_output("support/reproduce")
    for section in ("high-rtt", "cannot-connect", "video-freezes"):
        assert f"# --8<-- [start:{section}]" in text and f"# --8<-- [end:{section}]" in text
