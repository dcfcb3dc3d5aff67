"""Local Event Grid: BlobCreated from Azurite, filtering, retry with backoff, dead-lettering,
the topic endpoint the ARM simulator posts to, and the host's Event Grid webhook."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

import azure.functions as func
import pytest
from azure.storage.blob import BlobBlock, BlobServiceClient

from devstack.host.eventgrid import EventSubscription, RetryPolicy, validate_events
from tests.conftest import AzuriteInstance
from tests.devstack.host import sample_app
from tests.devstack.host.conftest import HostFactory, wait_until

TIMEOUT = 10
STORAGE_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-test"
    "/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
)


def _blob_config(container: str, **subscription: Any) -> dict[str, Any]:
    return {
        "retry": {"initialDelaySeconds": 0.1, "maxDelaySeconds": 1},
        "blobSource": {"enabled": True, "topic": STORAGE_TOPIC, "pollIntervalSeconds": 0.1},
        "subscriptions": [
            {
                "name": "uploads",
                "function": "on_event",
                "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
                "subjectBeginsWith": f"/blobServices/default/containers/{container}/",
                **subscription,
            }
        ],
    }


def _arm_event(**overrides: Any) -> dict[str, Any]:
    """A ResourceWriteSuccess event shaped like Azure's (Event Grid schema)."""
    subscription = "00000000-0000-0000-0000-000000000000"
    resource = (
        f"/subscriptions/{subscription}/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"
    )
    event: dict[str, Any] = {
        "subject": resource,
        "eventType": "Microsoft.Resources.ResourceWriteSuccess",
        "eventTime": "2026-01-01T00:00:00.0000000Z",
        "id": str(uuid.uuid4()),
        "data": {
            "operationName": "Microsoft.Compute/disks/write",
            "resourceProvider": "Microsoft.Compute",
            "resourceUri": resource,
            "status": "Succeeded",
            "subscriptionId": subscription,
        },
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{subscription}",
    }
    event.update(overrides)
    return event


def _post(url: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def container_name() -> str:
    return f"c{uuid.uuid4().hex[:12]}"


def test_page_blob_event_arrives_before_any_page_is_written(
    host_factory: HostFactory, azurite: AzuriteInstance, container_name: str
) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(container_name)
    host = host_factory(
        enabled=("on_event",),
        settings={"AzureWebJobsStorage": azurite.connection_string},
        eventgrid=_blob_config(container_name, subjectEndsWith=".vhd"),
    )
    blob = container.get_blob_client("images/disk.vhd")
    blob.create_page_blob(size=8 * 1024 * 1024)
    ((event, _),) = sample_app.wait_for("on_event", 1, timeout=TIMEOUT)
    # no page has been written yet: the event came from the creation alone
    assert list(blob.list_page_ranges()) == []
    assert isinstance(event, func.EventGridEvent)
    assert event.event_type == "Microsoft.Storage.BlobCreated"
    assert event.topic == STORAGE_TOPIC
    assert (
        event.subject == f"/blobServices/default/containers/{container_name}/blobs/images/disk.vhd"
    )
    data = event.get_json()
    assert data["api"] == "PutBlob"
    assert data["blobType"] == "PageBlob"
    assert data["contentLength"] == 8 * 1024 * 1024
    assert data["url"] == blob.url
    assert data["eTag"] == f'"{blob.get_blob_properties().etag.strip(chr(34))}"'
    assert event.event_time is not None
    assert event.event_time.tzinfo is not None
    # writing pages (and metadata) is not a new BlobCreated
    blob.upload_page(b"\x01" * 512, offset=0, length=512)
    blob.set_blob_metadata({"complete": "true"})
    assert host.blob_source is not None
    scans = host.blob_source.scans
    wait_until(
        lambda: host.blob_source is not None and host.blob_source.scans > scans + 2,
        TIMEOUT,
        "scans",
    )
    assert len(sample_app.RECORDS["on_event"]) == 1


def test_block_blob_events_name_the_committing_api(
    host_factory: HostFactory, azurite: AzuriteInstance, container_name: str
) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.create_container(container_name)
    host = host_factory(
        enabled=("on_event",),
        settings={"AzureWebJobsStorage": azurite.connection_string},
        eventgrid=_blob_config(container_name),
    )
    staged = container.get_blob_client("staged.bin")
    staged.stage_block("YmxvY2sx", b"a" * 100)
    staged.stage_block("YmxvY2sy", b"b" * 100)
    assert host.blob_source is not None
    scans = host.blob_source.scans
    wait_until(
        lambda: host.blob_source is not None and host.blob_source.scans > scans + 1,
        TIMEOUT,
        "scans",
    )
    assert sample_app.RECORDS["on_event"] == []  # uncommitted blocks are not a blob yet
    staged.commit_block_list([BlobBlock("YmxvY2sx"), BlobBlock("YmxvY2sy")])
    ((event, _),) = sample_app.wait_for("on_event", 1, timeout=TIMEOUT)
    assert event.get_json()["api"] == "PutBlockList"
    assert event.get_json()["blobType"] == "BlockBlob"
    assert event.get_json()["contentLength"] == 200
    container.upload_blob("single.txt", b"hello", overwrite=True)
    records = sample_app.wait_for("on_event", 2, timeout=TIMEOUT)
    assert records[1][0].get_json()["api"] == "PutBlob"
    # an overwrite with new content is a new creation
    container.upload_blob("single.txt", b"hello again", overwrite=True)
    records = sample_app.wait_for("on_event", 3, timeout=TIMEOUT)
    assert records[2][0].get_json()["contentLength"] == len(b"hello again")
    sequencers = [e.get_json()["sequencer"] for e, _ in records]
    assert sequencers == sorted(sequencers)


def test_unsubscribed_container_and_type_are_not_delivered(
    host_factory: HostFactory, azurite: AzuriteInstance, container_name: str
) -> None:
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    wanted = service.create_container(container_name)
    other = service.create_container(container_name + "x")
    host = host_factory(
        enabled=("on_event",),
        settings={"AzureWebJobsStorage": azurite.connection_string},
        eventgrid=_blob_config(container_name, subjectEndsWith=".vhd"),
    )
    other.upload_blob("a.vhd", b"x")  # other container (begins-with filter)
    wanted.upload_blob("notes.txt", b"x")  # wrong suffix (ends-with filter)
    wanted.upload_blob("UPPER.VHD", b"x")  # filters are case-insensitive by default
    ((event, _),) = sample_app.wait_for("on_event", 1, timeout=TIMEOUT)
    assert event.subject.endswith("/blobs/UPPER.VHD")
    wanted.get_blob_client("UPPER.VHD").delete_blob()  # BlobDeleted: not an included type
    status, _ = _post(
        f"http://127.0.0.1:{host.options.http_port}/eventgrid/api/events", [_arm_event()]
    )
    assert status == 200
    assert host.event_grid is not None
    scans = host.blob_source.scans if host.blob_source else 0
    wait_until(
        lambda: (
            host.blob_source is not None
            and host.blob_source.scans > scans + 2
            and host.event_grid is not None
            and host.event_grid.idle()
        ),
        TIMEOUT,
        "scans and idle",
    )
    assert len(sample_app.RECORDS["on_event"]) == 1


def test_failed_delivery_is_retried_with_backoff(host_factory: HostFactory) -> None:
    host = host_factory(
        enabled=("on_event",),
        eventgrid={
            "blobSource": {"enabled": False},
            "retry": {"initialDelaySeconds": 0.2, "multiplier": 2.0, "maxDelaySeconds": 5},
            "subscriptions": [{"name": "arm", "function": "on_event"}],
        },
    )
    event = _arm_event(data={"failTimes": 2})
    assert host.event_grid is not None
    assert host.event_grid.publish(validate_events([event])) == 1
    records = sample_app.wait_for("on_event", 3, timeout=TIMEOUT)
    times = [t for _, t in records]
    first_gap, second_gap = times[1] - times[0], times[2] - times[1]
    assert 0.15 < first_gap < 1.0
    assert second_gap > first_gap * 1.5  # exponential: 0.2 s then 0.4 s
    wait_until(host.event_grid.idle, TIMEOUT, "idle")
    assert host.event_grid.delivered == 1
    assert host.event_grid.dead_letters == []
    assert host.invoker.stats.snapshot()["on_event"] == {"Failed": 2, "Succeeded": 1}


def test_event_is_dead_lettered_after_max_attempts(host_factory: HostFactory) -> None:
    host = host_factory(
        enabled=("on_event",),
        eventgrid={
            "blobSource": {"enabled": False},
            "retry": {"initialDelaySeconds": 0.05, "maxDelaySeconds": 0.1},
            "subscriptions": [{"name": "arm", "function": "on_event", "maxDeliveryAttempts": 3}],
        },
    )
    event = _arm_event(data={"failTimes": 99})
    assert host.event_grid is not None
    host.event_grid.publish(validate_events([event]))
    wait_until(lambda: bool(host.event_grid and host.event_grid.dead_letters), TIMEOUT, "DLQ")
    (dead,) = host.event_grid.dead_letters
    assert dead["id"] == event["id"]
    assert dead["deliveryAttempts"] == 3
    assert dead["deadLetterReason"] == "MaxDeliveryAttemptsExceeded"
    assert "planned failure 3" in dead["lastDeliveryOutcome"]
    assert len(sample_app.RECORDS["on_event"]) == 3
    assert host.options.state_dir is not None
    lines = (host.options.state_dir / "eventgrid-deadletter.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["id"] == event["id"]


def test_arm_webhook_topic_routes_resource_write_success(host_factory: HostFactory) -> None:
    snapshots = "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Compute/snapshots/"
    host = host_factory(
        enabled=("on_event",),
        eventgrid={
            "blobSource": {"enabled": False},
            "subscriptions": [
                {
                    "name": "snapshots",
                    "function": "on_event",
                    "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
                    "subjectBeginsWith": snapshots,
                }
            ],
        },
    )
    url = f"http://127.0.0.1:{host.options.http_port}/eventgrid/api/events"
    written = _arm_event(
        subject=snapshots + "snap1",
        data={"operationName": "Microsoft.Compute/snapshots/write", "status": "Succeeded"},
    )
    deleted = _arm_event(
        subject=snapshots + "snap2", eventType="Microsoft.Resources.ResourceDeleteSuccess"
    )
    status, _ = _post(url, [written, deleted])
    assert status == 200
    ((event, _),) = sample_app.wait_for("on_event", 1, timeout=TIMEOUT)
    assert isinstance(event, func.EventGridEvent)
    assert event.id == written["id"]
    assert event.event_type == "Microsoft.Resources.ResourceWriteSuccess"
    assert event.data_version == "2"
    assert event.get_json()["operationName"] == "Microsoft.Compute/snapshots/write"
    assert event.topic == "/subscriptions/00000000-0000-0000-0000-000000000000"
    status, body = _post(url, [{"id": "1"}])
    assert status == 400
    assert "subject" in json.loads(body)["error"]["message"]


def test_host_event_grid_webhook(host_factory: HostFactory) -> None:
    host = host_factory(enabled=("on_event",))
    base = f"http://127.0.0.1:{host.options.http_port}/runtime/webhooks/EventGrid"
    validation = [
        {
            "id": "v1",
            "subject": "",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "eventTime": "2026-01-01T00:00:00Z",
            "data": {"validationCode": "abc-123"},
            "dataVersion": "1",
        }
    ]
    status, body = _post(
        f"{base}?functionName=on_event", validation, {"aeg-event-type": "SubscriptionValidation"}
    )
    assert (status, json.loads(body)) == (200, {"validationResponse": "abc-123"})
    event = _arm_event()
    status, _ = _post(f"{base}?functionName=on_event", [event], {"aeg-event-type": "Notification"})
    assert status == 202
    ((received, _),) = sample_app.wait_for("on_event", 1, timeout=1)
    assert received.id == event["id"]
    failing = _arm_event(data={"failTimes": 1})
    status, _ = _post(
        f"{base}?functionName=on_event", [failing], {"aeg-event-type": "Notification"}
    )
    assert status == 500
    status, _ = _post(f"{base}?functionName=nope", [event], {"aeg-event-type": "Notification"})
    assert status == 404


def test_subscription_filters() -> None:
    subscription = EventSubscription(
        name="s",
        function="f",
        included_event_types=("Microsoft.Storage.BlobCreated",),
        subject_begins_with="/blobServices/default/containers/vhds/",
        subject_ends_with=".vhd",
    )
    created = {
        "eventType": "Microsoft.Storage.BlobCreated",
        "subject": "/blobServices/default/containers/vhds/blobs/a.VHD",
    }
    assert subscription.matches(created)
    assert not subscription.matches({**created, "eventType": "Microsoft.Storage.BlobDeleted"})
    assert not subscription.matches({**created, "subject": created["subject"] + ".tmp"})
    sensitive = EventSubscription(
        name="s", function="f", subject_ends_with=".vhd", is_subject_case_sensitive=True
    )
    assert not sensitive.matches(created)


def test_retry_policy_backoff_is_exponential_and_capped() -> None:
    policy = RetryPolicy(initial_delay_seconds=1, multiplier=2, max_delay_seconds=5)
    assert [policy.delay_before(n) for n in range(2, 7)] == [1, 2, 4, 5, 5]
