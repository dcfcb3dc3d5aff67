"""The entry point of the build-request contract v1: :func:`parse_build_request`.

A build request asks the pipeline to publish one gallery image version. The JSON contract is
``schemas/build-request.v1.json`` and ``docs/build-requests.md`` explains every field and rule.
:func:`parse_build_request` is the runtime check: it reads a decoded JSON document section by
section (:mod:`~shared.contract.target`, :mod:`~shared.contract.source`,
:mod:`~shared.contract.publishing`, :mod:`~shared.contract.definition_spec`,
:mod:`~shared.contract.tags`), applies the rules that span sections, and either returns a
:class:`~shared.contract.model.BuildRequest` or raises
:class:`~shared.core.errors.ValidationFailed` listing *every* problem found.

Domain code only: no Azure SDK import.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Final

from shared.contract.definition_spec import read_definition_spec
from shared.contract.model import (
    MAX_TEXT_LENGTH,
    SCHEMA_VERSION,
    BuildRequest,
    DataDisk,
    DiskSource,
    OsSource,
    Publishing,
    SnapshotSource,
    Target,
    VhdSource,
    content_for_id,
    derive_request_id,
)
from shared.contract.publishing import read_publishing
from shared.contract.reader import DocumentReader
from shared.contract.rules import (
    REQUEST_ID_PATTERN,
    Rule,
    ValidationContext,
    format_bytes,
    max_data_disk_bytes,
    max_image_bytes,
    normalise_region,
    source_subscription_allowed,
    source_subscription_hint,
)
from shared.contract.source import OS_SOURCE_KINDS, read_data_disks, read_source
from shared.contract.tags import read_tags
from shared.contract.target import read_target
from shared.contract.tenants import SourceTenants, check_source_tenants
from shared.core.errors import ValidationFailed
from shared.core.resource_ids import ResourceId
from shared.core.settings import Settings

logger = logging.getLogger(__name__)

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
    reader = DocumentReader(settings, now, context or ValidationContext())
    root = reader.read_object(
        document,
        "",
        allowed=_TOP_LEVEL_FIELDS,
        required=("target", "source", "publishing"),
        what="a JSON object",
    )
    if root is None:
        raise ValidationFailed(reader.problems.items)
    _check_schema_version(reader, root)
    request = _read_request(reader, root)
    logger.debug("build request parsed", extra=request.log_fields())
    return request


def _check_schema_version(reader: DocumentReader, root: Mapping[str, object]) -> None:
    if "schemaVersion" in root and (
        isinstance(root["schemaVersion"], bool) or root["schemaVersion"] != SCHEMA_VERSION
    ):
        reader.add(
            "schemaVersion",
            Rule.SCHEMA_VERSION,
            f"schema version {root['schemaVersion']!r} is not supported",
            f"use {SCHEMA_VERSION} or leave it out",
        )


def _read_request(reader: DocumentReader, root: Mapping[str, object]) -> BuildRequest:
    """Read every section, check across them, and raise with every problem found."""
    request_id = _read_request_id(reader, root)
    target = read_target(reader, root["target"]) if "target" in root else None
    source = (
        read_source(reader, root["source"], "source", OS_SOURCE_KINDS) if "source" in root else None
    )
    disks = read_data_disks(reader, root)
    publishing = read_publishing(reader, root["publishing"]) if "publishing" in root else None
    spec = (
        read_definition_spec(reader, root["definitionSpec"]) if "definitionSpec" in root else None
    )
    tags = read_tags(reader, root["tags"]) if "tags" in root else {}
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
        content = content_for_id(request, reader.end_of_life_after_days)
        request = replace(request, request_id=derive_request_id(content))
    return request


def _read_request_id(reader: DocumentReader, root: Mapping[str, object]) -> str | None:
    """The given ``requestId``; ``None`` when absent (an id is then derived) or invalid."""
    return reader.string(
        root,
        "requestId",
        "",
        max_length=128,
        pattern=REQUEST_ID_PATTERN,
        rule=Rule.REQUEST_ID,
        hint="1-128 letters, digits, '.', '_', ':' or '-', starting with a letter or digit",
    )


# --------------------------------------------------------------------------- cross-field rules


def _check_cross_field(
    reader: DocumentReader,
    target: Target | None,
    source: OsSource | None,
    disks: list[DataDisk] | None,
    publishing: Publishing | None,
) -> None:
    """Rules that look at more than one part of the request."""
    sources: list[tuple[str, OsSource]] = []
    if source is not None:
        sources.append(("source", source))
    for index, disk in enumerate(disks or []):
        sources.append((f"dataDisks[{index}].source", disk.source))
    if target is not None:
        _check_source_subscriptions(reader, target, sources)
    tenants = reader.context.source_tenants or SourceTenants.from_settings(
        reader.settings.cross_tenant
    )
    check_source_tenants(reader, tenants, sources)
    _check_unique_sources(reader, sources)
    _check_data_disks_allowed(reader, source, disks)
    if publishing is None:
        return
    _check_source_region(reader, publishing)
    _check_image_size(reader, publishing)
    _check_data_disk_sizes(reader, publishing, disks)


def _all_source_ids(source: OsSource) -> list[ResourceId]:
    if isinstance(source, VhdSource):
        return [source.storage_account_id]
    return [source.id]


def _check_source_subscriptions(
    reader: DocumentReader, target: Target, sources: list[tuple[str, OsSource]]
) -> None:
    """Every source is in the target's subscription or an allowed one."""
    settings = reader.settings
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


def _check_unique_sources(reader: DocumentReader, sources: list[tuple[str, OsSource]]) -> None:
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


def _check_data_disks_allowed(
    reader: DocumentReader, source: OsSource | None, disks: list[DataDisk] | None
) -> None:
    """Only a vhd, snapshot or disk OS source can take extra data disks."""
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


def _check_source_region(reader: DocumentReader, publishing: Publishing) -> None:
    """The source's region (when known) is one of the target regions."""
    regions = {region.name for region in publishing.target_regions}
    if reader.context.source_region is not None:
        source_region = normalise_region(reader.context.source_region)
        if source_region not in regions:
            reader.add(
                "publishing.targetRegions",
                Rule.SOURCE_REGION_IN_TARGETS,
                f"the source is in '{source_region}', which is not a target region",
                f'add {{"name": "{source_region}"}} to publishing.targetRegions',
            )


def _check_image_size(reader: DocumentReader, publishing: Publishing) -> None:
    """The OS source (when its size is known) fits the replication mode's limit."""
    context = reader.context
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


def _check_data_disk_sizes(
    reader: DocumentReader, publishing: Publishing, disks: list[DataDisk] | None
) -> None:
    """Each data disk (when its size is known) fits the configured limit."""
    disk_limit = max_data_disk_bytes(reader.settings, publishing.replication_mode)
    for index, disk in enumerate(disks or []):
        size = reader.context.data_disk_size_bytes.get(disk.lun)
        if size is not None and size > disk_limit:
            reader.add(
                f"dataDisks[{index}]",
                Rule.DATA_DISK_SIZE,
                f"data disk at LUN {disk.lun} is {format_bytes(size)}; the limit is "
                f"{format_bytes(disk_limit)}",
                "shrink the disk; the limit is the GALLERY_MAX_DATA_DISK_GIB setting, capped at "
                "2 TiB (32 TiB with Shallow replication)",
            )
