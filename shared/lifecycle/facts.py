"""What a lifecycle run knows about galleries, definitions and versions: facts from listings alone.

"Latest" is resolved per region: a VM created from a definition (or ``.../versions/latest``) in a
region gets the highest version replicated there and not excluded from latest there. Azure has
two flags for that, and says the regional one wins: "You can set both the global and regional
``excludeFromLatest`` flag, but the regional flag takes precedence"
(https://learn.microsoft.com/azure/virtual-machines/azure-compute-gallery, best practices; the
REST property is ``publishingProfile.targetRegions[].excludeFromLatest``). Azure does not say what
a region without the flag inherits, so two readings are kept, and each rail takes the stricter:

* a version *may* serve latest in a region when the regional flag, or the version's flag if the
  region states none, does not exclude it (the documented precedence);
* a version *surely* serves latest in a region when neither flag excludes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from shared.contract.versioning import ImageVersion, InvalidVersion

LIFECYCLE_TAG = "lifecycle"
DEPRECATED_AT_TAG = "lifecycle-deprecated-at"
GRACE_DAYS_TAG = "lifecycle-grace-days"
HOLD = "hold"
DEPRECATED = "deprecated"
SUCCEEDED = "Succeeded"


def region_key(name: str) -> str:
    """``"East US 2"`` and ``"eastus2"`` -> ``"eastus2"``."""
    return name.replace(" ", "").lower()


def version_order(name: str) -> tuple[int, int, int]:
    """Version order (1.10.0 > 1.9.0); unparsable names sort oldest."""
    try:
        return ImageVersion.parse(name).as_tuple
    except InvalidVersion:
        return (-1, -1, -1)


class VersionState(StrEnum):
    ACTIVE = "active"
    DEPRECATED = "deprecated"


@dataclass(frozen=True)
class RegionFacts:
    """One ``targetRegions[]`` entry: where the version is replicated, and its regional flag."""

    name: str
    #: ``targetRegions[].excludeFromLatest``; ``None`` when the listing does not state it.
    excluded_from_latest: bool | None = None

    @property
    def key(self) -> str:
        return region_key(self.name)


@dataclass(frozen=True)
class VersionFacts:
    """What one listing row says about an image version (no per-version GET)."""

    id: str
    name: str
    region: str
    regions: tuple[RegionFacts, ...]
    tags: Mapping[str, str]
    end_of_life: datetime | None
    published: datetime | None
    #: ``publishingProfile.excludeFromLatest``, the version's own flag.
    excluded_from_latest: bool
    block_deletion_before_end_of_life: bool
    provisioning_state: str = SUCCEEDED

    @property
    def state(self) -> VersionState:
        if self.tags.get(LIFECYCLE_TAG, "").lower() == DEPRECATED:
            return VersionState.DEPRECATED
        return VersionState.ACTIVE

    @property
    def held(self) -> bool:
        return self.tags.get(LIFECYCLE_TAG, "").lower() == HOLD

    @property
    def settled(self) -> bool:
        return self.provisioning_state == SUCCEEDED

    @property
    def deprecated_at(self) -> datetime | None:
        raw = self.tags.get(DEPRECATED_AT_TAG)
        if not raw:
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            return None
        # a hand-written tag without an offset is read as UTC (never compare naive with aware)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)

    @property
    def target_regions(self) -> tuple[RegionFacts, ...]:
        """The regions it is replicated to (its location when the listing names none)."""
        return self.regions or (RegionFacts(self.region),)

    def region_name(self, key: str) -> str:
        return next((r.name for r in self.target_regions if r.key == key), key)

    def _target(self, key: str) -> RegionFacts | None:
        return next((r for r in self.target_regions if r.key == key), None)

    def _documented_exclusion(self, target: RegionFacts) -> bool:
        """The regional flag when the region states one, else the version's (Azure's rule)."""
        regional = target.excluded_from_latest
        return regional if regional is not None else self.excluded_from_latest

    def may_serve_latest(self, key: str) -> bool:
        """ "Latest" in region ``key`` may resolve to this version (documented precedence)."""
        target = self._target(key)
        return self.settled and target is not None and not self._documented_exclusion(target)

    def surely_serves_latest(self, key: str) -> bool:
        """ "Latest" in region ``key`` resolves to this version whichever flag wins."""
        target = self._target(key)
        return (
            self.settled
            and target is not None
            and not (target.excluded_from_latest or self.excluded_from_latest)
        )

    @property
    def regions_not_hidden(self) -> tuple[str, ...]:
        """Regions where latest may still resolve to it (a deprecation hides it in all)."""
        return tuple(r.name for r in self.target_regions if not self._documented_exclusion(r))


@dataclass(frozen=True)
class DefinitionFacts:
    id: str
    name: str
    tags: Mapping[str, str]
    versions: tuple[VersionFacts, ...]


@dataclass(frozen=True)
class GalleryFacts:
    id: str
    name: str
    tags: Mapping[str, str]
    definitions: tuple[DefinitionFacts, ...]
