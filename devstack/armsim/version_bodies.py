"""The body rules of gallery image versions, apart from the handlers (:mod:`.versions`).

The server defaults a new version gets (:func:`normalize_version`, also used by
``POST /admin/seed``), the disks and sizes the service adds once the version is built
(:func:`derived_disks`, :func:`insert_size_after_source`), and what an update may not change
(:func:`check_immutables`). Nothing the request did not send is echoed, apart from the
defaults the real service adds (docs/devstack.md, "Response shapes").
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.armsim.errors import ArmError, property_change_not_allowed
from devstack.armsim.regions import display_name, region_key
from devstack.armsim.sources import SourceFacts

JsonObject = dict[str, Any]

READ_ONLY_VERSION_FIELDS = ("provisioningState", "replicationStatus", "validationsProfile")
#: Request flags the service acts on but does not keep (``restore``: a soft-delete restore).
REQUEST_ONLY_FIELDS = ("restore",)
#: What a real 201 and a GET carry (``validationsProfile``, not in the SDK models); an update's
#: 200 reply leaves it out (azure-cli recording test_image_version_end_of_life_date, 2026).
VALIDATIONS_PROFILE: JsonObject = {"validationOperationStatus": "NotExecuted"}


def strip_read_only(properties: JsonObject) -> JsonObject:
    """A copy of a request's properties without the read-only ones the service ignores."""
    props = copy.deepcopy(properties)
    for name in (*READ_ONLY_VERSION_FIELDS, *REQUEST_ONLY_FIELDS):
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
    """Target regions with the service's defaults: display names, replicas, storage type. A
    region's ``excludeFromLatest`` is echoed only when it was sent (real recordings)."""
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
    del facts  # a whole-image source's disks appear once built (derived_disks), not at create
    storage = copy.deepcopy(props.get("storageProfile") or {})
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


def derived_disks(facts: SourceFacts) -> JsonObject | None:
    """The disk images a whole-image source (managed image, VM, another version) brings: absent
    from the 201 body, listed once the version is built as ``{sizeInGB, hostCaching, source:
    {}}`` (azure-cli recording test_image_version_end_of_life_date, 2026)."""
    if facts.kind == "disks":
        return None
    disks: JsonObject = {"osDiskImage": {"hostCaching": "ReadWrite", "source": {}}}
    if facts.data_sizes_gib:
        disks["dataDiskImages"] = [
            {"lun": lun, "hostCaching": "ReadOnly", "source": {}}
            for lun in sorted(facts.data_sizes_gib)
        ]
    return disks


def with_derived_disks(storage: JsonObject, derived: JsonObject | None) -> JsonObject:
    """``storage`` with the derived disk images filled in (what was sent about them wins)."""
    if not derived:
        return storage
    result = copy.deepcopy(storage)
    result["osDiskImage"] = {**derived["osDiskImage"], **(storage.get("osDiskImage") or {})}
    if "dataDiskImages" in derived and not storage.get("dataDiskImages"):
        result["dataDiskImages"] = copy.deepcopy(derived["dataDiskImages"])
    return result


def source_signature(storage: JsonObject) -> JsonObject:
    """The sources of a storage profile, normalized for comparison (ids lower-cased, no SAS)."""

    def disk_source(disk: JsonObject | None) -> tuple[str, str, str]:
        source = (disk or {}).get("source") or {}
        source_id = str(source.get("id", "")).lower()
        account = str(source.get("storageAccountId", "")).lower()
        uri = str(source.get("uri", "")).split("?", 1)[0].lower()
        if uri and source_id and not account:  # the older VHD form: id = the storage account
            source_id, account = "", source_id
        return source_id, uri, account

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


def check_immutables(old: JsonObject, new: JsonObject) -> None:
    """409 PropertyChangeNotAllowed for a change of source, LUNs or storage settings.

    A source is compared only where the request names one: a PUT or PATCH that leaves the
    source out keeps the stored one (the azure-cli update pattern; the REST spec's
    ``GalleryImageVersion_Update_WithoutSourceId`` example). ``old`` is the storage profile as
    the service shows it (with the disk images a whole-image source brought).
    """
    prefix = "galleryImageVersion.properties"
    new_storage = new.get("storageProfile") or {}
    before = source_signature(old.get("storageProfile") or {})
    after = source_signature(new_storage)
    if any(after["source"]) and before["source"] != after["source"]:
        field = "virtualMachineId" if before["source"][1] or after["source"][1] else "id"
        raise property_change_not_allowed(f"{prefix}.storageProfile.source.{field}")
    if any(after["os"]) and before["os"] != after["os"]:
        field = "uri" if before["os"][1] or after["os"][1] else "id"
        raise property_change_not_allowed(f"{prefix}.storageProfile.osDiskImage.source.{field}")
    if "dataDiskImages" in new_storage:
        if set(before["data"]) != set(after["data"]):
            raise ArmError(
                409,
                "PropertyChangeNotAllowed",
                "Adding new Data Disks or changing the LUN of a Data Disk in an existing Image "
                "is not allowed",
                target=f"{prefix}.storageProfile.dataDiskImages",
            )
        for lun, source in before["data"].items():
            if any(after["data"][lun]) and after["data"][lun] != source:
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
        check_immutables(old, new)
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
