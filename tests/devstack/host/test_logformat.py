"""The host's console format appends a record's structured fields."""

from __future__ import annotations

import logging

from devstack.host.logformat import ExtrasFormatter


def record(**extra: object) -> logging.LogRecord:
    result = logging.LogRecord(
        "shared.builds.service", logging.INFO, "f.py", 1, "build failed", None, None
    )
    for key, value in extra.items():
        setattr(result, key, value)
    return result


def test_structured_fields_follow_the_message() -> None:
    text = ExtrasFormatter("%(name)s: %(message)s").format(
        record(build_id="b-1", source="/snap", reason=None)
    )
    assert text == "shared.builds.service: build failed [build_id=b-1 source=/snap]"


def test_a_plain_record_is_unchanged() -> None:
    assert ExtrasFormatter("%(message)s").format(record()) == "build failed"
