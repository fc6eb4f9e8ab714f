"""rtclab.headlines: the JSON a scenario runner writes with --json and the benchmark reads back."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab.headlines import Headline, HeadlineFileError, read_headlines, write_headlines

# JSON files are UTF-8: any text but lone surrogates, which no UTF-8 file can hold
TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
NUMBER = st.floats(allow_nan=False, allow_infinity=False)
HEADLINES = st.builds(
    Headline,
    metric=TEXT,
    value=NUMBER | st.just(math.nan),
    unit=TEXT,
    target=st.none() | NUMBER,
    better=st.sampled_from(["lower", "higher"]),
    source=TEXT,
    conditions=TEXT,
)
_names = itertools.count()


def fields(headline: Headline) -> tuple:
    """The headline's fields, NaN replaced by a marker so that equal files compare equal."""
    return tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in vars(headline).values())


def valid_payload() -> dict:
    return {
        "scenario": "ai-agent",
        "mode": "quick",
        "headlines": [
            {
                "metric": "end of speech -> first agent audio",
                "value": 812.5,
                "unit": "ms",
                "target": 600,
                "better": "lower",
                "source": "Retell AI",
                "conditions": "stand-in LLM",
            }
        ],
    }


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# --- writing and reading back ----------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(scenario=TEXT, mode=st.sampled_from(["quick", "full"]), headlines=st.lists(HEADLINES, max_size=6))
def test_what_is_written_reads_back_the_same(tmp_path, scenario, mode, headlines):
    path = tmp_path / f"run{next(_names)}.json"  # a new file each example: existing ones are never replaced
    write_headlines(path, scenario, mode, headlines)
    json.loads(path.read_text(encoding="utf-8"))  # strict JSON, whatever the text and values
    read_scenario, read_mode, read = read_headlines(path)
    assert (read_scenario, read_mode) == (scenario, mode)
    assert [fields(h) for h in read] == [fields(h) for h in headlines]


def test_a_value_that_was_not_measured_is_null_in_the_file_and_nan_again_when_read(tmp_path):
    path = tmp_path / "run.json"
    write_headlines(path, "voice-room", "quick", [Headline("join", math.nan, "ms", target=5000.0)])
    raw = path.read_text(encoding="utf-8")
    assert "NaN" not in raw  # JSON has no NaN: a strict parser would refuse the file
    assert json.loads(raw)["headlines"][0]["value"] is None
    (headline,) = read_headlines(path)[2]
    assert math.isnan(headline.value) and headline.target == 5000.0
    assert headline.meets_target() is None and headline.margin() is None


def test_an_existing_file_is_never_overwritten(tmp_path):
    path = tmp_path / "earlier.json"
    path.write_text("somebody's earlier result\n", encoding="utf-8")
    with pytest.raises(FileExistsError):
        write_headlines(path, "video-1v1", "full", [Headline("first frame", 120.0, "ms")])
    assert path.read_text(encoding="utf-8") == "somebody's earlier result\n"


def test_missing_optional_fields_take_their_defaults(tmp_path):
    payload = {"scenario": "s", "mode": "quick", "headlines": [{"metric": "m", "value": 3, "unit": "ms"}]}
    (headline,) = read_headlines(write_json(tmp_path / "run.json", payload))[2]
    assert headline == Headline("m", 3.0, "ms")
    assert isinstance(headline.value, float)
    del payload["headlines"][0]["value"]  # a value left out reads like null: not measured
    (headline,) = read_headlines(write_json(tmp_path / "again.json", payload))[2]
    assert math.isnan(headline.value)


# --- bad files: each names the file and the field ------------------------------------------------------------


def _set(path: list, value: object):
    def mutate(data: dict) -> dict:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return data

    return mutate


def _drop(path: list):
    def mutate(data: dict) -> dict:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
        return data

    return mutate


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (_drop(["scenario"]), "scenario"),
        (_set(["scenario"], 7), "scenario"),
        (_drop(["mode"]), "mode"),
        (_set(["mode"], None), "mode"),
        (_drop(["headlines"]), "headlines"),
        (_set(["headlines"], {"metric": "x"}), "headlines"),
        (_set(["headlines", 0], "812 ms"), "headlines[0]"),
        (_drop(["headlines", 0, "metric"]), "headlines[0].metric"),
        (_set(["headlines", 0, "metric"], 1), "headlines[0].metric"),
        (_drop(["headlines", 0, "unit"]), "headlines[0].unit"),
        (_set(["headlines", 0, "unit"], ["ms"]), "headlines[0].unit"),
        (_set(["headlines", 0, "value"], "812"), "headlines[0].value"),
        (_set(["headlines", 0, "target"], "600"), "headlines[0].target"),
        (_set(["headlines", 0, "target"], [600]), "headlines[0].target"),
        (_set(["headlines", 0, "better"], "smaller"), "headlines[0].better"),
        (_set(["headlines", 0, "better"], None), "headlines[0].better"),
    ],
)
def test_each_bad_field_is_named_with_the_file(tmp_path, mutate, field):
    path = write_json(tmp_path / "run.json", mutate(valid_payload()))
    with pytest.raises(HeadlineFileError) as refused:
        read_headlines(path)
    message = str(refused.value)
    assert message.startswith(f"{path}: {field}:"), message


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot read"),
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('"ai-agent"', "expected a JSON object"),
    ],
)
def test_a_missing_or_unreadable_file_is_named(tmp_path, content, words):
    path = tmp_path / "run.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(HeadlineFileError) as refused:
        read_headlines(path)
    assert str(refused.value).startswith(f"{path}: ") and words in str(refused.value)


def test_the_error_is_a_value_error():
    assert issubclass(HeadlineFileError, ValueError)  # callers catching ValueError see it too


# --- against the target ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "target", "better", "meets", "margin"),
    [
        (450.0, 600.0, "lower", True, 0.25),
        (600.0, 600.0, "lower", True, 0.0),
        (750.0, 600.0, "lower", False, -0.25),
        (4.2, 3.5, "higher", True, 0.2),
        (3.5, 3.5, "higher", True, 0.0),
        (2.8, 3.5, "higher", False, -0.2),
        (-5.0, -4.0, "lower", True, 0.25),  # a negative target: the margin is relative to its size
        (-3.0, -4.0, "higher", True, 0.25),
    ],
)
def test_meets_target_and_margin(value, target, better, meets, margin):
    headline = Headline("m", value, "ms", target=target, better=better)
    assert headline.meets_target() is meets
    assert headline.margin() == pytest.approx(margin)


def test_no_target_no_value_or_a_zero_target():
    assert Headline("m", 1.0, "ms").meets_target() is None
    assert Headline("m", 1.0, "ms").margin() is None
    assert Headline("m", math.nan, "ms", target=1.0).meets_target() is None
    assert Headline("m", math.nan, "ms", target=1.0, better="higher").margin() is None
    zero = Headline("m", -1.0, "ms", target=0.0)
    assert zero.meets_target() is True and zero.margin() is None  # no fraction of nothing


@settings(max_examples=300, deadline=None)
@given(
    value=st.floats(-1e6, 1e6),
    target=st.floats(-1e6, 1e6).filter(lambda t: abs(t) >= 1e-3),
    better=st.sampled_from(["lower", "higher"]),
)
def test_the_margin_is_on_the_good_side_exactly_when_the_target_is_met(value, target, better):
    headline = Headline("m", value, "ms", target=target, better=better)
    margin = headline.margin()
    assert headline.meets_target() is (margin >= 0)
    assert margin == pytest.approx(abs(value - target) / abs(target) * (1 if margin >= 0 else -1))
    # a better value never has a smaller margin
    nudged = value - 1.0 if better == "lower" else value + 1.0
    assert Headline("m", nudged, "ms", target=target, better=better).margin() > margin


def test_infinite_figures_are_written_as_strict_json(tmp_path: Path) -> None:
    path = tmp_path / "inf.json"
    write_headlines(path, "demo", "quick", [Headline("delay", math.inf, "ms", math.nan)])
    text = path.read_text(encoding="utf-8")
    assert "Infinity" not in text and "NaN" not in text
    _, _, (headline,) = read_headlines(path)
    assert math.isnan(headline.value) and headline.target is None


def test_json_argument_refuses_an_existing_file_in_one_line(tmp_path: Path, capsys) -> None:
    import argparse

    from rtclab.headlines import new_json_path

    existing = tmp_path / "old.json"
    existing.write_text("{}", encoding="utf-8")
    parser = argparse.ArgumentParser(prog="runner")
    parser.add_argument("--json", type=new_json_path)
    assert parser.parse_args(["--json", str(tmp_path / "new.json")]).json == tmp_path / "new.json"
    for bad, why in ((existing, "exists"), (tmp_path / "nowhere" / "x.json", "no directory")):
        with pytest.raises(SystemExit) as stop:
            parser.parse_args(["--json", str(bad)])
        assert stop.value.code == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith("runner: error: argument --json:") and why in error
    assert existing.read_text(encoding="utf-8") == "{}"
