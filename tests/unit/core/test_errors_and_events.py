"""The one rejection description, the CloudEvents envelope and the timestamp format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

from shared.core.cloudevents import EVENT_TYPE_ROOT, cloud_event, event_message
from shared.core.errors import Problem, TransientError, ValidationFailed, describe
from shared.core.timestamps import format_timestamp, parse_timestamp


def test_describe_lists_every_problem_with_field_rule_and_fix() -> None:
    failed = ValidationFailed(
        [
            Problem("target.gallery", "gallery-name", "must be 1-80 characters", "rename it"),
            Problem("", "json", "not a JSON object"),
        ],
        subject="manifest",
    )
    assert describe(failed) == (
        "invalid manifest: 2 problems: target.gallery [gallery-name]: must be 1-80 characters "
        "(fix: rename it); (document) [json]: not a JSON object"
    )


def test_describe_of_another_error_is_its_message() -> None:
    assert describe(TransientError("ARM is busy", reason="Throttled")) == "ARM is busy"


def test_cloud_event_envelope_and_its_message() -> None:
    event = cloud_event(
        event_id="b-1:succeeded",
        event_type="build.succeeded",
        source="/subscriptions/s/x",
        subject="b-1",
        time=datetime(2027, 1, 31, tzinfo=UTC),
        data={"buildId": "b-1"},
    )
    assert event["type"] == EVENT_TYPE_ROOT + "build.succeeded"
    assert event["specversion"] == "1.0"
    assert event["time"] == "2027-01-31T00:00:00Z"
    message = event_message(event)
    assert message.message_id == "b-1:succeeded"
    assert message.correlation_id == "b-1"
    assert json.loads(message.body) == event


def test_timestamps_are_utc_with_z_and_round_trip() -> None:
    moment = datetime(2027, 1, 31, 1, 0, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    text = format_timestamp(moment)
    assert text == "2027-01-31T00:00:00.000005Z"
    assert parse_timestamp(text) == moment
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(17) is None
