"""Soft delete of gallery image versions (Azure Compute Gallery, preview since 2025).

A gallery opts in with ``properties.softDeletePolicy: {"isSoftDeleteEnabled": true}``; the
service answers with the fixed retention (``"retentionPeriodInDays": 7``) and keeps the policy
when a later PUT of the gallery does not mention it (:func:`gallery_policy`). When the policy
is on, deleting a version (api-version 2024-03-03 or later, no ``bypassSoftDelete=true``)
does not remove it: once the delete operation ends, the version is kept aside for 7 days
(:func:`retire`), invisible to GET and list, and counted as a child of its definition (which
therefore cannot be deleted, as the docs say). A PUT or PATCH of the same name with
``properties.restore: true`` brings it back (:func:`take`); after 7 simulated days it is gone
for good (:func:`purge_expired`). Sources: docs/devstack.md, "Soft delete".
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

from devstack.armsim.clock import azure_timestamp, parse_timestamp
from devstack.armsim.errors import invalid_parameter
from devstack.armsim.ids import ResourceRef
from devstack.armsim.store import Store, StoredResource

JsonObject = dict[str, Any]

RETENTION_DAYS: Final = 7
#: The first api-version that soft-deletes ("The minimum API version required to use Soft
#: Delete is 2024-03-03").
MINIMUM_API_VERSION: Final = "2024-03-03"
#: Type and key suffix of a soft-deleted version in the store: no GET or list finds it there.
SOFT_DELETED_TYPE: Final = "Microsoft.Compute/galleries/images/versions#softDeleted"
_KEY_SUFFIX: Final = "#softdeleted"
#: Set on a version whose running delete operation soft-deletes it.
SOFT_DELETE_MARK: Final = "softDelete"
RETENTION_MESSAGE: Final = (
    "The retention period of a gallery's soft delete policy is 7 days and cannot be changed."
)


def gallery_policy(given: object, existing: JsonObject | None) -> JsonObject | None:
    """The policy to store for a gallery PUT or PATCH: the given one with the service's default
    retention, else the stored one (a PUT that leaves the policy out keeps it)."""
    if given is None:
        return existing
    if not isinstance(given, dict):
        raise invalid_parameter(
            "The value of parameter softDeletePolicy is invalid.",
            target="properties.softDeletePolicy",
        )
    retention = given.get("retentionPeriodInDays")
    if retention is not None and retention != RETENTION_DAYS:
        raise invalid_parameter(
            RETENTION_MESSAGE, target="properties.softDeletePolicy.retentionPeriodInDays"
        )
    enabled = bool(given.get("isSoftDeleteEnabled"))
    policy: JsonObject = {"isSoftDeleteEnabled": enabled}
    if enabled:
        policy["retentionPeriodInDays"] = RETENTION_DAYS
    return policy


def enabled(gallery: StoredResource | None) -> bool:
    """True when the gallery soft-deletes its versions."""
    policy = ((gallery.body.get("properties") or {}) if gallery else {}).get("softDeletePolicy")
    return bool((policy or {}).get("isSoftDeleteEnabled"))


def applies(gallery: StoredResource | None, api_version: str, query: dict[str, str]) -> bool:
    """Does a DELETE of a version in ``gallery`` soft-delete it?"""
    bypass = query.get("bypassSoftDelete", "").lower() == "true"
    return enabled(gallery) and api_version >= MINIMUM_API_VERSION and not bypass


def _key(ref_key: str) -> str:
    return ref_key + _KEY_SUFFIX


def retire(store: Store, stored: StoredResource, now: dt.datetime) -> None:
    """The delete operation ended: keep the version aside instead of removing it."""
    meta = {k: v for k, v in stored.meta.items() if k not in (SOFT_DELETE_MARK, "operationId")}
    meta["provisioningState"] = "Succeeded"
    meta["softDeletedTime"] = azure_timestamp(now)
    store.delete(stored.key)
    store.put(
        StoredResource(
            key=_key(stored.key),
            type=SOFT_DELETED_TYPE,
            parent=stored.parent,
            body=stored.body,
            meta=meta,
        )
    )


def _expired(record: StoredResource, now: dt.datetime) -> bool:
    deleted = parse_timestamp(str(record.meta.get("softDeletedTime", "")))
    return deleted is None or now >= deleted + dt.timedelta(days=RETENTION_DAYS)


def find(store: Store, ref: ResourceRef, now: dt.datetime) -> StoredResource | None:
    """The soft-deleted version named by ``ref``, if one is still retained."""
    record = store.get(_key(ref.key))
    if record is not None and _expired(record, now):
        store.delete(record.key)
        return None
    return record


def take(store: Store, record: StoredResource) -> StoredResource:
    """Restore: the version under its own key again (the caller starts the operation)."""
    store.delete(record.key)
    meta = {k: v for k, v in record.meta.items() if k != "softDeletedTime"}
    return StoredResource(
        key=record.key.removesuffix(_KEY_SUFFIX),
        type=record.body.get("type", "Microsoft.Compute/galleries/images/versions"),
        parent=record.parent,
        body=record.body,
        meta=meta,
    )


def purge_expired(store: Store, parent: str, now: dt.datetime) -> None:
    """Hard-delete the soft-deleted versions of ``parent`` whose retention has passed."""
    for record in store.children(SOFT_DELETED_TYPE, parent):
        if _expired(record, now):
            store.delete(record.key)
