"""Intake: VHD uploads and tagged snapshots become build requests on the build queue.

Two kinds of event start an intake, and a timer finishes what they could not:

* ``Microsoft.Storage.BlobCreated`` for ``<name>.vhd`` or its manifest ``<name>.vhd.json``. A
  route (setting ``GALLERY_VHD_ROUTES``) maps the blob's account, container and name prefix to a
  target and publishing defaults; blob metadata (``gallery_*``) and the manifest override them.
  For a page blob the event comes when the blob is *created*, before any page is written, so the
  upload counts as complete only when (a) its manifest exists (written last, by convention), or
  (b) blob metadata ``gallery_ready=true`` is set, or (c) its footer is a valid fixed-VHD footer
  and its ETag and length have not changed for ``GALLERY_UPLOAD_SETTLE_SECONDS``. A block blob
  VHD is rejected: the gallery needs a page blob.
* ``Microsoft.Resources.ResourceWriteSuccess`` for ``Microsoft.Compute/snapshots/write``. A
  snapshot opts in with the tag ``gallery-publish=<gallery>/<definition>[:<versionPolicy>]`` and
  is queued once it is usable (``snapshotAccessState`` Available, or ``completionPercent`` 100).
  Later writes (tag updates) of a snapshot already queued are ignored.

What is not ready yet is kept as a *pending* record; :meth:`IntakeService.recheck` (the timer)
looks at every pending record again. What was queued or rejected is kept as a *done* record, so a
duplicate event is recognised. Request ids are deterministic (the blob URL and its ETag, or the
snapshot id and its ``uniqueId``), and the request id is the Service Bus MessageId, so even a
duplicate that slips past the records is dropped by the queue's duplicate detection.

Every request is validated with :func:`shared.contract.request.parse_build_request` before it is
sent;
an invalid one is rejected (dead-lettered) with every problem and the field it concerns.

Domain code only: storage, ARM and Service Bus are ports (adapters in ``shared.adapters``).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, Protocol

from shared.contract.request import parse_build_request
from shared.contract.rules import REQUEST_ID_PATTERN, Rule, ValidationContext
from shared.contract.versioning import POLICY_NAMES, ImageVersion, InvalidVersion
from shared.core.blob_urls import BlobUrl, InvalidBlobUrl, parse_blob_url
from shared.core.documents import DocumentStore, StaleWrite, cas_update
from shared.core.errors import PermanentError, Problem, TransientError, ValidationFailed, describe
from shared.core.jsontypes import JsonObject
from shared.core.messaging import MessageSender, RejectedMessageSink, build_request_message
from shared.core.redaction import strip_query
from shared.core.resource_ids import (
    SNAPSHOT_TYPE,
    STORAGE_ACCOUNT_TYPE,
    InvalidResourceId,
    ResourceId,
    parse_resource_id,
)
from shared.core.settings import SettingName, Settings
from shared.core.timestamps import format_timestamp
from shared.vhd.preflight import DetectedFormat, VhdReport

logger = logging.getLogger(__name__)

BLOB_CREATED: Final = "Microsoft.Storage.BlobCreated"
RESOURCE_WRITE_SUCCESS: Final = "Microsoft.Resources.ResourceWriteSuccess"
SNAPSHOT_WRITE_OPERATION: Final = "Microsoft.Compute/snapshots/write"
VHD_SUFFIX: Final = ".vhd"
MANIFEST_SUFFIX: Final = ".vhd.json"
PAGE_BLOB: Final = "PageBlob"
#: A manifest is a small JSON document; anything bigger is not one.
MAX_MANIFEST_BYTES: Final = 256 * 1024
#: Blob metadata names the intake reads (case-insensitive), and the commit marker.
METADATA_PREFIX: Final = "gallery_"
READY_MARKER: Final = "gallery_ready"
#: Snapshot access states in which the gallery can read the snapshot.
READY_ACCESS_STATES: Final = frozenset({"available", "availablewithinstantaccess"})
NOT_READY_ACCESS_STATES: Final = frozenset({"pending", "instantaccess"})
#: Manifest fields (a partial build request; the source is the VHD itself).
MANIFEST_FIELDS: Final = (
    "schemaVersion",
    "requestId",
    "target",
    "publishing",
    "dataDisks",
    "definitionSpec",
    "tags",
    "correlationId",
    "requestedBy",
)
#: Route fields besides the partial request ones.
ROUTE_FIELDS: Final = ("container", "prefix", "storageAccountId", *MANIFEST_FIELDS)
#: Fields of which a request holds at most one: an override of one drops the other.
_EXCLUSIVE_PAIRS: Final = (("version", "versionPolicy"), ("endOfLifeDate", "endOfLifeAfterDays"))
_CONTAINER_PATTERN: Final = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:-?[a-z0-9])*$")
_LATEST_UNDER_MAJOR: Final = re.compile(r"^latestUnderMajor\s*[=(]\s*([0-9]{1,10})\s*\)?$", re.I)


# --------------------------------------------------------------------------- typed commands


@dataclass(frozen=True)
class BlobCreated:
    """A ``Microsoft.Storage.BlobCreated`` event, as far as intake cares."""

    url: str
    blob_type: str
    event_id: str = ""
    api: str = ""
    etag: str = ""
    content_length: int | None = None

    @property
    def is_manifest(self) -> bool:
        return strip_query(self.url).lower().endswith(MANIFEST_SUFFIX)

    @property
    def vhd_url(self) -> str:
        """The VHD this event is about (for a manifest: the VHD it describes)."""
        url = strip_query(self.url)
        return url[: -len(".json")] if self.is_manifest else url


@dataclass(frozen=True)
class SnapshotWritten:
    """A successful ARM write of a snapshot."""

    snapshot_id: ResourceId
    event_id: str = ""


def parse_blob_created(event_type: str, data: object, *, event_id: str = "") -> BlobCreated:
    """Read a BlobCreated event's ``data``; :class:`PermanentError` when it is not one."""
    if event_type != BLOB_CREATED:
        raise PermanentError(f"expected a {BLOB_CREATED} event, got {event_type!r}")
    if not isinstance(data, Mapping) or not isinstance(data.get("url"), str) or not data["url"]:
        raise PermanentError("BlobCreated event without data.url", reason="MalformedEvent")
    length = data.get("contentLength")
    return BlobCreated(
        url=str(data["url"]),
        blob_type=str(data.get("blobType") or ""),
        event_id=event_id,
        api=str(data.get("api") or ""),
        etag=str(data.get("eTag") or "").strip('"'),
        content_length=length if isinstance(length, int) and not isinstance(length, bool) else None,
    )


def parse_snapshot_write(
    event_type: str, subject: str, data: object, *, event_id: str = ""
) -> SnapshotWritten | None:
    """A snapshot write event, or ``None`` for any other resource event (not for intake)."""
    if event_type != RESOURCE_WRITE_SUCCESS or not isinstance(data, Mapping):
        return None
    operation = str(data.get("operationName") or "")
    if operation.lower() != SNAPSHOT_WRITE_OPERATION.lower():
        return None
    if str(data.get("status") or "Succeeded").lower() != "succeeded":
        return None
    text = str(data.get("resourceUri") or subject or "")
    try:
        resource_id = parse_resource_id(text)
    except InvalidResourceId:
        logger.warning("snapshot write event with an unreadable resource id: %s", text[:300])
        return None
    if not resource_id.is_type(SNAPSHOT_TYPE):
        return None
    return SnapshotWritten(resource_id, event_id)


# --------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class BlobState:
    """A blob's properties as storage reports them now."""

    url: str
    blob_type: str
    size: int
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: ``pending`` while a Copy Blob into this blob runs; ``None`` when it was never copied.
    copy_status: str | None = None


@dataclass(frozen=True)
class SmallBlob:
    """The content of a small blob (a manifest) and its ETag."""

    content: bytes
    etag: str


class UploadBlobs(Protocol):
    """Reads upload blobs without downloading a VHD. Errors are ``shared.core.errors`` types."""

    def state(self, url: str) -> BlobState | None:
        """The blob's properties, or ``None`` when there is no such blob."""
        ...

    def read_small(self, url: str, *, max_bytes: int) -> SmallBlob | None:
        """At most ``max_bytes + 1`` bytes of a small blob, or ``None`` when it does not exist."""
        ...

    def inspect_vhd(self, url: str) -> VhdReport:
        """The VHD preflight on the blob's 512-byte footer (one ranged read)."""
        ...


@dataclass(frozen=True)
class SnapshotState:
    """What intake needs to know about a snapshot."""

    id: ResourceId
    location: str
    tags: Mapping[str, str] = field(default_factory=dict)
    access_state: str | None = None
    completion_percent: float | None = None
    unique_id: str | None = None
    time_created: str | None = None
    disk_size_bytes: int | None = None
    provisioning_state: str | None = None

    def tag(self, name: str) -> str | None:
        """A tag value by name; Azure tag names are case-insensitive."""
        for key, value in self.tags.items():
            if key.lower() == name.lower():
                return value
        return None

    @property
    def identity(self) -> str:
        """What tells this snapshot apart from an earlier one of the same name."""
        return self.unique_id or self.time_created or ""


class SnapshotReader(Protocol):
    """Reads snapshots over ARM. Errors are ``shared.core.errors`` types."""

    def get(self, snapshot_id: ResourceId) -> SnapshotState | None:
        """The snapshot, or ``None`` when it does not exist (any more)."""
        ...


# --------------------------------------------------------------------------- request ids


def _digest(text: str, length: int = 32) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def blob_source_key(url: str) -> str:
    """A blob's identity: the URL without query, scheme and host lower-cased."""
    scheme, _, rest = strip_query(url).partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}/{path}"


def vhd_request_id(url: str, etag: str) -> str:
    """``vhd-`` + a hash of the blob's identity and its ETag: one id per uploaded content."""
    return f"vhd-{_digest(blob_source_key(url) + '|' + etag.strip(chr(34)))}"


def snapshot_request_id(snapshot_id: ResourceId, identity: str) -> str:
    """``snap-`` + a hash of the snapshot id and its ``uniqueId`` (or ``timeCreated``)."""
    return f"snap-{_digest(snapshot_id.key + '|' + identity)}"


def upload_record_key(url: str) -> str:
    return f"vhd-{_digest(blob_source_key(url), 40)}"


def snapshot_record_key(snapshot_id: ResourceId) -> str:
    return f"snapshot-{_digest(snapshot_id.key, 40)}"


# --------------------------------------------------------------------------- partial requests


def merge_partial(base: Mapping[str, Any], override: Mapping[str, Any]) -> JsonObject:
    """Deep-merge ``override`` onto ``base``: objects merge, everything else is replaced.

    Where a request may hold only one of two fields (``version``/``versionPolicy``,
    ``endOfLifeDate``/``endOfLifeAfterDays``), setting one drops the other from ``base``.
    """
    merged: JsonObject = copy.deepcopy(dict(base))
    for key, value in override.items():
        for first, second in _EXCLUSIVE_PAIRS:
            if key == first:
                merged.pop(second, None)
            elif key == second:
                merged.pop(first, None)
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = merge_partial(current, value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _version_choice(text: str, path: str) -> tuple[str, Any] | Problem:
    """``("version", "1.2.3")`` or ``("versionPolicy", ...)`` from a tag or metadata value."""
    value = text.strip()
    match = _LATEST_UNDER_MAJOR.fullmatch(value)
    if match:
        return "versionPolicy", {"latestUnderMajor": int(match.group(1))}
    for name in POLICY_NAMES:
        if value.lower() == name.lower():
            return "versionPolicy", name
    try:
        ImageVersion.parse(value)
    except InvalidVersion:
        return Problem(
            path,
            Rule.VERSION_POLICY,
            f"'{value}' is neither a version nor a version policy",
            f"use Major.Minor.Patch, one of {', '.join(POLICY_NAMES)}, or latestUnderMajor=N",
        )
    return "version", value


def parse_manifest(content: bytes) -> JsonObject:
    """A manifest's partial request; :class:`ValidationFailed` (subject ``manifest``) if bad."""
    if len(content) > MAX_MANIFEST_BYTES:
        raise ValidationFailed(
            [
                Problem(
                    "manifest",
                    Rule.LENGTH,
                    f"the manifest is larger than {MAX_MANIFEST_BYTES} bytes",
                    "a manifest holds a partial build request, not data",
                )
            ],
            subject="manifest",
        )
    try:
        document = json.loads(content.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(
            [Problem("manifest", Rule.SYNTAX, f"not JSON: {exc}", "write the manifest as JSON")],
            subject="manifest",
        ) from None
    if not isinstance(document, dict):
        raise ValidationFailed(
            [Problem("manifest", Rule.TYPE, "expected a JSON object", "see docs/intake.md")],
            subject="manifest",
        )
    problems = [
        Problem(
            f"manifest.{key}",
            Rule.UNKNOWN_FIELD,
            "the source of an upload is the VHD itself"
            if key == "source"
            else f"unknown field '{key}'",
            f"remove it; a manifest may hold: {', '.join(MANIFEST_FIELDS)}",
        )
        for key in document
        if key not in MANIFEST_FIELDS
    ]
    if problems:
        raise ValidationFailed(problems, subject="manifest")
    return document


def metadata_overrides(metadata: Mapping[str, str]) -> tuple[JsonObject, bool]:
    """The partial request given by ``gallery_*`` blob metadata, and whether it marks "ready".

    Names (case-insensitive): ``gallery``, ``gallery_definition``, ``gallery_version``
    (a version or a policy), ``gallery_target_regions`` (comma-separated),
    ``gallery_end_of_life_date``, ``gallery_exclude_from_latest``, ``gallery_request_id`` and the
    marker ``gallery_ready``. Other ``gallery_*`` names are an error (a typo must not be ignored).
    """
    partial: JsonObject = {}
    problems: list[Problem] = []
    ready = False
    for raw_name, raw_value in metadata.items():
        name, value = raw_name.lower(), raw_value.strip()
        path = f"metadata.{name}"
        if name == "gallery":
            partial.setdefault("target", {})["gallery"] = value
        elif not name.startswith(METADATA_PREFIX):
            continue
        elif name == "gallery_definition":
            partial.setdefault("target", {})["definition"] = value
        elif name == "gallery_version":
            choice = _version_choice(value, path)
            if isinstance(choice, Problem):
                problems.append(choice)
            else:
                partial.setdefault("target", {})[choice[0]] = choice[1]
        elif name == "gallery_target_regions":
            regions = [r.strip() for r in value.split(",") if r.strip()]
            partial.setdefault("publishing", {})["targetRegions"] = [{"name": r} for r in regions]
        elif name == "gallery_end_of_life_date":
            partial.setdefault("publishing", {})["endOfLifeDate"] = value
        elif name == "gallery_exclude_from_latest":
            flag = _boolean(value)
            if flag is None:
                problems.append(Problem(path, Rule.TYPE, f"'{value}' is not true or false"))
            else:
                partial.setdefault("publishing", {})["excludeFromLatest"] = flag
        elif name == "gallery_request_id":
            partial["requestId"] = value
        elif name == READY_MARKER:
            flag = _boolean(value)
            if flag is None:
                problems.append(Problem(path, Rule.TYPE, f"'{value}' is not true or false"))
            ready = bool(flag)
        else:
            problems.append(
                Problem(
                    path,
                    Rule.UNKNOWN_FIELD,
                    f"unknown gallery metadata '{name}'",
                    "use gallery, gallery_definition, gallery_version, gallery_target_regions, "
                    "gallery_end_of_life_date, gallery_exclude_from_latest, gallery_request_id "
                    "or gallery_ready",
                )
            )
    if problems:
        raise ValidationFailed(problems, subject="blob metadata")
    return partial, ready


def _boolean(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return None


# --------------------------------------------------------------------------- routes


@dataclass(frozen=True)
class UploadRoute:
    """Uploads under ``container``/``prefix`` of one storage account, and their defaults."""

    container: str
    prefix: str
    storage_account_id: ResourceId
    #: A partial build request: target, publishing, definitionSpec, tags...
    defaults: Mapping[str, Any]

    @property
    def account(self) -> str:
        return self.storage_account_id.name.lower()

    def matches(self, blob: BlobUrl) -> bool:
        return (
            blob.account.lower() == self.account
            and blob.container == self.container
            and blob.blob_name.startswith(self.prefix)
        )


def _route_problem(index: int, key: str, message: str) -> PermanentError:
    return PermanentError(
        f"setting {SettingName.VHD_ROUTES}: [{index}].{key}: {message}", reason="InvalidRoutes"
    )


@functools.lru_cache(maxsize=8)
def parse_routes(text: str) -> tuple[UploadRoute, ...]:
    """The routes of ``GALLERY_VHD_ROUTES``; :class:`PermanentError` names a bad entry.

    Each entry: ``container``, ``prefix`` (optional), ``storageAccountId`` (the upload account),
    and a partial build request (``target``, ``publishing``, ``definitionSpec``, ``tags``, ...).
    The partial request is checked when an upload is queued, with the upload's overrides.
    """
    try:
        entries = json.loads(text or "[]")
    except ValueError as exc:
        raise PermanentError(
            f"setting {SettingName.VHD_ROUTES}: not valid JSON: {exc}", reason="InvalidRoutes"
        ) from None
    if not isinstance(entries, list):
        raise PermanentError(
            f"setting {SettingName.VHD_ROUTES}: expected a JSON list of routes",
            reason="InvalidRoutes",
        )
    routes: list[UploadRoute] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _route_problem(index, "", "expected an object")
        unknown = [key for key in entry if key not in ROUTE_FIELDS]
        if unknown:
            raise _route_problem(index, unknown[0], f"unknown field (allowed: {ROUTE_FIELDS})")
        container = entry.get("container")
        if not isinstance(container, str) or not _CONTAINER_PATTERN.fullmatch(container):
            raise _route_problem(index, "container", f"{container!r} is not a container name")
        prefix = entry.get("prefix", "")
        if not isinstance(prefix, str):
            raise _route_problem(index, "prefix", "expected a string")
        try:
            account_id = parse_resource_id(str(entry.get("storageAccountId") or ""))
        except InvalidResourceId as exc:
            raise _route_problem(index, "storageAccountId", str(exc)) from None
        if not account_id.is_type(STORAGE_ACCOUNT_TYPE):
            raise _route_problem(index, "storageAccountId", f"not a {STORAGE_ACCOUNT_TYPE} id")
        defaults = {k: v for k, v in entry.items() if k in MANIFEST_FIELDS}
        routes.append(UploadRoute(container, prefix, account_id, defaults))
    return tuple(routes)


def find_route(routes: Sequence[UploadRoute], blob: BlobUrl) -> UploadRoute | None:
    """The route with the longest matching prefix, or ``None``."""
    matching = [route for route in routes if route.matches(blob)]
    return max(matching, key=lambda route: len(route.prefix)) if matching else None


def vhd_request_document(
    route: UploadRoute,
    vhd_url: str,
    *,
    metadata_partial: Mapping[str, Any],
    manifest: Mapping[str, Any] | None,
    request_id: str,
) -> JsonObject:
    """Route defaults, then blob metadata, then the manifest; the source is the VHD."""
    document = merge_partial(route.defaults, metadata_partial)
    if manifest is not None:
        document = merge_partial(document, manifest)
    document["source"] = {
        "vhd": {"uri": strip_query(vhd_url), "storageAccountId": str(route.storage_account_id)}
    }
    document.setdefault("requestId", request_id)
    return document


# --------------------------------------------------------------------------- snapshots


@dataclass(frozen=True)
class PublishTag:
    """A parsed ``gallery-publish`` tag value."""

    gallery: str
    definition: str
    subscription_id: str | None = None
    resource_group: str | None = None
    #: ``("version", "1.2.3")`` or ``("versionPolicy", "nextPatch" | {...})``; None: defaults.
    version_choice: tuple[str, Any] | None = None


def parse_publish_tag(value: str, *, tag_name: str = "gallery-publish") -> PublishTag:
    """``[<subscriptionId>/<resourceGroup>/ | <resourceGroup>/]<gallery>/<definition>[:<v>]``.

    ``<v>`` is a version (``1.2.3``), a policy (``nextPatch``, ``nextMinor``, ``nextMajor``,
    ``date``) or ``latestUnderMajor=N``. Raises :class:`ValidationFailed` naming the tag.
    """
    path = f"tags.{tag_name}"
    hint = "write <gallery>/<definition>[:<versionPolicy>], e.g. images/ubuntu-24.04:nextPatch"
    target, _, version_text = value.strip().partition(":")
    parts = [part.strip() for part in target.split("/")]
    if len(parts) not in (2, 3, 4) or not all(parts):
        raise ValidationFailed(
            [Problem(path, Rule.TYPE, f"'{value}' is not <gallery>/<definition>", hint)],
            subject="snapshot tag",
        )
    choice: tuple[str, Any] | None = None
    if version_text.strip():
        parsed = _version_choice(version_text, path)
        if isinstance(parsed, Problem):
            raise ValidationFailed([parsed], subject="snapshot tag")
        choice = parsed
    gallery, definition = parts[-2], parts[-1]
    resource_group = parts[-3] if len(parts) >= 3 else None
    subscription = parts[0] if len(parts) == 4 else None
    return PublishTag(gallery, definition, subscription, resource_group, choice)


def resolve_target_scope(
    tag: PublishTag, snapshot_id: ResourceId, allowed_galleries: Sequence[str]
) -> tuple[str, str]:
    """The subscription and resource group of the tag's gallery.

    What the tag names wins. Otherwise the allowed target galleries
    (``GALLERY_ALLOWED_TARGET_GALLERIES``) are searched for exactly one entry with that gallery
    name (and resource group, when the tag names one) and a concrete subscription and resource
    group. With no such entry, the snapshot's own subscription and resource group are used (the
    allow-list check of the request then decides). Two or more entries are ambiguous: rejected.
    """
    if tag.subscription_id and tag.resource_group:
        return tag.subscription_id, tag.resource_group
    candidates: list[tuple[str, str]] = []
    for entry in allowed_galleries:
        parts = entry.split("/")
        if len(parts) != 3 or "*" in parts[:2]:
            continue
        subscription, group, gallery = parts
        if gallery.lower() != tag.gallery.lower():
            continue
        if tag.resource_group and group.lower() != tag.resource_group.lower():
            continue
        if (subscription.lower(), group.lower()) not in {
            (s.lower(), g.lower()) for s, g in candidates
        }:
            candidates.append((subscription, group))
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        shown = ", ".join(f"{s}/{g}/{tag.gallery}" for s, g in candidates)
        raise ValidationFailed(
            [
                Problem(
                    "tags.gallery-publish",
                    Rule.TARGET_GALLERY_ALLOWED,
                    f"gallery '{tag.gallery}' is ambiguous: {shown}",
                    "name it fully: <subscriptionId>/<resourceGroup>/<gallery>/<definition>",
                )
            ],
            subject="snapshot tag",
        )
    return snapshot_id.subscription_id, tag.resource_group or snapshot_id.resource_group


def snapshot_is_ready(snapshot: SnapshotState) -> bool:
    """Usable by the gallery: access state Available, or (no state) the copy is complete."""
    state = (snapshot.access_state or "").lower()
    if state in READY_ACCESS_STATES:
        return True
    if state in NOT_READY_ACCESS_STATES:
        return False
    if (snapshot.provisioning_state or "Succeeded").lower() != "succeeded":
        return False
    return snapshot.completion_percent is None or snapshot.completion_percent >= 100


def snapshot_request_document(
    snapshot: SnapshotState,
    tag: PublishTag,
    scope: tuple[str, str],
    *,
    defaults: Mapping[str, Any],
    request_id: str,
) -> JsonObject:
    """Defaults (``GALLERY_SNAPSHOT_DEFAULTS``), then the tag; the snapshot's region is a target."""
    target: JsonObject = {
        "subscriptionId": scope[0],
        "resourceGroup": scope[1],
        "gallery": tag.gallery,
        "definition": tag.definition,
    }
    if tag.version_choice is not None:
        target[tag.version_choice[0]] = tag.version_choice[1]
    document = merge_partial(defaults, {"target": target})
    target_doc = document["target"]
    if "version" not in target_doc and "versionPolicy" not in target_doc:
        target_doc["versionPolicy"] = "nextPatch"
    publishing = document.setdefault("publishing", {})
    regions = list(publishing.get("targetRegions") or [])
    home = snapshot.location.replace(" ", "").lower()
    names = {
        str(r.get("name", "")).replace(" ", "").lower() for r in regions if isinstance(r, dict)
    }
    if home and home not in names:
        regions.insert(0, {"name": snapshot.location})
    publishing["targetRegions"] = regions
    document["source"] = {"snapshot": {"id": str(snapshot.id)}}
    document.setdefault("requestId", request_id)
    return document


@functools.lru_cache(maxsize=8)
def parse_snapshot_defaults(text: str) -> Mapping[str, Any]:
    """``GALLERY_SNAPSHOT_DEFAULTS``: a partial build request (no source)."""
    try:
        document = json.loads(text or "{}")
    except ValueError as exc:
        raise PermanentError(
            f"setting {SettingName.SNAPSHOT_DEFAULTS}: not valid JSON: {exc}",
            reason="InvalidSnapshotDefaults",
        ) from None
    if not isinstance(document, dict):
        raise PermanentError(
            f"setting {SettingName.SNAPSHOT_DEFAULTS}: expected a JSON object",
            reason="InvalidSnapshotDefaults",
        )
    unknown = [key for key in document if key not in MANIFEST_FIELDS or key == "requestId"]
    if unknown:
        raise PermanentError(
            f"setting {SettingName.SNAPSHOT_DEFAULTS}: field '{unknown[0]}' is not allowed",
            reason="InvalidSnapshotDefaults",
        )
    return document


# --------------------------------------------------------------------------- the service


class IntakeOutcome(StrEnum):
    QUEUED = "queued"  # a build request was sent
    PENDING = "pending"  # not ready yet: the re-check timer looks again
    DUPLICATE = "duplicate"  # already queued (or rejected) for this exact content
    REJECTED = "rejected"  # dead-lettered with its reason
    IGNORED = "ignored"  # not for intake (no route, no tag, not a VHD...)
    GONE = "gone"  # the blob or snapshot no longer exists


@dataclass(frozen=True)
class IntakeResult:
    outcome: IntakeOutcome
    source: str
    request_id: str | None = None
    reason: str | None = None
    detail: str = ""

    def log_fields(self) -> dict[str, str]:
        fields = {"source": self.source, "outcome": str(self.outcome)}
        if self.request_id:
            fields["request_id"] = self.request_id
        if self.reason:
            fields["reason"] = self.reason
        return fields


@dataclass(frozen=True)
class _Rejection:
    reason: str
    description: str


@dataclass(frozen=True)
class _Upload:
    """One look at an upload: what the decision is based on."""

    key: str
    source: str
    state: BlobState
    request_id: str
    #: The VHD's ETag and its manifest's ETag: a rejected upload is looked at again when it moves.
    fingerprint: str
    pending: tuple[dict[str, Any], str] | None
    now: datetime
    #: What a rejection carries: the route's defaults and the source.
    base_document: Mapping[str, Any]
    #: The manifest or marker came before the footer: only the settle rule counts.
    out_of_order: bool = False


class IntakeService:
    """Turns upload and snapshot events into build requests (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        *,
        blobs: UploadBlobs,
        snapshots: SnapshotReader,
        pending: DocumentStore,
        done: DocumentStore,
        sender: MessageSender,
        rejects: RejectedMessageSink,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._blobs = blobs
        self._snapshots = snapshots
        self._pending = pending
        self._done = done
        self._sender = sender
        self._rejects = rejects
        self._clock = clock

    # ---------------------------------------------------------------- entry points

    def on_blob_created(self, event: BlobCreated) -> IntakeResult:
        """A VHD or its manifest was created."""
        url = strip_query(event.url)
        if not (url.lower().endswith(VHD_SUFFIX) or event.is_manifest):
            return IntakeResult(IntakeOutcome.IGNORED, url, detail="neither a .vhd nor a manifest")
        return self._evaluate_upload(event.vhd_url, by_event=True)

    def on_snapshot_written(self, event: SnapshotWritten) -> IntakeResult:
        """A snapshot was created or updated."""
        return self._evaluate_snapshot(event.snapshot_id, by_event=True)

    def recheck(self, *, limit: int = 500) -> list[IntakeResult]:
        """Look again at every pending upload and snapshot (the timer). Errors stay per item."""
        results: list[IntakeResult] = []
        for key in _take(self._pending.list_keys(), limit):
            found = self._pending.read(key)
            if found is None:
                continue
            record, _ = found
            try:
                if record.get("kind") == "vhd":
                    result = self._evaluate_upload(str(record["url"]), by_event=False)
                elif record.get("kind") == "snapshot":
                    result = self._evaluate_snapshot(
                        parse_resource_id(str(record["id"])), by_event=False
                    )
                else:
                    logger.warning("intake: unknown pending record %s dropped", key)
                    self._drop_pending(key)
                    continue
            except PermanentError as error:
                logger.error(
                    "intake: re-check of %s failed: %s",
                    key,
                    error,
                    extra={"source": key, "reason": error.reason},
                )
                continue
            except Exception:
                logger.exception("intake: re-check of %s failed; next run tries again", key)
                continue
            results.append(result)
        return results

    # ---------------------------------------------------------------- uploads

    def _evaluate_upload(self, vhd_url: str, *, by_event: bool) -> IntakeResult:
        settings = self._settings
        try:
            blob = parse_blob_url(vhd_url, settings.vhd_storage_endpoints)
        except InvalidBlobUrl as exc:
            logger.warning("intake: %s; ignored", exc, extra={"source": strip_query(vhd_url)})
            return IntakeResult(IntakeOutcome.IGNORED, strip_query(vhd_url), detail=str(exc))
        source = blob.url_without_query
        route = find_route(parse_routes(settings.intake.vhd_routes), blob)
        if route is None:
            logger.warning(
                "intake: no route in %s for %s; ignored",
                SettingName.VHD_ROUTES,
                source,
                extra={"source": source},
            )
            return IntakeResult(IntakeOutcome.IGNORED, source, detail="no route")
        key = upload_record_key(source)
        state = self._blobs.state(source)
        if state is None:
            self._drop_pending(key)
            return IntakeResult(IntakeOutcome.GONE, source, detail="the VHD does not exist")
        manifest_blob = self._blobs.read_small(source + ".json", max_bytes=MAX_MANIFEST_BYTES)
        request_id = vhd_request_id(source, state.etag)
        upload = _Upload(
            key=key,
            source=source,
            state=state,
            request_id=request_id,
            fingerprint=f"{state.etag}|{manifest_blob.etag if manifest_blob else ''}",
            pending=self._pending.read(key),
            now=self._clock(),
            base_document=vhd_request_document(
                route, source, metadata_partial={}, manifest=None, request_id=request_id
            ),
        )
        done = self._done.read(key)
        if done is not None and done[0].get("etag") == state.etag:
            record = done[0]
            if record.get("state") == "queued" or record.get("fingerprint") == upload.fingerprint:
                self._drop_pending(key)
                return IntakeResult(
                    IntakeOutcome.DUPLICATE,
                    source,
                    str(record.get("requestId") or request_id),
                    detail=f"already {record.get('state')}",
                )
        if state.blob_type != PAGE_BLOB:
            return self._reject_upload(
                upload,
                _Rejection(
                    "VhdNotPageBlob",
                    f"{source} is a {state.blob_type or 'blob of unknown type'}; Azure Compute "
                    "Gallery needs the VHD as a page blob. Upload it again as a page blob "
                    "(azcopy copy ... --blob-type PageBlob, or az storage blob upload "
                    "--type page).",
                ),
            )
        try:
            metadata_partial, marker = metadata_overrides(state.metadata)
            manifest = parse_manifest(manifest_blob.content) if manifest_blob else None
        except ValidationFailed as failed:
            return self._reject_upload(upload, _Rejection(failed.reason, describe(failed)))
        if state.copy_status and state.copy_status.lower() == "pending":
            return self._wait_upload(upload, "a copy into it is running")
        committed_by = "manifest" if manifest is not None else "marker" if marker else None
        report: VhdReport | None = None
        if committed_by is not None and upload.pending and upload.pending[0].get("outOfOrder"):
            committed_by = None  # committed before the footer was written: settle rule
        elif committed_by is not None:
            report = self._blobs.inspect_vhd(source)
            if report.detected_format == DetectedFormat.RAW_OR_UNFINISHED:
                committed_by = None  # written out of order: fall back to the settle rule
                upload = replace(upload, out_of_order=True)
        if committed_by is None:
            if not self._settled(upload):
                return self._wait_upload(upload, "waiting for the upload to settle")
            report = report or self._blobs.inspect_vhd(source)
            if report.detected_format == DetectedFormat.RAW_OR_UNFINISHED:
                return self._wait_upload(upload, "the footer is not written yet")
        if report is None:  # pragma: no cover - both branches above set it
            raise AssertionError("no VHD report")
        if not report.ok:
            problems = "; ".join(str(problem) for problem in report.problems)
            return self._reject_upload(upload, _Rejection("VhdInvalid", f"{source}: {problems}"))
        document = vhd_request_document(
            route,
            source,
            metadata_partial=metadata_partial,
            manifest=manifest,
            request_id=request_id,
        )
        return self._queue(
            key,
            source,
            document,
            ValidationContext(os_disk_size_bytes=report.virtual_size),
            derived_id=request_id,
            done_record={
                "kind": "vhd",
                "url": source,
                "etag": state.etag,
                "fingerprint": upload.fingerprint,
                "committedBy": committed_by or "settled",
            },
            now=upload.now,
            by_event=by_event,
        )

    def _settled(self, upload: _Upload) -> bool:
        """ETag and length unchanged since they were first observed, for the settle time."""
        if upload.pending is None:
            return False
        observed = upload.pending[0].get("observed") or {}
        if observed.get("etag") != upload.state.etag or observed.get("size") != upload.state.size:
            return False
        since = _parse_time(observed.get("since"))
        settle = timedelta(seconds=self._settings.intake.upload_settle_seconds)
        return since is not None and upload.now - since >= settle

    def _wait_upload(self, upload: _Upload, why: str) -> IntakeResult:
        state, now, source = upload.state, upload.now, upload.source
        record: JsonObject = (
            dict(upload.pending[0])
            if upload.pending
            else {"kind": "vhd", "url": source, "firstSeen": _ts(now)}
        )
        observed = record.get("observed") or {}
        if observed.get("etag") != state.etag or observed.get("size") != state.size:
            record["observed"] = {"etag": state.etag, "size": state.size, "since": _ts(now)}
        record["lastCheck"] = _ts(now)
        record["waitingFor"] = why
        if upload.out_of_order:
            record["outOfOrder"] = True
        abandoned = self._abandoned(record, now)
        if abandoned is not None:
            name = source.rsplit("/", 1)[-1]
            return self._reject_upload(
                replace(upload, fingerprint=f"{state.etag}|abandoned"),
                _Rejection(
                    "UploadIncomplete",
                    f"{source} was not ready after {abandoned}: {why}. Finish the upload, then "
                    f"write its manifest ({name}.json) or set metadata {READY_MARKER}=true.",
                ),
            )
        self._save_pending(upload.key, record, upload.pending)
        logger.info(
            "intake: %s pending: %s", source, why, extra={"source": source, "outcome": "pending"}
        )
        return IntakeResult(IntakeOutcome.PENDING, source, upload.request_id, detail=why)

    def _reject_upload(self, upload: _Upload, rejection: _Rejection) -> IntakeResult:
        return self._rejected(
            key=upload.key,
            source=upload.source,
            request_id=upload.request_id,
            document=upload.base_document,
            done_record={
                "kind": "vhd",
                "url": upload.source,
                "etag": upload.state.etag,
                "fingerprint": upload.fingerprint,
            },
            rejection=rejection,
        )

    # ---------------------------------------------------------------- snapshots

    def _evaluate_snapshot(self, snapshot_id: ResourceId, *, by_event: bool) -> IntakeResult:
        source = str(snapshot_id)
        key = snapshot_record_key(snapshot_id)
        snapshot = self._snapshots.get(snapshot_id)
        if snapshot is None:
            self._drop_pending(key)
            return IntakeResult(IntakeOutcome.GONE, source, detail="the snapshot does not exist")
        tag_name = self._settings.intake.snapshot_tag
        tag_value = snapshot.tag(tag_name)
        if tag_value is None:
            self._drop_pending(key)
            logger.debug("intake: snapshot %s has no %s tag", source, tag_name)
            return IntakeResult(IntakeOutcome.IGNORED, source, detail=f"no {tag_name} tag")
        request_id = snapshot_request_id(snapshot_id, snapshot.identity)
        done = self._done.read(key)
        if done is not None:
            record = done[0]
            if record.get("identity") == snapshot.identity and (
                record.get("state") == "queued" or record.get("tag") == tag_value
            ):
                self._drop_pending(key)
                return IntakeResult(
                    IntakeOutcome.DUPLICATE,
                    source,
                    str(record.get("requestId") or request_id),
                    detail=f"already {record.get('state')}; later writes are ignored",
                )
        done_record = {
            "kind": "snapshot",
            "id": source,
            "identity": snapshot.identity,
            "tag": tag_value,
        }
        now = self._clock()
        base_document = {"source": {"snapshot": {"id": source}}, "requestId": request_id}
        try:
            tag = parse_publish_tag(tag_value, tag_name=tag_name)
            scope = resolve_target_scope(tag, snapshot_id, self._settings.allowed_target_galleries)
        except ValidationFailed as failed:
            return self._rejected(
                key=key,
                source=source,
                request_id=request_id,
                document=base_document,
                done_record=done_record,
                rejection=_Rejection(failed.reason, describe(failed)),
            )
        if not snapshot_is_ready(snapshot):
            pending = self._pending.read(key)
            record = (
                dict(pending[0])
                if pending
                else {"kind": "snapshot", "id": source, "firstSeen": _ts(now)}
            )
            why = (
                f"snapshotAccessState {snapshot.access_state}, "
                f"completionPercent {snapshot.completion_percent}"
            )
            record["lastCheck"] = _ts(now)
            record["waitingFor"] = why
            abandoned = self._abandoned(record, now)
            if abandoned is not None:
                return self._rejected(
                    key=key,
                    source=source,
                    request_id=request_id,
                    document=base_document,
                    done_record=done_record,
                    rejection=_Rejection(
                        "SnapshotNotReady", f"{source} was not usable after {abandoned}: {why}"
                    ),
                )
            self._save_pending(key, record, pending)
            logger.info("intake: snapshot %s pending: %s", source, why, extra={"source": source})
            return IntakeResult(IntakeOutcome.PENDING, source, request_id, detail=why)
        defaults = parse_snapshot_defaults(self._settings.intake.snapshot_defaults)
        document = snapshot_request_document(
            snapshot, tag, scope, defaults=defaults, request_id=request_id
        )
        context = ValidationContext(
            source_region=snapshot.location or None, os_disk_size_bytes=snapshot.disk_size_bytes
        )
        return self._queue(
            key,
            source,
            document,
            context,
            derived_id=request_id,
            done_record=done_record,
            now=now,
            by_event=by_event,
        )

    def _rejected(
        self,
        *,
        key: str,
        source: str,
        request_id: str,
        document: Mapping[str, Any],
        done_record: Mapping[str, Any],
        rejection: _Rejection,
    ) -> IntakeResult:
        """Dead-letter the request, remember the decision, forget the pending record."""
        self._reject(document, request_id, source, rejection)
        self._record_done(
            key,
            {
                **done_record,
                "state": "rejected",
                "requestId": request_id,
                "reason": rejection.reason,
                "at": _ts(self._clock()),
            },
        )
        self._drop_pending(key)
        return IntakeResult(
            IntakeOutcome.REJECTED, source, request_id, rejection.reason, rejection.description
        )

    # ---------------------------------------------------------------- shared steps

    def _queue(
        self,
        key: str,
        source: str,
        document: JsonObject,
        context: ValidationContext,
        *,
        derived_id: str,
        done_record: Mapping[str, Any],
        now: datetime,
        by_event: bool,
    ) -> IntakeResult:
        given = document.get("requestId")
        valid_given = isinstance(given, str) and REQUEST_ID_PATTERN.fullmatch(given)
        request_id = str(given) if valid_given else derived_id
        try:
            request = parse_build_request(document, self._settings, now=now, context=context)
        except ValidationFailed as failed:
            return self._rejected(
                key=key,
                source=source,
                request_id=request_id,
                document=document,
                done_record=done_record,
                rejection=_Rejection(failed.reason, describe(failed)),
            )
        message = build_request_message(
            document, request_id=request.request_id, correlation_id=request.correlation_id
        )
        self._sender.send(self._settings.build_queue, message)
        self._record_done(
            key,
            {**done_record, "state": "queued", "requestId": request.request_id, "at": _ts(now)},
        )
        self._drop_pending(key)
        logger.info(
            "intake: build request %s queued for %s",
            request.request_id,
            source,
            extra={**request.log_fields(), "trigger": "event" if by_event else "recheck"},
        )
        return IntakeResult(IntakeOutcome.QUEUED, source, request.request_id)

    def _reject(
        self, document: Mapping[str, Any], request_id: str, source: str, rejection: _Rejection
    ) -> None:
        message = build_request_message(document, request_id=request_id)
        message = replace(
            message,
            application_properties={**message.application_properties, "intake-source": source},
        )
        self._rejects.reject(message, reason=rejection.reason, description=rejection.description)
        logger.warning(
            "intake: %s rejected: %s: %s",
            source,
            rejection.reason,
            rejection.description,
            extra={"source": source, "request_id": request_id, "reason": rejection.reason},
        )

    def _abandoned(self, record: Mapping[str, Any], now: datetime) -> str | None:
        first_seen = _parse_time(record.get("firstSeen"))
        limit = timedelta(seconds=self._settings.intake.abandon_seconds)
        if first_seen is not None and now - first_seen >= limit:
            return f"{int(limit.total_seconds())} s ({SettingName.INTAKE_ABANDON_SECONDS})"
        return None

    def _save_pending(
        self, key: str, record: Mapping[str, Any], pending: tuple[dict[str, Any], str] | None
    ) -> None:
        try:
            self._pending.write(key, record, etag=pending[1] if pending else None)
        except StaleWrite:
            logger.debug("intake: pending record %s changed concurrently", key)

    def _drop_pending(self, key: str) -> None:
        found = self._pending.read(key)
        if found is None:
            return
        try:
            self._pending.delete(key, etag=found[1])
        except StaleWrite:
            logger.debug("intake: pending record %s changed concurrently; kept", key)

    def _record_done(self, key: str, record: Mapping[str, Any]) -> None:
        try:
            cas_update(
                self._done,
                key,
                lambda _current: (record, None),
                what=f"done record {key}",
                attempts=5,
            )
        except TransientError:
            logger.warning("intake: done record %s kept changing; not updated", key)


def _take(keys: Iterator[str], limit: int) -> list[str]:
    taken: list[str] = []
    for key in keys:
        if len(taken) >= limit:
            break
        taken.append(key)
    return taken


def _ts(moment: datetime) -> str:
    return format_timestamp(moment)


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
