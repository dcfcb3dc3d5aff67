"""Galleries: create or update (PUT), update (PATCH), get, list and delete; each write a quick
long-running operation.

A PUT replaces the gallery's properties, except for what the service keeps itself: the
``identifier`` it makes and the ``softDeletePolicy`` (kept when the PUT leaves it out;
:mod:`devstack.armsim.softdelete`). A PATCH changes only the properties it names. Neither may
move the gallery to another region. What galleries share with definitions and versions is in
:mod:`devstack.armsim.gallery_common`.
"""

from __future__ import annotations

import copy

from devstack.armsim import softdelete
from devstack.armsim.gallery_common import (
    GalleryResourceHandlers,
    JsonObject,
    check_same_location,
    merge_patch,
    request_body,
)
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.store import StoredResource
from devstack.armsim.validation import check_gallery_name, check_location

#: Read-only properties the service ignores in a request.
READ_ONLY = ("provisioningState", "sharingStatus", "identifier")


class GalleryHandlers(GalleryResourceHandlers):
    """HTTP handlers for galleries."""

    def put(self, request: Request, ref: ResourceRef) -> Reply:
        check_gallery_name(ref.name, "galleryName")
        body = request_body(request)
        location = check_location(body)
        existing = self.context.store.get(ref.key)
        if existing is not None:
            check_same_location(ref, existing, location)
        props = self._properties(ref, body.get("properties") or {}, existing)
        return self._put_simple(request, ref, body, location, props, existing=existing)

    def patch(self, request: Request, ref: ResourceRef) -> Reply:
        existing = self._existing(ref)
        body = request_body(request)
        given = body.get("properties") or {}
        stored = {k: v for k, v in existing.body["properties"].items() if k not in READ_ONLY}
        merged = merge_patch(stored, given)
        props = self._properties(ref, merged, existing)
        location = str(existing.body.get("location", ""))
        tags = body["tags"] if "tags" in body else existing.body.get("tags")
        kept: JsonObject = {"location": location, "tags": tags}
        return self._put_simple(request, ref, kept, location, props, existing=existing)

    def _properties(
        self, ref: ResourceRef, given: JsonObject, existing: StoredResource | None
    ) -> JsonObject:
        """The stored properties, in the service's order: what was sent, ``identifier``,
        ``provisioningState``, ``softDeletePolicy``."""
        sent = {k: copy.deepcopy(v) for k, v in given.items() if k not in READ_ONLY}
        stored_policy = (existing.body["properties"] if existing else {}).get("softDeletePolicy")
        policy = softdelete.gallery_policy(sent.pop("softDeletePolicy", None), stored_policy)
        props: JsonObject = dict(sent)
        props["identifier"] = {"uniqueName": f"{ref.subscription}-{ref.name.upper()}"}
        props["provisioningState"] = "Creating"  # its place; rendered from the operation
        if policy is not None:
            props["softDeletePolicy"] = policy
        return props
