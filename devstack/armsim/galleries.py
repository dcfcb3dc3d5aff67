"""Galleries, gallery image definitions and gallery image versions.

PUT/PATCH/DELETE are long-running operations as the service does them (201/200/202 with
``Azure-AsyncOperation``); GET renders the stored body with the state derived from the clock.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from devstack.armsim import ids, operations
from devstack.armsim.clock import azure_timestamp, parse_timestamp
from devstack.armsim.errors import (
    ArmError,
    invalid_parameter,
    parent_not_found,
    property_change_not_allowed,
    resource_not_found,
)
from devstack.armsim.ids import ResourceRef
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.regions import display_name, region_key
from devstack.armsim.sources import SourceFacts
from devstack.armsim.store import StoredResource
from devstack.armsim.validation import (
    check_against_definition,
    check_data_disk_luns,
    check_gallery_name,
    check_location,
    check_publishing_profile,
    check_version_name,
    parse_end_of_life,
)

if TYPE_CHECKING:
    from devstack.armsim.simulator import Simulator

JsonObject = dict[str, Any]

STATE_BY_KIND = {"create": "Creating", "update": "Updating", "delete": "Deleting"}
READ_ONLY_VERSION_FIELDS = ("provisioningState", "replicationStatus", "validationsProfile")
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
NESTED_RESOURCES_MESSAGE = "Can not delete resource before nested resources are deleted"


def parent_key(ref: ResourceRef) -> str:
    parent = ref.parent()
    if parent is not None:
        return parent.key
    return f"/subscriptions/{ref.subscription}/resourcegroups/{ref.resource_group}".lower()


def envelope(ref: ResourceRef, body: JsonObject, properties: JsonObject) -> JsonObject:
    """A tracked resource in the service's key order: name, id, type, location, tags, properties."""
    result: JsonObject = {
        "name": ref.name,
        "id": ref.id,
        "type": ref.type,
        "location": body.get("location"),
    }
    if "tags" in body and body["tags"] is not None:
        result["tags"] = body["tags"]
    result["properties"] = properties
    return result


def _strip_read_only(properties: JsonObject) -> JsonObject:
    props = copy.deepcopy(properties)
    for name in READ_ONLY_VERSION_FIELDS:
        props.pop(name, None)
    return props


class GalleryHandlers:
    """HTTP handlers for the three gallery resource types."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    # ---------------------------------------------------------------- shared
    def provisioning_state(self, stored: StoredResource) -> tuple[str, JsonObject | None]:
        """(provisioningState, running operation) of a stored gallery resource."""
        op_id = stored.meta.get("operationId")
        if op_id:
            operation = self.sim.store.get_operation(op_id)
            if operation is not None and not operation.get("finalized"):
                state = operations.evaluate(operation, self.sim.clock)
                if not state.terminal:
                    return STATE_BY_KIND[operation["kind"]], operation
                if operation["kind"] == "delete":
                    return "Deleting", operation
                return state.status, operation
        return str(stored.meta.get("provisioningState", "Succeeded")), None

    def render(self, stored: StoredResource, *, expand: str = "") -> JsonObject:
        body = copy.deepcopy(stored.body)
        state, _ = self.provisioning_state(stored)
        props = body.setdefault("properties", {})
        if stored.type == ids.VERSION.lower():
            return self._render_version(stored, body, state, expand)
        props["provisioningState"] = state
        return body

    def _render_version(
        self, stored: StoredResource, body: JsonObject, state: str, expand: str
    ) -> JsonObject:
        props = body["properties"]
        if state == "Succeeded":
            sizes = stored.meta.get("sizes", {})
            storage = props.get("storageProfile", {})
            if "osDiskImage" in storage:
                storage["osDiskImage"] = _insert_after_source(
                    storage["osDiskImage"], int(sizes.get("os", 0))
                )
            data_sizes = sizes.get("data", {})
            storage["dataDiskImages"] = [
                _insert_after_source(d, int(data_sizes.get(str(d.get("lun")), 0)))
                for d in storage.get("dataDiskImages", [])
            ] or storage.get("dataDiskImages")
            if storage.get("dataDiskImages") is None:
                storage.pop("dataDiskImages", None)
        if expand.lower() == "replicationstatus":
            op_id = stored.meta.get("replicationOperationId")
            operation = self.sim.store.get_operation(op_id) if op_id else None
            regions = [
                r["name"] for r in props.get("publishingProfile", {}).get("targetRegions", [])
            ]
            op_state = operations.evaluate(operation, self.sim.clock) if operation else None
            props["replicationStatus"] = operations.replication_status(op_state, regions)
        props["provisioningState"] = state
        return body

    def _lro_reply(self, status: int, body: JsonObject | None, operation: JsonObject) -> Reply:
        return Reply(status, body, self.sim.async_headers(operation))

    def _start(self, operation: JsonObject) -> None:
        self.sim.store.save_operation(operation)

    def _require_parent(self, ref: ResourceRef) -> StoredResource:
        parent = ref.parent()
        if parent is None:
            raise AssertionError("nested resource expected")
        stored = self.sim.store.get(parent.key)
        if stored is None:
            raise parent_not_found(parent.name_path)
        return stored

    def get(self, request: Request, ref: ResourceRef) -> Reply:
        stored = self.sim.store.get(ref.key)
        if stored is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        if ref.parent() is not None:
            self._require_parent(ref)
        return Reply(200, self.render(stored, expand=request.query.get("$expand", "")))

    def list(self, request: Request, collection: ResourceRef) -> Reply:
        parent = collection.parent() if len(collection.names) else None
        if collection.names:
            parent_ref = ResourceRef(
                collection.subscription,
                collection.resource_group,
                collection.provider,
                collection.segments[:-1],
                collection.names,
            )
            if self.sim.store.get(parent_ref.key) is None:
                raise parent_not_found(parent_ref.name_path)
            parent_id = parent_ref.key
        else:
            parent_id = (
                f"/subscriptions/{collection.subscription}/resourcegroups/"
                f"{collection.resource_group}"
            ).lower()
        del parent
        items = self.sim.store.children(collection.type, parent_id)
        expand = request.query.get("$expand", "")
        return self.sim.page(request, [self.render(i, expand=expand) for i in items])

    def delete(self, request: Request, ref: ResourceRef) -> Reply:
        stored = self.sim.store.get(ref.key)
        if stored is None:
            return Reply(204)
        if ref.type == ids.VERSION:
            return self._delete_version(request, ref, stored)
        if self.sim.store.count_children(ref.key):
            raise ArmError(409, "CannotDeleteResource", NESTED_RESOURCES_MESSAGE)
        return self._start_delete(request, ref, stored, operations.QUICK_OPERATION_SECONDS)

    # ---------------------------------------------------------------- galleries
    def put_gallery(self, request: Request, ref: ResourceRef) -> Reply:
        check_gallery_name(ref.name, "galleryName")
        body = request.body if isinstance(request.body, dict) else {}
        location = check_location(body)
        existing = self.sim.store.get(ref.key)
        props = copy.deepcopy(body.get("properties") or {})
        props.pop("provisioningState", None)
        props.pop("sharingStatus", None)
        props["identifier"] = {"uniqueName": f"{ref.subscription}-{ref.name.upper()}"}
        if existing is not None:
            location = str(existing.body.get("location", location))
        return self._put_simple(request, ref, body, location, props, existing=existing)

    def _put_simple(
        self,
        request: Request,
        ref: ResourceRef,
        body: JsonObject,
        location: str,
        props: JsonObject,
        *,
        existing: StoredResource | None,
    ) -> Reply:
        kind = "update" if existing else "create"
        operation = operations.new_operation(
            kind=kind,
            resource_key=ref.key,
            resource_id=ref.id,
            location=location,
            api_version=request.api_version,
            clock=self.sim.clock,
            build=operations.QUICK_OPERATION_SECONDS,
        )
        stored = StoredResource(
            key=ref.key,
            type=ref.type,
            parent=parent_key(ref),
            body=envelope(ref, {**body, "location": location}, props),
            meta={
                "provisioningState": STATE_BY_KIND[kind],
                "operationId": operation["id"],
            },
        )
        self._start(operation)
        self.sim.store.put(stored)
        return self._lro_reply(200 if existing else 201, self.render(stored), operation)

    # ---------------------------------------------------------------- image definitions
    def put_image(self, request: Request, ref: ResourceRef) -> Reply:
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
                props["endOfLifeDate"], "properties.endOfLifeDate", self.sim.clock.now()
            )
        existing = self.sim.store.get(ref.key)
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
        for sibling in self.sim.store.children(ids.IMAGE, parent.key):
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

    # ---------------------------------------------------------------- versions
    def put_version(self, request: Request, ref: ResourceRef) -> Reply:
        check_version_name(ref.name)
        definition = self._require_parent_chain(ref)
        body = request.body if isinstance(request.body, dict) else {}
        existing = self.sim.store.get(ref.key)
        if existing is not None:
            return self._update_version(request, ref, existing, body, patch=False)
        location = check_location(body)
        props = _strip_read_only(body.get("properties") or {})
        profile = props.setdefault("publishingProfile", {})
        check_publishing_profile(profile, location)
        storage = props.get("storageProfile") or {}
        check_data_disk_luns(storage)
        now = self.sim.clock.now()
        if profile.get("endOfLifeDate"):
            parse_end_of_life(
                profile["endOfLifeDate"], "properties.publishingProfile.endOfLifeDate", now
            )
        facts = self.sim.resolver.resolve(props, location)
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
                "sizes": _sizes(facts),
                "sourceKeys": facts.keys,
            },
        )
        self._start(operation)
        self.sim.store.put(stored)
        return self._lro_reply(201, self.render(stored), operation)

    def _require_parent_chain(self, ref: ResourceRef) -> StoredResource:
        image_ref = ref.parent()
        assert image_ref is not None
        gallery_ref = image_ref.parent()
        assert gallery_ref is not None
        if self.sim.store.get(gallery_ref.key) is None:
            raise parent_not_found(gallery_ref.name_path)
        definition = self.sim.store.get(image_ref.key)
        if definition is None:
            raise parent_not_found(image_ref.name_path)
        return definition

    def _check_source_free(self, facts: SourceFacts) -> None:
        wanted = set(facts.keys)
        for operation in self.sim.store.pending_operations():
            if operation["kind"] == "delete" or not wanted.intersection(operation["sourceKeys"]):
                continue
            if operations.evaluate(operation, self.sim.clock).terminal:
                continue
            busy = sorted(wanted.intersection(operation["sourceKeys"]))[0]
            shown = next((k for k in facts.keys if k == busy), busy)
            self.sim.stats.count_source_conflict(shown)
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
        faults = self.sim.faults
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
                limit = self.sim.config.max_source_size_gib
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
            clock=self.sim.clock,
            build=build,
            regions=regions,
            failure=failure,
            source_keys=facts.keys,
        )

    def patch_version(self, request: Request, ref: ResourceRef) -> Reply:
        check_version_name(ref.name)
        self._require_parent_chain(ref)
        existing = self.sim.store.get(ref.key)
        if existing is None:
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)
        body = request.body if isinstance(request.body, dict) else {}
        return self._update_version(request, ref, existing, body, patch=True)

    def _update_version(
        self,
        request: Request,
        ref: ResourceRef,
        existing: StoredResource,
        body: JsonObject,
        *,
        patch: bool,
    ) -> Reply:
        state, running = self.provisioning_state(existing)
        if state == "Deleting":
            raise ArmError(
                409, "OperationNotAllowed", MARKED_FOR_DELETION_MESSAGE.format(name=ref.name)
            )
        old_props = existing.body["properties"]
        new_props = _strip_read_only(body.get("properties") or {})
        if running is not None and state in ("Creating", "Updating"):
            if not patch and _same_request(old_props, new_props):
                return self._lro_reply(200, self.render(existing), running)
            raise ArmError(
                409,
                "OperationNotAllowed",
                f"Operation 'Update Gallery Image Version' is not allowed on {ref.name} while "
                f"it is {state.lower()}. Wait for the ongoing operation to complete.",
            )
        _check_immutables(old_props, new_props, patch=patch)
        merged = copy.deepcopy(old_props)
        new_profile = new_props.get("publishingProfile") or {}
        profile = merged["publishingProfile"]
        location = str(existing.body.get("location"))
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
                self.sim.clock.now(),
            )
        if "targetRegions" in new_profile:
            check_publishing_profile(
                {"targetRegions": new_profile["targetRegions"], **_replicas(new_profile)},
                location,
            )
            profile["targetRegions"] = _normalize_regions(
                new_profile["targetRegions"],
                int(profile.get("replicaCount", 1)),
                str(profile.get("storageAccountType", "Standard_LRS")),
            )
        else:
            check_publishing_profile(_replicas(new_profile), location)
        if "safetyProfile" in new_props:
            merged.setdefault("safetyProfile", {}).update(
                {k: v for k, v in new_props["safetyProfile"].items() if k != "policyViolations"}
            )
        for name in ("storageProfile",):
            if name in new_props:
                _merge_host_caching(merged[name], new_props[name])
        if "tags" in body:
            existing.body["tags"] = body["tags"]
        old_regions = {
            region_key(r["name"]) for r in old_props["publishingProfile"].get("targetRegions", [])
        }
        sizes = existing.meta.get("sizes", {})
        facts = SourceFacts(
            kind="update",
            keys=list(existing.meta.get("sourceKeys", [])),
            os_size_gib=int(sizes.get("os", 0)),
            data_sizes_gib={int(k): int(v) for k, v in sizes.get("data", {}).items()},
        )
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
        self.sim.store.put(existing)
        return self._lro_reply(200, self.render(existing), operation)

    def _delete_version(self, request: Request, ref: ResourceRef, stored: StoredResource) -> Reply:
        state, running = self.provisioning_state(stored)
        if state == "Deleting" and running is not None:
            return Reply(202, None, self.sim.async_headers(running, delete=True))
        profile = stored.body["properties"].get("publishingProfile", {})
        safety = stored.body["properties"].get("safetyProfile", {})
        end_of_life = parse_timestamp(str(profile.get("endOfLifeDate") or ""))
        if safety.get("blockDeletionBeforeEndOfLife") and (
            end_of_life is None or end_of_life > self.sim.clock.now()
        ):
            raise ArmError(
                409, "DeleteGalleryImageVersionBlockedBeforeEndOfLife", BLOCKED_BEFORE_EOL_MESSAGE
            )
        seconds = operations.VERSION_DELETE_SECONDS * self.sim.faults.slow_operations
        return self._start_delete(request, ref, stored, seconds)

    def _start_delete(
        self, request: Request, ref: ResourceRef, stored: StoredResource, seconds: float
    ) -> Reply:
        """Start the delete operation of ``stored`` and answer 202 with its monitor headers."""
        operation = operations.new_operation(
            kind="delete",
            resource_key=ref.key,
            resource_id=ref.id,
            location=str(stored.body.get("location", "")),
            api_version=request.api_version,
            clock=self.sim.clock,
            build=seconds,
        )
        self._start(operation)
        stored.meta["operationId"] = operation["id"]
        self.sim.store.put(stored)
        return Reply(202, None, self.sim.async_headers(operation, delete=True))


# -------------------------------------------------------------------- helpers
def _replicas(profile: JsonObject) -> JsonObject:
    return {"replicaCount": profile["replicaCount"]} if "replicaCount" in profile else {}


def _insert_after_source(disk: JsonObject, size: int) -> JsonObject:
    """Add ``sizeInGB`` where the service puts it: after ``source`` and ``lun``."""
    result: JsonObject = {}
    for key in ("source", "lun"):
        if key in disk:
            result[key] = disk[key]
    result["sizeInGB"] = size
    result.update({k: v for k, v in disk.items() if k not in result})
    return result


def _normalize_regions(
    regions: list[JsonObject], replica_count: int, storage_type: str
) -> list[JsonObject]:
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
        item.setdefault("excludeFromLatest", False)
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
        "targetRegions": _normalize_regions(regions, replica_count, storage_type),
        "replicaCount": replica_count,
        "excludeFromLatest": bool(profile.get("excludeFromLatest", False)),
        "publishedDate": profile.get("publishedDate") or published,
        "storageAccountType": storage_type,
    }
    for key, value in profile.items():
        if key not in out_profile:
            out_profile[key] = value
    storage = copy.deepcopy(props.get("storageProfile") or {})
    if facts is not None and facts.kind != "disks":
        storage.setdefault("osDiskImage", {})
        if facts.data_sizes_gib and "dataDiskImages" not in storage:
            storage["dataDiskImages"] = [{"lun": lun} for lun in sorted(facts.data_sizes_gib)]
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


def _sizes(facts: SourceFacts) -> JsonObject:
    return {
        "os": facts.os_size_gib,
        "data": {str(lun): size for lun, size in facts.data_sizes_gib.items()},
    }


def _source_signature(storage: JsonObject) -> JsonObject:
    def disk_source(disk: JsonObject | None) -> tuple[str, str, str]:
        source = (disk or {}).get("source") or {}
        return (
            str(source.get("id", "")).lower(),
            str(source.get("uri", "")).split("?", 1)[0].lower(),
            str(source.get("storageAccountId", "")).lower(),
        )

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


def _check_immutables(old: JsonObject, new: JsonObject, *, patch: bool) -> None:
    """409 PropertyChangeNotAllowed for a change of source, LUNs or storage settings.

    A PUT is compared whole; a PATCH only in the parts it carries.
    """
    prefix = "galleryImageVersion.properties"
    new_storage = new.get("storageProfile") or {}
    before = _source_signature(old.get("storageProfile") or {})
    after = _source_signature(new_storage)
    has_os_source = bool((new_storage.get("osDiskImage") or {}).get("source"))
    if (not patch or "source" in new_storage) and before["source"] != after["source"]:
        field = "virtualMachineId" if before["source"][1] or after["source"][1] else "id"
        raise property_change_not_allowed(f"{prefix}.storageProfile.source.{field}")
    if (not patch or has_os_source) and before["os"] != after["os"]:
        field = "uri" if before["os"][1] or after["os"][1] else "id"
        raise property_change_not_allowed(f"{prefix}.storageProfile.osDiskImage.source.{field}")
    data_sourced = any(any(source) for source in before["data"].values())
    if (not patch and data_sourced) or "dataDiskImages" in new_storage:
        if set(before["data"]) != set(after["data"]):
            raise ArmError(
                409,
                "PropertyChangeNotAllowed",
                "Adding new Data Disks or changing the LUN of a Data Disk in an existing Image "
                "is not allowed",
                target=f"{prefix}.storageProfile.dataDiskImages",
            )
        for lun, source in before["data"].items():
            if after["data"][lun] != source and (not patch or any(after["data"][lun])):
                raise property_change_not_allowed(
                    f"{prefix}.storageProfile.dataDiskImages.source.id"
                )
    old_profile = old.get("publishingProfile") or {}
    new_profile = new.get("publishingProfile") or {}
    defaults = {"storageAccountType": "Standard_LRS"}
    for name in ("storageAccountType", "replicationMode", "storageAccountStrategy"):
        if name in new_profile and new_profile[name] != old_profile.get(name, defaults.get(name)):
            raise property_change_not_allowed(f"{prefix}.publishingProfile.{name}")


def _merge_host_caching(old: JsonObject, new: JsonObject) -> None:
    if "osDiskImage" in new and "hostCaching" in (new["osDiskImage"] or {}):
        old.setdefault("osDiskImage", {})["hostCaching"] = new["osDiskImage"]["hostCaching"]


def _same_request(old: JsonObject, new: JsonObject) -> bool:
    """True when a repeated PUT asks for what is already being built."""
    try:
        _check_immutables(old, new, patch=False)
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
