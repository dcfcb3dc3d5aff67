"""Resolve the source(s) of a new gallery image version to facts the service checks.

Sources are either one whole-image source (``storageProfile.source``: managed image, VM or
another gallery image version) or per-disk sources (``osDiskImage.source`` /
``dataDiskImages[].source``: snapshot, managed disk, or a VHD blob given as
``uri`` + ``storageAccountId``). VHD footers are read from the blob service with a range read.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from devstack.armsim import ids
from devstack.armsim.errors import VHD_INVALID_CODE, ArmError, invalid_parameter
from devstack.armsim.regions import region_key
from devstack.armsim.store import Store, StoredResource

logger = logging.getLogger(__name__)

JsonObject = dict[str, Any]
GIB = 1024**3

ONE_SOURCE_MESSAGE = (
    "The gallery artifact version source can only be specified either directly under "
    "storageProfile or within individual OS or data disks. One and only one source type "
    "(user image, snapshot, disk, virtual machine) can be provided."
)


@dataclass
class SourceFacts:
    """What the service learns about a version's source before it starts building."""

    kind: str  # managedImage | virtualMachine | galleryImageVersion | disks
    keys: list[str] = field(default_factory=list)
    os_size_gib: int = 0
    data_sizes_gib: dict[int, int] = field(default_factory=dict)
    os_type: str | None = None
    os_state: str | None = None
    hyper_v_generation: str | None = None
    #: (resource id or uri, which property to name) of the resource checked against the definition
    checked_id: str = ""
    #: An asynchronous failure found while inspecting the source (code, message).
    async_failure: tuple[str, str] | None = None

    @property
    def total_size_gib(self) -> int:
        return self.os_size_gib + sum(self.data_sizes_gib.values())


#: Reads a VHD blob's footer: (blob url, storage account resource) -> (virtual size, problems).
VhdInspector = Callable[[str, StoredResource], tuple[int, list[str]]]


def _bad_id(resource_id: str, path: str) -> ArmError:
    return ArmError(
        400,
        "LinkedInvalidPropertyId",
        f"Property id '{resource_id}' at path '{path}' is invalid. Expect fully qualified "
        "resource Id that start with '/subscriptions/{subscriptionId}' or "
        "'/providers/{resourceProviderNamespace}/'.",
        target=path,
    )


def _not_found(resource_id: str) -> ArmError:
    return invalid_parameter(
        f"Source {resource_id} is not found. Please check source exists, and is in the same "
        "region as gallery image version being created",
        target="properties.storageProfile",
    )


def _size_gib(properties: JsonObject, default: int = 30) -> int:
    if "diskSizeGB" in properties:
        return int(properties["diskSizeGB"])
    if "diskSizeBytes" in properties:
        return math.ceil(int(properties["diskSizeBytes"]) / GIB)
    return default


class SourceResolver:
    """Looks sources up in the store (and VHDs in the blob service)."""

    def __init__(self, store: Store, vhd_inspector: VhdInspector | None) -> None:
        self._store = store
        self._vhd_inspector = vhd_inspector

    def _lookup(self, resource_id: str, path: str, location: str) -> tuple[ids.ResourceRef, Any]:
        if not resource_id.lower().startswith("/subscriptions/"):
            raise _bad_id(resource_id, path)
        ref = ids.parse_resource_id(resource_id)
        if ref is None:
            raise _bad_id(resource_id, path)
        stored = self._store.get(ref.key)
        if stored is None:
            raise _not_found(resource_id)
        resource_location = stored.body.get("location", "")
        if ref.type == ids.VERSION:
            regions = [
                region_key(r.get("name", ""))
                for r in stored.body["properties"]["publishingProfile"].get("targetRegions", [])
            ]
            if region_key(location) not in regions:
                raise _not_found(resource_id)
        elif region_key(resource_location) != region_key(location):
            raise _not_found(resource_id)
        return ref, stored

    def resolve(self, properties: JsonObject, location: str) -> SourceFacts:
        storage = properties.get("storageProfile")
        if not isinstance(storage, dict):
            raise invalid_parameter(
                "Required parameter 'storageProfile' is missing (null).",
                target="galleryImageVersion.properties.storageProfile",
            )
        whole = storage.get("source") or {}
        whole_ids = [
            k for k in ("id", "virtualMachineId", "communityGalleryImageId") if whole.get(k)
        ]
        os_disk = storage.get("osDiskImage") or {}
        data_disks = storage.get("dataDiskImages") or []
        disk_sources = [("osDiskImage", os_disk.get("source") or {})] + [
            (f"dataDiskImages[{i}]", d.get("source") or {}) for i, d in enumerate(data_disks)
        ]
        disk_has_source = [
            name
            for name, s in disk_sources
            if s.get("id") or s.get("uri") or s.get("storageAccountId")
        ]
        if (
            len(whole_ids) > 1
            or (whole_ids and disk_has_source)
            or (not whole_ids and not disk_has_source)
        ):
            raise invalid_parameter(ONE_SOURCE_MESSAGE, target="properties.storageProfile")
        if whole_ids:
            return self._resolve_whole(whole, whole_ids[0], location)
        if not (os_disk.get("source") or {}):
            raise invalid_parameter(ONE_SOURCE_MESSAGE, target="properties.storageProfile")
        return self._resolve_disks(os_disk, data_disks, location)

    def _resolve_whole(self, whole: JsonObject, field_name: str, location: str) -> SourceFacts:
        resource_id = str(whole[field_name])
        path = f"properties.storageProfile.source.{field_name}"
        if field_name == "communityGalleryImageId":
            raise invalid_parameter(
                "Community gallery sources are not supported by the simulator.", target=path
            )
        ref, stored = self._lookup(resource_id, path, location)
        allowed = (
            (ids.VM,)
            if field_name == "virtualMachineId"
            else (
                ids.MANAGED_IMAGE,
                ids.VM,
                ids.VERSION,
            )
        )
        if ref.type not in allowed:
            raise invalid_parameter(
                f"The source id: {resource_id} must either be a managed image, virtual machine "
                "or another gallery image version",
                target=path,
            )
        props: JsonObject = stored.body.get("properties", {})
        facts = SourceFacts(kind="", keys=[ref.key], checked_id=resource_id)
        if ref.type == ids.MANAGED_IMAGE:
            facts.kind = "managedImage"
            profile = props.get("storageProfile", {})
            os_disk = profile.get("osDisk", {})
            facts.os_size_gib = _size_gib(os_disk)
            facts.data_sizes_gib = {
                int(d.get("lun", i)): _size_gib(d)
                for i, d in enumerate(profile.get("dataDisks", []))
            }
            facts.os_type = os_disk.get("osType")
            facts.os_state = os_disk.get("osState")
            facts.hyper_v_generation = props.get("hyperVGeneration")
        elif ref.type == ids.VM:
            facts.kind = "virtualMachine"
            profile = props.get("storageProfile", {})
            os_disk = profile.get("osDisk", {})
            facts.os_size_gib = self._vm_disk_size(os_disk)
            facts.data_sizes_gib = {
                int(d.get("lun", i)): self._vm_disk_size(d)
                for i, d in enumerate(profile.get("dataDisks", []))
            }
            facts.os_type = os_disk.get("osType")
            view = props.get("instanceView", {})
            statuses = [str(s.get("code", "")).lower() for s in view.get("statuses", [])]
            facts.os_state = "Generalized" if "osstate/generalized" in statuses else "Specialized"
            facts.hyper_v_generation = view.get("hyperVGeneration") or props.get("hyperVGeneration")
        else:
            facts.kind = "galleryImageVersion"
            sizes = stored.meta.get("sizes", {})
            facts.os_size_gib = int(sizes.get("os", 30))
            facts.data_sizes_gib = {int(k): int(v) for k, v in sizes.get("data", {}).items()}
            parent = ref.parent()
            definition = self._store.get(parent.key) if parent else None
            if definition is not None:
                dprops = definition.body.get("properties", {})
                facts.os_type = dprops.get("osType")
                facts.os_state = dprops.get("osState")
                facts.hyper_v_generation = dprops.get("hyperVGeneration", "V1")
        return facts

    def _vm_disk_size(self, disk: JsonObject) -> int:
        managed = (disk.get("managedDisk") or {}).get("id")
        if managed:
            ref = ids.parse_resource_id(str(managed))
            stored = self._store.get(ref.key) if ref else None
            if stored is not None:
                return _size_gib(stored.body.get("properties", {}))
        return _size_gib(disk)

    def _resolve_disks(
        self, os_disk: JsonObject, data_disks: list[JsonObject], location: str
    ) -> SourceFacts:
        facts = SourceFacts(kind="disks")
        disks: list[tuple[str, int | None, JsonObject]] = [("osDiskImage", None, os_disk)] + [
            (f"dataDiskImages[{i}]", int(d.get("lun", -1)), d) for i, d in enumerate(data_disks)
        ]
        seen: set[str] = set()
        for path_name, lun, disk in disks:
            source = disk.get("source") or {}
            if not source:
                raise invalid_parameter(ONE_SOURCE_MESSAGE, target="properties.storageProfile")
            key, size, props = self._resolve_disk(source, path_name, location)
            if key in seen:
                if lun is not None and key.startswith("http"):
                    raise invalid_parameter(
                        f"OSDiskImage and DataDiskImage cannot point to same blob {key}",
                        target=f"properties.storageProfile.{path_name}.source",
                    )
                raise invalid_parameter(
                    "Duplicated source ids are found in the input disks. Source id should be "
                    "unique for each disk",
                    target=f"properties.storageProfile.{path_name}.source",
                )
            seen.add(key)
            facts.keys.append(key)
            failure = vhd_failure(props, key)
            if failure is not None and facts.async_failure is None:
                facts.async_failure = failure
            if lun is None:
                facts.os_size_gib = size
                facts.os_type = props.get("osType")
                # Azure leaves a disk's or snapshot's generation unset unless it was sent; an
                # unset one fits V1 and V2 definitions (validation.check_against_definition).
                facts.hyper_v_generation = props.get("hyperVGeneration")
                facts.checked_id = str(source.get("id") or source.get("uri"))
            else:
                facts.data_sizes_gib[lun] = size
        return facts

    def _resolve_disk(
        self, source: JsonObject, path_name: str, location: str
    ) -> tuple[str, int, JsonObject]:
        base = f"properties.storageProfile.{path_name}.source"
        if source.get("uri") and source.get("id") and not source.get("storageAccountId"):
            # The older VHD form (REST spec 2022-03-03 example, GalleryDiskImageSource.id "can
            # specify ... storage account resource"): ``id`` names the blob's storage account.
            ref = ids.parse_resource_id(str(source["id"]))
            if ref is not None and ref.type == ids.STORAGE_ACCOUNT:
                source = {"uri": source["uri"], "storageAccountId": source["id"]}
        if source.get("uri") or source.get("storageAccountId"):
            if source.get("id"):
                raise invalid_parameter(
                    "Only one of 'id' or 'uri' can be specified for a disk image source.",
                    target=base,
                )
            return self._resolve_vhd(source, base, location)
        resource_id = str(source.get("id", ""))
        ref, stored = self._lookup(resource_id, f"{base}.id", location)
        if ref.type not in (ids.SNAPSHOT, ids.DISK):
            raise invalid_parameter(
                f"The source id: {resource_id} must be a managed disk or snapshot",
                target=f"{base}.id",
            )
        props = stored.body.get("properties", {})
        return ref.key, _size_gib(props, default=0), props

    def _resolve_vhd(
        self, source: JsonObject, base: str, location: str
    ) -> tuple[str, int, JsonObject]:
        uri = str(source.get("uri") or "")
        account_id = str(source.get("storageAccountId") or "")
        if not uri:
            raise invalid_parameter("The 'uri' of a VHD source is required.", target=f"{base}.uri")
        if not account_id:
            raise invalid_parameter(
                "The 'storageAccountId' of a VHD source is required.",
                target=f"{base}.storageAccountId",
            )
        if not account_id.lower().startswith("/subscriptions/"):
            raise _bad_id(account_id, f"{base}.storageAccountId")
        ref = ids.parse_resource_id(account_id)
        if ref is None or ref.type != ids.STORAGE_ACCOUNT:
            raise _bad_id(account_id, f"{base}.storageAccountId")
        account = self._store.get(ref.key)
        if account is None:
            raise invalid_parameter(
                f"Source was not found: {account_id}. Please make sure the source exists",
                target=f"{base}.storageAccountId",
            )
        endpoint = str(
            account.body.get("properties", {}).get("primaryEndpoints", {}).get("blob", "")
        )
        plain_uri = uri.split("?", 1)[0]
        if not endpoint or not plain_uri.lower().startswith(endpoint.rstrip("/").lower() + "/"):
            raise invalid_parameter(
                f"The blob uri {plain_uri} does not belong to storage account {account_id}.",
                target=f"{base}.uri",
            )
        if self._vhd_inspector is None:
            raise invalid_parameter(
                "The simulator has no blob service configured (--blob-connection-string).",
                target=f"{base}.uri",
            )
        try:
            virtual_size, problems = self._vhd_inspector(plain_uri, account)
        except LookupError:
            raise invalid_parameter(
                f"Source was not found: {plain_uri}. Please make sure the source exists",
                target=f"{base}.uri",
            ) from None
        size = math.ceil(virtual_size / GIB) if virtual_size else 0
        facts: JsonObject = {"osType": None}
        if problems:
            facts["vhdProblems"] = problems
        return plain_uri.lower(), size, facts


def vhd_failure(facts_props: JsonObject, uri: str) -> tuple[str, str] | None:
    """The asynchronous failure for a VHD whose footer check found problems."""
    problems = facts_props.get("vhdProblems")
    if not problems:
        return None
    return (
        VHD_INVALID_CODE,
        f"The VHD {uri} is not supported: {'; '.join(problems)}. A gallery image version needs "
        "a fixed-format VHD whose virtual size is a whole number of MiB.",
    )
