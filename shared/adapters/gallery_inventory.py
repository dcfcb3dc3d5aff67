"""The lifecycle's ARM side over azure-mgmt-compute 39.x: listing, writing, and counting calls.

* :class:`ArmGalleryInventory` (``shared.lifecycle.inventory.GalleryInventory``): one GET per
  gallery, its definitions listed page by page, and one version list per definition (never a GET
  per version); the VM and scale-set models of a subscription listed (``list_all``) for image
  references. SDK models are read as the wire mappings they wrap and turned into small facts
  item by item, so no page is kept.
* :class:`ArmGalleryWriter` (``shared.lifecycle.apply.GalleryWriter``): deprecate = GET + PATCH
  (``excludeFromLatest=true`` on the version *and* on every target region, each region's other
  properties kept: Azure lets the regional flag take precedence, and builds send ``false`` per
  region; tags merged into the existing ones; optional replica reduction); delete = GET + DELETE
  with ``polling=False``. The GET re-reads the version just before the change: a
  ``lifecycle=hold`` tag set after the plan was made wins, and a version already gone counts as
  deleted.
* :class:`ArmCallCounter`: a per-retry pipeline policy counting every HTTP request sent to ARM.

Every SDK call is wrapped by ``azure_call``, so only pipeline errors leave this module.
"""

from __future__ import annotations

import copy
import io
import json
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.compute import ComputeManagementClient

from shared.adapters.azure_errors import azure_call
from shared.adapters.compute_gallery import ComputeClients, build_compute_client
from shared.core.errors import NotFoundError, PermanentError
from shared.core.resource_ids import InvalidResourceId, parse_resource_id
from shared.core.settings import Settings
from shared.lifecycle.facts import HOLD, LIFECYCLE_TAG, DefinitionFacts, RegionFacts, VersionFacts
from shared.lifecycle.inventory import GalleryHeader, GalleryRef, GallerySearch, ImageReference

logger = logging.getLogger(__name__)

JsonObject = Mapping[str, Any]


class ArmCallCounter(SansIOHTTPPolicy[Any, Any]):
    """Counts every request the pipeline sends (retries included), by method and resource kind.

    Kinds: ``GET galleries``, ``LIST images``, ``LIST versions``, ``PATCH versions``,
    ``LIST virtualMachines``... (``LIST`` = a GET on a collection, one per page).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def on_request(self, request: PipelineRequest[Any]) -> None:
        kind = request_kind(request.http_request.method, request.http_request.url)
        with self._lock:
            self._counts[kind] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self._counts.items()))

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


def request_kind(method: str, url: str) -> str:
    """``"LIST versions"`` for ``GET .../images/i/versions``, ``"DELETE versions"``, etc."""
    segments = [s for s in urlsplit(url).path.split("/") if s]
    lowered = [s.lower() for s in segments]
    # the part after the provider namespace, or after /subscriptions/{sub} for operations
    start = lowered.index("providers") + 2 if "providers" in lowered else 2
    rest = segments[start:]
    if not rest:
        return f"{method} other"
    collection = len(rest) % 2 == 1
    kind = rest[-1] if collection else rest[-2]
    verb = "LIST" if collection and method == "GET" else method
    return f"{verb} {kind}"


def _wire(model: Any) -> JsonObject:
    """The wire mapping of an SDK 39 model (hybrid models are mappings of their JSON)."""
    if isinstance(model, Mapping):
        return cast(JsonObject, model)
    return cast(JsonObject, model.as_dict())


def _time(raw: Any) -> datetime | None:
    if not raw:
        return None
    if isinstance(raw, datetime):
        moment = raw
    else:
        try:
            moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _tags(body: JsonObject) -> dict[str, str]:
    return {str(k): str(v) for k, v in (body.get("tags") or {}).items()}


def _region_facts(region: JsonObject) -> RegionFacts:
    flag = region.get("excludeFromLatest")
    return RegionFacts(str(region.get("name", "")), None if flag is None else bool(flag))


def version_facts(body: JsonObject) -> VersionFacts:
    """One list row (wire JSON) as the domain's facts, with each target region's own flag."""
    props = body.get("properties") or {}
    profile = props.get("publishingProfile") or {}
    return VersionFacts(
        id=str(body.get("id", "")),
        name=str(body.get("name", "")),
        region=str(body.get("location", "")),
        regions=tuple(_region_facts(r) for r in profile.get("targetRegions") or []),
        tags=_tags(body),
        end_of_life=_time(profile.get("endOfLifeDate")),
        published=_time(profile.get("publishedDate")),
        excluded_from_latest=bool(profile.get("excludeFromLatest")),
        block_deletion_before_end_of_life=bool(
            (props.get("safetyProfile") or {}).get("blockDeletionBeforeEndOfLife")
        ),
        # a row without a state is treated as not settled: never a latest candidate or a target
        provisioning_state=str(props.get("provisioningState") or "Unknown"),
    )


def _image_reference(consumer_id: str, storage: JsonObject | None) -> ImageReference | None:
    reference = (storage or {}).get("imageReference") or {}
    image_id = reference.get("id")
    if not image_id or "/galleries/" not in str(image_id).lower():
        return None
    exact = reference.get("exactVersion")
    return ImageReference(consumer_id, str(image_id), str(exact) if exact else None)


class ArmGalleryInventory:
    """:class:`shared.lifecycle.inventory.GalleryInventory` over ``ComputeManagementClient``."""

    def __init__(
        self,
        client_for_subscription: Callable[[str], ComputeManagementClient],
        counter: ArmCallCounter | None = None,
    ) -> None:
        self._client = ComputeClients(client_for_subscription)
        self.counter = counter or ArmCallCounter()

    def arm_calls(self) -> Mapping[str, int]:
        return self.counter.snapshot()

    def find_galleries(self, search: GallerySearch) -> Iterator[GalleryRef]:
        client = self._client(search.subscription_id)
        where = search.resource_group or f"subscription {search.subscription_id}"
        with azure_call(f"list galleries in {where}"):
            if search.resource_group:
                pages = client.galleries.list_by_resource_group(search.resource_group)
            else:
                pages = client.galleries.list()
            for item in pages:
                body = _wire(item)
                try:
                    parsed = parse_resource_id(str(body.get("id", "")))
                except InvalidResourceId:
                    continue
                if search.name and parsed.name.lower() != search.name.lower():
                    continue
                yield GalleryRef(parsed.subscription_id, parsed.resource_group, parsed.name)

    def gallery(self, ref: GalleryRef) -> GalleryHeader | None:
        client = self._client(ref.subscription_id)
        try:
            with azure_call(f"get gallery {ref}"):
                body = _wire(client.galleries.get(ref.resource_group, ref.name))
        except NotFoundError:
            return None
        return GalleryHeader(
            id=str(body.get("id") or ref.id),
            name=str(body.get("name") or ref.name),
            tags=_tags(body),
        )

    def definitions(self, ref: GalleryRef) -> Iterator[DefinitionFacts]:
        client = self._client(ref.subscription_id)
        with azure_call(f"list definitions of {ref}"):
            for item in client.gallery_images.list_by_gallery(ref.resource_group, ref.name):
                body = _wire(item)
                name = str(body.get("name", ""))
                yield DefinitionFacts(
                    id=str(body.get("id", "")),
                    name=name,
                    tags=_tags(body),
                    versions=tuple(self._versions(client, ref, name)),
                )

    @staticmethod
    def _versions(
        client: ComputeManagementClient, ref: GalleryRef, definition: str
    ) -> Iterator[VersionFacts]:
        with azure_call(f"list versions of {ref}/{definition}"):
            pages = client.gallery_image_versions.list_by_gallery_image(
                ref.resource_group, ref.name, definition
            )
            for item in pages:
                yield version_facts(_wire(item))

    def image_references(self, subscription_id: str) -> Iterator[ImageReference]:
        client = self._client(subscription_id)
        with azure_call(f"list virtual machines in subscription {subscription_id}"):
            for vm in client.virtual_machines.list_all():
                body = _wire(vm)
                props = body.get("properties") or {}
                found = _image_reference(str(body.get("id", "")), props.get("storageProfile"))
                if found is not None:
                    yield found
        with azure_call(f"list scale sets in subscription {subscription_id}"):
            for scale_set in client.virtual_machine_scale_sets.list_all():
                body = _wire(scale_set)
                profile = (body.get("properties") or {}).get("virtualMachineProfile") or {}
                found = _image_reference(str(body.get("id", "")), profile.get("storageProfile"))
                if found is not None:
                    yield found


def _json_bytes(body: Mapping[str, Any]) -> io.BytesIO:
    return io.BytesIO(json.dumps(body).encode("utf-8"))


def _version_parts(version_id: str) -> tuple[str, str, str, str, str]:
    try:
        parsed = parse_resource_id(version_id)
    except InvalidResourceId as exc:
        raise PermanentError(f"not an image version id: {version_id}: {exc}") from None
    if not parsed.is_type("Microsoft.Compute/galleries/images/versions"):
        raise PermanentError(f"not an image version id: {version_id}")
    gallery, image, version = parsed.names
    return parsed.subscription_id, parsed.resource_group, gallery, image, version


def deprecated_publishing(profile: JsonObject, replicas: int | None) -> dict[str, Any]:
    """The PATCH's ``publishingProfile`` for a deprecation: excluded from latest at the version
    and in every target region (every other property of each region kept), and at most
    ``replicas`` per region when given."""
    default = int(profile.get("replicaCount") or 1)
    regions = [copy.deepcopy(dict(r)) for r in profile.get("targetRegions") or []]
    publishing: dict[str, Any] = {"excludeFromLatest": True}
    for region in regions:
        region["excludeFromLatest"] = True
        current = int(region.get("regionalReplicaCount") or default)
        if replicas is not None and current > replicas:
            region["regionalReplicaCount"] = replicas
    if regions:
        publishing["targetRegions"] = regions
    if replicas is not None and default > replicas:
        publishing["replicaCount"] = replicas
    return publishing


class ArmGalleryWriter:
    """:class:`shared.lifecycle.apply.GalleryWriter` over ``ComputeManagementClient``."""

    def __init__(self, client_for_subscription: Callable[[str], ComputeManagementClient]) -> None:
        self._client = ComputeClients(client_for_subscription)

    def _current(self, version_id: str) -> JsonObject | None:
        sub, group, gallery, image, version = _version_parts(version_id)
        client = self._client(sub)
        try:
            with azure_call(f"get image version {gallery}/{image}/{version}"):
                found = client.gallery_image_versions.get(group, gallery, image, version)
        except NotFoundError as exc:
            if exc.reason == "ResourceNotFound":
                return None
            raise
        body = _wire(found)
        if _tags(body).get(LIFECYCLE_TAG, "").lower() == HOLD:
            raise PermanentError(
                f"{gallery}/{image}/{version} was tagged {LIFECYCLE_TAG}={HOLD} after the plan "
                "was made; left alone",
                reason="Held",
            )
        return body

    def deprecate(self, version_id: str, *, tags: Mapping[str, str], replicas: int | None) -> None:
        current = self._current(version_id)
        sub, group, gallery, image, version = _version_parts(version_id)
        if current is None:
            raise NotFoundError(f"image version {gallery}/{image}/{version} no longer exists")
        profile = (current.get("properties") or {}).get("publishingProfile") or {}
        body = {
            "tags": {**_tags(current), **tags},
            "properties": {"publishingProfile": deprecated_publishing(profile, replicas)},
        }
        with azure_call(f"deprecate image version {gallery}/{image}/{version}"):
            self._client(sub).gallery_image_versions.begin_update(
                group, gallery, image, version, _json_bytes(body), polling=False
            )
        logger.info(
            "image version deprecated",
            extra={"gallery": gallery, "definition": image, "version": version},
        )

    def delete(self, version_id: str) -> None:
        sub, group, gallery, image, version = _version_parts(version_id)
        if self._current(version_id) is None:
            logger.info(
                "image version already gone",
                extra={"gallery": gallery, "definition": image, "version": version},
            )
            return
        with azure_call(f"delete image version {gallery}/{image}/{version}"):
            self._client(sub).gallery_image_versions.begin_delete(
                group, gallery, image, version, polling=False
            )
        logger.info(
            "image version deletion started",
            extra={"gallery": gallery, "definition": image, "version": version},
        )


def arm_lifecycle_adapters(
    settings: Settings, credential: Callable[[], TokenCredential], **client_options: Any
) -> tuple[ArmGalleryInventory, ArmGalleryWriter, ArmCallCounter]:
    """Inventory and writer sharing one call counter and one client per subscription."""
    counter = ArmCallCounter()

    def client_for(subscription_id: str) -> ComputeManagementClient:
        return build_compute_client(
            settings,
            subscription_id,
            credential(),
            per_retry_policies=[counter],
            **client_options,
        )

    clients = ComputeClients(client_for)
    inventory = ArmGalleryInventory(clients, counter)
    writer = ArmGalleryWriter(clients)
    return inventory, writer, counter
