"""Tagged snapshots: the publish tag, the target scope, readiness and the request document.

A snapshot opts in with the tag ``gallery-publish=<gallery>/<definition>[:<versionPolicy>]`` and
is queued once it is usable (``provisioningState`` Succeeded, and ``snapshotAccessState``
Available or ``completionPercent`` 100).
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from shared.contract.decode import decode_json
from shared.contract.rules import Rule
from shared.core.errors import PermanentError, Problem, ValidationFailed
from shared.core.jsontypes import JsonObject
from shared.core.resource_ids import ResourceId
from shared.core.settings import SettingName
from shared.intake.partial import MANIFEST_FIELDS, merge_partial, version_choice
from shared.intake.ports import SnapshotState

#: Snapshot access states in which the gallery can read the snapshot.
READY_ACCESS_STATES: Final = frozenset({"available", "availablewithinstantaccess"})
NOT_READY_ACCESS_STATES: Final = frozenset({"pending", "instantaccess"})


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
        parsed = version_choice(version_text, path)
        if isinstance(parsed, Problem):
            raise ValidationFailed([parsed], subject="snapshot tag")
        choice = parsed
    gallery, definition = parts[-2], parts[-1]
    resource_group = parts[-3] if len(parts) >= 3 else None
    subscription = parts[0] if len(parts) == 4 else None
    return PublishTag(gallery, definition, subscription, resource_group, choice)


#: How close (difflib ratio of normalised names) a tag name must be to the publish tag's to be a
#: misspelling of it rather than an unrelated tag.
NEAR_MISS_RATIO: Final = 0.8


def _normalised_tag_name(name: str) -> str:
    """A tag name without case or separators: ``Gallery_Publish`` and ``gallery publish`` agree."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def near_miss_tag(tags: Mapping[str, str], tag_name: str) -> tuple[str, str] | None:
    """The tag (name, value) that looks like ``tag_name`` misspelt, or None.

    Not the tag itself (names are case-insensitive): one that agrees after dropping case and
    separators (``gallery_publish``, ``GalleryPublish``), or is close by difflib
    (``galery-publish``, ``gallery-publsh``). The closest wins; ties go to the first name sorted.
    """
    wanted = _normalised_tag_name(tag_name)
    best: tuple[float, str, str] | None = None
    for name in sorted(tags):
        if name.lower() == tag_name.lower():
            continue
        normalised = _normalised_tag_name(name)
        ratio = (
            1.0
            if normalised == wanted
            else difflib.SequenceMatcher(None, normalised, wanted).ratio()
        )
        if ratio >= NEAR_MISS_RATIO and (best is None or ratio > best[0]):
            best = (ratio, name, tags[name])
    return None if best is None else (best[1], best[2])


def misspelt_tag_problem(name: str, value: str, tag_name: str) -> Problem:
    """The problem of a tag that looks like the publish tag but is not its name."""
    return Problem(
        f"tags.{name}",
        Rule.UNKNOWN_FIELD,
        f"tag '{name}' looks like the publish tag '{tag_name}' but is not it, so the snapshot "
        "would never be published",
        f"rename the tag to '{tag_name}' (value '{value}'), or remove it",
    )


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
    """Usable by the gallery: its write has succeeded, and its access state is Available, or
    (no state, as older api-versions read) its copy is complete.

    A snapshot is written asynchronously: until its operation ends it reads
    ``provisioningState: Updating`` (or ``Creating``), whatever else it says.
    """
    if (snapshot.provisioning_state or "Succeeded").lower() != "succeeded":
        return False
    state = (snapshot.access_state or "").lower()
    if state in READY_ACCESS_STATES:
        return True
    if state in NOT_READY_ACCESS_STATES:
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
        document = decode_json(text or "{}", subject=f"setting {SettingName.SNAPSHOT_DEFAULTS}")
    except ValidationFailed as exc:
        problems = "; ".join(str(problem) for problem in exc.problems)
        raise PermanentError(
            f"setting {SettingName.SNAPSHOT_DEFAULTS}: not valid JSON: {problems}",
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
