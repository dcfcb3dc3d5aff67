"""Reads the ``tags`` section of a build request: the tags put on the image version."""

from __future__ import annotations

from collections.abc import Mapping

from shared.contract.reader import DocumentReader, join_path, json_type
from shared.contract.rules import MAX_TAG_NAME_LENGTH, MAX_TAG_VALUE_LENGTH, MAX_TAGS, Rule


def read_tags(reader: DocumentReader, value: object) -> dict[str, str] | None:
    """Read ``tags``, an object of strings; ``None`` when any tag has a problem."""
    if not isinstance(value, Mapping):
        reader.add("tags", Rule.TYPE, f"expected an object of strings, got {json_type(value)}")
        return None
    ok = True
    if len(value) > MAX_TAGS:
        reader.add("tags", Rule.TAGS, f"{len(value)} tags; at most {MAX_TAGS}", "drop some tags")
        ok = False
    tags: dict[str, str] = {}
    for key, tag_value in value.items():
        where = join_path("tags", key)
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
