"""Intake on the local stack: Azurite, the Service Bus emulator, the ARM simulator and the host.

The host runs ``tests.integration.intake_app`` (only the intake functions, so nothing consumes the
build queue) with the local Event Grid: the BlobCreated source polls Azurite, the ARM simulator
posts ResourceWriteSuccess to the host's topic. Every assertion is on what lands in the real
queues, received with the real azure-servicebus SDK.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m
from azure.servicebus import ServiceBusClient, ServiceBusReceivedMessage, ServiceBusSubQueue
from azure.storage.blob import BlobServiceClient, ContainerClient

from devstack.armsim.disk_bodies import copy_start_seconds
from devstack.host import FunctionsHost, HostOptions
from devstack.procs import ManagedProcess, free_port
from devstack.servicebus import connection_string as servicebus_connection_string
from devstack.servicebus import start_servicebus
from devstack.vhdgen import upload_fixed_vhd, upload_pages
from shared import composition
from shared.intake.ids import vhd_request_id
from shared.vhd.footer import MIB, build_fixed_footer
from tests.conftest import REPO_ROOT, AzuriteInstance, TlsFiles
from tests.devstack.armsim.conftest import (
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    ArmSim,
    make_client,
)
from tests.devstack.servicebus.conftest import CLIENT_OPTIONS, FastCloseClient

BUILD_QUEUE = "image-builds"
REJECTED_QUEUE = "image-builds-rejected"
CONTAINER = "vhds"
SETTLE_SECONDS = 4
VIRTUAL_SIZE = 32 * MIB
STORAGE_ACCOUNT_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-devstack/providers/"
    "Microsoft.Storage/storageAccounts/devstoreaccount1"
)
ROUTES = [
    {
        "container": CONTAINER,
        "prefix": "ubuntu/",
        "storageAccountId": STORAGE_ACCOUNT_ID,
        "target": {
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": "rg-images",
            "gallery": "devgallery",
            "definition": "ubuntu-24.04",
            "versionPolicy": "nextPatch",
        },
        "publishing": {"targetRegions": [{"name": LOCATION}]},
    }
]
SERVICEBUS_CONFIG = {
    "queues": [
        {
            "name": BUILD_QUEUE,
            "lockDuration": "PT30S",
            "requiresDuplicateDetection": True,
            "duplicateDetectionHistoryTimeWindow": "PT10M",
        },
        {"name": REJECTED_QUEUE, "lockDuration": "PT30S"},
    ]
}
EVENTGRID = {
    "retry": {"maxDeliveryAttempts": 3, "initialDelaySeconds": 0.5, "maxDelaySeconds": 2},
    "blobSource": {"enabled": True, "pollIntervalSeconds": 0.25, "containers": [CONTAINER]},
    "subscriptions": [
        {
            "name": "vhd-uploads",
            "function": "vhd_uploaded",
            "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
            "subjectBeginsWith": f"/blobServices/default/containers/{CONTAINER}/blobs/",
            "subjectEndsWith": ".vhd",
        },
        {
            "name": "vhd-manifests",
            "function": "vhd_uploaded",
            "includedEventTypes": ["Microsoft.Storage.BlobCreated"],
            "subjectBeginsWith": f"/blobServices/default/containers/{CONTAINER}/blobs/",
            "subjectEndsWith": ".vhd.json",
        },
        {
            "name": "snapshots",
            "function": "snapshot_created",
            "includedEventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
            "subjectBeginsWith": "/subscriptions/",
        },
    ],
}


@dataclass
class Stack:
    host: FunctionsHost
    bus: ServiceBusClient
    blobs: ContainerClient
    armsim: ArmSim
    compute: ComputeManagementClient

    @property
    def topic_url(self) -> str:
        return f"http://127.0.0.1:{self.host.options.http_port}/eventgrid/api/events"

    def invocations(self, function: str) -> int:
        counts = self.host.invoker.stats.snapshot().get(function, {})
        return sum(counts.values())

    def receive(self, count: int, timeout: float) -> list[ServiceBusReceivedMessage]:
        """Up to ``count`` build requests within ``timeout`` seconds (completed)."""
        received: list[ServiceBusReceivedMessage] = []
        deadline = time.monotonic() + timeout
        with self.bus.get_queue_receiver(BUILD_QUEUE, max_wait_time=1) as receiver:
            while len(received) < count and time.monotonic() < deadline:
                wait = max(0.5, min(2.0, deadline - time.monotonic()))
                for message in receiver.receive_messages(
                    max_message_count=count - len(received), max_wait_time=wait
                ):
                    receiver.complete_message(message)
                    received.append(message)
        return received

    def drain(self) -> None:
        while self.receive(20, timeout=0.5):
            pass

    def dead_letters(self, timeout: float) -> list[ServiceBusReceivedMessage]:
        with self.bus.get_queue_receiver(
            REJECTED_QUEUE, sub_queue=ServiceBusSubQueue.DEAD_LETTER, max_wait_time=timeout
        ) as receiver:
            messages = receiver.receive_messages(max_message_count=10, max_wait_time=timeout)
            for message in messages:
                receiver.complete_message(message)
            return list(messages)


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def body(message: ServiceBusReceivedMessage) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(b"".join(message.body))
    return data


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    azurite: AzuriteInstance,
    tls_files: TlsFiles,
    armsim: ArmSim,
    identity_env: None,
) -> Iterator[Stack]:
    del identity_env
    work = tmp_path_factory.mktemp("intake")
    config = work / "servicebus.json"
    config.write_text(json.dumps(SERVICEBUS_CONFIG), encoding="utf-8")
    sb_port = free_port()
    emulator: ManagedProcess = start_servicebus(
        sb_port, work / "sb-data", work / "servicebus.log", config=config, timeout=30
    )
    values = {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "AzureWebJobsStorage": azurite.connection_string,
        "ServiceBusConnection": servicebus_connection_string(sb_port),
        "GALLERY_BUILD_QUEUE": BUILD_QUEUE,
        "GALLERY_REJECTED_QUEUE": REJECTED_QUEUE,
        "GALLERY_ARM_ENDPOINT": armsim.base_url,
        "GALLERY_ARM_CA_BUNDLE": str(tls_files.cert),
        "GALLERY_ALLOWED_TARGET_GALLERIES": f"{SUBSCRIPTION}/rg-images/devgallery",
        "GALLERY_VHD_STORAGE_ENDPOINTS": f"http://127.0.0.1:{azurite.port}/{{account}}",
        "GALLERY_VHD_ROUTES": json.dumps(ROUTES),
        "GALLERY_UPLOAD_SETTLE_SECONDS": str(SETTLE_SECONDS),
        "GALLERY_INTAKE_RECHECK_SCHEDULE": "* * * * * *",
        "GALLERY_INTAKE_CONTAINER": f"intake-{uuid.uuid4().hex[:8]}",
    }
    settings_file = work / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    eventgrid_file = work / "eventgrid.json"
    eventgrid_file.write_text(json.dumps(EVENTGRID))
    host_json = work / "host.json"
    host_json.write_text(json.dumps({"version": "2.0"}))
    service = BlobServiceClient.from_connection_string(azurite.connection_string)
    container = service.get_container_client(CONTAINER)
    if not container.exists():
        container.create_container()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in values.items():
            patch.setenv(name, value)
        composition.reset()
        host = FunctionsHost(
            HostOptions(
                project_root=REPO_ROOT,
                app_module="tests.integration.intake_app",
                http_port=free_port(),
                settings_file=settings_file,
                host_json=host_json,
                eventgrid_config=eventgrid_file,
                state_dir=work / "state",
                export_settings=False,
            ),
            environ=dict(values),
        )
        host.start()
        bus = FastCloseClient.from_connection_string(
            servicebus_connection_string(sb_port), **CLIENT_OPTIONS
        )
        try:
            yield Stack(
                host=host,
                bus=bus,
                blobs=container,
                armsim=armsim,
                compute=make_client(armsim, composition.credential()),
            )
        finally:
            host.stop(timeout=5)
            bus.close()
            try:
                composition.messaging().close()
            finally:
                composition.reset()
                emulator.stop(timeout=10)


@pytest.fixture
def fresh_stack(stack: Stack) -> Stack:
    stack.armsim.reset()
    stack.armsim.admin(
        "POST",
        "/admin/webhooks",
        {"url": stack.topic_url, "eventTypes": ["Microsoft.Resources.ResourceWriteSuccess"]},
    )
    stack.drain()
    return stack


def vhd_name(tag: str) -> str:
    return f"ubuntu/{tag}-{uuid.uuid4().hex[:8]}.vhd"


# ------------------------------------------------------------------ uploads


def test_page_blob_created_before_its_upload_completes_queues_nothing_until_committed(
    fresh_stack: Stack,
) -> None:
    stack = fresh_stack
    name = vhd_name("slow")
    client = stack.blobs.get_blob_client(name)
    before = stack.invocations("vhd_uploaded")
    client.create_page_blob(size=VIRTUAL_SIZE + 512)  # BlobCreated now, no page written yet
    wait_until(lambda: stack.invocations("vhd_uploaded") > before, 10, "the BlobCreated event")
    assert stack.receive(1, timeout=SETTLE_SECONDS + 3) == []  # several re-checks: still pending
    upload_pages(client, 0, b"\xeb\x63\x90" + bytes(509))  # the upload goes on...
    upload_pages(client, VIRTUAL_SIZE, build_fixed_footer(VIRTUAL_SIZE))  # ...and ends
    committed = time.monotonic()
    etag = str(client.get_blob_properties().etag).strip('"')
    messages = stack.receive(1, timeout=SETTLE_SECONDS + 10)
    waited = time.monotonic() - committed
    assert len(messages) == 1
    assert waited >= SETTLE_SECONDS - 0.5  # the ETag had to stay stable first
    assert stack.receive(1, timeout=2) == []  # and only one request
    (message,) = messages
    assert message.message_id == vhd_request_id(client.url, etag)
    request = body(message)
    assert request["source"]["vhd"] == {"uri": client.url, "storageAccountId": STORAGE_ACCOUNT_ID}
    assert request["target"]["definition"] == "ubuntu-24.04"
    assert request["requestId"] == message.message_id


def test_manifest_queues_at_once_with_its_overrides(fresh_stack: Stack) -> None:
    stack = fresh_stack
    name = vhd_name("manifest")
    client = stack.blobs.get_blob_client(name)
    upload_fixed_vhd(client, VIRTUAL_SIZE)
    manifest = {
        "target": {"definition": "ubuntu-24.04-gen2", "version": "1.2.3"},
        "publishing": {"targetRegions": [{"name": LOCATION}, {"name": "westus2"}]},
        "tags": {"build": "42"},
    }
    stack.blobs.upload_blob(f"{name}.json", json.dumps(manifest).encode(), overwrite=True)
    written = time.monotonic()
    messages = stack.receive(1, timeout=15)
    assert len(messages) == 1
    assert time.monotonic() - written < SETTLE_SECONDS  # not the settle rule: the manifest
    request = body(messages[0])
    assert request["target"]["definition"] == "ubuntu-24.04-gen2"
    assert request["target"]["version"] == "1.2.3"
    assert "versionPolicy" not in request["target"]
    assert [r["name"] for r in request["publishing"]["targetRegions"]] == [LOCATION, "westus2"]
    assert request["tags"] == {"build": "42"}
    assert stack.receive(1, timeout=SETTLE_SECONDS + 2) == []  # the VHD's own event: duplicate


def test_block_blob_vhd_is_dead_lettered_with_its_reason(fresh_stack: Stack) -> None:
    stack = fresh_stack
    name = vhd_name("block")
    stack.blobs.upload_blob(name, bytes(VIRTUAL_SIZE // 64), blob_type="BlockBlob")
    url = stack.blobs.get_blob_client(name).url
    dead: list[ServiceBusReceivedMessage] = []
    deadline = time.monotonic() + 20
    while not dead and time.monotonic() < deadline:
        dead = stack.dead_letters(timeout=2)
    assert len(dead) == 1
    (letter,) = dead
    assert letter.dead_letter_reason == "VhdNotPageBlob"
    assert "page blob" in (letter.dead_letter_error_description or "")
    assert url in (letter.dead_letter_error_description or "")
    assert body(letter)["source"]["vhd"]["uri"] == url
    assert stack.receive(1, timeout=2) == []


def test_duplicate_events_produce_one_message(fresh_stack: Stack) -> None:
    stack = fresh_stack
    name = vhd_name("dup")
    client = stack.blobs.get_blob_client(name)
    upload_fixed_vhd(client, VIRTUAL_SIZE)
    stack.blobs.upload_blob(f"{name}.json", b"{}", overwrite=True)
    (first,) = stack.receive(1, timeout=15)
    event = {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a",
        "subject": f"/blobServices/default/containers/{CONTAINER}/blobs/{name}",
        "eventType": "Microsoft.Storage.BlobCreated",
        "eventTime": "2026-11-16T12:00:00.0000000Z",
        "data": {"api": "PutBlob", "blobType": "PageBlob", "url": client.url},
        "dataVersion": "",
    }
    before = stack.invocations("vhd_uploaded")
    for _ in range(3):  # Event Grid delivers at least once: the same event again, three times
        stack.host.publish_events([event])
    wait_until(lambda: stack.invocations("vhd_uploaded") >= before + 3, 10, "3 redeliveries")
    assert stack.receive(1, timeout=3) == []
    assert first.message_id == body(first)["requestId"]


# ------------------------------------------------------------------ snapshots


def put_snapshot(
    stack: Stack,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    create_option: str = "Empty",
    size_gb: int = 10,
    source_id: str | None = None,
    incremental: bool | None = None,
) -> m.Snapshot:
    return stack.compute.snapshots.begin_create_or_update(
        RESOURCE_GROUP,
        name,
        m.Snapshot(
            location=LOCATION,
            tags=tags,
            properties=m.SnapshotProperties(
                disk_size_gb=size_gb,
                os_type="Linux",
                hyper_v_generation="V2",
                incremental=incremental,
                creation_data=m.CreationData(
                    create_option=create_option, source_resource_id=source_id
                ),
            ),
        ),
    ).result(timeout=20)


def test_tagged_snapshot_queues_one_request_and_later_tag_updates_nothing(
    fresh_stack: Stack,
) -> None:
    stack = fresh_stack
    tags = {"gallery-publish": "devgallery/ubuntu-24.04:nextMinor"}
    snapshot = put_snapshot(stack, "tagged", tags=tags)
    (message,) = stack.receive(1, timeout=15)
    request = body(message)
    assert request["source"] == {"snapshot": {"id": snapshot.id}}
    assert request["target"] == {
        "subscriptionId": SUBSCRIPTION,
        "resourceGroup": "rg-images",
        "gallery": "devgallery",
        "definition": "ubuntu-24.04",
        "versionPolicy": "nextMinor",
    }
    assert request["publishing"]["targetRegions"] == [{"name": LOCATION}]
    before = stack.invocations("snapshot_created")
    put_snapshot(stack, "tagged", tags={**tags, "owner": "platform"})
    put_snapshot(stack, "tagged", tags={"gallery-publish": "devgallery/other-definition"})
    wait_until(lambda: stack.invocations("snapshot_created") >= before + 2, 10, "2 write events")
    assert stack.receive(1, timeout=3) == []


def test_untagged_snapshot_queues_nothing(fresh_stack: Stack) -> None:
    stack = fresh_stack
    before = stack.invocations("snapshot_created")
    put_snapshot(stack, "untagged", tags={"owner": "platform"})
    wait_until(lambda: stack.invocations("snapshot_created") > before, 10, "the write event")
    assert stack.receive(1, timeout=3) == []


def test_snapshot_still_copying_is_queued_when_the_copy_completes(fresh_stack: Stack) -> None:
    stack = fresh_stack
    size_gb = 2000  # under the 2 TiB image limit; the copy needs ~20 s of real time in tests
    before = stack.invocations("snapshot_created")
    disk = stack.compute.disks.begin_create_or_update(
        RESOURCE_GROUP,
        "copy-disk",
        m.Disk(
            location=LOCATION,
            properties=m.DiskProperties(
                disk_size_gb=size_gb, creation_data=m.CreationData(create_option="Empty")
            ),
        ),
    ).result(timeout=20)
    # CopyStart copies an incremental snapshot (of a disk) into an incremental snapshot.
    source = put_snapshot(
        stack,
        "copy-source",
        create_option="Copy",
        size_gb=size_gb,
        source_id=disk.id,
        incremental=True,
    )
    copied = put_snapshot(
        stack,
        "copied",
        tags={"gallery-publish": "devgallery/ubuntu-24.04"},
        create_option="CopyStart",
        size_gb=size_gb,
        source_id=source.id,
        incremental=True,
    )
    assert copied.properties is not None
    assert copied.properties.snapshot_access_state == "Pending"
    # The disk's, the source's and the copy's write events (the function ignores the disk's).
    wait_until(lambda: stack.invocations("snapshot_created") >= before + 3, 10, "write events")
    assert stack.receive(1, timeout=3) == []  # re-checked every second: still copying
    stack.armsim.admin("POST", "/admin/clock", {"advanceSeconds": copy_start_seconds(size_gb)})
    (message,) = stack.receive(1, timeout=10)
    assert body(message)["source"] == {"snapshot": {"id": copied.id}}


def test_intake_app_registers_only_the_intake_functions(stack: Stack) -> None:
    assert sorted(stack.host.functions) == ["snapshot_created", "upload_readiness", "vhd_uploaded"]
