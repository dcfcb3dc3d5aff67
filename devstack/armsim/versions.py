"""Gallery image versions: create, update (PUT or PATCH), delete, restore and render.

A new version resolves its source (:mod:`devstack.armsim.sources`), checks it against the
definition and builds, then replicates to each target region in a long-running operation whose
durations come from :mod:`devstack.armsim.operations` and the injected faults. Its regions are
real ones, and they include the version's and the gallery's own region. A PUT on an existing
version updates it, keeping the stored source when the request leaves it out. In a gallery
with soft delete on, a deleted version is kept 7 days and a PUT or PATCH with ``restore: true``
brings it back (:mod:`devstack.armsim.softdelete`). The body rules (defaults, immutable
properties) are in :mod:`devstack.armsim.version_bodies`.
"""

from __future__ import annotations

import copy
from typing import Any

from devstack.armsim import operations, softdelete
from devstack.armsim.clock import azure_timestamp, parse_timestamp
from devstack.armsim.errors import (
    ArmError,
    invalid_parameter,
    parent_not_found,
    resource_not_found,
)
from devstack.armsim.gallery_common import (
    GalleryResourceHandlers,
    check_same_location,
    envelope,
    parent_key,
    request_body,
)
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.regions import region_key
from devstack.armsim.sources import SourceFacts
from devstack.armsim.store import StoredResource
from devstack.armsim.validation import (
    check_against_definition,
    check_data_disk_luns,
    check_location,
    check_publishing_profile,
    check_version_name,
    parse_end_of_life,
)
from devstack.armsim.version_bodies import (
    VALIDATIONS_PROFILE,
    check_immutables,
    derived_disks,
    insert_size_after_source,
    merge_host_caching,
    normalize_regions,
    normalize_version,
    replica_fields,
    same_request,
    sizes_of,
    strip_read_only,
    with_derived_disks,
)

JsonObject = dict[str, Any]

SOURCE_BUSY_MESSAGE = (
    "Too many requests on source '{source}'. Please reduce the number of requests on the source "
    "or wait some time before retrying"
)
MARKED_FOR_DELETION_MESSAGE = (
    "Operation 'Update Gallery Image Version' is not on allowed on {name}; since it is marked "
    "for deletion. You can only retry the Delete operation (or wait for an ongoing one to "
    "complete)"
)
BLOCKED_BEFORE_EOL_MESSAGE = (
    "Deletion of Gallery image version is not allowed because the image is enabled for "
    "blockDeletionBeforeEndOfLife and its endOfLifeDate has not reached yet"
)
#: Azure's texts for these soft-delete cases are not public (docs/devstack.md, "Soft delete").
SOFT_DELETED_NAME_MESSAGE = (
    "Gallery image version '{name}' is soft-deleted. Restore it with properties.restore set "
    "to true, or use another version name."
)
NOTHING_TO_RESTORE_MESSAGE = "There is no soft-deleted gallery image version '{name}' to restore."
RESTORE_LOCATION_MESSAGE = (
    "A soft-deleted gallery image version is restored in its original location '{location}'."
)
FAILED_SOFT_DELETE_MESSAGE = (
    "Gallery image version '{name}' is in a failed provisioning state and cannot be deleted "
    "while the gallery has soft delete enabled. Disable soft delete on the gallery, delete the "
    "version, then enable it again."
)


class VersionHandlers(GalleryResourceHandlers):
    """HTTP handlers for gallery image versions."""

    def render(self, stored: StoredResource, *, expand: str = "") -> JsonObject:
        """The body as GET returns it now: disks and sizes once built (a PUT's 201 has none),
        ``validationsProfile`` unless updating, ``$expand=replicationStatus``."""
        body = copy.deepcopy(stored.body)
        state, _ = self.provisioning_state(stored)
        body.setdefault("properties", {})
        return self._render_version(stored, body, state, expand)

    def delete(self, request: Request, ref: ResourceRef) -> Reply:
        stored = self.context.store.get(ref.key)
        if stored is None:
            return Reply(204)
        return self._delete_version(request, ref, stored)

    def _built(self, stored: StoredResource) -> bool:
        """True once the version's create operation has succeeded (seeded ones always are)."""
        op_id = stored.meta.get("createOperationId")
        if not op_id:
            return True
        operation = self.context.store.get_operation(op_id)
        if operation is None:
            return True
        if operation.get("finalized"):
            return operation.get("status") == operations.SUCCEEDED
        return operations.evaluate(operation, self.context.clock).status == operations.SUCCEEDED

    def _render_version(
        self, stored: StoredResource, body: JsonObject, state: str, expand: str
    ) -> JsonObject:
        props = body["properties"]
        if self._built(stored):
            sizes = stored.meta.get("sizes", {})
            storage = with_derived_disks(
                props.get("storageProfile", {}), stored.meta.get("derivedDisks")
            )
            props["storageProfile"] = storage
            if "osDiskImage" in storage:
                storage["osDiskImage"] = insert_size_after_source(
                    storage["osDiskImage"], int(sizes.get("os", 0))
                )
            data_sizes = sizes.get("data", {})
            storage["dataDiskImages"] = [
                insert_size_after_source(d, int(data_sizes.get(str(d.get("lun")), 0)))
                for d in storage.get("dataDiskImages", [])
            ] or storage.get("dataDiskImages")
            if storage.get("dataDiskImages") is None:
                storage.pop("dataDiskImages", None)
        if expand.lower() == "replicationstatus":
            op_id = stored.meta.get("replicationOperationId")
            operation = self.context.store.get_operation(op_id) if op_id else None
            regions = [
                r["name"] for r in props.get("publishingProfile", {}).get("targetRegions", [])
            ]
            op_state = operations.evaluate(operation, self.context.clock) if operation else None
            props["replicationStatus"] = operations.replication_status(op_state, regions)
        if state != "Updating":
            props["validationsProfile"] = copy.deepcopy(VALIDATIONS_PROFILE)
        props["provisioningState"] = state
        return body

    def put(self, request: Request, ref: ResourceRef) -> Reply:
        check_version_name(ref.name)
        gallery, definition = self._require_parent_chain(ref)
        body = request_body(request)
        existing = self.context.store.get(ref.key)
        if (body.get("properties") or {}).get("restore") is True:
            return self._restore(request, ref, body, existing)
        location = check_location(body)
        if existing is not None:
            check_same_location(ref, existing, location)
            return self._update_version(request, ref, existing, body, gallery, patch=False)
        if softdelete.find(self.context.store, ref, self.context.clock.now()) is not None:
            raise ArmError(
                409, "OperationNotAllowed", SOFT_DELETED_NAME_MESSAGE.format(name=ref.name)
            )
        props = strip_read_only(body.get("properties") or {})
        profile = props.setdefault("publishingProfile", {})
        check_publishing_profile(profile, location, str(gallery.body.get("location", "")))
        storage = props.get("storageProfile") or {}
        check_data_disk_luns(storage)
        now = self.context.clock.now()
        if profile.get("endOfLifeDate"):
            parse_end_of_life(
                profile["endOfLifeDate"], "properties.publishingProfile.endOfLifeDate", now
            )
        facts = self.context.resolver.resolve(props, location)
        check_against_definition(facts, definition.body)
        self._check_source_free(facts)
        normalized = normalize_version(props, location, facts, azure_timestamp(now))
        operation = self._version_operation(request, ref, normalized, facts, location)
        stored = StoredResource(
            key=ref.key,
            type=ref.type,
            parent=parent_key(ref),
            body=envelope(ref, {**body, "location": location}, normalized),
            meta={
                "provisioningState": "Creating",
                "operationId": operation["id"],
                "replicationOperationId": operation["id"],
                "createOperationId": operation["id"],
                "sizes": sizes_of(facts),
                "sourceKeys": facts.keys,
                "derivedDisks": derived_disks(facts),
            },
        )
        self._start(operation)
        self.context.store.put(stored)
        return self._lro_reply(201, self.render(stored), operation)

    def _restore(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        existing: StoredResource | None,
    ) -> Reply:
        """``properties.restore: true``: bring a soft-deleted version back (200 Updating, as
        the REST spec's ``GalleryImageVersion_Update_RestoreSoftDeleted`` example)."""
        if existing is not None:
            raise invalid_parameter(
                NOTHING_TO_RESTORE_MESSAGE.format(name=ref.name), target="properties.restore"
            )
        record = softdelete.find(self.context.store, ref, self.context.clock.now())
        if record is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        location = str(record.body.get("location", ""))
        wanted = body.get("location")
        if wanted is not None and str(wanted).replace(" ", "").lower() != location.lower():
            raise invalid_parameter(
                RESTORE_LOCATION_MESSAGE.format(location=location), target="location"
            )
        restored = softdelete.take(self.context.store, record)
        profile = restored.body["properties"]["publishingProfile"]
        regions = {region_key(r["name"]) for r in profile.get("targetRegions", [])}
        operation = self._version_operation(
            request,
            ref,
            restored.body["properties"],
            self._facts_of(restored),
            location,
            kind="update",
            existing_regions=regions,
        )
        restored.meta.update(
            {
                "provisioningState": "Updating",
                "operationId": operation["id"],
                "replicationOperationId": operation["id"],
            }
        )
        self._start(operation)
        self.context.store.put(restored)
        return self._lro_reply(200, self.render(restored), operation)

    @staticmethod
    def _facts_of(stored: StoredResource) -> SourceFacts:
        """What an update needs to know of a built version's source: its keys and sizes."""
        sizes = stored.meta.get("sizes", {})
        return SourceFacts(
            kind="update",
            keys=list(stored.meta.get("sourceKeys", [])),
            os_size_gib=int(sizes.get("os", 0)),
            data_sizes_gib={int(k): int(v) for k, v in sizes.get("data", {}).items()},
        )

    def _require_parent_chain(self, ref: ResourceRef) -> tuple[StoredResource, StoredResource]:
        """The gallery and the definition of a version (404 ParentResourceNotFound)."""
        image_ref = ref.parent()
        assert image_ref is not None
        gallery_ref = image_ref.parent()
        assert gallery_ref is not None
        gallery = self.context.store.get(gallery_ref.key)
        if gallery is None:
            raise parent_not_found(gallery_ref.name_path)
        definition = self.context.store.get(image_ref.key)
        if definition is None:
            raise parent_not_found(image_ref.name_path)
        return gallery, definition

    def _check_source_free(self, facts: SourceFacts) -> None:
        wanted = set(facts.keys)
        for operation in self.context.store.pending_operations():
            if operation["kind"] == "delete" or not wanted.intersection(operation["sourceKeys"]):
                continue
            if operations.evaluate(operation, self.context.clock).terminal:
                continue
            busy = sorted(wanted.intersection(operation["sourceKeys"]))[0]
            shown = next((k for k in facts.keys if k == busy), busy)
            self.context.stats.count_source_conflict(shown)
            raise ArmError(409, "OperationNotAllowed", SOURCE_BUSY_MESSAGE.format(source=shown))

    def _version_operation(
        self,
        request: Request,
        ref: ResourceRef,
        props: JsonObject,
        facts: SourceFacts,
        location: str,
        *,
        kind: str = "create",
        existing_regions: set[str] | None = None,
    ) -> JsonObject:
        faults = self.context.faults
        size = facts.total_size_gib
        regions: list[JsonObject] = []
        for target in props["publishingProfile"]["targetRegions"]:
            key = region_key(target["name"])
            seconds = operations.region_seconds(size, int(target["regionalReplicaCount"]))
            seconds *= faults.slow_regions.get(key, 1.0) * faults.slow_operations
            regions.append(
                operations.region_plan(
                    target["name"],
                    seconds,
                    existing=key in (existing_regions or set()),
                    fail_message=faults.replication_failures.get(key),
                )
            )
        build = (
            operations.build_seconds(size)
            if kind == "create"
            else operations.VERSION_UPDATE_SECONDS
        ) * faults.slow_operations
        failure: JsonObject | None = None
        if kind == "create":
            if facts.async_failure is not None:
                code, message = facts.async_failure
                failure = {"atSeconds": min(30.0, build / 2), "code": code, "message": message}
            else:
                largest = max([facts.os_size_gib, *facts.data_sizes_gib.values()])
                limit = self.context.config.max_source_size_gib
                if largest > limit:
                    failure = {
                        "atSeconds": build / 2,
                        "code": "GallerySourceResourceExceedsMaxSize",
                        "message": "Replication failed in this region due to 'The "
                        f"GalleryImageVersion source resource size {largest} exceeds the max "
                        f"size {limit} supported'",
                    }
        return operations.new_operation(
            kind=kind,
            resource_key=ref.key,
            resource_id=ref.id,
            location=location,
            api_version=request.api_version,
            clock=self.context.clock,
            build=build,
            regions=regions,
            failure=failure,
            source_keys=facts.keys,
        )

    def patch(self, request: Request, ref: ResourceRef) -> Reply:
        check_version_name(ref.name)
        gallery, _ = self._require_parent_chain(ref)
        body = request_body(request)
        existing = self.context.store.get(ref.key)
        if (body.get("properties") or {}).get("restore") is True:
            return self._restore(request, ref, body, existing)
        if existing is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        return self._update_version(request, ref, existing, body, gallery, patch=True)

    def _update_version(
        self,
        request: Request,
        ref: ResourceRef,
        existing: StoredResource,
        body: JsonObject,
        gallery: StoredResource,
        *,
        patch: bool,
    ) -> Reply:
        state, running = self.provisioning_state(existing)
        if state == "Deleting":
            raise ArmError(
                409, "OperationNotAllowed", MARKED_FOR_DELETION_MESSAGE.format(name=ref.name)
            )
        old_props = existing.body["properties"]
        new_props = strip_read_only(body.get("properties") or {})
        if running is not None and state in ("Creating", "Updating"):
            if not patch and same_request(old_props, new_props):
                return self._lro_reply(200, self.render(existing), running)
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Operation 'Update Gallery Image Version' is not allowed on {ref.name} while "
                f"it is {state.lower()}. Wait for the ongoing operation to complete.",
            )
        shown_storage = with_derived_disks(
            old_props.get("storageProfile") or {}, existing.meta.get("derivedDisks")
        )
        check_immutables({**old_props, "storageProfile": shown_storage}, new_props)
        merged = copy.deepcopy(old_props)
        new_profile = new_props.get("publishingProfile") or {}
        profile = merged["publishingProfile"]
        location = str(existing.body.get("location"))
        gallery_location = str(gallery.body.get("location", ""))
        if "replicaCount" in new_profile:
            profile["replicaCount"] = new_profile["replicaCount"]
        for name in ("excludeFromLatest", "endOfLifeDate"):
            if name in new_profile:
                profile[name] = new_profile[name]
        if "endOfLifeDate" in new_profile and new_profile["endOfLifeDate"] != old_props[
            "publishingProfile"
        ].get("endOfLifeDate"):
            parse_end_of_life(
                new_profile["endOfLifeDate"],
                "properties.publishingProfile.endOfLifeDate",
                self.context.clock.now(),
            )
        if "targetRegions" in new_profile:
            check_publishing_profile(
                {"targetRegions": new_profile["targetRegions"], **replica_fields(new_profile)},
                location,
                gallery_location,
            )
            profile["targetRegions"] = normalize_regions(
                new_profile["targetRegions"],
                int(profile.get("replicaCount", 1)),
                str(profile.get("storageAccountType", "Standard_LRS")),
            )
        else:
            check_publishing_profile(replica_fields(new_profile), location)
        if "safetyProfile" in new_props:
            merged.setdefault("safetyProfile", {}).update(
                {k: v for k, v in new_props["safetyProfile"].items() if k != "policyViolations"}
            )
        for name in ("storageProfile",):
            if name in new_props:
                merge_host_caching(merged[name], new_props[name])
        if "tags" in body:
            existing.body["tags"] = body["tags"]
        old_regions = {
            region_key(r["name"]) for r in old_props["publishingProfile"].get("targetRegions", [])
        }
        facts = self._facts_of(existing)
        operation = self._version_operation(
            request, ref, merged, facts, location, kind="update", existing_regions=old_regions
        )
        existing.body["properties"] = merged
        existing.meta.update(
            {
                "provisioningState": "Updating",
                "operationId": operation["id"],
                "replicationOperationId": operation["id"],
            }
        )
        self._start(operation)
        self.context.store.put(existing)
        return self._lro_reply(200, self.render(existing), operation)

    def _delete_version(self, request: Request, ref: ResourceRef, stored: StoredResource) -> Reply:
        state, running = self.provisioning_state(stored)
        if state == "Deleting" and running is not None:
            return Reply(202, None, self.context.async_headers(running, delete=True))
        gallery, _ = self._require_parent_chain(ref)
        soft = softdelete.applies(gallery, request.api_version, request.query)
        if soft and state == "Failed":  # documented limitation of the soft delete preview
            raise ArmError(
                409, "OperationNotAllowed", FAILED_SOFT_DELETE_MESSAGE.format(name=ref.name)
            )
        profile = stored.body["properties"].get("publishingProfile", {})
        safety = stored.body["properties"].get("safetyProfile", {})
        end_of_life = parse_timestamp(str(profile.get("endOfLifeDate") or ""))
        if safety.get("blockDeletionBeforeEndOfLife") and (
            end_of_life is None or end_of_life > self.context.clock.now()
        ):
            raise ArmError(
                409, "DeleteGalleryImageVersionBlockedBeforeEndOfLife", BLOCKED_BEFORE_EOL_MESSAGE
            )
        seconds = operations.VERSION_DELETE_SECONDS * self.context.faults.slow_operations
        if soft:
            stored.meta[softdelete.SOFT_DELETE_MARK] = True
        return self._start_delete(request, ref, stored, seconds)
