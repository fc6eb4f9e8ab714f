"""rtclab.profiles: the built-in numbers and their sources, the strict loader, and the bridge to impair."""

import contextlib
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rtclab.profiles import (
    ASSUMABLE_FIELDS,
    Profile,
    ProfileError,
    get_profile,
    load_profile_file,
    load_profiles,
    parse_profiles,
)

BUILTINS = load_profiles()
REGIONS = [name for name in BUILTINS if name.endswith("-mobile")]


def valid_entry(**changes):
    entry = {
        "name": "office-wifi",
        "description": "What we measured on the office guest Wi-Fi.",
        "uplink": {"rate_kbps": 2000, "delay_ms": 15, "jitter_ms": 5, "loss": 0.01},
        "downlink": {
            "rate_kbps": 8000,
            "delay_ms": 15,
            "jitter_ms": 5,
            "loss": 0,
            "burst": {"p": 0.01, "r": 0.5},
        },
        "blackouts": [{"start_s": 20, "duration_s": 2}],
        "sources": [{"name": "our probe", "numbers": "median of 50 runs", "url": "https://example.com/run"}],
        "assumed": ["uplink.jitter_ms"],
        "notes": "guest network, evening",
    }
    entry.update(changes)
    return entry


def document(*entries):
    return {"version": 1, "profiles": list(entries) or [valid_entry()]}


def problem(data_or_text, *, fmt="yaml", source="my.yaml"):
    text = data_or_text if isinstance(data_or_text, str) else yaml.safe_dump(data_or_text, sort_keys=False)
    with pytest.raises(ProfileError) as caught:
        parse_profiles(text, source=source, fmt=fmt)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{source}: ")
    return message


# --- the built-in profiles ---


def test_builtins_cover_every_family():
    names = set(BUILTINS)
    assert {"chrome-3g", "chrome-slow-4g", "chrome-fast-4g"} <= names
    assert {"atc-3g-average", "atc-edge-lossy", "atc-2g-developing-rural"} <= names
    assert {"loadero-3g", "loadero-4g"} <= names
    assert {"philippines-mobile", "indonesia-mobile", "egypt-mobile", "nigeria-mobile"} <= names
    assert {"kenya-mobile", "brazil-mobile", "mexico-mobile"} <= names


@pytest.mark.parametrize("profile", BUILTINS.values(), ids=list(BUILTINS))
def test_every_builtin_says_where_its_numbers_come_from(profile: Profile):
    assert profile.description.strip()
    assert profile.sources
    for source in profile.sources:
        assert source.url is not None and source.url.startswith("https://")
        assert len(source.numbers) > 20
    if profile.assumed:
        assert "ssum" in profile.notes  # "Assumed"/"assumption" spelled out in the notes
    assert set(profile.assumed) <= ASSUMABLE_FIELDS


@pytest.mark.parametrize(
    ("name", "up_kbps", "down_kbps", "up_ms", "down_ms", "up_jitter", "down_jitter", "up_loss", "down_loss"),
    [
        ("chrome-3g", 400, 400, 200, 200, 0, 0, 0, 0),
        ("chrome-slow-4g", 675, 1440, 75, 75, 0, 0, 0, 0),
        ("chrome-fast-4g", 1350, 8100, 30, 30, 0, 0, 0, 0),
        ("atc-3g-average", 330, 780, 100, 100, 0, 0, 0, 0),
        ("atc-3g-good", 420, 850, 100, 90, 0, 0, 0, 0),
        ("atc-edge-lossy", 200, 240, 440, 400, 0, 0, 0.01, 0.01),
        ("atc-2g-developing-urban", 32, 35, 650, 650, 0, 0, 0, 0),
        ("atc-2g-developing-rural", 18, 20, 650, 650, 0, 0, 0.02, 0.02),
        ("loadero-4g", 50_000, 100_000, 45, 45, 15, 5, 0.002, 0.002),
        ("loadero-3g", 1200, 1200, 250, 250, 50, 50, 0.005, 0.005),
        ("loadero-edge", 260, 200, 650, 650, 100, 100, 0.01, 0.01),
        ("loadero-gprs", 20, 80, 650, 650, 100, 100, 0.01, 0.01),
        ("loadero-high-jitter", None, None, 200, 200, 100, 100, 0, 0),
        ("philippines-mobile", 6030, 22_500, 16.5, 16.5, 10, 10, 0, 0),
        ("nigeria-mobile", 1500, 5400, 56.25, 56.25, 30, 30, 0, 0),
    ],
)
def test_builtin_numbers_match_their_sources(
    name, up_kbps, down_kbps, up_ms, down_ms, up_jitter, down_jitter, up_loss, down_loss
):
    profile = BUILTINS[name]
    assert (profile.uplink.rate_kbps, profile.downlink.rate_kbps) == (up_kbps, down_kbps)
    assert (profile.uplink.delay_ms, profile.downlink.delay_ms) == (up_ms, down_ms)
    assert (profile.uplink.jitter_ms, profile.downlink.jitter_ms) == (up_jitter, down_jitter)
    assert (profile.uplink.loss, profile.downlink.loss) == (up_loss, down_loss)


def test_chrome_rates_follow_the_devtools_formulas():
    # NetworkManager.ts gives bytes per second; the profiles hold kbit/s.
    def kbps(bytes_per_s):
        return bytes_per_s * 8 / 1000

    assert BUILTINS["chrome-3g"].downlink.rate_kbps == pytest.approx(kbps(500 * 1000 / 8 * 0.8))
    assert BUILTINS["chrome-slow-4g"].downlink.rate_kbps == pytest.approx(kbps(1.6 * 1000 * 1000 / 8 * 0.9))
    assert BUILTINS["chrome-slow-4g"].uplink.rate_kbps == pytest.approx(kbps(750 * 1000 / 8 * 0.9))
    assert BUILTINS["chrome-fast-4g"].downlink.rate_kbps == pytest.approx(kbps(9 * 1000 * 1000 / 8 * 0.9))
    assert BUILTINS["chrome-fast-4g"].uplink.rate_kbps == pytest.approx(kbps(1.5 * 1000 * 1000 / 8 * 0.9))
    # One-way delay is half the preset's targetLatency RTT (400, 150, 60 ms), not the x5/x3.75/x2.75 request latency.
    assert [BUILTINS[n].rtt_ms for n in ("chrome-3g", "chrome-slow-4g", "chrome-fast-4g")] == [400, 150, 60]


@pytest.mark.parametrize(
    ("name", "published_rtt_ms"),
    [
        ("philippines-mobile", 33),
        ("indonesia-mobile", 36),
        ("nigeria-mobile", 112.5),
        ("kenya-mobile", 37),
        ("brazil-mobile", 28),
        ("mexico-mobile", 38),
    ],
)
def test_regional_delay_is_half_the_published_latency_each_way(name, published_rtt_ms):
    profile = BUILTINS[name]
    assert profile.uplink.delay_ms == profile.downlink.delay_ms
    assert profile.rtt_ms == pytest.approx(published_rtt_ms)
    assert str(published_rtt_ms).rstrip("0").rstrip(".") in profile.sources[0].numbers
    assert {"uplink.delay_ms", "downlink.delay_ms"}.isdisjoint(profile.assumed)


def test_egypt_publishes_throughput_only_so_its_delay_is_marked_assumed():
    egypt = BUILTINS["egypt-mobile"]
    assert {"uplink.delay_ms", "downlink.delay_ms"} <= set(egypt.assumed)
    assert "throughput only" in egypt.notes
    assert "No latency" in egypt.sources[0].numbers


@pytest.mark.parametrize("name", REGIONS)
def test_regional_tails_are_marked_as_assumptions(name):
    profile = BUILTINS[name]
    assert {"uplink.jitter_ms", "uplink.burst", "downlink.burst", "blackouts"} <= set(profile.assumed)
    for link in (profile.uplink, profile.downlink):
        assert link.burst is not None and link.loss == 0
    assert all(2 <= b.duration_s <= 5 for b in profile.blackouts)


def test_burst_numbers_mean_what_the_notes_say():
    burst = BUILTINS["philippines-mobile"].downlink.burst
    assert burst is not None
    assert burst.mean_loss == pytest.approx(0.005, abs=1e-4)
    assert burst.mean_burst_packets == pytest.approx(2.5)
    assert burst.burst_ratio == pytest.approx(1 / 0.402)
    assert BUILTINS["nigeria-mobile"].downlink.mean_loss == pytest.approx(0.02, abs=1e-3)
    assert BUILTINS["atc-edge-lossy"].uplink.mean_loss == 0.01


def test_load_profiles_returns_a_fresh_dict():
    first = load_profiles()
    first.pop("chrome-3g")
    assert "chrome-3g" in load_profiles()


@pytest.mark.parametrize("profile", BUILTINS.values(), ids=list(BUILTINS))
def test_to_dict_reads_back_unchanged(profile: Profile):
    text = yaml.safe_dump({"profiles": [profile.to_dict()]})
    assert parse_profiles(text) == [profile]
    assert parse_profiles(json.dumps({"profiles": [profile.to_dict()]}), fmt="json") == [profile]


# --- custom files: good ones ---


def test_a_custom_yaml_file_loads(tmp_path: Path):
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(document()), encoding="utf-8")
    (profile,) = load_profile_file(path)
    assert profile.name == "office-wifi"
    assert profile.uplink.rate_kbps == 2000 and profile.uplink.loss == 0.01
    assert profile.downlink.burst is not None and profile.downlink.burst.p == 0.01
    assert profile.downlink.mean_loss == pytest.approx(0.01 / 0.51)
    assert profile.blackouts[0].start_s == 20
    assert profile.sources[0].url == "https://example.com/run"
    assert profile.assumed == ("uplink.jitter_ms",)


def test_a_custom_json_file_loads_and_minimal_fields_suffice(tmp_path: Path):
    entry = valid_entry(uplink={"rate_kbps": None, "delay_ms": 0, "jitter_ms": 0, "loss": 0})
    for optional in ("blackouts", "assumed", "notes"):
        entry.pop(optional)
    entry["sources"] = [{"name": "a guess", "numbers": "none, a round number"}]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"profiles": [entry]}), encoding="utf-8")
    (profile,) = load_profile_file(path)
    assert profile.uplink.rate_kbps is None
    assert profile.blackouts == () and profile.assumed == () and profile.notes == ""
    assert profile.sources[0].url is None


def test_loading_never_writes_to_the_file(tmp_path: Path):
    good = tmp_path / "good.yaml"
    bad = tmp_path / "bad.yaml"
    good.write_text(yaml.safe_dump(document()), encoding="utf-8")
    bad.write_text("profiles:\n  - name: [unclosed\n", encoding="utf-8")
    for path in (good, bad):
        path.chmod(
            stat.S_IRUSR | stat.S_IRGRP
        )  # read-only: a write would fail (as non-root) or show in mtime
        before = (path.read_bytes(), path.stat().st_mtime_ns)
        with contextlib.suppress(ProfileError):
            load_profile_file(path)
        assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml", "good.yaml"]


def test_get_profile_by_name_file_and_fragment(tmp_path: Path):
    assert get_profile("chrome-3g") is BUILTINS["chrome-3g"]
    one = tmp_path / "one.yaml"
    one.write_text(yaml.safe_dump(document()), encoding="utf-8")
    assert get_profile(one).name == "office-wifi"
    assert get_profile(str(one)).name == "office-wifi"
    two = tmp_path / "two.yaml"
    two.write_text(yaml.safe_dump(document(valid_entry(), valid_entry(name="cafe"))), encoding="utf-8")
    assert get_profile(f"{two}#cafe").name == "cafe"
    with pytest.raises(ProfileError, match=r"holds 2 profiles \(office-wifi, cafe\); pick one with"):
        get_profile(two)
    with pytest.raises(ProfileError, match="no profile 'bar'; it holds office-wifi, cafe"):
        get_profile(f"{two}#bar")


def test_an_unknown_name_suggests_close_ones():
    with pytest.raises(ProfileError) as caught:
        get_profile("chrome-3G")
    message = str(caught.value)
    assert message.startswith("no built-in profile 'chrome-3G'; did you mean chrome-3g")
    assert "\n" not in message


# --- custom files: every kind of bad input gets one line naming file and field ---


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda e: e["downlink"].update(loss=1.5),
            "my.yaml: profiles[0].downlink.loss: 1.5 is not a fraction from 0 to 1",
        ),
        (lambda e: e["uplink"].update(delay_ms=-5), "my.yaml: profiles[0].uplink.delay_ms: -5 is negative"),
        (
            lambda e: e["uplink"].update(jitter_ms=-0.5),
            "my.yaml: profiles[0].uplink.jitter_ms: -0.5 is negative",
        ),
        (
            lambda e: e["uplink"].update(rate_kbps=0),
            "my.yaml: profiles[0].uplink.rate_kbps: 0 is not a positive rate (null: no cap)",
        ),
        (
            lambda e: e["uplink"].update(rate_kbps="100"),
            "my.yaml: profiles[0].uplink.rate_kbps: expected a number, got a string '100'",
        ),
        (
            lambda e: e["uplink"].update(loss=True),
            "my.yaml: profiles[0].uplink.loss: expected a number, got true (a boolean)",
        ),
        (
            lambda e: e["uplink"].update(delay_ms=float("nan")),
            "my.yaml: profiles[0].uplink.delay_ms: nan is negative",
        ),
        (lambda e: e["uplink"].pop("delay_ms"), "my.yaml: profiles[0].uplink.delay_ms: missing (required)"),
        (lambda e: e.pop("sources"), "my.yaml: profiles[0].sources: missing (required)"),
        (
            lambda e: e["uplink"].update(lose=0.1),
            "my.yaml: profiles[0].uplink.lose: unknown field (did you mean 'loss'?)",
        ),
        (
            lambda e: e.update(colour="red"),
            "my.yaml: profiles[0].colour: unknown field (known: name, description, uplink, downlink, sources, "
            "blackouts, assumed, notes)",
        ),
        (
            lambda e: e["downlink"].update(loss=0.01),
            "my.yaml: profiles[0].downlink.burst: burst replaces loss (as in rtclab.impair): set loss to 0 or "
            "drop burst",
        ),
        (
            lambda e: e["downlink"]["burst"].update(r=0),
            "my.yaml: profiles[0].downlink.burst.r: 0 is not a probability above 0 and at most 1",
        ),
        (
            lambda e: e["blackouts"][0].update(duration_s=0),
            "my.yaml: profiles[0].blackouts[0].duration_s: 0 is not a positive duration",
        ),
        (
            lambda e: e.update(blackouts={"start_s": 1}),
            "my.yaml: profiles[0].blackouts: expected a list, got a mapping",
        ),
        (lambda e: e.update(sources=[]), "my.yaml: profiles[0].sources: must list at least one entry"),
        (
            lambda e: e["sources"][0].update(url="ftp://example.com"),
            "my.yaml: profiles[0].sources[0].url: 'ftp://example.com' is not an http(s) URL",
        ),
        (
            lambda e: e.update(name="my profile"),
            "my.yaml: profiles[0].name: 'my profile' is not a usable name: use letters, digits, '.', '_' or '-' "
            "(at most 64, starting with a letter or digit)",
        ),
        (lambda e: e.update(description=" "), "my.yaml: profiles[0].description: must not be empty"),
        (
            lambda e: e.update(description=7),
            "my.yaml: profiles[0].description: expected text, got the number 7",
        ),
        (
            lambda e: e.update(assumed=["uplink.speed"]),
            "my.yaml: profiles[0].assumed[0]: 'uplink.speed' is not a field of a profile (such as "
            "'uplink.jitter_ms' or 'blackouts')",
        ),
        (lambda e: e.update(uplink=[1, 2]), "my.yaml: profiles[0].uplink: expected a mapping, got a list"),
    ],
)
def test_bad_fields_are_named(change, expected):
    entry = valid_entry()
    change(entry)
    assert problem(document(entry)) == expected


def test_duplicate_names_point_at_the_first_use():
    message = problem(document(valid_entry(), valid_entry(name="cafe"), valid_entry()))
    assert message == "my.yaml: profiles[2].name: 'office-wifi' is already the name of profiles[0]"


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        ("profiles: [", "yaml", "my.yaml: not valid YAML: line 1, column 12: expected the node content"),
        (
            "profiles:\n  a: 1\n  a: 2\n",
            "yaml",
            "my.yaml: not valid YAML: line 3, column 3: duplicate key 'a'",
        ),
        ('{"profiles": [}', "json", "my.yaml: not valid JSON: line 1, column 15: Expecting value"),
        ('{"profiles": [], "profiles": []}', "json", "my.yaml: not valid JSON: duplicate key 'profiles'"),
        ("", "yaml", "my.yaml: the file is empty: expected a mapping with a 'profiles' list"),
        ("- a\n- b\n", "yaml", "my.yaml: expected a mapping with a 'profiles' list at the top, got a list"),
        ("just words", "yaml", "my.yaml: expected a mapping with a 'profiles' list at the top, got a string"),
        ("profiles: []", "yaml", "my.yaml: profiles: must list at least one entry"),
        ("profile: []", "yaml", "my.yaml: profile: unknown field (did you mean 'profiles'?)"),
        ("version: 2\nprofiles: [{}]", "yaml", "my.yaml: version: 2 is not a known version (only 1)"),
        ("profiles: [!!python/name:os.system x]", "yaml", "my.yaml: not valid YAML: line 1, column 12:"),
        (
            "profiles:\n  - &a [*a]\n",
            "yaml",
            "my.yaml: not valid YAML: line 2, column 5: found unconstructable recursive node",
        ),
        ("{1: 2}", "yaml", "my.yaml: field names must be text, got the number 1"),
        ("profiles: " + "[" * 5000 + "]" * 5000, "yaml", "my.yaml: "),
    ],
)
def test_bad_documents_get_one_line(text, fmt, expected):
    assert problem(text, fmt=fmt).startswith(expected)


def test_unreadable_files_get_one_line(tmp_path: Path):
    missing = tmp_path / "missing.yaml"
    with pytest.raises(
        ProfileError, match=r"^.*missing\.yaml: cannot read the file: No such file or directory$"
    ):
        load_profile_file(missing)
    with pytest.raises(ProfileError, match="cannot read the file: Is a directory"):
        load_profile_file(tmp_path)
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ProfileError, match=r"image\.yaml: not a text file \(not UTF-8\)$"):
        load_profile_file(binary)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_gets_one_line(tmp_path: Path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("profiles: []", encoding="utf-8")
    secret.chmod(0)
    with pytest.raises(ProfileError, match="cannot read the file: Permission denied"):
        load_profile_file(secret)


# --- property tests: whatever the input, only ProfileError, in one line ---

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=12), st.integers(), st.booleans()), inner, max_size=5),
    ),
    max_leaves=25,
)
FIELD_NAMES = ["name", "description", "uplink", "downlink", "sources", "blackouts", "assumed", "notes"]


def check_outcome(text: str, fmt: str = "yaml") -> None:
    try:
        profiles = parse_profiles(text, source="fuzz.yaml", fmt=fmt)
    except ProfileError as error:
        message = str(error)
        assert message.startswith("fuzz.yaml") and "\n" not in message
    else:
        assert profiles and all(isinstance(p, Profile) for p in profiles)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_text_raises_only_profile_errors(text):
    check_outcome(text)
    check_outcome(text, fmt="json")


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_yaml_structure_raises_only_profile_errors(data):
    check_outcome(yaml.safe_dump(data))
    check_outcome(yaml.safe_dump({"profiles": [data]}))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FIELD_NAMES + ["uplink.loss", "uplink.rate_kbps", "downlink.burst", "downlink.burst.p"]),
    values,
)
def test_any_single_bad_field_raises_only_profile_errors(field, junk):
    entry = valid_entry()
    *parents, last = field.split(".")
    target = entry
    for parent in parents:
        target = target[parent]
    target[last] = junk
    check_outcome(yaml.safe_dump(document(entry)))


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=100))
def test_any_bytes_in_a_file_raise_only_profile_errors(tmp_path, data):
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    try:
        load_profile_file(path)
    except ProfileError as error:
        assert str(error).startswith(str(path)) and "\n" not in str(error)
    assert path.read_bytes() == data


# --- the bridge to rtclab.impair ---


def _impair():
    return pytest.importorskip("rtclab.impair", reason="rtclab.impair is not written yet")


@pytest.mark.parametrize("profile", BUILTINS.values(), ids=list(BUILTINS))
def test_every_builtin_becomes_a_valid_impairment(profile: Profile):
    impair = _impair()
    up = profile.uplink_impairment(seed=1)
    down = profile.downlink_impairment(seed=2)
    assert isinstance(up, impair.Impairment) and isinstance(down, impair.Impairment)
    assert (up.seed, down.seed) == (1, 2)
    for impairment, link in ((up, profile.uplink), (down, profile.downlink)):
        assert impairment.delay_ms == link.delay_ms
        assert impairment.jitter_ms == link.jitter_ms
        assert impairment.rate_kbps == link.rate_kbps
        assert impairment.mean_loss == pytest.approx(link.mean_loss)
        assert impairment.reorder is False
        assert [(b.start_s, b.duration_s) for b in impairment.blackouts] == [
            (b.start_s, b.duration_s) for b in profile.blackouts
        ]


def test_burst_and_blackouts_carry_over_to_impair():
    impair = _impair()
    down = BUILTINS["nigeria-mobile"].downlink_impairment()
    assert down.burst == impair.GilbertElliott(p=0.006, r=0.3)
    assert down.loss == 0
    assert down.blackouts == (impair.Blackout(10, 5),)
    assert BUILTINS["atc-edge-lossy"].uplink_impairment().burst is None
