"""The build-request model (contract v1): frozen dataclasses, defaults and the derived request id.

:meth:`BuildRequest.to_document` gives the normalised document (camelCase, defaults filled,
``endOfLifeAfterDays`` resolved to a date, ``requestId`` present). SAS query strings are left out
of it unless asked for, and never appear in a problem message. The parser that builds these
objects is :func:`shared.contract.parse.parse_build_request`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Literal

from shared.contract.versioning import ExplicitVersion, ImageVersion, VersionPolicy
from shared.core.blob_urls import BlobUrl
from shared.core.jsontypes import JsonObject
from shared.core.resource_ids import ResourceId
from shared.core.timestamps import format_timestamp

SCHEMA_VERSION: Final = 1
DEFAULT_REPLICA_COUNT: Final = 1
DEFAULT_STORAGE_ACCOUNT_TYPE: Final = "Standard_LRS"
DEFAULT_REPLICATION_MODE: Final = "Full"
DEFAULT_DATA_DISK_HOST_CACHING: Final = "ReadOnly"
DEFAULT_HYPERV_GENERATION: Final = "V1"
DEFAULT_ARCHITECTURE: Final = "x64"
MAX_TEXT_LENGTH: Final = 256
_DERIVED_ID_PREFIX: Final = "auto-"


@dataclass(frozen=True)
class Target:
    """Where the version goes, and which version (explicit or by policy)."""

    subscription_id: str
    resource_group: str
    gallery: str
    definition: str
    version_policy: VersionPolicy

    @property
    def version(self) -> ImageVersion | None:
        """The explicit version, or ``None`` when a policy chooses it."""
        policy = self.version_policy
        return policy.version if isinstance(policy, ExplicitVersion) else None

    def to_document(self) -> JsonObject:
        document: JsonObject = {
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "gallery": self.gallery,
            "definition": self.definition,
        }
        if isinstance(self.version_policy, ExplicitVersion):
            document["version"] = self.version_policy.to_document()
        else:
            document["versionPolicy"] = self.version_policy.to_document()
        return document


@dataclass(frozen=True)
class VhdSource:
    """A fixed-format VHD page blob. ``uri`` may hold a SAS token: it is never printed."""

    uri: str = field(repr=False)
    storage_account_id: ResourceId
    blob: BlobUrl
    kind: Literal["vhd"] = field(default="vhd", init=False)

    @property
    def uri_without_query(self) -> str:
        return self.blob.url_without_query

    @property
    def key(self) -> str:
        """The blob's identity: the URL without query, scheme and host lower-cased."""
        scheme, rest = self.uri_without_query.split("://", 1)
        host, _, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}/{path}"

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        uri = self.uri if include_secrets else self.uri_without_query
        return {"vhd": {"uri": uri, "storageAccountId": str(self.storage_account_id)}}


@dataclass(frozen=True)
class ResourceSource:
    """The base of the sources named by an Azure resource id."""

    id: ResourceId

    @property
    def key(self) -> str:
        """The lower-cased resource id."""
        return self.id.key


@dataclass(frozen=True)
class SnapshotSource(ResourceSource):
    """A managed-disk snapshot (``Microsoft.Compute/snapshots``)."""

    kind: Literal["snapshot"] = field(default="snapshot", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"snapshot": {"id": str(self.id)}}


@dataclass(frozen=True)
class DiskSource(ResourceSource):
    """A managed disk (``Microsoft.Compute/disks``)."""

    kind: Literal["disk"] = field(default="disk", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"disk": {"id": str(self.id)}}


@dataclass(frozen=True)
class ManagedImageSource(ResourceSource):
    """A managed image (``Microsoft.Compute/images``); brings its own data disks."""

    kind: Literal["managedImage"] = field(default="managedImage", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"managedImage": {"id": str(self.id)}}


@dataclass(frozen=True)
class VirtualMachineSource(ResourceSource):
    """A (generalised or specialised) VM (``Microsoft.Compute/virtualMachines``)."""

    kind: Literal["virtualMachine"] = field(default="virtualMachine", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"virtualMachine": {"id": str(self.id)}}


@dataclass(frozen=True)
class ImageVersionSource(ResourceSource):
    """Another gallery image version, possibly in another tenant (``tenant_id``)."""

    tenant_id: str | None = None
    kind: Literal["imageVersion"] = field(default="imageVersion", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        body: JsonObject = {"id": str(self.id)}
        if self.tenant_id is not None:
            body["tenantId"] = self.tenant_id
        return {"imageVersion": body}


OsSource = (
    VhdSource
    | SnapshotSource
    | DiskSource
    | ManagedImageSource
    | VirtualMachineSource
    | ImageVersionSource
)
DataDiskSource = VhdSource | SnapshotSource | DiskSource


@dataclass(frozen=True)
class DataDisk:
    """One data disk of the image, at a unique LUN."""

    lun: int
    source: DataDiskSource
    host_caching: str = DEFAULT_DATA_DISK_HOST_CACHING

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {
            "lun": self.lun,
            "source": self.source.to_document(include_secrets=include_secrets),
            "hostCaching": self.host_caching,
        }


@dataclass(frozen=True)
class TargetRegion:
    """A region to replicate to; ``name`` is normalised (``eastus2``)."""

    name: str
    replica_count: int
    storage_account_type: str
    exclude_from_latest: bool

    def to_document(self) -> JsonObject:
        return {
            "name": self.name,
            "replicaCount": self.replica_count,
            "storageAccountType": self.storage_account_type,
            "excludeFromLatest": self.exclude_from_latest,
        }


@dataclass(frozen=True)
class Publishing:
    """Where and how the version is published, and when it reaches end of life."""

    target_regions: tuple[TargetRegion, ...]
    replica_count: int = DEFAULT_REPLICA_COUNT
    storage_account_type: str = DEFAULT_STORAGE_ACCOUNT_TYPE
    replication_mode: str = DEFAULT_REPLICATION_MODE
    exclude_from_latest: bool = False
    end_of_life_date: datetime | None = None
    block_deletion_before_end_of_life: bool = False

    def to_document(self) -> JsonObject:
        document: JsonObject = {
            "targetRegions": [region.to_document() for region in self.target_regions],
            "replicaCount": self.replica_count,
            "storageAccountType": self.storage_account_type,
            "replicationMode": self.replication_mode,
            "excludeFromLatest": self.exclude_from_latest,
        }
        if self.end_of_life_date is not None:
            document["endOfLifeDate"] = format_timestamp(self.end_of_life_date)
        document["blockDeletionBeforeEndOfLife"] = self.block_deletion_before_end_of_life
        return document


@dataclass(frozen=True)
class DefinitionFeature:
    """An image definition feature, e.g. ``SecurityType = TrustedLaunch``."""

    name: str
    value: str


@dataclass(frozen=True)
class DefinitionSpec:
    """How to create the image definition when it does not exist yet."""

    os_type: str
    os_state: str
    publisher: str
    offer: str
    sku: str
    hyper_v_generation: str = DEFAULT_HYPERV_GENERATION
    architecture: str = DEFAULT_ARCHITECTURE
    features: tuple[DefinitionFeature, ...] = ()

    def to_document(self) -> JsonObject:
        return {
            "osType": self.os_type,
            "osState": self.os_state,
            "hyperVGeneration": self.hyper_v_generation,
            "architecture": self.architecture,
            "publisher": self.publisher,
            "offer": self.offer,
            "sku": self.sku,
            "features": [{"name": f.name, "value": f.value} for f in self.features],
        }


@dataclass(frozen=True)
class BuildRequest:
    """A validated, normalised build request (contract v1)."""

    request_id: str
    target: Target
    source: OsSource
    publishing: Publishing
    data_disks: tuple[DataDisk, ...] = ()
    definition_spec: DefinitionSpec | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    correlation_id: str | None = None
    requested_by: str | None = None

    @property
    def source_key(self) -> str:
        """The normalised identity of the OS source: lower-cased id, or blob URL without query."""
        return self.source.key

    @property
    def source_keys(self) -> tuple[str, ...]:
        """Every source the build reads (OS source and data disks), each once, in lock order:
        Azure refuses a second build from any of them while one is in flight."""
        return tuple(sorted({self.source.key, *(disk.source.key for disk in self.data_disks)}))

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        """The normalised JSON document; SAS query strings only with ``include_secrets``."""
        document: JsonObject = {
            "schemaVersion": SCHEMA_VERSION,
            "requestId": self.request_id,
            "target": self.target.to_document(),
            "source": self.source.to_document(include_secrets=include_secrets),
            "dataDisks": [d.to_document(include_secrets=include_secrets) for d in self.data_disks],
            "publishing": self.publishing.to_document(),
        }
        if self.definition_spec is not None:
            document["definitionSpec"] = self.definition_spec.to_document()
        document["tags"] = dict(self.tags)
        if self.correlation_id is not None:
            document["correlationId"] = self.correlation_id
        if self.requested_by is not None:
            document["requestedBy"] = self.requested_by
        return document

    def log_fields(self) -> dict[str, str]:
        """Structured logging fields (never a SAS)."""
        return {
            "request_id": self.request_id,
            "source": self.source_key,
            "gallery": self.target.gallery,
            "definition": self.target.definition,
            "version": str(self.target.version_policy.to_document()),
        }


def derive_request_id(content: Mapping[str, object]) -> str:
    """A stable id from the request's content (see :func:`content_for_id`)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _DERIVED_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def content_for_id(request: BuildRequest, end_of_life_after_days: int | None) -> JsonObject:
    """What the derived request id covers.

    The normalised document without ``requestId``, ``correlationId`` and ``requestedBy``; SAS
    query strings are stripped (the same upload with another SAS is the same request); names and
    ids Azure treats case-insensitively are lower-cased; ``endOfLifeAfterDays`` stays as days, so
    a redelivery tomorrow still has the same id.
    """
    document = request.to_document(include_secrets=False)
    for key in ("requestId", "correlationId", "requestedBy"):
        document.pop(key, None)
    target = document["target"]
    for key in ("subscriptionId", "resourceGroup", "gallery", "definition"):
        target[key] = target[key].lower()
    for source in [document["source"], *(d["source"] for d in document["dataDisks"])]:
        for body in source.values():
            for key in ("id", "storageAccountId"):
                if key in body:
                    body[key] = body[key].lower()
            if "uri" in body:
                body["uri"] = _lower_host(body["uri"])
    if end_of_life_after_days is not None:
        document["publishing"].pop("endOfLifeDate", None)
        document["publishing"]["endOfLifeAfterDays"] = end_of_life_after_days
    return document


def _lower_host(uri: str) -> str:
    scheme, _, rest = uri.partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}/{path}"
