"""The build-request contract v1: a typed model and its parser.

A build request asks the pipeline to publish one gallery image version. The JSON contract is
``schemas/build-request.v1.json`` and ``docs/build-requests.md`` explains every field and rule.
:func:`parse_build_request` is the runtime check: it reads a decoded JSON document, applies every
rule in :mod:`shared.contract.rules`, and either returns a :class:`BuildRequest` or raises
:class:`~shared.core.errors.ValidationFailed` listing *every* problem found.

:meth:`BuildRequest.to_document` gives the normalised document (camelCase, defaults filled,
``endOfLifeAfterDays`` resolved to a date, ``requestId`` present). SAS query strings are left out
of it unless asked for, and never appear in a problem message.

Domain code only: no Azure SDK import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from shared.contract.rules import (
    ARCHITECTURES,
    HOST_CACHING_MODES,
    HYPERV_GENERATIONS,
    IDENTIFIER_PART_PATTERN,
    MAX_END_OF_LIFE_DAYS,
    MAX_LUN,
    MAX_REPLICA_COUNT,
    MAX_TAG_NAME_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    MAX_TAGS,
    MIN_REPLICA_COUNT,
    OS_STATES,
    OS_TYPES,
    REGION_PATTERN,
    REPLICATION_MODES,
    REQUEST_ID_PATTERN,
    STORAGE_ACCOUNT_TYPES,
    ProblemList,
    Rule,
    ValidationContext,
    definition_name_problem,
    format_bytes,
    gallery_name_problem,
    max_data_disk_bytes,
    max_image_bytes,
    normalise_region,
    source_subscription_allowed,
    source_subscription_hint,
    target_gallery_allowed,
    target_gallery_hint,
)
from shared.contract.versioning import (
    INT32_MAX,
    POLICY_NAMES,
    VERSION_FORMAT_HINT,
    ExplicitVersion,
    ImageVersion,
    InvalidVersion,
    LatestUnderMajor,
    VersionPolicy,
    policy_from_name,
)
from shared.core.blob_urls import BlobUrl, InvalidBlobUrl, parse_blob_url
from shared.core.errors import ValidationFailed
from shared.core.jsontypes import JsonObject
from shared.core.redaction import strip_query
from shared.core.resource_ids import (
    DISK_TYPE,
    GALLERY_IMAGE_VERSION_TYPE,
    GUID_PATTERN,
    MANAGED_IMAGE_TYPE,
    RESOURCE_GROUP_PATTERN,
    SNAPSHOT_TYPE,
    STORAGE_ACCOUNT_TYPE,
    VIRTUAL_MACHINE_TYPE,
    InvalidResourceId,
    ResourceId,
    parse_resource_id,
)
from shared.core.settings import Settings
from shared.core.timestamps import format_timestamp

logger = logging.getLogger(__name__)

SCHEMA_VERSION: Final = 1
DEFAULT_REPLICA_COUNT: Final = 1
DEFAULT_STORAGE_ACCOUNT_TYPE: Final = "Standard_LRS"
DEFAULT_REPLICATION_MODE: Final = "Full"
DEFAULT_DATA_DISK_HOST_CACHING: Final = "ReadOnly"
DEFAULT_HYPERV_GENERATION: Final = "V1"
DEFAULT_ARCHITECTURE: Final = "x64"
MAX_TEXT_LENGTH: Final = 256
_DERIVED_ID_PREFIX: Final = "auto-"
_EOL_PATTERN: Final = re.compile(
    r"^([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,7}))?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
)


# --------------------------------------------------------------------------- the model


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
class _ResourceSource:
    id: ResourceId

    @property
    def key(self) -> str:
        """The lower-cased resource id."""
        return self.id.key


@dataclass(frozen=True)
class SnapshotSource(_ResourceSource):
    """A managed-disk snapshot (``Microsoft.Compute/snapshots``)."""

    kind: Literal["snapshot"] = field(default="snapshot", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"snapshot": {"id": str(self.id)}}


@dataclass(frozen=True)
class DiskSource(_ResourceSource):
    """A managed disk (``Microsoft.Compute/disks``)."""

    kind: Literal["disk"] = field(default="disk", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"disk": {"id": str(self.id)}}


@dataclass(frozen=True)
class ManagedImageSource(_ResourceSource):
    """A managed image (``Microsoft.Compute/images``); brings its own data disks."""

    kind: Literal["managedImage"] = field(default="managedImage", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"managedImage": {"id": str(self.id)}}


@dataclass(frozen=True)
class VirtualMachineSource(_ResourceSource):
    """A (generalised or specialised) VM (``Microsoft.Compute/virtualMachines``)."""

    kind: Literal["virtualMachine"] = field(default="virtualMachine", init=False)

    def to_document(self, *, include_secrets: bool = False) -> JsonObject:
        return {"virtualMachine": {"id": str(self.id)}}


@dataclass(frozen=True)
class ImageVersionSource(_ResourceSource):
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
    """A stable id from the request's content (see :func:`_content_for_id`)."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _DERIVED_ID_PREFIX + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def _content_for_id(request: BuildRequest, end_of_life_after_days: int | None) -> JsonObject:
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


# --------------------------------------------------------------------------- the parser

_MISSING: Final = object()


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


class _Reader:
    """Reads typed values out of JSON, recording a problem for each thing wrong."""

    def __init__(self, settings: Settings, now: datetime, context: ValidationContext) -> None:
        self.settings = settings
        self.now = now
        self.context = context
        self.problems = ProblemList()
        self.end_of_life_after_days: int | None = None

    def add(self, path: str, rule: str, message: str, hint: str = "") -> None:
        self.problems.add(path, rule, message, hint)

    # -- primitive readers ------------------------------------------------------------------

    def read_object(
        self,
        value: object,
        path: str,
        *,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        what: str = "an object",
    ) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.add(path, Rule.TYPE, f"expected {what}, got {_json_type(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.add(
                    _join(path, str(key)),
                    Rule.UNKNOWN_FIELD,
                    f"unknown field '{key}'",
                    f"remove it; allowed here: {', '.join(allowed)}",
                )
        for key in required:
            if key not in value:
                self.add(_join(path, key), Rule.REQUIRED, f"'{key}' is required")
        return value

    def string(
        self,
        parent: Mapping[str, object],
        key: str,
        path: str,
        *,
        max_length: int = MAX_TEXT_LENGTH,
        pattern: re.Pattern[str] | None = None,
        rule: str = Rule.TYPE,
        hint: str = "",
    ) -> str | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = _join(path, key)
        if not isinstance(value, str) or not value:
            self.add(where, Rule.TYPE, f"expected a non-empty string, got {_json_type(value)}")
            return None
        if len(value) > max_length:
            self.add(where, Rule.LENGTH, f"is {len(value)} characters; at most {max_length}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(where, rule, f"'{value}' is not valid", hint)
            return None
        return value

    def integer(
        self,
        parent: Mapping[str, object],
        key: str,
        path: str,
        *,
        low: int,
        high: int,
        rule: str,
    ) -> int | None:
        value: object = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = _join(path, key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, Rule.TYPE, f"expected a whole number, got {_json_type(value)}")
            return None
        if not low <= value <= high:
            self.add(where, rule, f"{value} is out of range", f"use a number from {low} to {high}")
            return None
        return value

    def boolean(self, parent: Mapping[str, object], key: str, path: str) -> bool | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.add(
                _join(path, key), Rule.TYPE, f"expected true or false, got {_json_type(value)}"
            )
            return None
        return value

    def enum(
        self,
        parent: Mapping[str, object],
        key: str,
        path: str,
        choices: Sequence[str],
        rule: str = Rule.ENUM,
    ) -> str | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or value not in choices:
            shown = f"'{value}'" if isinstance(value, str) else _json_type(value)
            close = [c for c in choices if isinstance(value, str) and c.lower() == value.lower()]
            hint = f"did you mean '{close[0]}'? " if close else ""
            self.add(
                _join(path, key),
                rule,
                f"{shown} is not allowed",
                f"{hint}use one of: {', '.join(choices)}",
            )
            return None
        return value

    def array(self, parent: Mapping[str, object], key: str, path: str) -> list[object] | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, list | tuple):
            self.add(_join(path, key), Rule.TYPE, f"expected an array, got {_json_type(value)}")
            return None
        return list(value)

    # -- domain readers ---------------------------------------------------------------------

    def resource_id(
        self,
        value: object,
        path: str,
        expected_type: str,
        *,
        what: str,
        right_key: Callable[[ResourceId], str | None] | None = None,
    ) -> ResourceId | None:
        if not isinstance(value, str) or not value:
            self.add(path, Rule.TYPE, f"expected a resource id string, got {_json_type(value)}")
            return None
        try:
            parsed = parse_resource_id(value)
        except InvalidResourceId as exc:
            self.add(
                path,
                Rule.RESOURCE_ID,
                f"'{strip_query(value)}' is not a resource id: {exc}",
                f"give the full id of the {what}, "
                f"e.g. /subscriptions/<id>/resourceGroups/<rg>/providers/{expected_type}/<name>",
            )
            return None
        if not parsed.is_type(expected_type):
            better = right_key(parsed) if right_key else None
            hint = (
                f"a {parsed.resource_type} belongs under '{better}'"
                if better
                else f"give the id of a {expected_type}"
            )
            self.add(
                path,
                Rule.RESOURCE_TYPE,
                f"expected a {expected_type} id, got a {parsed.resource_type}",
                hint,
            )
            return None
        return parsed


# Which resource type each source kind takes.
_SOURCE_TYPES: Final[dict[str, str]] = {
    "snapshot": SNAPSHOT_TYPE,
    "disk": DISK_TYPE,
    "managedImage": MANAGED_IMAGE_TYPE,
    "virtualMachine": VIRTUAL_MACHINE_TYPE,
    "imageVersion": GALLERY_IMAGE_VERSION_TYPE,
}
_OS_SOURCE_KINDS: Final = (
    "vhd",
    "snapshot",
    "disk",
    "managedImage",
    "virtualMachine",
    "imageVersion",
)
_DATA_DISK_SOURCE_KINDS: Final = ("vhd", "snapshot", "disk")
_SOURCE_CLASSES: Final[dict[str, type[_ResourceSource]]] = {
    "snapshot": SnapshotSource,
    "disk": DiskSource,
    "managedImage": ManagedImageSource,
    "virtualMachine": VirtualMachineSource,
}


def _kind_for(kinds: Sequence[str]) -> Callable[[ResourceId], str | None]:
    def kind_of(parsed: ResourceId) -> str | None:
        for kind in kinds:
            if kind in _SOURCE_TYPES and parsed.is_type(_SOURCE_TYPES[kind]):
                return kind
        return None

    return kind_of


def _read_vhd(reader: _Reader, body: Mapping[str, object], path: str) -> VhdSource | None:
    uri_value = body.get("uri")
    blob: BlobUrl | None = None
    if "uri" in body:
        if not isinstance(uri_value, str) or not uri_value:
            reader.add(
                _join(path, "uri"), Rule.TYPE, f"expected a blob URL, got {_json_type(uri_value)}"
            )
        else:
            try:
                blob = parse_blob_url(uri_value, reader.settings.vhd_storage_endpoints)
            except InvalidBlobUrl as exc:
                reader.add(
                    _join(path, "uri"),
                    Rule.VHD_URL,
                    str(exc),
                    "give the page blob's URL under a configured storage endpoint "
                    f"({', '.join(reader.settings.vhd_storage_endpoints)})",
                )
            else:
                if not blob.is_https and not blob.is_loopback:
                    reader.add(
                        _join(path, "uri"),
                        Rule.HTTPS_REQUIRED,
                        f"'{blob.url_without_query}' is not https",
                        "use the https URL of the blob (plain http is for local emulators only)",
                    )
                    blob = None
    account_id: ResourceId | None = None
    if "storageAccountId" in body:
        account_id = reader.resource_id(
            body.get("storageAccountId"),
            _join(path, "storageAccountId"),
            STORAGE_ACCOUNT_TYPE,
            what="storage account that holds the VHD",
        )
    if blob is not None and account_id is not None and account_id.name.lower() != blob.account:
        reader.add(
            _join(path, "storageAccountId"),
            Rule.STORAGE_ACCOUNT_MATCH,
            f"storage account '{account_id.name}' does not hold the blob; "
            f"the URL names account '{blob.account}'",
            "give the id of the storage account named in the VHD URL",
        )
        return None
    if blob is None or account_id is None or not isinstance(uri_value, str):
        return None
    return VhdSource(uri=uri_value, storage_account_id=account_id, blob=blob)


def _read_source(
    reader: _Reader, value: object, path: str, kinds: Sequence[str]
) -> OsSource | None:
    """Read a ``{"<kind>": {...}}`` source object holding exactly one of ``kinds``."""
    source = reader.read_object(value, path, allowed=kinds, what="an object naming one source kind")
    if source is None:
        return None
    given = [k for k in source if k in kinds]
    if len(given) != 1:
        message = "no source given" if not given else f"{len(given)} sources given"
        reader.add(
            path, Rule.EXACTLY_ONE_SOURCE, message, f"give exactly one of: {', '.join(kinds)}"
        )
        return None
    kind = given[0]
    where = _join(path, kind)
    fields: tuple[str, ...] = ("id",)
    if kind == "vhd":
        fields = ("uri", "storageAccountId")
    elif kind == "imageVersion":
        fields = ("id", "tenantId")
    required = tuple(f for f in fields if f != "tenantId")
    body = reader.read_object(source[kind], where, allowed=fields, required=required)
    if body is None:
        return None
    if kind == "vhd":
        return _read_vhd(reader, body, where)
    if "id" not in body:
        return None

    def right_key(parsed: ResourceId) -> str | None:
        for other in kinds:
            if other in _SOURCE_TYPES and parsed.is_type(_SOURCE_TYPES[other]):
                return _join(path, other)
        return None

    parsed = reader.resource_id(
        body["id"], _join(where, "id"), _SOURCE_TYPES[kind], what=f"{kind}", right_key=right_key
    )
    tenant_id: str | None = None
    if kind == "imageVersion" and "tenantId" in body:
        tenant_id = reader.string(
            body,
            "tenantId",
            where,
            pattern=GUID_PATTERN,
            rule=Rule.TENANT_ID,
            hint="give the source tenant's id (a GUID)",
        )
        if tenant_id is None:
            return None
    if parsed is None:
        return None
    if kind == "imageVersion":
        return ImageVersionSource(parsed, tenant_id=tenant_id)
    return _SOURCE_CLASSES[kind](parsed)  # type: ignore[return-value]


def _read_version_policy(reader: _Reader, value: object, path: str) -> VersionPolicy | None:
    if isinstance(value, str):
        if value in POLICY_NAMES:
            return policy_from_name(value)
        reader.add(
            path,
            Rule.VERSION_POLICY,
            f"unknown version policy '{value}'",
            f'use one of {", ".join(POLICY_NAMES)}, or {{"latestUnderMajor": N}}; '
            "for a fixed version use target.version",
        )
        return None
    if isinstance(value, Mapping):
        body = reader.read_object(
            value, path, allowed=("latestUnderMajor",), required=("latestUnderMajor",)
        )
        if body is None or "latestUnderMajor" not in body:
            return None
        major = reader.integer(
            body, "latestUnderMajor", path, low=0, high=INT32_MAX, rule=Rule.VERSION_POLICY
        )
        return LatestUnderMajor(major) if major is not None else None
    reader.add(
        path,
        Rule.TYPE,
        f"expected a policy name or an object, got {_json_type(value)}",
        f'use one of {", ".join(POLICY_NAMES)}, or {{"latestUnderMajor": N}}',
    )
    return None


def _read_target(reader: _Reader, value: object) -> Target | None:
    path = "target"
    fields = (
        "subscriptionId",
        "resourceGroup",
        "gallery",
        "definition",
        "version",
        "versionPolicy",
    )
    target = reader.read_object(
        value,
        path,
        allowed=fields,
        required=("subscriptionId", "resourceGroup", "gallery", "definition"),
    )
    if target is None:
        return None
    subscription_id = reader.string(
        target,
        "subscriptionId",
        path,
        pattern=GUID_PATTERN,
        rule=Rule.SUBSCRIPTION_ID,
        hint="give the subscription id, a GUID like 00000000-0000-0000-0000-000000000000",
    )
    resource_group = reader.string(
        target,
        "resourceGroup",
        path,
        max_length=90,
        pattern=RESOURCE_GROUP_PATTERN,
        rule=Rule.RESOURCE_GROUP_NAME,
        hint="1-90 letters, digits, '_', '.', '(', ')' or '-', not ending in '.'",
    )
    gallery = reader.string(target, "gallery", path, max_length=1000)
    if gallery is not None and (problem := gallery_name_problem(gallery)):
        reader.add(
            "target.gallery",
            Rule.GALLERY_NAME,
            problem,
            "use letters, digits, '_' and '.', at most 80, starting and ending with a letter "
            "or digit",
        )
        gallery = None
    definition = reader.string(target, "definition", path, max_length=1000)
    if definition is not None and (problem := definition_name_problem(definition)):
        reader.add(
            "target.definition",
            Rule.DEFINITION_NAME,
            problem,
            "use letters, digits, '_', '-' and '.', at most 80, starting with a letter or digit "
            "and not ending in '-' or '.'",
        )
        definition = None
    policy: VersionPolicy | None = None
    has_version, has_policy = "version" in target, "versionPolicy" in target
    if has_version == has_policy:
        reader.add(
            path,
            Rule.VERSION_OR_POLICY,
            "both 'version' and 'versionPolicy' given" if has_version else "no version given",
            "give exactly one: 'version' (e.g. \"1.0.0\") or 'versionPolicy' "
            '(nextPatch, nextMinor, nextMajor, date, or {"latestUnderMajor": N})',
        )
    elif has_version:
        text = target["version"]
        if not isinstance(text, str):
            reader.add("target.version", Rule.TYPE, f"expected a string, got {_json_type(text)}")
        else:
            try:
                policy = ExplicitVersion(ImageVersion.parse(text))
            except InvalidVersion as exc:
                reader.add("target.version", Rule.VERSION_FORMAT, str(exc), VERSION_FORMAT_HINT)
    else:
        policy = _read_version_policy(reader, target["versionPolicy"], "target.versionPolicy")
    if (
        subscription_id
        and gallery
        and resource_group
        and not target_gallery_allowed(
            reader.settings.allowed_target_galleries, subscription_id, resource_group, gallery
        )
    ):
        reader.add(
            "target.gallery",
            Rule.TARGET_GALLERY_ALLOWED,
            f"gallery '{subscription_id}/{resource_group}/{gallery}' is not on the allow-list",
            target_gallery_hint(reader.settings, subscription_id, resource_group, gallery),
        )
        return None
    if (
        subscription_id is None
        or resource_group is None
        or gallery is None
        or definition is None
        or policy is None
    ):
        return None
    return Target(subscription_id, resource_group, gallery, definition, policy)


def _read_data_disks(reader: _Reader, document: Mapping[str, object]) -> list[DataDisk] | None:
    items = reader.array(document, "dataDisks", "")
    if items is None:
        return [] if "dataDisks" not in document else None
    disks: list[DataDisk] = []
    ok = True
    seen_luns: dict[int, int] = {}
    for index, item in enumerate(items):
        path = f"dataDisks[{index}]"
        disk = reader.read_object(
            item, path, allowed=("lun", "source", "hostCaching"), required=("lun", "source")
        )
        if disk is None:
            ok = False
            continue
        lun = reader.integer(disk, "lun", path, low=0, high=MAX_LUN, rule=Rule.LUN_RANGE)
        if lun is not None and lun in seen_luns:
            reader.add(
                f"{path}.lun",
                Rule.UNIQUE_LUNS,
                f"duplicate LUN {lun} (also used by dataDisks[{seen_luns[lun]}])",
                "give every data disk its own LUN",
            )
            lun = None
        elif lun is not None:
            seen_luns[lun] = index
        source = (
            _read_source(reader, disk["source"], f"{path}.source", _DATA_DISK_SOURCE_KINDS)
            if "source" in disk
            else None
        )
        caching = reader.enum(disk, "hostCaching", path, HOST_CACHING_MODES)
        if "hostCaching" in disk and caching is None:
            ok = False
        if lun is None or source is None:
            ok = False
            continue
        assert isinstance(source, VhdSource | SnapshotSource | DiskSource)
        disks.append(DataDisk(lun, source, caching or DEFAULT_DATA_DISK_HOST_CACHING))
    return disks if ok else None


def _parse_timestamp(text: str) -> datetime | None:
    match = _EOL_PATTERN.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=UTC,
        )
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            return None
        moment -= sign * timedelta(hours=offset_hours, minutes=offset_minutes)
    return moment


def _read_publishing(reader: _Reader, value: object) -> Publishing | None:
    path = "publishing"
    fields = (
        "targetRegions",
        "replicaCount",
        "storageAccountType",
        "replicationMode",
        "excludeFromLatest",
        "endOfLifeDate",
        "endOfLifeAfterDays",
        "blockDeletionBeforeEndOfLife",
    )
    publishing = reader.read_object(value, path, allowed=fields, required=("targetRegions",))
    if publishing is None:
        return None
    before = len(reader.problems)
    replica_count = reader.integer(
        publishing,
        "replicaCount",
        path,
        low=MIN_REPLICA_COUNT,
        high=MAX_REPLICA_COUNT,
        rule=Rule.REPLICA_COUNT,
    )
    storage_type = reader.enum(
        publishing, "storageAccountType", path, STORAGE_ACCOUNT_TYPES, Rule.STORAGE_ACCOUNT_TYPE
    )
    replication_mode = reader.enum(publishing, "replicationMode", path, REPLICATION_MODES)
    exclude = reader.boolean(publishing, "excludeFromLatest", path)
    block_deletion = reader.boolean(publishing, "blockDeletionBeforeEndOfLife", path)
    default_count = replica_count or DEFAULT_REPLICA_COUNT
    default_type = storage_type or DEFAULT_STORAGE_ACCOUNT_TYPE
    default_exclude = bool(exclude)

    regions: list[TargetRegion] = []
    seen: dict[str, int] = {}
    items = reader.array(publishing, "targetRegions", path)
    if items is not None and not items:
        reader.add(
            f"{path}.targetRegions",
            Rule.TARGET_REGIONS_REQUIRED,
            "no target region given",
            'list at least one region, e.g. [{"name": "eastus"}]',
        )
    for index, item in enumerate(items or []):
        where = f"{path}.targetRegions[{index}]"
        region = reader.read_object(
            item,
            where,
            allowed=("name", "replicaCount", "storageAccountType", "excludeFromLatest"),
            required=("name",),
        )
        if region is None:
            continue
        name = reader.string(region, "name", where, max_length=64)
        if name is not None:
            normalised = normalise_region(name)
            if not REGION_PATTERN.fullmatch(normalised):
                reader.add(
                    f"{where}.name",
                    Rule.REGION_NAME,
                    f"'{name}' is not a region name",
                    "use an Azure region such as 'eastus' or 'West Europe'",
                )
                name = None
            elif normalised in seen:
                reader.add(
                    f"{where}.name",
                    Rule.UNIQUE_REGIONS,
                    f"duplicate region '{normalised}'",
                    "list each region once (it is also "
                    f"publishing.targetRegions[{seen[normalised]}])",
                )
                name = None
            else:
                seen[normalised] = index
                name = normalised
        count = reader.integer(
            region,
            "replicaCount",
            where,
            low=MIN_REPLICA_COUNT,
            high=MAX_REPLICA_COUNT,
            rule=Rule.REPLICA_COUNT,
        )
        region_type = reader.enum(
            region, "storageAccountType", where, STORAGE_ACCOUNT_TYPES, Rule.STORAGE_ACCOUNT_TYPE
        )
        region_exclude = reader.boolean(region, "excludeFromLatest", where)
        if name is not None:
            regions.append(
                TargetRegion(
                    name=name,
                    replica_count=count if count is not None else default_count,
                    storage_account_type=region_type or default_type,
                    exclude_from_latest=(
                        region_exclude if region_exclude is not None else default_exclude
                    ),
                )
            )

    end_of_life: datetime | None = None
    if "endOfLifeDate" in publishing and "endOfLifeAfterDays" in publishing:
        reader.add(
            path,
            Rule.END_OF_LIFE_ONE_OF,
            "both 'endOfLifeDate' and 'endOfLifeAfterDays' given",
            "give at most one of them",
        )
    elif "endOfLifeDate" in publishing:
        text = publishing["endOfLifeDate"]
        parsed = _parse_timestamp(text) if isinstance(text, str) else None
        if parsed is None:
            reader.add(
                f"{path}.endOfLifeDate",
                Rule.END_OF_LIFE_FORMAT,
                f"{text!r} is not a date" if isinstance(text, str) else "expected a date string",
                "use YYYY-MM-DD or an RFC 3339 time such as 2027-01-31T00:00:00Z",
            )
        elif parsed <= reader.now:
            reader.add(
                f"{path}.endOfLifeDate",
                Rule.END_OF_LIFE_FUTURE,
                f"end-of-life date {format_timestamp(parsed)} is not in the future",
                "give a later date, or use endOfLifeAfterDays",
            )
        else:
            end_of_life = parsed
    elif "endOfLifeAfterDays" in publishing:
        days = reader.integer(
            publishing,
            "endOfLifeAfterDays",
            path,
            low=1,
            high=MAX_END_OF_LIFE_DAYS,
            rule=Rule.END_OF_LIFE_FUTURE,
        )
        if days is not None:
            reader.end_of_life_after_days = days
            end_of_life = reader.now + timedelta(days=days)
    if block_deletion and not ({"endOfLifeDate", "endOfLifeAfterDays"} & set(publishing)):
        reader.add(
            f"{path}.blockDeletionBeforeEndOfLife",
            Rule.BLOCK_DELETION_NEEDS_END_OF_LIFE,
            "blocking deletion before end of life needs an end-of-life date",
            "set endOfLifeDate or endOfLifeAfterDays, or drop blockDeletionBeforeEndOfLife",
        )
    if len(reader.problems) != before or not regions:
        return None
    return Publishing(
        target_regions=tuple(regions),
        replica_count=default_count,
        storage_account_type=default_type,
        replication_mode=replication_mode or DEFAULT_REPLICATION_MODE,
        exclude_from_latest=default_exclude,
        end_of_life_date=end_of_life,
        block_deletion_before_end_of_life=bool(block_deletion),
    )


def _read_definition_spec(reader: _Reader, value: object) -> DefinitionSpec | None:
    path = "definitionSpec"
    fields = (
        "osType",
        "osState",
        "hyperVGeneration",
        "architecture",
        "publisher",
        "offer",
        "sku",
        "features",
    )
    required = ("osType", "osState", "publisher", "offer", "sku")
    spec = reader.read_object(value, path, allowed=fields, required=required)
    if spec is None:
        return None
    before = len(reader.problems)
    os_type = reader.enum(spec, "osType", path, OS_TYPES)
    os_state = reader.enum(spec, "osState", path, OS_STATES)
    generation = reader.enum(spec, "hyperVGeneration", path, HYPERV_GENERATIONS)
    architecture = reader.enum(spec, "architecture", path, ARCHITECTURES)
    identifier = {
        key: reader.string(
            spec,
            key,
            path,
            max_length=128,
            pattern=IDENTIFIER_PART_PATTERN,
            rule=Rule.IDENTIFIER,
            hint="1-128 letters, digits, '_', '-' or '.', starting with a letter or digit",
        )
        for key in ("publisher", "offer", "sku")
    }
    features: list[DefinitionFeature] = []
    for index, item in enumerate(reader.array(spec, "features", path) or []):
        where = f"{path}.features[{index}]"
        feature = reader.read_object(
            item, where, allowed=("name", "value"), required=("name", "value")
        )
        if feature is None:
            continue
        name = reader.string(feature, "name", where, max_length=128)
        feature_value = reader.string(feature, "value", where, max_length=256)
        if name is not None and feature_value is not None:
            features.append(DefinitionFeature(name, feature_value))
    if len(reader.problems) != before or os_type is None or os_state is None:
        return None
    return DefinitionSpec(
        os_type=os_type,
        os_state=os_state,
        publisher=str(identifier["publisher"]),
        offer=str(identifier["offer"]),
        sku=str(identifier["sku"]),
        hyper_v_generation=generation or DEFAULT_HYPERV_GENERATION,
        architecture=architecture or DEFAULT_ARCHITECTURE,
        features=tuple(features),
    )


def _read_tags(reader: _Reader, value: object) -> dict[str, str] | None:
    if not isinstance(value, Mapping):
        reader.add("tags", Rule.TYPE, f"expected an object of strings, got {_json_type(value)}")
        return None
    ok = True
    if len(value) > MAX_TAGS:
        reader.add("tags", Rule.TAGS, f"{len(value)} tags; at most {MAX_TAGS}", "drop some tags")
        ok = False
    tags: dict[str, str] = {}
    for key, tag_value in value.items():
        where = f"tags.{key}"
        if not 1 <= len(key) <= MAX_TAG_NAME_LENGTH or any(c in key for c in "<>%&\\?/"):
            reader.add(
                where,
                Rule.TAGS,
                "tag name is not valid",
                f"1-{MAX_TAG_NAME_LENGTH} characters, none of < > % & \\ ? /",
            )
            ok = False
        elif not isinstance(tag_value, str) or len(tag_value) > MAX_TAG_VALUE_LENGTH:
            reader.add(
                where,
                Rule.TAGS,
                "tag value is not valid",
                f"a string of at most {MAX_TAG_VALUE_LENGTH} characters",
            )
            ok = False
        else:
            tags[key] = tag_value
    return tags if ok else None


def _all_source_ids(source: OsSource) -> list[ResourceId]:
    if isinstance(source, VhdSource):
        return [source.storage_account_id]
    return [source.id]


def _check_cross_field(
    reader: _Reader,
    target: Target | None,
    source: OsSource | None,
    disks: list[DataDisk] | None,
    publishing: Publishing | None,
) -> None:
    """Rules that look at more than one part of the request."""
    settings, context = reader.settings, reader.context
    sources: list[tuple[str, OsSource]] = []
    if source is not None:
        sources.append(("source", source))
    for index, disk in enumerate(disks or []):
        sources.append((f"dataDisks[{index}].source", disk.source))
    if target is not None:
        for path, each in sources:
            for rid in _all_source_ids(each):
                if not source_subscription_allowed(
                    settings.allowed_source_subscriptions,
                    target.subscription_id,
                    rid.subscription_id,
                ):
                    field_name = "storageAccountId" if isinstance(each, VhdSource) else "id"
                    reader.add(
                        f"{path}.{each.kind}.{field_name}",
                        Rule.SOURCE_SUBSCRIPTION_ALLOWED,
                        f"source subscription '{rid.subscription_id}' is neither the target's "
                        "subscription nor allowed",
                        source_subscription_hint(settings, rid.subscription_id),
                    )
    seen: dict[str, str] = {}
    for path, each in sources:
        if each.key in seen:
            reader.add(
                path,
                Rule.UNIQUE_SOURCES,
                f"the same source is also used by {seen[each.key]}",
                "every disk of the image needs its own source",
            )
        else:
            seen[each.key] = path
    if (
        disks
        and source is not None
        and not isinstance(source, VhdSource | SnapshotSource | DiskSource)
    ):
        reader.add(
            "dataDisks",
            Rule.DATA_DISKS_NEED_DISK_SOURCE,
            f"a {source.kind} source brings its own data disks; dataDisks cannot be added to it",
            "drop dataDisks, or use a vhd, snapshot or disk as the OS source",
        )
    if publishing is None:
        return
    regions = {region.name for region in publishing.target_regions}
    if context.source_region is not None:
        source_region = normalise_region(context.source_region)
        if source_region not in regions:
            reader.add(
                "publishing.targetRegions",
                Rule.SOURCE_REGION_IN_TARGETS,
                f"the source is in '{source_region}', which is not a target region",
                f'add {{"name": "{source_region}"}} to publishing.targetRegions',
            )
    mode = publishing.replication_mode
    image_limit = max_image_bytes(mode)
    if context.os_disk_size_bytes is not None and context.os_disk_size_bytes > image_limit:
        reader.add(
            "source",
            Rule.IMAGE_SIZE,
            f"the OS source is {format_bytes(context.os_disk_size_bytes)}; "
            f"the limit with {mode} replication is {format_bytes(image_limit)}",
            "shrink the OS disk"
            + (
                ""
                if mode == "Shallow"
                else ", or use publishing.replicationMode 'Shallow' (32 TiB)"
            ),
        )
    disk_limit = max_data_disk_bytes(settings, mode)
    for index, disk in enumerate(disks or []):
        size = context.data_disk_size_bytes.get(disk.lun)
        if size is not None and size > disk_limit:
            reader.add(
                f"dataDisks[{index}]",
                Rule.DATA_DISK_SIZE,
                f"data disk at LUN {disk.lun} is {format_bytes(size)}; the limit is "
                f"{format_bytes(disk_limit)}",
                "shrink the disk; the limit is the GALLERY_MAX_DATA_DISK_GIB setting, capped at "
                "2 TiB (32 TiB with Shallow replication)",
            )


_TOP_LEVEL_FIELDS: Final = (
    "schemaVersion",
    "requestId",
    "target",
    "source",
    "dataDisks",
    "publishing",
    "definitionSpec",
    "tags",
    "correlationId",
    "requestedBy",
)


def parse_build_request(
    document: Mapping[str, object] | object,
    settings: Settings,
    *,
    now: datetime,
    context: ValidationContext | None = None,
) -> BuildRequest:
    """Validate a decoded build request and return its typed, normalised form.

    ``now`` (timezone-aware) resolves ``endOfLifeAfterDays`` and judges "in the future";
    ``context`` carries facts known only at run time (source region, disk sizes). Raises
    :class:`~shared.core.errors.ValidationFailed` with every problem found.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    reader = _Reader(settings, now, context or ValidationContext())
    root = reader.read_object(
        document,
        "",
        allowed=_TOP_LEVEL_FIELDS,
        required=("target", "source", "publishing"),
        what="a JSON object",
    )
    if root is None:
        raise ValidationFailed(reader.problems.items)
    if "schemaVersion" in root and (
        isinstance(root["schemaVersion"], bool) or root["schemaVersion"] != SCHEMA_VERSION
    ):
        reader.add(
            "schemaVersion",
            Rule.SCHEMA_VERSION,
            f"schema version {root['schemaVersion']!r} is not supported",
            f"use {SCHEMA_VERSION} or leave it out",
        )
    request_id = reader.string(
        root,
        "requestId",
        "",
        max_length=128,
        pattern=REQUEST_ID_PATTERN,
        rule=Rule.REQUEST_ID,
        hint="1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    )
    target = _read_target(reader, root["target"]) if "target" in root else None
    source = (
        _read_source(reader, root["source"], "source", _OS_SOURCE_KINDS)
        if "source" in root
        else None
    )
    disks = _read_data_disks(reader, root)
    publishing = _read_publishing(reader, root["publishing"]) if "publishing" in root else None
    spec = (
        _read_definition_spec(reader, root["definitionSpec"]) if "definitionSpec" in root else None
    )
    tags = _read_tags(reader, root["tags"]) if "tags" in root else {}
    correlation_id = reader.string(root, "correlationId", "", max_length=128)
    requested_by = reader.string(root, "requestedBy", "", max_length=MAX_TEXT_LENGTH)
    _check_cross_field(reader, target, source, disks, publishing)
    if len(reader.problems):
        raise ValidationFailed(reader.problems.items)
    if target is None or source is None or publishing is None or disks is None or tags is None:
        raise AssertionError("a part failed to parse without reporting a problem")
    request = BuildRequest(
        request_id=request_id or "",
        target=target,
        source=source,
        publishing=publishing,
        data_disks=tuple(disks),
        definition_spec=spec,
        tags=tags,
        correlation_id=correlation_id,
        requested_by=requested_by,
    )
    if request_id is None:
        content = _content_for_id(request, reader.end_of_life_after_days)
        request = replace(request, request_id=derive_request_id(content))
    logger.debug("build request parsed", extra=request.log_fields())
    return request
