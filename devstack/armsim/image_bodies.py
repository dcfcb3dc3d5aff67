"""Managed images (``Microsoft.Compute/images``) as CRP writes and reads them.

An image is made from a virtual machine (``sourceVirtualMachine``: its storage profile is the
VM's disks, read from the VM as the service does) or from an explicit storage profile (an OS
disk and data disks from snapshots, managed disks or blobs). :func:`normalize_image` returns
the stored body (as a read shows it once created, with each disk's ``diskSizeGB`` taken from its
source) and the body of the 201 (``provisioningState: Creating``, no ``diskSizeGB`` yet), with
the recorded defaults: ``caching: None`` and ``storageAccountType: Standard_LRS`` for snapshot
and disk sources, ``dataDisks: []``, ``zoneResilient: false``. ``hyperVGeneration`` is the one
sent, else the one the source knows, else absent.

A source that does not exist, or lives in another region, is refused like a disk copy's
(404 ``NotFound``, "Resource <name> is not found."): assumed, see docs/devstack.md.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from devstack.armsim import ids
from devstack.armsim.errors import disk_source_not_found
from devstack.armsim.regions import region_key
from devstack.armsim.store import Store, StoredResource

JsonObject = dict[str, Any]
#: Keys of an image disk in the recorded order (``diskSizeGB`` appears once created).
DISK_KEYS: Final[tuple[str, ...]] = (
    "lun",
    "osType",
    "osState",
    "diskSizeGB",
    "snapshot",
    "managedDisk",
    "blobUri",
    "caching",
    "storageAccountType",
)


class ImageSources:
    """Looks image sources up in the store; ``strict`` refuses missing or foreign ones."""

    def __init__(self, store: Store, location: str, *, strict: bool) -> None:
        self._store = store
        self._location = region_key(location)
        self._strict = strict

    def get(self, resource_id: str | None, kinds: tuple[str, ...]) -> StoredResource | None:
        if not resource_id:
            return None
        ref = ids.parse_resource_id(str(resource_id))
        name = str(resource_id).rstrip("/").rsplit("/", 1)[-1]
        stored = self._store.get(ref.key) if ref is not None and ref.type in kinds else None
        if stored is not None and region_key(str(stored.body.get("location", ""))) == (
            self._location
        ):
            return stored
        if self._strict:
            raise disk_source_not_found(name)
        return stored


def _ordered_disk(disk: JsonObject) -> JsonObject:
    result: JsonObject = {key: disk[key] for key in DISK_KEYS if key in disk}
    result.update({k: v for k, v in disk.items() if k not in DISK_KEYS})
    return result


def _disk_size(stored: StoredResource | None, disk: JsonObject) -> int | None:
    if stored is not None and "diskSizeGB" in stored.body.get("properties", {}):
        return int(stored.body["properties"]["diskSizeGB"])
    return int(disk["diskSizeGB"]) if "diskSizeGB" in disk else None


def _from_profile(profile: JsonObject, sources: ImageSources) -> tuple[JsonObject, str | None]:
    """An explicit storage profile with the service's defaults; the OS source's generation."""
    generation: str | None = None
    disks: list[JsonObject] = []
    for index, sent in enumerate([profile.get("osDisk") or {}, *(profile.get("dataDisks") or [])]):
        disk = copy.deepcopy(sent)
        kinds = (ids.SNAPSHOT,) if "snapshot" in disk else (ids.DISK,)
        source_id = (disk.get("snapshot") or disk.get("managedDisk") or {}).get("id")
        stored = sources.get(source_id, kinds)
        size = _disk_size(stored, disk)
        if size is not None:
            disk["diskSizeGB"] = size
        for key in ("snapshot", "managedDisk"):
            if key in disk and stored is not None:
                disk[key] = {"id": stored.body["id"]}
        disk.setdefault("caching", "None")
        disk.setdefault("storageAccountType", "Standard_LRS")
        if index == 0 and stored is not None:
            generation = stored.body.get("properties", {}).get("hyperVGeneration")
        disks.append(_ordered_disk(disk))
    result: JsonObject = {"osDisk": disks[0], "dataDisks": disks[1:]}
    result["zoneResilient"] = bool(profile.get("zoneResilient", False))
    return result, generation


def _vm_disk(vm_disk: JsonObject, sources: ImageSources, *, os_disk: bool) -> JsonObject:
    managed = vm_disk.get("managedDisk") or {}
    stored = sources.get(managed.get("id"), (ids.DISK,))
    disk: JsonObject = {}
    if os_disk:
        disk["osType"] = vm_disk.get("osType") or (
            stored.body.get("properties", {}).get("osType") if stored else None
        )
        disk["osState"] = "Generalized"
    else:
        disk["lun"] = vm_disk.get("lun", 0)
    size = _disk_size(stored, vm_disk)
    if size is not None:
        disk["diskSizeGB"] = size
    if managed.get("id"):
        disk["managedDisk"] = {"id": managed["id"]}
    elif (vm_disk.get("vhd") or {}).get("uri"):
        disk["blobUri"] = vm_disk["vhd"]["uri"]
    disk["caching"] = vm_disk.get("caching") or ("ReadWrite" if os_disk else "None")
    account_type = managed.get("storageAccountType") or (
        (stored.body.get("sku") or {}).get("name") if stored else None
    )
    if account_type:
        disk["storageAccountType"] = account_type
    return {k: v for k, v in disk.items() if v is not None}


def _from_vm(vm: StoredResource, sources: ImageSources, zone_resilient: bool) -> JsonObject:
    """The storage profile of an image of ``vm``: its OS disk and data disks."""
    profile = vm.body.get("properties", {}).get("storageProfile") or {}
    return {
        "osDisk": _vm_disk(profile.get("osDisk") or {}, sources, os_disk=True),
        "dataDisks": [
            _vm_disk(disk, sources, os_disk=False) for disk in profile.get("dataDisks") or []
        ],
        "zoneResilient": zone_resilient,
    }


def _vm_generation(vm: StoredResource, sources: ImageSources) -> str | None:
    props = vm.body.get("properties", {})
    generation = (props.get("instanceView") or {}).get("hyperVGeneration") or props.get(
        "hyperVGeneration"
    )
    if generation:
        return str(generation)
    os_disk = (props.get("storageProfile") or {}).get("osDisk") or {}
    stored = sources.get((os_disk.get("managedDisk") or {}).get("id"), (ids.DISK,))
    found = stored.body.get("properties", {}).get("hyperVGeneration") if stored else None
    return str(found) if found else None


def _without_sizes(profile: JsonObject) -> JsonObject:
    result = copy.deepcopy(profile)
    for disk in [result.get("osDisk") or {}, *(result.get("dataDisks") or [])]:
        disk.pop("diskSizeGB", None)
    return result


def normalize_image(
    body: JsonObject, store: Store, *, strict: bool = True
) -> tuple[JsonObject, JsonObject]:
    """(properties as read once created, properties of the 201 ``Creating`` body)."""
    sent = copy.deepcopy(body.get("properties") or {})
    sent.pop("provisioningState", None)
    sources = ImageSources(store, str(body.get("location", "")), strict=strict)
    vm_id = (sent.get("sourceVirtualMachine") or {}).get("id")
    sent_profile = sent.get("storageProfile") or {}
    generation = sent.get("hyperVGeneration")
    props: JsonObject = {}
    if vm_id:
        vm = sources.get(vm_id, (ids.VM,))
        props["sourceVirtualMachine"] = {"id": vm.body["id"] if vm else vm_id}
        if vm is not None:
            zone_resilient = bool(sent_profile.get("zoneResilient", False))
            props["storageProfile"] = _from_vm(vm, sources, zone_resilient)
            generation = generation or _vm_generation(vm, sources)
        else:
            props["storageProfile"] = sent_profile
    else:
        profile, source_generation = _from_profile(sent_profile, sources)
        props["storageProfile"] = profile
        generation = generation or source_generation
    props["provisioningState"] = "Succeeded"  # the read's state replaces it
    if generation:
        props["hyperVGeneration"] = generation
    for key, value in sent.items():
        props.setdefault(key, value)
    creating = copy.deepcopy(props)
    creating["storageProfile"] = _without_sizes(props["storageProfile"])
    creating["provisioningState"] = "Creating"
    return props, creating
