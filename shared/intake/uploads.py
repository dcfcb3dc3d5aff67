"""VHD uploads: routes, manifests, blob metadata overrides and the request document.

A route (setting ``GALLERY_VHD_ROUTES``) maps the blob's account, container and name prefix to a
target and publishing defaults; blob metadata (``gallery_*``) and the manifest override them
(:func:`vhd_request_document`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.contract.decode import decode_json
from shared.contract.rules import Rule
from shared.core.blob_urls import BlobUrl
from shared.core.errors import PermanentError, Problem, ValidationFailed
from shared.core.jsontypes import JsonObject
from shared.core.redaction import strip_query
from shared.core.resource_ids import (
    STORAGE_ACCOUNT_TYPE,
    InvalidResourceId,
    ResourceId,
    parse_resource_id,
)
from shared.core.settings import SettingName
from shared.intake.partial import MANIFEST_FIELDS, merge_partial, version_choice

PAGE_BLOB: Final = "PageBlob"
#: A manifest is a small JSON document; anything bigger is not one.
MAX_MANIFEST_BYTES: Final = 256 * 1024
#: Blob metadata names the intake reads (case-insensitive), and the commit marker.
METADATA_PREFIX: Final = "gallery_"
READY_MARKER: Final = "gallery_ready"
#: Route fields besides the partial request ones.
ROUTE_FIELDS: Final = ("container", "prefix", "storageAccountId", *MANIFEST_FIELDS)
_CONTAINER_PATTERN: Final = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:-?[a-z0-9])*$")


# --------------------------------------------------------------------------- manifests


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
    # any bytes: a JSON value, or ValidationFailed (not UTF-8, not JSON, too deep, duplicates...)
    document = decode_json(content, subject="manifest", path="manifest")
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


# --------------------------------------------------------------------------- blob metadata


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
        if name == READY_MARKER:
            flag = _boolean(value)
            if flag is None:
                problems.append(_not_boolean(name, value))
            ready = bool(flag)
        elif name == "gallery" or name.startswith(METADATA_PREFIX):
            problem = _apply_metadata(partial, name, value)
            if problem is not None:
                problems.append(problem)
    if problems:
        raise ValidationFailed(problems, subject="blob metadata")
    return partial, ready


def _apply_metadata(partial: JsonObject, name: str, value: str) -> Problem | None:
    """Set what one ``gallery*`` metadata entry (not the marker) says; its problem, if any."""
    if name == "gallery":
        partial.setdefault("target", {})["gallery"] = value
    elif name == "gallery_definition":
        partial.setdefault("target", {})["definition"] = value
    elif name == "gallery_version":
        choice = version_choice(value, f"metadata.{name}")
        if isinstance(choice, Problem):
            return choice
        partial.setdefault("target", {})[choice[0]] = choice[1]
    elif name == "gallery_target_regions":
        regions = [r.strip() for r in value.split(",") if r.strip()]
        partial.setdefault("publishing", {})["targetRegions"] = [{"name": r} for r in regions]
    elif name == "gallery_end_of_life_date":
        partial.setdefault("publishing", {})["endOfLifeDate"] = value
    elif name == "gallery_exclude_from_latest":
        flag = _boolean(value)
        if flag is None:
            return _not_boolean(name, value)
        partial.setdefault("publishing", {})["excludeFromLatest"] = flag
    elif name == "gallery_request_id":
        partial["requestId"] = value
    else:
        return Problem(
            f"metadata.{name}",
            Rule.UNKNOWN_FIELD,
            f"unknown gallery metadata '{name}'",
            "use gallery, gallery_definition, gallery_version, gallery_target_regions, "
            "gallery_end_of_life_date, gallery_exclude_from_latest, gallery_request_id "
            "or gallery_ready",
        )
    return None


def _not_boolean(name: str, value: str) -> Problem:
    return Problem(f"metadata.{name}", Rule.TYPE, f"'{value}' is not true or false")


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
        entries = decode_json(text or "[]", subject=f"setting {SettingName.VHD_ROUTES}")
    except ValidationFailed as exc:
        problems = "; ".join(str(problem) for problem in exc.problems)
        raise PermanentError(
            f"setting {SettingName.VHD_ROUTES}: not valid JSON: {problems}", reason="InvalidRoutes"
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


# --------------------------------------------------------------------------- the request


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
