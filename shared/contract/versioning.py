"""Gallery image version numbers and the policies that choose the next one.

Azure names an image version ``Major.Minor.Patch``; each part is a whole number from 0 to
2,147,483,647 (a signed 32-bit int). :class:`ImageVersion` parses, prints and orders them by
their numbers (``1.10.0 > 1.9.0``), never by their text.

A build request names its version explicitly or gives a *policy*; :func:`allocate_version` is the
pure function that applies a policy to the versions that already exist. It never returns an
existing version. Making allocation race-free (two builds at once) is the ledger's job, not this
module's. Every policy is described in ``docs/version-policies.md``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from functools import total_ordering
from typing import Final

from shared.core.errors import ConflictError, PermanentError

INT32_MAX: Final = 2_147_483_647
#: Digits only, no sign, no leading zeros (``01`` would name the same number as ``1``).
_PART: Final = r"(0|[1-9][0-9]{0,9})"
VERSION_PATTERN: Final = re.compile(rf"^{_PART}\.{_PART}\.{_PART}$")
VERSION_FORMAT_HINT: Final = (
    "use Major.Minor.Patch, three whole numbers 0..2147483647 without leading zeros, e.g. 1.0.0"
)


class InvalidVersion(ValueError):
    """The text is not a valid gallery image version name."""


class VersionOverflow(PermanentError):
    """The policy would need a version part above 2,147,483,647."""

    reason = "VersionOverflow"


class VersionExists(ConflictError):
    """An explicit version was requested and it already exists."""

    reason = "VersionExists"


@total_ordering
@dataclass(frozen=True)
class ImageVersion:
    """A gallery image version ``major.minor.patch``, ordered numerically."""

    major: int
    minor: int
    patch: int

    def __post_init__(self) -> None:
        for part in (self.major, self.minor, self.patch):
            if isinstance(part, bool) or not isinstance(part, int) or not 0 <= part <= INT32_MAX:
                raise InvalidVersion(f"version part {part!r} is not a whole number 0..{INT32_MAX}")

    @classmethod
    def parse(cls, text: str) -> ImageVersion:
        """Parse ``"1.2.3"``; raise :class:`InvalidVersion` with the reason otherwise."""
        match = VERSION_PATTERN.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise InvalidVersion(f"{text!r} is not Major.Minor.Patch")
        major, minor, patch = (int(group) for group in match.groups())
        if max(major, minor, patch) > INT32_MAX:
            raise InvalidVersion(f"{text!r} has a part above {INT32_MAX}")
        return cls(major, minor, patch)

    @property
    def as_tuple(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, ImageVersion):
            return NotImplemented
        return self.as_tuple < other.as_tuple

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def is_valid_version(text: str) -> bool:
    """True when ``text`` is a valid gallery image version name."""
    try:
        ImageVersion.parse(text)
    except InvalidVersion:
        return False
    return True


class BumpKind(Enum):
    """Which part a bump policy increments."""

    PATCH = "nextPatch"
    MINOR = "nextMinor"
    MAJOR = "nextMajor"


@dataclass(frozen=True)
class ExplicitVersion:
    """Use exactly this version; it must not exist yet."""

    version: ImageVersion

    def to_document(self) -> str:
        return str(self.version)


@dataclass(frozen=True)
class NextVersion:
    """``nextPatch`` / ``nextMinor`` / ``nextMajor`` of the highest existing version."""

    bump: BumpKind

    def to_document(self) -> str:
        return self.bump.value


@dataclass(frozen=True)
class LatestUnderMajor:
    """The next patch of the highest version whose major is ``major`` (``major.0.0`` if none)."""

    major: int

    def __post_init__(self) -> None:
        if isinstance(self.major, bool) or not 0 <= self.major <= INT32_MAX:
            raise InvalidVersion(f"major {self.major!r} is not a whole number 0..{INT32_MAX}")

    def to_document(self) -> dict[str, int]:
        return {"latestUnderMajor": self.major}


@dataclass(frozen=True)
class DateVersion:
    """``YYYY.MMDD.HHMMSS`` from the UTC time of allocation (e.g. ``2026.1116.231507``)."""

    def to_document(self) -> str:
        return "date"


VersionPolicy = ExplicitVersion | NextVersion | LatestUnderMajor | DateVersion

#: The policy names a request may give as a string.
POLICY_NAMES: Final = ("nextPatch", "nextMinor", "nextMajor", "date")


def policy_from_name(name: str) -> VersionPolicy:
    """Map a policy string from a request (``nextPatch``, ``date``...) to its policy object."""
    if name == "date":
        return DateVersion()
    for bump in BumpKind:
        if bump.value == name:
            return NextVersion(bump)
    raise ValueError(f"unknown version policy {name!r}; expected one of {', '.join(POLICY_NAMES)}")


def date_version(now: datetime) -> ImageVersion:
    """The ``date`` policy's version for ``now`` (converted to UTC): ``YYYY.MMDD.HHMMSS``."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    utc = now.astimezone(UTC)
    return ImageVersion(
        utc.year, utc.month * 100 + utc.day, utc.hour * 10000 + utc.minute * 100 + utc.second
    )


def _checked(major: int, minor: int, patch: int, policy: VersionPolicy) -> ImageVersion:
    if max(major, minor, patch) > INT32_MAX:
        raise VersionOverflow(
            f"version policy {policy.to_document()!r} would need a part above {INT32_MAX} "
            f"({major}.{minor}.{patch})"
        )
    return ImageVersion(major, minor, patch)


def _bump(base: ImageVersion | None, bump: BumpKind, policy: VersionPolicy) -> ImageVersion:
    if base is None:
        return ImageVersion(1, 0, 0)
    if bump is BumpKind.PATCH:
        return _checked(base.major, base.minor, base.patch + 1, policy)
    if bump is BumpKind.MINOR:
        return _checked(base.major, base.minor + 1, 0, policy)
    return _checked(base.major + 1, 0, 0, policy)


def allocate_version(
    policy: VersionPolicy,
    existing_versions: Iterable[ImageVersion | str],
    now: datetime,
) -> ImageVersion:
    """Choose the version a build will create. Pure: same inputs, same answer.

    * :class:`ExplicitVersion`: that version; :class:`VersionExists` if it exists.
    * :class:`NextVersion`: bump the highest existing version (``1.0.0`` when there is none).
    * :class:`LatestUnderMajor`: next patch of the highest ``N.x.y`` (``N.0.0`` when none).
    * :class:`DateVersion`: ``YYYY.MMDD.HHMMSS`` in UTC; if taken, the next free second.

    Raises :class:`VersionOverflow` when a part would pass 2,147,483,647. Existing versions
    given as text are parsed; an unparsable one raises :class:`InvalidVersion`.
    """
    existing = {
        v if isinstance(v, ImageVersion) else ImageVersion.parse(v) for v in existing_versions
    }
    if isinstance(policy, ExplicitVersion):
        if policy.version in existing:
            raise VersionExists(f"image version {policy.version} already exists")
        return policy.version
    if isinstance(policy, NextVersion):
        return _bump(max(existing, default=None), policy.bump, policy)
    if isinstance(policy, LatestUnderMajor):
        same_major = [v for v in existing if v.major == policy.major]
        if not same_major:
            return ImageVersion(policy.major, 0, 0)
        return _bump(max(same_major), BumpKind.PATCH, policy)
    moment = now
    for _ in range(len(existing) + 1):
        candidate = date_version(moment)
        if candidate not in existing:
            return candidate
        moment += timedelta(seconds=1)
    raise AssertionError("unreachable: more candidates were tried than versions exist")
