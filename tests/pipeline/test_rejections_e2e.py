# ruff: noqa: E501  (the table of cases reads best one case per line)
"""Twenty kinds of invalid message: twenty dead-letters with precise reasons, and no build."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from typing import Any

from devstack.stack import GALLERY, RESOURCE_GROUP, STORAGE_ACCOUNT_ID, SUBSCRIPTION
from shared.adapters.service_bus import REJECT_REASON_PROPERTY
from tests.pipeline.conftest import Stack, wait_for
from tests.pipeline.test_builds_e2e import request

DEFINITION = "e2e-rejects"
Mutation = Callable[[dict[str, Any]], Any]


def _set(path: str, value: Any) -> Mutation:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for part in parents:
            node = node[part]
        node[last] = value

    return change


def _drop(path: str) -> Mutation:
    def change(document: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = document
        for part in parents:
            node = node[part]
        del node[last]

    return change


def _explicit_version(version: str) -> Mutation:
    def change(document: dict[str, Any]) -> None:
        del document["target"]["versionPolicy"]
        document["target"]["version"] = version

    return change


# (name, how to break a valid request, dead-letter reason, text the description must contain)
CASES: list[tuple[str, Mutation | bytes | str, str, str]] = [
    ("not-json", b"{this is not json", "InvalidJson", "not JSON"),
    ("json-array", lambda d: [d], "ValidationFailed", "[document-type]"),
    ("no-target", _drop("target"), "ValidationFailed", "target [required]"),
    ("no-source", _drop("source"), "ValidationFailed", "source [required]"),
    ("no-publishing", _drop("publishing"), "ValidationFailed", "publishing [required]"),
    ("unknown-field", _set("colour", "blue"), "ValidationFailed", "colour [unknown-field]"),
    ("schema-version", _set("schemaVersion", 2), "ValidationFailed", "[schema-version]"),
    ("bad-version", _explicit_version("1.0"), "ValidationFailed", "target.version [version-format]"),
    ("bad-policy", _set("target.versionPolicy", "nextGreat"), "ValidationFailed", "versionPolicy"),
    ("bad-subscription", _set("target.subscriptionId", "abc"), "ValidationFailed", "[subscription-id]"),
    ("gallery-not-allowed", _set("target.gallery", "othergallery"), "ValidationFailed", "[target-gallery-allowed]"),
    ("replicas-zero", _set("publishing.replicaCount", 0), "ValidationFailed", "publishing.replicaCount [replica-count]"),
    ("storage-type", _set("publishing.storageAccountType", "Premium_GRS"), "ValidationFailed", "publishing.storageAccountType"),
    ("eol-past", _set("publishing.endOfLifeDate", "2020-01-01T00:00:00Z"), "ValidationFailed", "[end-of-life-future]"),
    ("no-regions", _set("publishing.targetRegions", []), "ValidationFailed", "publishing.targetRegions"),
    ("duplicate-regions", _set("publishing.targetRegions", [{"name": "westeurope"}, {"name": "West Europe"}]), "ValidationFailed", "[unique-regions]"),
    ("snapshot-id-type", _set("source.snapshot.id", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.Compute/disks/d"), "ValidationFailed", "source.snapshot.id"),
    ("vhd-foreign-host", _set("source", {"vhd": {"uri": "https://evil.example.com/c/x.vhd", "storageAccountId": STORAGE_ACCOUNT_ID}}), "ValidationFailed", "source.vhd.uri"),
    ("missing-definition", _set("target.definition", "does-not-exist"), "DefinitionNotFound", "target.definition"),
    ("bad-vhd", "BAD_VHD", "ValidationFailed", "source.vhd"),
]  # fmt: skip


def test_twenty_invalid_messages_are_dead_lettered_with_precise_reasons(stack: Stack) -> None:
    stack.seed_definition(DEFINITION)
    snapshot = stack.seed_snapshot("e2e-rejects-os")
    bad_vhd = stack.upload_vhd("vhds", "rejects/dynamic.vhd", 32 * 1024 * 1024, dynamic=True)
    assert len({name for name, *_ in CASES}) == len(CASES) == 20
    expected: dict[str, tuple[str, str]] = {}
    for name, mutation, reason, text in CASES:
        document = request(DEFINITION, snapshot, requestId=f"bad-{name}-{uuid.uuid4().hex[:6]}")
        if isinstance(mutation, bytes):
            body: Any = mutation
        elif mutation == "BAD_VHD":
            document["source"] = {"vhd": {"uri": bad_vhd, "storageAccountId": STORAGE_ACCOUNT_ID}}
            body = document
        else:
            assert callable(mutation)
            changed = copy.deepcopy(document)
            result = mutation(changed)
            body = changed if result is None else result
        message_id = f"msg-{name}-{uuid.uuid4().hex[:6]}"
        stack.send_raw(body if isinstance(body, bytes) else json.dumps(body).encode(), message_id)
        expected[message_id] = (reason, text)

    dead = stack.dead_letters(
        "image-builds-rejected", expected=20, timeout=60, message_ids=set(expected)
    )

    got = {str(m.message_id): m for m in dead}
    assert set(got) == set(expected), sorted(set(expected) - set(got))
    for message_id, (reason, text) in expected.items():
        message = got[message_id]
        assert message.dead_letter_reason == reason, (message_id, message.dead_letter_reason)
        assert text in (message.dead_letter_error_description or ""), (
            message_id,
            message.dead_letter_error_description,
        )
        assert message.application_properties[REJECT_REASON_PROPERTY.encode()] == reason.encode()
    versions = list(
        stack.compute().gallery_image_versions.list_by_gallery_image(
            RESOURCE_GROUP, GALLERY, DEFINITION
        )
    )
    assert versions == []
    # every original completes (just after its relay was dead-lettered); nothing is retried
    wait_for(lambda: stack.queue_is_empty("image-builds"), timeout=30, what="an empty queue")


def test_a_reject_left_in_the_relay_by_a_crash_is_dead_lettered_by_the_tracker(
    stack: Stack,
) -> None:
    from azure.servicebus import ServiceBusMessage

    from shared.adapters.service_bus import REJECT_DESCRIPTION_PROPERTY

    message_id = f"orphan-{uuid.uuid4().hex[:8]}"
    with stack.bus() as client, client.get_queue_sender("image-builds-rejected") as sender:
        sender.send_messages(
            ServiceBusMessage(
                b"{}",
                message_id=message_id,
                application_properties={
                    REJECT_REASON_PROPERTY: "ValidationFailed",
                    REJECT_DESCRIPTION_PROPERTY: "target [required]: missing",
                },
            ),
            timeout=10,
        )

    [dead] = stack.dead_letters(
        "image-builds-rejected", expected=1, timeout=30, message_ids={message_id}
    )

    assert dead.message_id == message_id
    assert dead.dead_letter_reason == "ValidationFailed"
    assert dead.dead_letter_error_description == "target [required]: missing"
