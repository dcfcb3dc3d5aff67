"""Seed documents for the ARM simulator's ``POST /admin/seed``: the usual test resources.

The ``devgallery`` gallery in ``rg-images``, definitions, empty snapshots in ``rg-builds`` and the
Azurite storage account (``devstoreaccount1``) as an ARM resource; :func:`dev_resources` is what
the sample settings (``local.settings.sample.json``) publish into (``python -m devstack seed``).
:mod:`devstack.stack` re-exports all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from devstack import azurite

SUBSCRIPTION: Final = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP: Final = "rg-images"
GALLERY: Final = "devgallery"
#: Where the seeded resources live unless a caller says otherwise.
LOCATION: Final = "westeurope"
#: The resource group of the seeded (and the demo's) snapshots.
SNAPSHOT_RESOURCE_GROUP: Final = "rg-builds"
GALLERY_ID: Final = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.Compute/galleries/{GALLERY}"
)
SNAPSHOTS_ID: Final = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{SNAPSHOT_RESOURCE_GROUP}"
    "/providers/Microsoft.Compute/snapshots"
)


def storage_account_id(resource_group: str = RESOURCE_GROUP) -> str:
    """The ARM id of Azurite's account (``devstoreaccount1``) in ``resource_group``."""
    return (
        f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Storage/storageAccounts/{azurite.ACCOUNT_NAME}"
    )


STORAGE_ACCOUNT_ID: Final = storage_account_id()


def gallery_resource(location: str = LOCATION) -> dict[str, Any]:
    """The ``devgallery`` gallery in ``rg-images``."""
    return {"id": GALLERY_ID, "location": location, "properties": {}}


def storage_account_resource(
    resource_group: str = RESOURCE_GROUP, location: str = LOCATION
) -> dict[str, Any]:
    """Azurite's account as an ARM resource, so VHD sources can name it (``storageAccountId``)."""
    return {"id": storage_account_id(resource_group), "location": location, "properties": {}}


def definition_resource(
    name: str, *, publisher: str, offer: str, sku: str | None = None, location: str = LOCATION
) -> dict[str, Any]:
    """A generalized Linux Gen2 definition in ``devgallery`` (``sku`` defaults to ``name``)."""
    return {
        "id": f"{GALLERY_ID}/images/{name}",
        "location": location,
        "properties": {
            "osType": "Linux",
            "osState": "Generalized",
            "hyperVGeneration": "V2",
            "identifier": {"publisher": publisher, "offer": offer, "sku": sku or name},
        },
    }


def snapshot_body(
    *, size_gib: int = 4, location: str = LOCATION, tags: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """An empty Linux Gen2 snapshot: the body of a snapshot PUT (no ``id``)."""
    body: dict[str, Any] = {"location": location}
    if tags is not None:
        body["tags"] = dict(tags)
    body["properties"] = {
        "diskSizeGB": size_gib,
        "osType": "Linux",
        "hyperVGeneration": "V2",
        "creationData": {"createOption": "Empty"},
    }
    return body


def snapshot_resource(name: str, *, size_gib: int = 4, location: str = LOCATION) -> dict[str, Any]:
    """An empty snapshot ``name`` in ``rg-builds``, to seed (its id is ``SNAPSHOTS_ID/name``)."""
    return {"id": f"{SNAPSHOTS_ID}/{name}", **snapshot_body(size_gib=size_gib, location=location)}


# --- what ``python -m devstack seed`` creates ---------------------------------------------------


#: What the sample settings (local.settings.sample.json) publish into: the VHD route's storage
#: account (Azurite's, in rg-devstack) and the route's definition in the devgallery.
DEV_LOCATION: Final = "eastus"
DEV_DEFINITION: Final = "ubuntu-24.04"
DEV_UPLOAD_RESOURCE_GROUP: Final = "rg-devstack"
#: The sample snapshot (4 GiB, Linux Gen2, in the gallery's region) that
#: ``docs/examples/local/snapshot.json`` publishes.
DEV_SNAPSHOT: Final = "ubuntu-24.04-os"
DEV_SNAPSHOT_ID: Final = f"{SNAPSHOTS_ID}/{DEV_SNAPSHOT}"
DEV_DEFINITION_ID: Final = f"{GALLERY_ID}/images/{DEV_DEFINITION}"
#: The container VHDs are uploaded to (``python -m devstack upload-vhd``).
DEV_UPLOAD_CONTAINER: Final = "vhds"


def dev_resources() -> list[dict[str, Any]]:
    """The gallery, upload storage account, definition and sample snapshot the sample settings
    and ``docs/examples/local/`` expect."""
    return [
        gallery_resource(DEV_LOCATION),
        storage_account_resource(DEV_UPLOAD_RESOURCE_GROUP, DEV_LOCATION),
        definition_resource(
            DEV_DEFINITION,
            publisher="devstack",
            offer="ubuntu",
            sku="24_04-lts-gen2",
            location=DEV_LOCATION,
        ),
        snapshot_resource(DEV_SNAPSHOT, location=DEV_LOCATION),
    ]
