"""Galleries: create or update (a quick long-running operation), get, list and delete.

What they share with definitions and versions is in :mod:`devstack.armsim.gallery_common`.
"""

from __future__ import annotations

import copy

from devstack.armsim.gallery_common import GalleryResourceHandlers
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.validation import check_gallery_name, check_location


class GalleryHandlers(GalleryResourceHandlers):
    """HTTP handlers for galleries."""

    def put(self, request: Request, ref: ResourceRef) -> Reply:
        check_gallery_name(ref.name, "galleryName")
        body = request.body if isinstance(request.body, dict) else {}
        location = check_location(body)
        existing = self.context.store.get(ref.key)
        props = copy.deepcopy(body.get("properties") or {})
        props.pop("provisioningState", None)
        props.pop("sharingStatus", None)
        props["identifier"] = {"uniqueName": f"{ref.subscription}-{ref.name.upper()}"}
        if existing is not None:
            location = str(existing.body.get("location", location))
        return self._put_simple(request, ref, body, location, props, existing=existing)
