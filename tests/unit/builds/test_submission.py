"""Submitting from outside the queue: a request whose build already ended is answered with that
build, not queued again; a source is found however ARM wrote its id."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.builds.ledger import build_id_for
from shared.builds.records import BuildPhase, BuildRecord, BuildRecords
from shared.builds.status import source_key_of, source_view
from shared.builds.submission import submit_request
from shared.core.errors import TransientError, ValidationFailed
from shared.core.messaging import OutgoingMessage
from shared.core.settings import SettingName, Settings
from tests.unit.build_fakes import make_harness
from tests.unit.builds.test_builds import DEFINITION, SNAPSHOTS, message, request_doc
from tests.unit.store_fakes import Clock, InMemoryDocumentStore

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
SETTINGS = Settings.from_env({SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*"})


class Sent:
    def __init__(self) -> None:
        self.messages: list[OutgoingMessage] = []

    def send(self, entity: str, message: OutgoingMessage) -> None:
        self.messages.append(message)


def records_with(phase: BuildPhase | None, **fields: Any) -> BuildRecords:
    records = BuildRecords(InMemoryDocumentStore(), clock=Clock(NOW))
    if phase is not None:
        build_id = build_id_for("r-1")
        record = BuildRecord(
            build_id=build_id,
            request_id="r-1",
            source_key="s",
            phase=phase,
            subscription_id="s",
            resource_group="rg",
            gallery="g",
            definition="d",
            created_at=NOW.isoformat(),
            updated_at=NOW.isoformat(),
            **fields,
        )
        records.upsert(lambda _now: record, build_id, lambda current: current)
    return records


def test_a_request_already_built_is_answered_with_its_version_and_not_sent() -> None:
    sent = Sent()
    records = records_with(BuildPhase.SUCCEEDED, version="1.0.4")
    submitted = submit_request(
        request_doc(requestId="r-1"), settings=SETTINGS, sender=sent, now=NOW,
        records=lambda: records,
    )  # fmt: skip
    assert sent.messages == []
    assert submitted.existing is not None
    assert submitted.summary == "request r-1 already built as 1.0.4"


def test_a_request_that_failed_says_how_and_how_to_try_again() -> None:
    records = records_with(BuildPhase.FAILED, error_reason="ReplicationFailed")
    submitted = submit_request(
        request_doc(requestId="r-1"), settings=SETTINGS, sender=Sent(), now=NOW,
        records=lambda: records,
    )  # fmt: skip
    assert "failed (ReplicationFailed)" in submitted.summary
    assert "new requestId" in submitted.summary


@pytest.mark.parametrize("phase", [None, BuildPhase.QUEUED, BuildPhase.REPLICATING])
def test_a_new_or_running_request_is_sent(phase: BuildPhase | None) -> None:
    sent = Sent()
    records = records_with(phase)
    submitted = submit_request(
        request_doc(requestId="r-1"), settings=SETTINGS, sender=sent, now=NOW,
        records=lambda: records,
    )  # fmt: skip
    assert submitted.existing is None
    assert len(sent.messages) == 1


def test_unreadable_records_do_not_stop_a_submission() -> None:
    def broken() -> BuildRecords:
        raise TransientError("storage down")

    sent = Sent()
    submit_request(request_doc(requestId="r-1"), settings=SETTINGS, sender=sent, now=NOW,
                   records=broken)  # fmt: skip
    assert len(sent.messages) == 1


def test_a_source_is_found_whatever_the_case_arm_wrote_its_id_in() -> None:
    h = make_harness()
    h.gallery.add_definition(DEFINITION)
    h.worker.handle_message(message(request_doc("Os-1", requestId="r-1")))
    written_by_arm = f"{SNAPSHOTS}/Os-1".replace("resourceGroups", "resourcegroups").upper()
    found = source_view(h.ledger, written_by_arm.replace("/SUBSCRIPTIONS/", "/subscriptions/"))
    assert found is not None and found["sourceKey"] == f"{SNAPSHOTS}/Os-1".lower()
    by_key = source_view(h.ledger, found["key"].upper())
    assert by_key is not None and by_key["key"] == found["key"]


def test_blob_urls_keep_the_case_of_their_path() -> None:
    assert source_key_of("HTTPS://Acct.Blob.Core.Windows.NET/vhds/Ubuntu.vhd?sv=x&sig=y") == (
        "https://acct.blob.core.windows.net/vhds/Ubuntu.vhd"
    )


def test_a_resource_id_from_a_route_parameter_lost_its_leading_slash() -> None:
    assert source_key_of("subscriptions/S/resourceGroups/RG/providers/X/snapshots/A") == (
        "/subscriptions/s/resourcegroups/rg/providers/x/snapshots/a"
    )


# -- raw bodies (POST /api/builds, galleryctl submit): hostile bytes are a reason, not a crash


@pytest.mark.parametrize(
    ("body", "rule"),
    [
        (b"{nope", "json-syntax"),
        (b'{"target": "\xff"}', "encoding"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting"),
        (b'{"source": {}, "source": {}}', "duplicate-key"),
        (b'{"a": "\\ud800"}', "lone-surrogate"),
    ],
)
def test_hostile_bodies_are_refused_with_a_reason_and_nothing_is_sent(
    body: bytes, rule: str
) -> None:
    sent = Sent()
    with pytest.raises(ValidationFailed) as caught:
        submit_request(body, settings=SETTINGS, sender=sent, now=NOW)
    assert caught.value.reason == "InvalidJson"
    assert [p.rule for p in caught.value.problems] == [rule]
    assert sent.messages == []


def test_a_body_that_is_not_an_object_is_a_plain_validation_failure() -> None:
    with pytest.raises(ValidationFailed) as caught:
        submit_request(b"[]", settings=SETTINGS, sender=Sent(), now=NOW)
    assert caught.value.reason == "ValidationFailed"
    assert [p.rule for p in caught.value.problems] == ["document-type"]


def test_a_valid_body_is_sent() -> None:
    sent = Sent()
    body = json.dumps(request_doc(requestId="r-bytes")).encode()
    submitted = submit_request(body, settings=SETTINGS, sender=sent, now=NOW)
    assert submitted.request_id == "r-bytes"
    [message_sent] = sent.messages
    assert json.loads(message_sent.body)["requestId"] == "r-bytes"
