"""Named network profiles (rate, delay, jitter, loss per direction, plus blackouts), each with its sources,
and a strict loader for custom profile files in YAML or JSON.

A profile file looks like this (the built-ins live in ``rtclab/data/profiles.yaml``)::

    profiles:
      - name: my-office-wifi
        description: What we measured on the office guest Wi-Fi.
        uplink: {rate_kbps: 2000, delay_ms: 15, jitter_ms: 5, loss: 0.01}
        downlink: {rate_kbps: 8000, delay_ms: 15, jitter_ms: 5, loss: 0, burst: {p: 0.01, r: 0.5}}
        blackouts: [{start_s: 20, duration_s: 2}]          # optional
        sources:
          - {name: our measurement, numbers: median of 50 runs of a loopback probe, url: https://example.com}
        assumed: [uplink.jitter_ms]                          # optional: numbers no source gives
        notes: anything else worth knowing                   # optional

Per direction: ``rate_kbps`` (kbit/s, null for no cap), ``delay_ms`` (one-way), ``jitter_ms`` (passed to
`rtclab.impair` as the standard deviation of a gaussian), ``loss`` (independent random loss, 0-1) and
optionally ``burst`` (Gilbert-Elliott ``p``, ``r``: mean loss ``p/(p+r)``, mean burst ``1/r`` packets), which
replaces ``loss`` (so ``loss`` must then be 0). A bad file raises `ProfileError` with one line naming
the file and the field, e.g. ``my.yaml: profiles[2].downlink.loss: 1.5 is not a fraction from 0 to 1``.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from rtclab.impair import Impairment

__all__ = [
    "Blackout",
    "Burst",
    "Link",
    "Profile",
    "ProfileError",
    "Source",
    "get_profile",
    "load_profile_file",
    "load_profiles",
    "parse_profiles",
]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A profile name: letters, digits, ``.``, ``_``, ``-``, at most 64 characters, so it works on a command line."""

ASSUMABLE_FIELDS = frozenset(
    [
        f"{d}.{f}"
        for d in ("uplink", "downlink")
        for f in ("rate_kbps", "delay_ms", "jitter_ms", "loss", "burst")
    ]
    + ["blackouts"]
)
"""Field paths a profile may list under ``assumed``."""


class ProfileError(ValueError):
    """A profile file or name that cannot be used; ``str()`` is one line naming the file and the field.

    Attributes:
        source: The file (or ``"<text>"``) the problem is in, or None when no file is involved.
        field: Path of the offending field, such as ``profiles[2].downlink.loss``, or None.
        problem: What is wrong, without the file and field.
    """

    def __init__(self, problem: str, *, source: str | None = None, field: str | None = None) -> None:
        self.source = source
        self.field = field
        self.problem = problem
        parts = [part for part in (source, field, problem) if part]
        super().__init__(": ".join(parts).replace("\n", " "))


@dataclass(frozen=True)
class Burst:
    """Gilbert-Elliott bursty loss of one direction: per packet, good->bad with ``p``, bad->good with ``r``.

    Every packet sent in the bad state is lost (``rtclab.impair.GilbertElliott`` with its defaults).

    Attributes:
        p: Probability of entering the bad state after a packet, in (0, 1].
        r: Probability of leaving it after a packet, in (0, 1].
    """

    p: float
    r: float

    @property
    def mean_loss(self) -> float:
        """Long-run share of packets lost, ``p / (p + r)``."""
        return self.p / (self.p + self.r)

    @property
    def mean_burst_packets(self) -> float:
        """Mean number of packets lost in a row, ``1 / r``."""
        return 1 / self.r

    @property
    def burst_ratio(self) -> float:
        """ITU-T G.107 BurstR of this two-state model, ``1 / (p + r)`` (1 means random loss)."""
        return 1 / (self.p + self.r)


@dataclass(frozen=True)
class Link:
    """What one direction of a profile does to packets.

    Attributes:
        rate_kbps: Bottleneck rate in kbit/s, or None for no cap.
        delay_ms: One-way delay in ms.
        jitter_ms: Delay variation in ms.
        loss: Independent random loss, 0-1 (0 when ``burst`` is set).
        burst: Bursty loss used instead of ``loss``, or None.
    """

    rate_kbps: float | None
    delay_ms: float
    jitter_ms: float
    loss: float
    burst: Burst | None = None

    @property
    def mean_loss(self) -> float:
        """Long-run loss of this direction: the burst model's mean if there is one, else ``loss``."""
        return self.burst.mean_loss if self.burst is not None else self.loss


@dataclass(frozen=True)
class Blackout:
    """A stretch during which nothing gets through in either direction (a handover, a tunnel).

    Attributes:
        start_s: Seconds after the impairment starts.
        duration_s: Length in seconds.
    """

    start_s: float
    duration_s: float


@dataclass(frozen=True)
class Source:
    """Where a profile's numbers come from.

    Attributes:
        name: Who published them and in what (tool, file, report, date).
        numbers: The numbers as the source gives them and what they mean.
        url: Where to check, or None (allowed in custom files, not in the built-ins).
    """

    name: str
    numbers: str
    url: str | None = None


@dataclass(frozen=True)
class Profile:
    """A named network condition with its numbers and their sources.

    Attributes:
        name: Short name (see `NAME_PATTERN`).
        description: One sentence saying what the profile stands for.
        uplink: What the user sends goes through this.
        downlink: What the user receives goes through this.
        sources: Where the numbers come from (at least one).
        blackouts: Stretches with no connectivity in either direction.
        assumed: Field paths (``"uplink.jitter_ms"``, ``"blackouts"`` ...) whose values no source gives.
        notes: How the numbers were derived and what was assumed, in words.
    """

    name: str
    description: str
    uplink: Link
    downlink: Link
    sources: tuple[Source, ...]
    blackouts: tuple[Blackout, ...] = ()
    assumed: tuple[str, ...] = ()
    notes: str = ""

    @property
    def rtt_ms(self) -> float:
        """Round-trip time of the profile: uplink plus downlink one-way delay, in ms."""
        return self.uplink.delay_ms + self.downlink.delay_ms

    def uplink_impairment(self, seed: int = 0) -> Impairment:
        """The `rtclab.impair.Impairment` for what the user sends.

        Args:
            seed: Seed of the random draws. Give the two directions different seeds for independent drops.

        Returns:
            An impairment with this direction's numbers and the profile's blackouts.
        """
        return self._impairment(self.uplink, seed)

    def downlink_impairment(self, seed: int = 0) -> Impairment:
        """The `rtclab.impair.Impairment` for what the user receives.

        Args:
            seed: Seed of the random draws. Give the two directions different seeds for independent drops.

        Returns:
            An impairment with this direction's numbers and the profile's blackouts.
        """
        return self._impairment(self.downlink, seed)

    def _impairment(self, link: Link, seed: int) -> Impairment:
        # Imported here so that profiles can be read (and the CLI can list them) without the network code.
        from rtclab import impair

        return impair.Impairment(
            delay_ms=float(link.delay_ms),
            jitter_ms=float(link.jitter_ms),
            loss=float(link.loss),
            burst=impair.GilbertElliott(p=link.burst.p, r=link.burst.r) if link.burst else None,
            rate_kbps=None if link.rate_kbps is None else float(link.rate_kbps),
            blackouts=tuple(impair.Blackout(b.start_s, b.duration_s) for b in self.blackouts),
            seed=seed,
        )

    def to_dict(self) -> dict[str, Any]:
        """The profile as plain data in the file format (``parse_profiles`` reads it back unchanged)."""

        def link(value: Link) -> dict[str, Any]:
            data: dict[str, Any] = {
                "rate_kbps": value.rate_kbps,
                "delay_ms": value.delay_ms,
                "jitter_ms": value.jitter_ms,
                "loss": value.loss,
            }
            if value.burst is not None:
                data["burst"] = {"p": value.burst.p, "r": value.burst.r}
            return data

        data: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "uplink": link(self.uplink),
            "downlink": link(self.downlink),
            "sources": [
                {"name": s.name, "numbers": s.numbers, **({"url": s.url} if s.url is not None else {})}
                for s in self.sources
            ],
        }
        if self.blackouts:
            data["blackouts"] = [{"start_s": b.start_s, "duration_s": b.duration_s} for b in self.blackouts]
        if self.assumed:
            data["assumed"] = list(self.assumed)
        if self.notes:
            data["notes"] = self.notes
        return data


# --- reading files -----------------------------------------------------------------------------------------


class _DuplicateKeyError(yaml.YAMLError):
    def __init__(self, key: object, mark: yaml.Mark | None) -> None:
        super().__init__(f"duplicate key {_show(key)}")
        self.problem_mark = mark


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark
            ) from None
        if key in mapping:
            raise _DuplicateKeyError(key, key_node.start_mark)
        mapping[key] = loader.construct_object(value_node, deep=True)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"not valid YAML: {where}{problem}".split())


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    mapping: dict[str, Any] = {}
    for key, value in pairs:
        if key in mapping:
            raise ValueError(f"duplicate key {_show(key)}")
        mapping[key] = value
    return mapping


def _decode(text: str, source: str, fmt: str) -> Any:
    try:
        if fmt == "json":
            try:
                return json.loads(text, object_pairs_hook=_json_pairs)
            except json.JSONDecodeError as error:
                raise ProfileError(
                    f"not valid JSON: line {error.lineno}, column {error.colno}: {error.msg}", source=source
                ) from None
            except ValueError as error:  # a duplicate key, from _json_pairs
                raise ProfileError(f"not valid JSON: {error}", source=source) from None
        try:
            return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
        except yaml.YAMLError as error:
            raise ProfileError(_yaml_problem(error), source=source) from None
    except RecursionError:
        raise ProfileError("nested too deeply to be a profile file", source=source) from None


def parse_profiles(text: str, *, source: str = "<text>", fmt: str = "yaml") -> list[Profile]:
    """Parse and check profiles given as text.

    Args:
        text: The file contents: a mapping with a ``profiles`` list (and optionally ``version: 1``).
        source: Name used in error messages (a file name).
        fmt: ``"yaml"`` (the default; also reads JSON) or ``"json"``.

    Returns:
        The profiles, in file order.

    Raises:
        ProfileError: On any problem, with a one-line message naming ``source`` and the field.
    """
    if fmt not in ("yaml", "json"):
        raise ValueError("fmt must be 'yaml' or 'json'")
    data = _decode(text, source, fmt)
    return _Checker(source).document(data)


def load_profile_file(path: str | Path) -> list[Profile]:
    """Read and check a profile file; the file is only read, never written.

    Args:
        path: A ``.yaml``/``.yml`` or ``.json`` file (any other suffix is read as YAML, a superset of JSON).

    Returns:
        The profiles in the file, in file order.

    Raises:
        ProfileError: If the file cannot be read or is not a valid profile file; the one-line message names
            the file and the field.
    """
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ProfileError(f"cannot read the file: {error.strerror or error}", source=source) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ProfileError("not a text file (not UTF-8)", source=source) from None
    fmt = "json" if path.suffix.lower() == ".json" else "yaml"
    return parse_profiles(text, source=source, fmt=fmt)


@lru_cache(maxsize=1)
def _builtin_profiles() -> tuple[Profile, ...]:
    data = resources.files("rtclab").joinpath("data/profiles.yaml")
    return tuple(parse_profiles(data.read_text(encoding="utf-8"), source="rtclab/data/profiles.yaml"))


def load_profiles(path: str | Path | None = None) -> dict[str, Profile]:
    """Profiles by name: the built-in ones, or those of a file.

    Args:
        path: A profile file, or None for the built-ins (``rtclab/data/profiles.yaml``).

    Returns:
        A new dict from name to `Profile`, in file order.

    Raises:
        ProfileError: If the file is not a valid profile file.
    """
    profiles = _builtin_profiles() if path is None else load_profile_file(path)
    return {profile.name: profile for profile in profiles}


def get_profile(name_or_path: str | Path) -> Profile:
    """Find a profile by built-in name, or read it from a file.

    Args:
        name_or_path: A built-in name (``"chrome-3g"``), a file holding exactly one profile, or
            ``"file.yaml#name"`` to pick one profile out of a file.

    Returns:
        The profile.

    Raises:
        ProfileError: If no such profile exists, or the file is not a valid profile file.
    """
    text = str(name_or_path)
    builtins = load_profiles()
    if text in builtins:
        return builtins[text]
    path_text, _, wanted = text.partition("#") if not Path(text).exists() else (text, "", "")
    path = Path(path_text)
    looks_like_file = path.suffix.lower() in (".yaml", ".yml", ".json") or path.exists()
    if not looks_like_file:
        close = difflib.get_close_matches(text, builtins, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise ProfileError(
            f"no built-in profile {text!r}; {hint}built-in profiles are {', '.join(builtins)}; "
            "or give a .yaml/.json file"
        )
    found = load_profiles(path)
    if wanted:
        if wanted not in found:
            raise ProfileError(f"no profile {wanted!r}; it holds {', '.join(found)}", source=path_text)
        return found[wanted]
    if len(found) != 1:
        raise ProfileError(
            f"holds {len(found)} profiles ({', '.join(found)}); pick one with '{path_text}#NAME'",
            source=path_text,
        )
    return next(iter(found.values()))


# --- checking ------------------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as it reads in a one-line message."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    if not isinstance(value, int | float | str):
        return f"a {type(value).__name__}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    """What a value is, for 'expected X, got Y' messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{_show(value)} (a boolean)"
    if isinstance(value, str):
        return f"a string {_show(value)}"
    if isinstance(value, int | float):
        return f"the number {_show(value)}"
    return _show(value)


_LINK_FIELDS = {"rate_kbps": True, "delay_ms": True, "jitter_ms": True, "loss": True, "burst": False}
_PROFILE_FIELDS = {
    "name": True,
    "description": True,
    "uplink": True,
    "downlink": True,
    "sources": True,
    "blackouts": False,
    "assumed": False,
    "notes": False,
}


class _Checker:
    """Turns decoded YAML/JSON into profiles, raising a ProfileError at the first problem."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str) -> ProfileError:
        return ProfileError(problem, source=self.source, field=path or None)

    def mapping(self, value: object, path: str, fields: Mapping[str, bool]) -> dict[str, Any]:
        """Check a mapping's keys: all strings, none unknown, every required one present."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {_kind(value)}")
        for key in value:
            if not isinstance(key, str):
                raise self.fail(path, f"field names must be text, got {_kind(key)}")
            if key not in fields:
                close = difflib.get_close_matches(key, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(fields)})"
                raise self.fail(_join(path, key), f"unknown field{hint}")
        for key, required in fields.items():
            if required and key not in value:
                raise self.fail(_join(path, key), "missing (required)")
        return value

    def number(
        self,
        value: object,
        path: str,
        *,
        check: Callable[[float], bool],
        rule: str,
    ) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(path, f"expected a number, got {_kind(value)}")
        try:
            number = float(value)
        except OverflowError:
            raise self.fail(path, f"{_show(value)} is too large") from None
        if not math.isfinite(number) or not check(number):
            raise self.fail(path, f"{_show(value)} {rule}")
        return value

    def text(self, value: object, path: str, *, allow_empty: bool = False) -> str:
        if not isinstance(value, str):
            raise self.fail(path, f"expected text, got {_kind(value)}")
        if not allow_empty and not value.strip():
            raise self.fail(path, "must not be empty")
        return value

    def items(self, value: object, path: str, *, allow_empty: bool) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(path, f"expected a list, got {_kind(value)}")
        if not value and not allow_empty:
            raise self.fail(path, "must list at least one entry")
        return value

    def document(self, data: object) -> list[Profile]:
        if data is None:
            raise self.fail("", "the file is empty: expected a mapping with a 'profiles' list")
        if not isinstance(data, dict):
            raise self.fail("", f"expected a mapping with a 'profiles' list at the top, got {_kind(data)}")
        self.mapping(data, "", {"version": False, "profiles": True})
        if "version" in data and (isinstance(data["version"], bool) or data["version"] != 1):
            raise self.fail("version", f"{_show(data['version'])} is not a known version (only 1)")
        entries = self.items(data["profiles"], "profiles", allow_empty=False)
        profiles: list[Profile] = []
        seen: dict[str, int] = {}
        for index, entry in enumerate(entries):
            path = f"profiles[{index}]"
            profile = self.profile(entry, path)
            if profile.name in seen:
                raise self.fail(
                    f"{path}.name", f"{profile.name!r} is already the name of profiles[{seen[profile.name]}]"
                )
            seen[profile.name] = index
            profiles.append(profile)
        return profiles

    def profile(self, value: object, path: str) -> Profile:
        data = self.mapping(value, path, _PROFILE_FIELDS)
        name = self.text(data["name"], f"{path}.name")
        if not NAME_PATTERN.fullmatch(name):
            raise self.fail(
                f"{path}.name",
                f"{_show(name)} is not a usable name: use letters, digits, '.', '_' or '-' "
                "(at most 64, starting with a letter or digit)",
            )
        description = self.text(data["description"], f"{path}.description")
        uplink = self.link(data["uplink"], f"{path}.uplink")
        downlink = self.link(data["downlink"], f"{path}.downlink")
        sources = tuple(
            self.source_entry(item, f"{path}.sources[{i}]")
            for i, item in enumerate(self.items(data["sources"], f"{path}.sources", allow_empty=False))
        )
        blackouts = tuple(
            self.blackout(item, f"{path}.blackouts[{i}]")
            for i, item in enumerate(
                self.items(data.get("blackouts", []), f"{path}.blackouts", allow_empty=True)
            )
        )
        assumed: list[str] = []
        for i, item in enumerate(self.items(data.get("assumed", []), f"{path}.assumed", allow_empty=True)):
            field = self.text(item, f"{path}.assumed[{i}]")
            if field not in ASSUMABLE_FIELDS:
                raise self.fail(
                    f"{path}.assumed[{i}]",
                    f"{_show(field)} is not a field of a profile (such as 'uplink.jitter_ms' or 'blackouts')",
                )
            if field in assumed:
                raise self.fail(f"{path}.assumed[{i}]", f"{_show(field)} is listed twice")
            assumed.append(field)
        notes = self.text(data.get("notes", ""), f"{path}.notes", allow_empty=True)
        return Profile(
            name=name,
            description=description,
            uplink=uplink,
            downlink=downlink,
            sources=sources,
            blackouts=blackouts,
            assumed=tuple(assumed),
            notes=notes,
        )

    def link(self, value: object, path: str) -> Link:
        data = self.mapping(value, path, _LINK_FIELDS)
        rate = data["rate_kbps"]
        if rate is not None:
            rate = self.number(
                rate, f"{path}.rate_kbps", check=lambda x: x > 0, rule="is not a positive rate (null: no cap)"
            )
        delay = self.number(data["delay_ms"], f"{path}.delay_ms", check=lambda x: x >= 0, rule="is negative")
        jitter = self.number(
            data["jitter_ms"], f"{path}.jitter_ms", check=lambda x: x >= 0, rule="is negative"
        )
        loss = self.number(
            data["loss"], f"{path}.loss", check=lambda x: 0 <= x <= 1, rule="is not a fraction from 0 to 1"
        )
        burst = None
        if data.get("burst") is not None:
            burst = self.burst(data["burst"], f"{path}.burst")
            if loss != 0:
                raise self.fail(
                    f"{path}.burst", "burst replaces loss (as in rtclab.impair): set loss to 0 or drop burst"
                )
        return Link(rate_kbps=rate, delay_ms=delay, jitter_ms=jitter, loss=loss, burst=burst)

    def burst(self, value: object, path: str) -> Burst:
        data = self.mapping(value, path, {"p": True, "r": True})
        rule = "is not a probability above 0 and at most 1"
        p = self.number(data["p"], f"{path}.p", check=lambda x: 0 < x <= 1, rule=rule)
        r = self.number(data["r"], f"{path}.r", check=lambda x: 0 < x <= 1, rule=rule)
        return Burst(p=p, r=r)

    def blackout(self, value: object, path: str) -> Blackout:
        data = self.mapping(value, path, {"start_s": True, "duration_s": True})
        start = self.number(data["start_s"], f"{path}.start_s", check=lambda x: x >= 0, rule="is negative")
        duration = self.number(
            data["duration_s"], f"{path}.duration_s", check=lambda x: x > 0, rule="is not a positive duration"
        )
        return Blackout(start_s=start, duration_s=duration)

    def source_entry(self, value: object, path: str) -> Source:
        data = self.mapping(value, path, {"name": True, "numbers": True, "url": False})
        name = self.text(data["name"], f"{path}.name")
        numbers = self.text(data["numbers"], f"{path}.numbers")
        url = data.get("url")
        if url is not None:
            url = self.text(url, f"{path}.url")
            if not re.fullmatch(r"https?://\S+", url):
                raise self.fail(f"{path}.url", f"{_show(url)} is not an http(s) URL")
        return Source(name=name, numbers=numbers, url=url)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
