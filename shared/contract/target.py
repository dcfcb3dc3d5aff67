"""Reads the ``target`` section of a build request: gallery, definition and version (or policy)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from shared.contract.display import quoted, visible
from shared.contract.model import Target
from shared.contract.naming import DEFINITION_NAME, GALLERY_NAME, RESOURCE_GROUP_NAME
from shared.contract.reader import DocumentReader, json_type
from shared.contract.rules import Rule, target_gallery_allowed, target_gallery_hint
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
from shared.core.resource_ids import GUID_PATTERN

_PATH: Final = "target"
_FIELDS: Final = (
    "subscriptionId",
    "resourceGroup",
    "gallery",
    "definition",
    "version",
    "versionPolicy",
)
_REQUIRED: Final = ("subscriptionId", "resourceGroup", "gallery", "definition")


def read_target(reader: DocumentReader, value: object) -> Target | None:
    """Read ``target``; ``None`` when any part of it has a problem (each one is recorded)."""
    target = reader.read_object(value, _PATH, allowed=_FIELDS, required=_REQUIRED)
    if target is None:
        return None
    subscription_id = reader.string(
        target,
        "subscriptionId",
        _PATH,
        pattern=GUID_PATTERN,
        rule=Rule.SUBSCRIPTION_ID,
        hint="give the subscription id, a GUID like 00000000-0000-0000-0000-000000000000",
    )
    resource_group = reader.name(target, "resourceGroup", _PATH, RESOURCE_GROUP_NAME)
    gallery = reader.name(target, "gallery", _PATH, GALLERY_NAME)
    definition = reader.name(target, "definition", _PATH, DEFINITION_NAME)
    policy = _read_version_or_policy(reader, target)
    if not _gallery_allowed(reader, subscription_id, resource_group, gallery):
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


def _read_version_or_policy(
    reader: DocumentReader, target: Mapping[str, object]
) -> VersionPolicy | None:
    """Exactly one of ``version`` (an explicit version) and ``versionPolicy``."""
    has_version, has_policy = "version" in target, "versionPolicy" in target
    if has_version == has_policy:
        reader.add(
            _PATH,
            Rule.VERSION_OR_POLICY,
            "both 'version' and 'versionPolicy' given" if has_version else "no version given",
            "give exactly one: 'version' (e.g. \"1.0.0\") or 'versionPolicy' "
            '(nextPatch, nextMinor, nextMajor, date, or {"latestUnderMajor": N})',
        )
        return None
    if has_version:
        return _read_explicit_version(reader, target["version"])
    return _read_version_policy(reader, target["versionPolicy"], "target.versionPolicy")


def _read_explicit_version(reader: DocumentReader, text: object) -> VersionPolicy | None:
    if not isinstance(text, str):
        reader.add("target.version", Rule.TYPE, f"expected a string, got {json_type(text)}")
        return None
    try:
        return ExplicitVersion(ImageVersion.parse(text))
    except InvalidVersion as exc:
        reader.add("target.version", Rule.VERSION_FORMAT, visible(str(exc)), VERSION_FORMAT_HINT)
        return None


def _read_version_policy(reader: DocumentReader, value: object, path: str) -> VersionPolicy | None:
    if isinstance(value, str):
        if value in POLICY_NAMES:
            return policy_from_name(value)
        reader.add(
            path,
            Rule.VERSION_POLICY,
            f"unknown version policy {quoted(value)}",
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
        f"expected a policy name or an object, got {json_type(value)}",
        f'use one of {", ".join(POLICY_NAMES)}, or {{"latestUnderMajor": N}}',
    )
    return None


def _gallery_allowed(
    reader: DocumentReader,
    subscription_id: str | None,
    resource_group: str | None,
    gallery: str | None,
) -> bool:
    """False (with a problem) when a fully named target gallery is not on the allow-list."""
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
            f"gallery {quoted(f'{subscription_id}/{resource_group}/{gallery}')} is not on the "
            "allow-list",
            target_gallery_hint(reader.settings, subscription_id, resource_group, gallery),
        )
        return False
    return True
