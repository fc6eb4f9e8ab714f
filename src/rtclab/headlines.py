"""Headline figures of a scenario run, written as JSON for the scenario benchmark (`make bench-scenarios`).

Each scenario sample measures many things; a few of them are what a product team is judged on (time to first
agent audio, bullet-comment delay, mouth-to-ear delay...). A sample given ``--json PATH`` writes those few with
:func:`write_headlines`, each next to its published target; the benchmark runs every sample, reads the files with
:func:`read_headlines` and prints one table. The file never replaces one that exists: it may be somebody's
earlier result.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, TypeVar

Better = Literal["lower", "higher"]
T = TypeVar("T")


class HeadlineFileError(ValueError):
    """A headline file that is missing, unreadable or has a bad field; the message names the file and field."""


@dataclass(frozen=True)
class Headline:
    """One measured figure and the published target it is compared with.

    Attributes:
        metric: what was measured, e.g. ``"end of speech -> first agent audio"``.
        value: the measured value (NaN when the run could not measure it).
        unit: the unit of `value` and `target`, e.g. ``"ms"`` or ``"%"``.
        target: the published target in the same unit, or None when there is none to compare with.
        better: whether lower or higher values are better.
        source: who publishes the target and where, e.g. ``"Agora signaling: < 100 ms"`` (a URL belongs on the
            page that cites it).
        conditions: what the value depends on and a reader must know, e.g. ``"stand-in LLM, 300 ms first token"``.
    """

    metric: str
    value: float
    unit: str
    target: float | None = None
    better: Better = "lower"
    source: str = ""
    conditions: str = ""

    def meets_target(self) -> bool | None:
        """True when the value meets the target, False when not, None without a target or a value."""
        if self.target is None or math.isnan(self.value):
            return None
        return self.value <= self.target if self.better == "lower" else self.value >= self.target

    def margin(self) -> float | None:
        """How far the value is on the good side of the target, as a fraction of the target (negative: missed)."""
        if self.target is None or math.isnan(self.value) or self.target == 0:
            return None
        gain = self.target - self.value if self.better == "lower" else self.value - self.target
        return gain / abs(self.target)


def new_json_path(text: str) -> Path:
    """An argparse ``type`` for ``--json PATH``: a file that does not exist yet, in a folder that does.

    Checked when the arguments are read, before a run of minutes, so a mistake costs nothing, and a file
    that exists (somebody's earlier result) is never overwritten::

        parser.add_argument("--json", type=new_json_path, metavar="PATH", help="...")
    """
    path = Path(text)
    if path.exists() or path.is_symlink():
        raise argparse.ArgumentTypeError(f"{path} exists; choose a new file (it is never overwritten)")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"no directory {path.parent}")
    return path


def write_headlines(path: Path, scenario: str, mode: str, headlines: list[Headline]) -> None:
    """Write a scenario's headline figures to a new JSON file.

    Raises:
        FileExistsError: `path` exists (it is never overwritten).
    """
    payload = {"scenario": scenario, "mode": mode, "headlines": [_encode(h) for h in headlines]}
    with open(path, "x", encoding="utf-8") as out:  # "x": refuse to replace an existing file
        json.dump(payload, out, indent=2, ensure_ascii=False)
        out.write("\n")


def read_headlines(path: Path) -> tuple[str, str, list[Headline]]:
    """Read a file written by :func:`write_headlines`: (scenario, mode, headlines).

    Raises:
        HeadlineFileError: the file is missing, not JSON, or a field is missing or has the wrong type.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise HeadlineFileError(f"{path}: cannot read: {error.strerror}") from None
    except ValueError as error:
        raise HeadlineFileError(f"{path}: not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise HeadlineFileError(f"{path}: expected a JSON object")
    scenario = _field(path, data, "scenario", str)
    mode = _field(path, data, "mode", str)
    items = _field(path, data, "headlines", list)
    headlines = []
    for index, item in enumerate(items):
        where = f"headlines[{index}]"
        if not isinstance(item, dict):
            raise HeadlineFileError(f"{path}: {where}: expected an object")
        value = item.get("value")
        target = item.get("target")
        better = item.get("better", "lower")
        if not isinstance(value, (int, float)) and value is not None:
            raise HeadlineFileError(f"{path}: {where}.value: expected a number or null")
        if not isinstance(target, (int, float)) and target is not None:
            raise HeadlineFileError(f"{path}: {where}.target: expected a number or null")
        if better not in ("lower", "higher"):
            raise HeadlineFileError(f"{path}: {where}.better: expected 'lower' or 'higher'")
        headlines.append(
            Headline(
                metric=_field(path, item, "metric", str, where),
                value=float("nan") if value is None else float(value),
                unit=_field(path, item, "unit", str, where),
                target=None if target is None else float(target),
                better=better,
                source=str(item.get("source", "")),
                conditions=str(item.get("conditions", "")),
            )
        )
    return scenario, mode, headlines


def _encode(headline: Headline) -> dict[str, object]:
    data = asdict(headline)
    for key in ("value", "target"):
        number = data[key]
        if isinstance(number, float) and not math.isfinite(number):
            data[key] = None  # strict JSON has no NaN or Infinity: "not measured" / "no target"
    return data


def _field(path: Path, data: dict[str, object], name: str, kind: type[T], where: str = "") -> T:
    label = f"{where}.{name}" if where else name
    if name not in data:
        raise HeadlineFileError(f"{path}: {label}: missing")
    if not isinstance(data[name], kind):
        raise HeadlineFileError(f"{path}: {label}: expected {kind.__name__}")
    value: T = data[name]  # type: ignore[assignment]  # checked just above
    return value
