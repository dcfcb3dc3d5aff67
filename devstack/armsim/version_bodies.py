"""The body rules of gallery image versions, apart from the handlers (:mod:`.versions`).

The server defaults a new version gets (:func:`normalize_version`, also used by
``POST /admin/seed``), the sizes the service adds when rendering, and what an update may not
change (:func:`check_immutables`).
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.armsim.errors import ArmError, property_change_not_allowed
from devstack.armsim.regions import display_name, region_key
from devstack.armsim.sources import SourceFacts

JsonObject = dict[str, Any]

READ_ONLY_VERSION_FIELDS = ("provisioningState", "replicationStatus", "validationsProfile")


def strip_read_only(properties: JsonObject) -> JsonObject:
    """A copy of a request's properties without the read-only ones the service ignores."""
    props = copy.deepcopy(properties)
    for name in READ_ONLY_VERSION_FIELDS:
        props.pop(name, None)
    return props


def replica_fields(profile: JsonObject) -> JsonObject:
    """The ``replicaCount`` of a publishing profile, if it sets one, as a profile fragment."""
    return {"replicaCount": profile["replicaCount"]} if "replicaCount" in profile else {}


def insert_size_after_source(disk: JsonObject, size: int) -> JsonObject:
    """Add ``sizeInGB`` where the service puts it: after ``source`` and ``lun``."""
    result: JsonObject = {}
    for key in ("source", "lun"):
        if key in disk:
            result[key] = disk[key]
    result["sizeInGB"] = size
    result.update({k: v for k, v in disk.items() if k not in result})
    return result


def normalize_regions(
    regions: list[JsonObject], replica_count: int, storage_type: str
) -> list[JsonObject]:
    """Target regions with the service's defaults: display names, replicas, storage type."""
    normalized = []
    for region in regions:
        item: JsonObject = {
            "name": display_name(str(region["name"])),
            "regionalReplicaCount": int(region.get("regionalReplicaCount") or replica_count),
            "storageAccountType": region.get("storageAccountType") or storage_type,
        }
        for key, value in region.items():
            if key not in item:
                item[key] = value
        item.setdefault("excludeFromLatest", False)
        normalized.append(item)
    return normalized


def normalize_version(
    props: JsonObject, location: str, facts: SourceFacts | None, published: str
) -> JsonObject:
    """Fill in the server defaults the real service adds on create."""
    profile = copy.deepcopy(props.get("publishingProfile") or {})
    replica_count = int(profile.get("replicaCount") or 1)
    storage_type = str(profile.get("storageAccountType") or "Standard_LRS")
    regions = profile.get("targetRegions") or [{"name": location}]
    out_profile: JsonObject = {
        "targetRegions": normalize_regions(regions, replica_count, storage_type),
        "replicaCount": replica_count,
        "excludeFromLatest": bool(profile.get("excludeFromLatest", False)),
        "publishedDate": profile.get("publishedDate") or published,
        "storageAccountType": storage_type,
    }
    for key, value in profile.items():
        if key not in out_profile:
            out_profile[key] = value
    storage = copy.deepcopy(props.get("storageProfile") or {})
    if facts is not None and facts.kind != "disks":
        storage.setdefault("osDiskImage", {})
        if facts.data_sizes_gib and "dataDiskImages" not in storage:
            storage["dataDiskImages"] = [{"lun": lun} for lun in sorted(facts.data_sizes_gib)]
    if "osDiskImage" in storage:
        storage["osDiskImage"].pop("sizeInGB", None)
        storage["osDiskImage"].setdefault("hostCaching", "ReadWrite")
    for disk in storage.get("dataDiskImages") or []:
        disk.pop("sizeInGB", None)
        disk.setdefault("hostCaching", "ReadOnly")
    safety = copy.deepcopy(props.get("safetyProfile") or {})
    safety.pop("policyViolations", None)
    out_safety: JsonObject = {
        "reportedForPolicyViolation": False,
        "allowDeletionOfReplicatedLocations": bool(
            safety.pop("allowDeletionOfReplicatedLocations", False)
        ),
    }
    safety.pop("reportedForPolicyViolation", None)
    out_safety.update(safety)
    result: JsonObject = {
        "publishingProfile": out_profile,
        "storageProfile": storage,
        "safetyProfile": out_safety,
    }
    for key, value in props.items():
        if key not in result:
            result[key] = value
    return result


def sizes_of(facts: SourceFacts) -> JsonObject:
    """The disk sizes (GiB) to keep in the stored metadata: ``{"os", "data": {lun: size}}``."""
    return {
        "os": facts.os_size_gib,
        "data": {str(lun): size for lun, size in facts.data_sizes_gib.items()},
    }


def source_signature(storage: JsonObject) -> JsonObject:
    """The sources of a storage profile, normalized for comparison (ids lower-cased, no SAS)."""

    def disk_source(disk: JsonObject | None) -> tuple[str, str, str]:
        source = (disk or {}).get("source") or {}
        return (
            str(source.get("id", "")).lower(),
            str(source.get("uri", "")).split("?", 1)[0].lower(),
            str(source.get("storageAccountId", "")).lower(),
        )

    whole = storage.get("source") or {}
    return {
        "source": (
            str(whole.get("id", "")).lower(),
            str(whole.get("virtualMachineId", "")).lower(),
        ),
        "os": disk_source(storage.get("osDiskImage")),
        "data": {
            int(d.get("lun", -1)): disk_source(d) for d in storage.get("dataDiskImages") or []
        },
    }


def check_immutables(old: JsonObject, new: JsonObject, *, patch: bool) -> None:
    """409 PropertyChangeNotAllowed for a change of source, LUNs or storage settings.

    A PUT is compared whole; a PATCH only in the parts it carries.
    """
    prefix = "galleryImageVersion.properties"
    new_storage = new.get("storageProfile") or {}
    before = source_signature(old.get("storageProfile") or {})
    after = source_signature(new_storage)
    has_os_source = bool((new_storage.get("osDiskImage") or {}).get("source"))
    if (not patch or "source" in new_storage) and before["source"] != after["source"]:
        field = "virtualMachineId" if before["source"][1] or after["source"][1] else "id"
        raise property_change_not_allowed(f"{prefix}.storageProfile.source.{field}")
    if (not patch or has_os_source) and before["os"] != after["os"]:
        field = "uri" if before["os"][1] or after["os"][1] else "id"
        raise property_change_not_allowed(f"{prefix}.storageProfile.osDiskImage.source.{field}")
    data_sourced = any(any(source) for source in before["data"].values())
    if (not patch and data_sourced) or "dataDiskImages" in new_storage:
        if set(before["data"]) != set(after["data"]):
            raise ArmError(
                409,
                "PropertyChangeNotAllowed",
                "Adding new Data Disks or changing the LUN of a Data Disk in an existing Image "
                "is not allowed",
                target=f"{prefix}.storageProfile.dataDiskImages",
            )
        for lun, source in before["data"].items():
            if after["data"][lun] != source and (not patch or any(after["data"][lun])):
                raise property_change_not_allowed(
                    f"{prefix}.storageProfile.dataDiskImages.source.id"
                )
    old_profile = old.get("publishingProfile") or {}
    new_profile = new.get("publishingProfile") or {}
    defaults = {"storageAccountType": "Standard_LRS"}
    for name in ("storageAccountType", "replicationMode", "storageAccountStrategy"):
        if name in new_profile and new_profile[name] != old_profile.get(name, defaults.get(name)):
            raise property_change_not_allowed(f"{prefix}.publishingProfile.{name}")


def merge_host_caching(old: JsonObject, new: JsonObject) -> None:
    """Take the OS disk's ``hostCaching`` from an update into the stored storage profile."""
    if "osDiskImage" in new and "hostCaching" in (new["osDiskImage"] or {}):
        old.setdefault("osDiskImage", {})["hostCaching"] = new["osDiskImage"]["hostCaching"]


def same_request(old: JsonObject, new: JsonObject) -> bool:
    """True when a repeated PUT asks for what is already being built."""
    try:
        check_immutables(old, new, patch=False)
    except ArmError:
        return False
    old_regions = sorted(
        region_key(r["name"]) for r in old["publishingProfile"].get("targetRegions", [])
    )
    new_regions = sorted(
        region_key(str(r.get("name")))
        for r in (new.get("publishingProfile") or {}).get("targetRegions") or []
    )
    return not new_regions or old_regions == new_regions
