"""Token-bucket throttling (and the SDK's retry), injected faults, Event Grid webhooks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from devstack.procs import free_port, wait_until
from tests.devstack.armsim.conftest import (
    GALLERY,
    GALLERY_ID,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    SUBSCRIPTION,
    ArmSim,
    RawArm,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
    timed,
)

LRO_TIMEOUT = 20


def test_every_compute_response_names_its_operation_group(fresh: ArmSim, raw: RawArm) -> None:
    seed_gallery(fresh)
    first = raw.call("GET", IMAGE_ID)
    second = raw.call("GET", IMAGE_ID)
    header = first.headers["x-ms-ratelimit-remaining-resource"]
    assert header.startswith("Microsoft.Compute/GetGalleryImage3Min;")
    assert ",Microsoft.Compute/GetGalleryImage30Min;" in header
    remaining_first = int(header.split(";")[1].split(",")[0])
    second_header = second.headers["x-ms-ratelimit-remaining-resource"]
    remaining_second = int(second_header.split(";")[1].split(",")[0])
    assert remaining_second == remaining_first - 1
    assert fresh.admin("GET", "/admin/stats")["armCalls"]["GetGalleryImage"] == 2


def test_429_is_retried_by_the_sdk_after_retry_after(
    fresh: ArmSim, compute: ComputeManagementClient, raw: RawArm
) -> None:
    seed_gallery(fresh)
    fresh.admin(
        "POST", "/admin/faults", {"throttle": {"GetGallery": {"limit": 1, "windowSeconds": 1}}}
    )
    compute.galleries.get(RESOURCE_GROUP, GALLERY)
    throttled = raw.call("GET", GALLERY_ID)
    assert throttled.status_code == 429
    assert throttled.headers["Retry-After"] == "1"
    error = throttled.json()["error"]
    assert error["code"] == "OperationNotAllowed"
    assert error["details"][0]["code"] == "TooManyRequests"
    assert json.loads(error["details"][0]["message"])["operationGroup"] == "GetGallery3Min"
    gallery, seconds = timed(lambda: compute.galleries.get(RESOURCE_GROUP, GALLERY))
    assert gallery.name == GALLERY
    assert 0.8 <= seconds < 5
    assert fresh.admin("GET", "/admin/stats")["throttled"]["GetGallery"] >= 2


def test_injected_error_rate_and_latency(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    fresh.admin("POST", "/admin/faults", {"errorRates": {"GetGallery": 1.0}})
    with pytest.raises(HttpResponseError) as caught:
        compute.galleries.get(RESOURCE_GROUP, GALLERY, retry_total=0)
    assert caught.value.status_code == 500
    assert caught.value.error is not None
    assert caught.value.error.code == "InternalExecutionError"
    fresh.admin("POST", "/admin/faults", {"latencyMs": 300})
    gallery, seconds = timed(lambda: compute.galleries.get(RESOURCE_GROUP, GALLERY))
    assert gallery.name == GALLERY
    assert seconds >= 0.3
    assert fresh.admin("GET", "/admin/stats")["injectedErrors"] == {"GetGallery": 1}


def test_replication_failure_in_one_region(fresh: ArmSim, compute: ComputeManagementClient) -> None:
    seed_gallery(fresh)
    fresh.admin(
        "POST", "/admin/faults", {"replicationFailures": {"westus2": "storage unavailable"}}
    )
    body = snapshot_version_body(seed_snapshot(fresh, "s"))
    body["properties"]["publishingProfile"]["targetRegions"].append({"name": "westus2"})
    poller = compute.gallery_image_versions.begin_create_or_update(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", m.GalleryImageVersion(body)
    )
    with pytest.raises(HttpResponseError) as caught:
        poller.result(timeout=LRO_TIMEOUT)
    assert caught.value.error is not None
    assert caught.value.error.code == "ReplicationFailed"
    version = compute.gallery_image_versions.get(
        RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0", expand="ReplicationStatus"
    )
    assert version.provisioning_state == "Failed"
    states = {s.region: s.state for s in version.replication_status.summary}
    assert states["West US 2"] == "Failed"
    assert version.replication_status.aggregated_state == "Failed"


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        del format, args


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[Any]]]:
    received: list[Any] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = HTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/events", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_snapshot_write_posts_resource_write_success(
    fresh: ArmSim, compute: ComputeManagementClient, webhook: tuple[str, list[Any]]
) -> None:
    url, received = webhook
    fresh.admin(
        "POST",
        "/admin/webhooks",
        {
            "url": url,
            "eventTypes": ["Microsoft.Resources.ResourceWriteSuccess"],
            "subjectBeginsWith": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
            "/providers/Microsoft.Compute/snapshots",
        },
    )
    disk = compute.disks.begin_create_or_update(
        RESOURCE_GROUP,
        "disk1",
        m.Disk(
            location=LOCATION,
            properties=m.DiskProperties(
                creation_data=m.CreationData(create_option="Empty"), disk_size_gb=4
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    snapshot = compute.snapshots.begin_create_or_update(
        RESOURCE_GROUP,
        "snap1",
        m.Snapshot(
            location=LOCATION,
            properties=m.SnapshotProperties(
                creation_data=m.CreationData(create_option="Copy", source_resource_id=disk.id)
            ),
        ),
    ).result(timeout=LRO_TIMEOUT)
    assert snapshot.disk_size_gb == 4
    wait_until(lambda: len(received) >= 1, timeout=10, what="webhook delivery")
    assert len(received) == 1  # the disk write did not match the subject filter
    (event,) = received[0]
    assert event["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert event["subject"] == snapshot.id
    assert event["data"]["operationName"] == "Microsoft.Compute/snapshots/write"
    assert event["data"]["status"] == "Succeeded"
    assert event["topic"] == f"/subscriptions/{SUBSCRIPTION}"
    assert event["dataVersion"] == "2"
    assert event["metadataVersion"] == "1"
    assert fresh.admin("GET", "/admin/stats")["eventsDelivered"] == 1
