"""Partial build requests: what routes, manifests, metadata, tags and defaults contribute.

An intake builds its request from layers of partial requests merged with
:func:`merge_partial`; a version given as text (a tag or metadata value) is read with
:func:`version_choice`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Final

from shared.contract.rules import Rule
from shared.contract.versioning import POLICY_NAMES, ImageVersion, InvalidVersion
from shared.core.errors import Problem
from shared.core.jsontypes import JsonObject

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
#: Fields of which a request holds at most one: an override of one drops the other.
_EXCLUSIVE_PAIRS: Final = (("version", "versionPolicy"), ("endOfLifeDate", "endOfLifeAfterDays"))
_LATEST_UNDER_MAJOR: Final = re.compile(r"^latestUnderMajor\s*[=(]\s*([0-9]{1,10})\s*\)?$", re.I)


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


def version_choice(text: str, path: str) -> tuple[str, Any] | Problem:
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
