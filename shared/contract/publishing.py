"""Reads the ``publishing`` section of a build request: target regions, replication, end of life."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from shared.contract.display import quoted
from shared.contract.model import (
    DEFAULT_REPLICA_COUNT,
    DEFAULT_REPLICATION_MODE,
    DEFAULT_STORAGE_ACCOUNT_TYPE,
    Publishing,
    TargetRegion,
)
from shared.contract.reader import DocumentReader
from shared.contract.regions import closest_region
from shared.contract.rules import (
    MAX_END_OF_LIFE_DAYS,
    MAX_REPLICA_COUNT,
    MIN_REPLICA_COUNT,
    REGION_PATTERN,
    REPLICATION_MODES,
    STORAGE_ACCOUNT_TYPES,
    Rule,
    normalise_region,
)
from shared.core.timestamps import format_timestamp

_PATH: Final = "publishing"
_FIELDS: Final = (
    "targetRegions",
    "replicaCount",
    "storageAccountType",
    "replicationMode",
    "excludeFromLatest",
    "endOfLifeDate",
    "endOfLifeAfterDays",
    "blockDeletionBeforeEndOfLife",
)
_REGION_FIELDS: Final = ("name", "replicaCount", "storageAccountType", "excludeFromLatest")
_EOL_PATTERN: Final = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,7}))?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
)


@dataclass(frozen=True)
class _RegionDefaults:
    """The publishing-wide settings, which each target region may override."""

    replica_count: int
    storage_account_type: str
    exclude_from_latest: bool


def read_publishing(reader: DocumentReader, value: object) -> Publishing | None:
    """Read ``publishing``; ``None`` when any part of it has a problem (each one is recorded)."""
    publishing = reader.read_object(value, _PATH, allowed=_FIELDS, required=("targetRegions",))
    if publishing is None:
        return None
    before = len(reader.problems)
    replica_count = reader.integer(
        publishing,
        "replicaCount",
        _PATH,
        low=MIN_REPLICA_COUNT,
        high=MAX_REPLICA_COUNT,
        rule=Rule.REPLICA_COUNT,
    )
    storage_type = reader.enum(
        publishing, "storageAccountType", _PATH, STORAGE_ACCOUNT_TYPES, Rule.STORAGE_ACCOUNT_TYPE
    )
    replication_mode = reader.enum(publishing, "replicationMode", _PATH, REPLICATION_MODES)
    exclude = reader.boolean(publishing, "excludeFromLatest", _PATH)
    block_deletion = reader.boolean(publishing, "blockDeletionBeforeEndOfLife", _PATH)
    defaults = _RegionDefaults(
        replica_count=replica_count or DEFAULT_REPLICA_COUNT,
        storage_account_type=storage_type or DEFAULT_STORAGE_ACCOUNT_TYPE,
        exclude_from_latest=bool(exclude),
    )
    regions = _read_target_regions(reader, publishing, defaults)
    end_of_life = _read_end_of_life(reader, publishing)
    _check_block_deletion(reader, publishing, block_deletion)
    if len(reader.problems) != before or not regions:
        return None
    return Publishing(
        target_regions=tuple(regions),
        replica_count=defaults.replica_count,
        storage_account_type=defaults.storage_account_type,
        replication_mode=replication_mode or DEFAULT_REPLICATION_MODE,
        exclude_from_latest=defaults.exclude_from_latest,
        end_of_life_date=end_of_life,
        block_deletion_before_end_of_life=bool(block_deletion),
    )


# --------------------------------------------------------------------------- target regions


def _read_target_regions(
    reader: DocumentReader, publishing: Mapping[str, object], defaults: _RegionDefaults
) -> list[TargetRegion]:
    """The regions read without a problem; at least one must be listed."""
    regions: list[TargetRegion] = []
    seen: dict[str, int] = {}
    items = reader.array(publishing, "targetRegions", _PATH)
    if items is not None and not items:
        reader.add(
            f"{_PATH}.targetRegions",
            Rule.TARGET_REGIONS_REQUIRED,
            "no target region given",
            'list at least one region, e.g. [{"name": "eastus"}]',
        )
    for index, item in enumerate(items or []):
        region = _read_target_region(reader, item, index, seen, defaults)
        if region is not None:
            regions.append(region)
    return regions


def _read_target_region(
    reader: DocumentReader,
    item: object,
    index: int,
    seen: dict[str, int],
    defaults: _RegionDefaults,
) -> TargetRegion | None:
    where = f"{_PATH}.targetRegions[{index}]"
    region = reader.read_object(item, where, allowed=_REGION_FIELDS, required=("name",))
    if region is None:
        return None
    name = _read_region_name(reader, region, where, index, seen)
    count = reader.integer(
        region,
        "replicaCount",
        where,
        low=MIN_REPLICA_COUNT,
        high=MAX_REPLICA_COUNT,
        rule=Rule.REPLICA_COUNT,
    )
    region_type = reader.enum(
        region, "storageAccountType", where, STORAGE_ACCOUNT_TYPES, Rule.STORAGE_ACCOUNT_TYPE
    )
    region_exclude = reader.boolean(region, "excludeFromLatest", where)
    if name is None:
        return None
    return TargetRegion(
        name=name,
        replica_count=count if count is not None else defaults.replica_count,
        storage_account_type=region_type or defaults.storage_account_type,
        exclude_from_latest=(
            region_exclude if region_exclude is not None else defaults.exclude_from_latest
        ),
    )


def _read_region_name(
    reader: DocumentReader,
    region: Mapping[str, object],
    where: str,
    index: int,
    seen: dict[str, int],
) -> str | None:
    """The normalised region name, unless it is not a region or is listed twice."""
    name = reader.string(region, "name", where, max_length=64)
    if name is None:
        return None
    normalised = normalise_region(name)
    known = reader.context.known_regions
    if not REGION_PATTERN.fullmatch(normalised) or (known is not None and normalised not in known):
        reader.add(
            f"{where}.name",
            Rule.REGION_NAME,
            f"{quoted(name)} is not an Azure region",
            _region_hint(normalised, known),
        )
        return None
    if normalised in seen:
        reader.add(
            f"{where}.name",
            Rule.UNIQUE_REGIONS,
            f"duplicate region '{normalised}'",
            f"list each region once (it is also publishing.targetRegions[{seen[normalised]}])",
        )
        return None
    seen[normalised] = index
    return normalised


def _region_hint(normalised: str, known: frozenset[str] | None) -> str:
    """``did you mean 'westeurope'?`` for a typo of a known region, then where names come from."""
    usual = "use an Azure region such as 'eastus' or 'West Europe' (az account list-locations)"
    suggestion = closest_region(normalised, known) if known else None
    return f"did you mean '{suggestion}'? {usual}" if suggestion else usual


# --------------------------------------------------------------------------- end of life


def _read_end_of_life(reader: DocumentReader, publishing: Mapping[str, object]) -> datetime | None:
    """At most one of ``endOfLifeDate`` and ``endOfLifeAfterDays``, resolved to a moment."""
    if "endOfLifeDate" in publishing and "endOfLifeAfterDays" in publishing:
        reader.add(
            _PATH,
            Rule.END_OF_LIFE_ONE_OF,
            "both 'endOfLifeDate' and 'endOfLifeAfterDays' given",
            "give at most one of them",
        )
        return None
    if "endOfLifeDate" in publishing:
        return _read_end_of_life_date(reader, publishing["endOfLifeDate"])
    if "endOfLifeAfterDays" in publishing:
        return _read_end_of_life_after_days(reader, publishing)
    return None


def _read_end_of_life_date(reader: DocumentReader, text: object) -> datetime | None:
    parsed = _parse_timestamp(text) if isinstance(text, str) else None
    if parsed is None:
        reader.add(
            f"{_PATH}.endOfLifeDate",
            Rule.END_OF_LIFE_FORMAT,
            f"{text!r} is not a date" if isinstance(text, str) else "expected a date string",
            "use YYYY-MM-DD or an RFC 3339 time such as 2027-01-31T00:00:00Z",
        )
        return None
    if parsed <= reader.now:
        reader.add(
            f"{_PATH}.endOfLifeDate",
            Rule.END_OF_LIFE_FUTURE,
            f"end-of-life date {format_timestamp(parsed)} is not in the future",
            "give a later date, or use endOfLifeAfterDays",
        )
        return None
    return parsed


def _read_end_of_life_after_days(
    reader: DocumentReader, publishing: Mapping[str, object]
) -> datetime | None:
    """``now`` plus the days; the days are kept on the reader for the derived request id."""
    days = reader.integer(
        publishing,
        "endOfLifeAfterDays",
        _PATH,
        low=1,
        high=MAX_END_OF_LIFE_DAYS,
        rule=Rule.END_OF_LIFE_FUTURE,
    )
    if days is None:
        return None
    reader.end_of_life_after_days = days
    return reader.now + timedelta(days=days)


def _check_block_deletion(
    reader: DocumentReader, publishing: Mapping[str, object], block_deletion: bool | None
) -> None:
    if block_deletion and not ({"endOfLifeDate", "endOfLifeAfterDays"} & set(publishing)):
        reader.add(
            f"{_PATH}.blockDeletionBeforeEndOfLife",
            Rule.BLOCK_DELETION_NEEDS_END_OF_LIFE,
            "blocking deletion before end of life needs an end-of-life date",
            "set endOfLifeDate or endOfLifeAfterDays, or drop blockDeletionBeforeEndOfLife",
        )


def _parse_timestamp(text: str) -> datetime | None:
    match = _EOL_PATTERN.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            return None
        moment -= sign * timedelta(hours=offset_hours, minutes=offset_minutes)
    return moment
