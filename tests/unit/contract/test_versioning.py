from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.contract.versioning import (
    INT32_MAX,
    BumpKind,
    DateVersion,
    ExplicitVersion,
    ImageVersion,
    InvalidVersion,
    LatestUnderMajor,
    NextVersion,
    VersionExists,
    VersionOverflow,
    allocate_version,
    date_version,
    is_valid_version,
    policy_from_name,
)
from tests.unit.contract.test_request_fixtures import SCHEMA_PATH

NOW = datetime(2026, 11, 16, 23, 15, 7, tzinfo=UTC)
parts = st.integers(min_value=0, max_value=INT32_MAX)
versions = st.builds(ImageVersion, parts, parts, parts)


# -- parsing, printing, ordering ------------------------------------------------------------


@given(versions)
def test_str_and_parse_round_trip(version: ImageVersion) -> None:
    assert ImageVersion.parse(str(version)) == version


@given(parts, parts, parts)
def test_parse_reads_each_part(major: int, minor: int, patch: int) -> None:
    parsed = ImageVersion.parse(f"{major}.{minor}.{patch}")
    assert parsed.as_tuple == (major, minor, patch)


@given(versions, versions)
def test_ordering_is_numeric_tuple_order(a: ImageVersion, b: ImageVersion) -> None:
    assert (a < b) == (a.as_tuple < b.as_tuple)
    assert (a == b) == (a.as_tuple == b.as_tuple)
    assert (a >= b) == (a.as_tuple >= b.as_tuple)


@given(st.lists(versions, min_size=1, max_size=20))
def test_sorting_matches_tuple_sorting(items: list[ImageVersion]) -> None:
    assert [v.as_tuple for v in sorted(items)] == sorted(v.as_tuple for v in items)


def test_ordering_is_not_string_ordering() -> None:
    assert ImageVersion.parse("1.10.0") > ImageVersion.parse("1.9.0")
    assert ImageVersion.parse("10.0.0") > ImageVersion.parse("9.99.99")
    as_text = ["1.9.0", "1.10.0"]
    assert sorted(as_text) == ["1.10.0", "1.9.0"]  # the trap string order falls into
    assert [str(v) for v in sorted(map(ImageVersion.parse, as_text))] == ["1.9.0", "1.10.0"]


@given(st.integers(min_value=INT32_MAX + 1, max_value=10**12))
def test_parts_above_int32_are_rejected(too_big: int) -> None:
    with pytest.raises(InvalidVersion):
        ImageVersion.parse(f"1.{too_big}.0")
    with pytest.raises(InvalidVersion):
        ImageVersion(too_big, 0, 0)


@given(st.text(max_size=30))
def test_parse_accepts_exactly_the_documented_format(text: str) -> None:
    shape = re.fullmatch(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", text)
    fits = shape is not None and all(int(p) <= INT32_MAX for p in shape.groups())
    assert is_valid_version(text) == fits


@pytest.mark.parametrize(
    "text",
    [
        "1.0",
        "1.0.0.0",
        "01.0.0",
        "1.00.0",
        "-1.0.0",
        "1.0.a",
        " 1.0.0",
        "1.0.0\n",
        "\uff11.0.0",
        "v1.0.0",
    ],
)
def test_rejects_malformed_versions(text: str) -> None:
    with pytest.raises(InvalidVersion):
        ImageVersion.parse(text)


def test_boundary_versions() -> None:
    assert str(ImageVersion.parse("2147483647.2147483647.2147483647")) == (
        "2147483647.2147483647.2147483647"
    )
    assert ImageVersion.parse("0.0.0") == ImageVersion(0, 0, 0)
    with pytest.raises(InvalidVersion):
        ImageVersion(True, 0, 0)


@given(st.integers(min_value=0, max_value=10**11))
def test_schema_version_pattern_agrees_with_parser(number: int) -> None:
    schema = json.loads(SCHEMA_PATH.read_text())
    pattern = schema["$defs"]["target"]["properties"]["version"]["pattern"]
    text = f"{number}.0.{number}"
    assert (re.fullmatch(pattern, text) is not None) == is_valid_version(text)


# -- policies ---------------------------------------------------------------------------------


def test_policy_names_map_to_policies() -> None:
    assert policy_from_name("nextPatch") == NextVersion(BumpKind.PATCH)
    assert policy_from_name("nextMinor") == NextVersion(BumpKind.MINOR)
    assert policy_from_name("nextMajor") == NextVersion(BumpKind.MAJOR)
    assert policy_from_name("date") == DateVersion()
    with pytest.raises(ValueError, match="unknown version policy"):
        policy_from_name("latest")


def test_explicit_returns_the_version_unless_it_exists() -> None:
    policy = ExplicitVersion(ImageVersion(1, 2, 3))
    assert allocate_version(policy, ["1.2.2"], NOW) == ImageVersion(1, 2, 3)
    with pytest.raises(VersionExists):
        allocate_version(policy, ["1.2.3"], NOW)


@pytest.mark.parametrize(
    ("policy", "existing", "expected"),
    [
        ("nextPatch", [], "1.0.0"),
        ("nextPatch", ["1.9.0", "1.10.0", "1.2.7"], "1.10.1"),
        ("nextMinor", ["1.9.3", "1.10.4"], "1.11.0"),
        ("nextMajor", ["1.9.3", "2.0.1"], "3.0.0"),
        ("nextMinor", [], "1.0.0"),
    ],
)
def test_bump_policies_use_the_highest_existing_version(
    policy: str, existing: list[str], expected: str
) -> None:
    assert str(allocate_version(policy_from_name(policy), existing, NOW)) == expected


def test_latest_under_major() -> None:
    existing = ["1.4.9", "2.0.3", "2.1.0", "3.0.0"]
    assert str(allocate_version(LatestUnderMajor(2), existing, NOW)) == "2.1.1"
    assert str(allocate_version(LatestUnderMajor(7), existing, NOW)) == "7.0.0"


@given(st.sets(versions, max_size=15), st.sampled_from(["nextPatch", "nextMinor", "nextMajor"]))
def test_bumps_never_return_an_existing_version_and_are_above_all(
    existing: set[ImageVersion], name: str
) -> None:
    try:
        chosen = allocate_version(policy_from_name(name), existing, NOW)
    except VersionOverflow:
        return
    assert chosen not in existing
    assert all(chosen > v for v in existing)


@given(st.sets(versions, max_size=15), st.integers(min_value=0, max_value=5))
def test_latest_under_major_never_returns_an_existing_version(
    existing: set[ImageVersion], major: int
) -> None:
    try:
        chosen = allocate_version(LatestUnderMajor(major), existing, NOW)
    except VersionOverflow:
        return
    assert chosen.major == major
    assert chosen not in existing
    assert all(chosen > v for v in existing if v.major == major)


def test_overflow_is_an_error_not_a_wrap() -> None:
    top = f"1.0.{INT32_MAX}"
    with pytest.raises(VersionOverflow, match="2147483647"):
        allocate_version(NextVersion(BumpKind.PATCH), [top], NOW)
    assert str(allocate_version(NextVersion(BumpKind.MINOR), [top], NOW)) == "1.1.0"
    with pytest.raises(VersionOverflow):
        allocate_version(NextVersion(BumpKind.MAJOR), [f"{INT32_MAX}.0.0"], NOW)


def test_date_policy_format_and_utc() -> None:
    assert str(allocate_version(DateVersion(), [], NOW)) == "2026.1116.231507"
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    assert date_version(plus_two) == date_version(NOW)
    with pytest.raises(ValueError, match="timezone-aware"):
        date_version(datetime(2026, 1, 1))


def test_date_policy_skips_taken_seconds() -> None:
    existing = ["2026.1116.231507", "2026.1116.231508"]
    assert str(allocate_version(DateVersion(), existing, NOW)) == "2026.1116.231509"


def test_date_policy_collision_at_midnight_rolls_into_the_next_day() -> None:
    late = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert str(allocate_version(DateVersion(), ["2026.1231.235959"], late)) == "2027.101.0"


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(9999, 12, 30)))
def test_date_versions_fit_int32_and_follow_time_order(moment: datetime) -> None:
    aware = moment.replace(tzinfo=UTC)
    version = date_version(aware)
    assert max(version.as_tuple) <= INT32_MAX
    assert date_version(aware + timedelta(seconds=1)) > version


def test_existing_versions_must_parse() -> None:
    with pytest.raises(InvalidVersion):
        allocate_version(NextVersion(BumpKind.PATCH), ["latest"], NOW)
