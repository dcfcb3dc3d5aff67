"""Gallery image definitions: create or update (PUT), update (PATCH), get, list and delete;
each write a quick long-running operation.

A definition's OS type, OS state, Hyper-V generation and identifier cannot change (by PUT or
PATCH alike), and its (publisher, offer, sku) must be unique in the gallery. The service does
not echo an empty ``disallowed`` or ``features`` (a real azure-cli session sends both empty and
gets neither back), and adds ``architecture: x64``.
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.armsim import ids
from devstack.armsim.errors import ArmError, invalid_parameter, property_change_not_allowed
from devstack.armsim.gallery_common import (
    GalleryResourceHandlers,
    check_same_location,
    merge_patch,
    request_body,
)
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.store import StoredResource
from devstack.armsim.validation import check_gallery_name, check_location, parse_end_of_life

JsonObject = dict[str, Any]


def _without_empty_lists(props: JsonObject) -> JsonObject:
    """``disallowed: {}`` (or ``{"diskTypes": []}``) and ``features: []`` are not echoed."""
    disallowed = props.get("disallowed")
    if isinstance(disallowed, dict) and not any(disallowed.values()):
        props.pop("disallowed")
    if props.get("features") == []:
        props.pop("features")
    return props


class DefinitionHandlers(GalleryResourceHandlers):
    """HTTP handlers for gallery image definitions."""

    def put(self, request: Request, ref: ResourceRef) -> Reply:
        check_gallery_name(ref.name, "galleryImageName")
        self._require_parent(ref)
        body = request_body(request)
        location = check_location(body)
        existing = self.context.store.get(ref.key)
        if existing is not None:
            check_same_location(ref, existing, location)
        props = copy.deepcopy(body.get("properties") or {})
        return self._write(request, ref, body, location, props, existing=existing)

    def patch(self, request: Request, ref: ResourceRef) -> Reply:
        self._require_parent(ref)
        existing = self._existing(ref)
        body = request_body(request)
        props = merge_patch(existing.body["properties"], body.get("properties") or {})
        location = str(existing.body.get("location", ""))
        tags = body["tags"] if "tags" in body else existing.body.get("tags")
        kept: JsonObject = {"location": location, "tags": tags}
        return self._write(request, ref, kept, location, props, existing=existing)

    def _write(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        location: str,
        props: JsonObject,
        *,
        existing: StoredResource | None,
    ) -> Reply:
        """Check the definition's rules on the whole new property set, then store it."""
        props.pop("provisioningState", None)
        for required in ("osType", "osState", "identifier"):
            if not props.get(required):
                raise invalid_parameter(
                    f"Required parameter '{required}' is missing (null).",
                    target=f"galleryImage.properties.{required}",
                )
        identifier = props["identifier"]
        for part in ("publisher", "offer", "sku"):
            if not identifier.get(part):
                raise invalid_parameter(
                    f"Required parameter '{part}' is missing (null).",
                    target=f"galleryImage.properties.identifier.{part}",
                )
        if props.get("endOfLifeDate"):
            parse_end_of_life(
                props["endOfLifeDate"], "properties.endOfLifeDate", self.context.clock.now()
            )
        if existing is not None:
            old = existing.body["properties"]
            for name in ("osType", "osState", "hyperVGeneration"):
                if (
                    str(old.get(name, "V1" if name == "hyperVGeneration" else "")).lower()
                    != str(props.get(name, "V1" if name == "hyperVGeneration" else "")).lower()
                ):
                    raise property_change_not_allowed(f"galleryImage.properties.{name}")
            for part in ("publisher", "offer", "sku"):
                if str(old["identifier"].get(part)).lower() != str(identifier[part]).lower():
                    raise property_change_not_allowed(f"galleryImage.properties.identifier.{part}")
        parent = ref.parent()
        assert parent is not None
        triple = tuple(str(identifier[p]).lower() for p in ("publisher", "offer", "sku"))
        for sibling in self.context.store.children(ids.IMAGE, parent.key):
            if sibling.key == ref.key:
                continue
            other = sibling.body["properties"]["identifier"]
            if tuple(str(other.get(p)).lower() for p in ("publisher", "offer", "sku")) == triple:
                raise ArmError(
                    409,
                    "Conflict",
                    f"Gallery image: {sibling.body['name']} identified by (publisher:"
                    f"{identifier['publisher']}, offer:{identifier['offer']}, sku:"
                    f"{identifier['sku']}) already exists. Choose a different publisher, offer, "
                    "sku combination.",
                )
        ordered: JsonObject = {"hyperVGeneration": props.pop("hyperVGeneration", "V1")}
        ordered.update(_without_empty_lists(props))
        ordered.setdefault("architecture", "x64")
        return self._put_simple(request, ref, body, location, ordered, existing=existing)
