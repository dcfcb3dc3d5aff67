"""Synchronous request checks for gallery resources, with the service's codes and messages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from devstack.armsim.clock import parse_timestamp
from devstack.armsim.errors import (
    ArmError,
    invalid_parameter,
    location_not_available,
    out_of_range,
)
from devstack.armsim.regions import available_names, display_name, is_known, region_key
from devstack.armsim.sources import SourceFacts

JsonObject = dict[str, Any]

MAX_INT32 = 2_147_483_647
MAX_REPLICAS = 100
GALLERY_NAME = re.compile(r"^[^_\W][\w\-._]{0,79}(?<![-.])$")
#: A gallery itself: English letters and digits, with underscores and periods in the middle, at
#: most 80; no hyphen ([tsg] in docs/devstack.md, whose text the error repeats).
GALLERY_ITSELF_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.]{0,78}[A-Za-z0-9])?$")
GALLERY_ITSELF_MESSAGE = (
    "The gallery name '{name}' is invalid. Allowed characters are English alphanumeric "
    "characters, with underscores, and periods allowed in the middle, up to 80 characters total. "
    "All other special characters, including dashes, are disallowed."
)

VERSION_NAME_MESSAGE = (
    "The image version name is invalid. The image version name should follow "
    "Major(int).Minor(int).Patch(int) format, where int is between 0 and 2,147,483,647 "
    "(inclusive). For e.g: 1.0.0, 2018.12.1 etc"
)


def check_gallery_name(name: str, target: str) -> None:
    if target == "galleryName" and not GALLERY_ITSELF_NAME.match(name):
        raise invalid_parameter(GALLERY_ITSELF_MESSAGE.format(name=name), target=target)
    if not GALLERY_NAME.match(name):
        raise invalid_parameter(
            f"The entity name '{name}' is invalid according to its validation rule: "
            r"^[^_\W][\w-._]{0,79}(?<![-.])$.",
            target=target,
        )


def check_version_name(name: str) -> None:
    parts = name.split(".")
    valid = len(parts) == 3 and all(p.isdigit() and int(p) <= MAX_INT32 for p in parts)
    if not valid:
        raise invalid_parameter(VERSION_NAME_MESSAGE, target="galleryImageVersionName")


#: The gallery's own region is missing from a version's target regions (the version's own
#: location is Azure's rule, :data:`VERSION_LOCATION_MESSAGE`). Azure's text for this case is
#: not public; the simulator refuses it with this message (docs/devstack.md, "Regions").
GALLERY_LOCATION_MESSAGE = (
    "Gallery image version publishing profile regions {regions} must contain the location of "
    "the gallery '{location}'"
)
VERSION_LOCATION_MESSAGE = (
    "Gallery image version publishing profile regions {regions} must contain the location of "
    "image version '{location}'."
)


def check_location(body: JsonObject, resource_type: str = "Microsoft.Compute/galleries") -> str:
    """The body's ``location``: required, and a region of the public cloud."""
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise ArmError(
            400, "LocationRequired", "The location property is required for this definition."
        )
    if not is_known(location):
        raise location_not_available(location, available_names(), resource_type=resource_type)
    return location


def check_target_region_names(regions: list[JsonObject]) -> None:
    """Every ``targetRegions[].name`` is a region (``LocationNotAvailableForResourceType``)."""
    for region in regions:
        name = str(region.get("name") or "")
        if name and not is_known(name):
            raise location_not_available(
                name, available_names(), target="publishingProfile.targetRegions.name"
            )


def parse_end_of_life(value: object, path: str, now: dt.datetime) -> dt.datetime:
    """Parse and check an endOfLifeDate; it must lie in the future."""
    parsed = parse_timestamp(value) if isinstance(value, str) else None
    if parsed is None:
        raise ArmError(
            400,
            "BadRequest",
            f"Could not convert string to DateTimeOffset: {value}. Path '{path}'",
            target=path,
        )
    if parsed <= now:
        raise invalid_parameter("EndOfLifeDate must be set to a future date.", target=path)
    return parsed


def check_publishing_profile(
    profile: JsonObject, location: str, gallery_location: str | None = None
) -> None:
    """Replica ranges, region names, duplicate regions, the version's and the gallery's
    regions among the targets."""
    replica_count = profile.get("replicaCount")
    if replica_count is not None and not 1 <= int(replica_count) <= MAX_REPLICAS:
        raise out_of_range(replica_count, "replicaCount", 1, MAX_REPLICAS)
    regions = profile.get("targetRegions") or []
    check_target_region_names(regions)
    seen: set[str] = set()
    for region in regions:
        name = str(region.get("name") or "")
        if not name:
            raise invalid_parameter(
                "Required parameter 'name' is missing (null).",
                target="publishingProfile.targetRegions.name",
            )
        key = region_key(name)
        if key in seen:
            raise invalid_parameter(
                "Duplicate regions are not allowed in target publishing regions",
                target="publishingProfile.targetRegions",
            )
        seen.add(key)
        count = region.get("regionalReplicaCount")
        if count is not None and not 1 <= int(count) <= MAX_REPLICAS:
            raise out_of_range(count, "regionalReplicaCount", 1, MAX_REPLICAS)
    if not regions:
        return
    names = "'" + ", ".join(str(r.get("name")) for r in regions) + "'"
    if region_key(location) not in seen:
        raise invalid_parameter(
            VERSION_LOCATION_MESSAGE.format(regions=names, location=display_name(location)),
            target="publishingProfile.targetRegions",
        )
    if gallery_location is not None and region_key(gallery_location) not in seen:
        raise invalid_parameter(
            GALLERY_LOCATION_MESSAGE.format(regions=names, location=display_name(gallery_location)),
            target="publishingProfile.targetRegions",
        )


def check_data_disk_luns(storage: JsonObject) -> None:
    luns: set[int] = set()
    for disk in storage.get("dataDiskImages") or []:
        if "lun" not in disk:
            raise invalid_parameter(
                "Required parameter 'lun' is missing (null).",
                target="storageProfile.dataDiskImages.lun",
            )
        lun = int(disk["lun"])
        if lun in luns:
            raise invalid_parameter(
                "Duplicated lun numbers have been detected in the input data disks. Lun number "
                "must be unique for each data disk",
                target="storageProfile.dataDiskImages",
            )
        luns.add(lun)


def check_against_definition(facts: SourceFacts, definition: JsonObject) -> None:
    """OS state, HyperV generation and OS type must match the parent image definition."""
    props = definition.get("properties", {})
    source = facts.checked_id
    want_state = props.get("osState")
    if facts.os_state and want_state and facts.os_state.lower() != str(want_state).lower():
        raise invalid_parameter(
            f"Cannot create Gallery Image Version from: {source} since the OS State in the "
            f"parent gallery image ({want_state}) is not {facts.os_state}.",
            target="properties.storageProfile",
        )
    want_gen = str(props.get("hyperVGeneration") or "V1")
    if facts.hyper_v_generation and facts.hyper_v_generation.upper() != want_gen.upper():
        raise invalid_parameter(
            f"The resource with id '{source}' has a different Hypervisor generation "
            f"['{facts.hyper_v_generation}'] than the parent gallery image Hypervisor "
            f"generation ['{want_gen}']",
            target="properties.storageProfile",
        )
    want_os = props.get("osType")
    if facts.os_type and want_os and facts.os_type.lower() != str(want_os).lower():
        raise invalid_parameter(
            f"The resource with id '{source}' has a different OS type ['{facts.os_type}'] "
            f"than the parent gallery image OS type generation ['{want_os}']",
            target="properties.storageProfile",
        )
