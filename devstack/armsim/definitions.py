"""Gallery image definitions: create or update (a quick long-running operation), get, list
and delete.

A definition's OS type, OS state, Hyper-V generation and identifier cannot change, and its
(publisher, offer, sku) must be unique in the gallery.
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.armsim import ids
from devstack.armsim.errors import ArmError, invalid_parameter, property_change_not_allowed
from devstack.armsim.gallery_common import GalleryResourceHandlers
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.validation import check_gallery_name, check_location, parse_end_of_life

JsonObject = dict[str, Any]


class DefinitionHandlers(GalleryResourceHandlers):
    """HTTP handlers for gallery image definitions."""

    def put(self, request: Request, ref: ResourceRef) -> Reply:
        check_gallery_name(ref.name, "galleryImageName")
        self._require_parent(ref)
        body = request.body if isinstance(request.body, dict) else {}
        location = check_location(body)
        props = copy.deepcopy(body.get("properties") or {})
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
        existing = self.context.store.get(ref.key)
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
        ordered.update(props)
        ordered.setdefault("architecture", "x64")
        return self._put_simple(request, ref, body, location, ordered, existing=existing)
