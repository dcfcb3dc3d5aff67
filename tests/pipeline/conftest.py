"""The whole local stack for end-to-end tests: Azurite, Service Bus emulator, ARM simulator and
the mini Functions host running ``function_app.py``, on free ports with files in a tmp dir.

Started once per session through ``devstack up`` (the same code as ``make demo``). Every client
here has timeouts; every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceExistsError
from azure.mgmt.compute import ComputeManagementClient
from azure.servicebus import ServiceBusClient, ServiceBusMessage, ServiceBusSubQueue
from azure.storage.blob import BlobServiceClient

from devstack import __main__ as devstack_cli
from devstack import azurite, servicebus
from devstack.procs import ManagedProcess, free_port
from devstack.vhdgen import dynamic_footer, upload_fixed_vhd
from tests.conftest import REPO_ROOT

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
RESOURCE_GROUP = "rg-images"
GALLERY = "devgallery"
LOCATION = "westeurope"
GALLERY_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
    f"/providers/Microsoft.Compute/galleries/{GALLERY}"
)
SNAPSHOTS_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-builds/providers/Microsoft.Compute/snapshots"
)
STORAGE_ACCOUNT_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-images/providers/Microsoft.Storage"
    "/storageAccounts/devstoreaccount1"
)
BUS_OPTIONS: dict[str, Any] = {"retry_total": 1, "retry_backoff_factor": 0.1}

#: Settings the tests need besides the sample's: a fast tracker and quick claim recovery.
TEST_SETTINGS = {
    "GALLERY_TRACKER_SCHEDULE": "*/1 * * * * *",
    "GALLERY_CLAIM_RECOVERY_SECONDS": "5",
}


class StaticToken:
    """A token credential for the simulator's admin-issued token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


@dataclass
class Stack:
    layout: devstack_cli.Layout
    processes: dict[str, ManagedProcess]

    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.layout.ports['host']}"

    @property
    def arm_url(self) -> str:
        return f"https://127.0.0.1:{self.layout.ports['armsim']}"

    @property
    def bus_connection(self) -> str:
        return servicebus.connection_string(self.layout.ports["servicebus"])

    @property
    def storage_connection(self) -> str:
        return azurite.connection_string(self.layout.ports["azurite"])

    def bus(self) -> ServiceBusClient:
        return ServiceBusClient.from_connection_string(self.bus_connection, **BUS_OPTIONS)

    # --- ARM simulator admin ------------------------------------------------------------------
    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.layout.tls_dir / "cert.pem"))

    def arm_admin(self, path: str, body: Any | None = None, method: str = "POST") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.arm_url}/admin/{path}",
            data=data,
            method=method if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10, context=self._tls()) as response:
            payload = response.read()
        return json.loads(payload) if payload else None

    def seed(self, *resources: dict[str, Any]) -> None:
        self.arm_admin("seed", {"resources": list(resources)})

    def seed_definition(self, name: str) -> str:
        definition_id = f"{GALLERY_ID}/images/{name}"
        self.seed(
            {
                "id": definition_id,
                "location": LOCATION,
                "properties": {
                    "osType": "Linux",
                    "osState": "Generalized",
                    "hyperVGeneration": "V2",
                    "identifier": {"publisher": "contoso", "offer": "test", "sku": name},
                },
            }
        )
        return definition_id

    def seed_snapshot(self, name: str) -> str:
        snapshot_id = f"{SNAPSHOTS_ID}/{name}"
        self.seed(
            {
                "id": snapshot_id,
                "location": LOCATION,
                "properties": {
                    "diskSizeGB": 4,
                    "osType": "Linux",
                    "hyperVGeneration": "V2",
                    "creationData": {"createOption": "Empty"},
                },
            }
        )
        return snapshot_id

    def upload_vhd(self, container: str, name: str, size: int, *, dynamic: bool = False) -> str:
        """Upload a fixed VHD page blob to Azurite (or one with a dynamic-disk footer); return its
        URL (no SAS)."""
        service = BlobServiceClient.from_connection_string(self.storage_connection)
        with contextlib.suppress(ResourceExistsError):
            service.create_container(container)
        blob = service.get_blob_client(container, name)
        footer = dynamic_footer(size) if dynamic else None
        upload_fixed_vhd(blob, size, footer=footer)
        return str(blob.url)

    def compute(self) -> ComputeManagementClient:
        """A real SDK client on the simulator (token from its admin endpoint)."""
        token = self.arm_admin("token", {})["access_token"]
        return ComputeManagementClient(
            StaticToken(token),
            SUBSCRIPTION,
            base_url=self.arm_url,
            connection_verify=str(self.layout.tls_dir / "cert.pem"),
            retry_total=1,
            connection_timeout=10,
            read_timeout=30,
        )

    def queue_is_empty(self, queue: str) -> bool:
        with self.bus() as client, client.get_queue_receiver(queue) as receiver:
            return not receiver.peek_messages(max_message_count=1, timeout=5)

    def dead_letters(self, queue: str, expected: int, timeout: float = 30) -> list[Any]:
        """Receive ``expected`` dead-lettered messages of ``queue`` (complete them)."""
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        with (
            self.bus() as client,
            client.get_queue_receiver(queue, sub_queue=ServiceBusSubQueue.DEAD_LETTER) as receiver,
        ):
            while len(found) < expected and time.monotonic() < deadline:
                for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                    found.append(message)
                    receiver.complete_message(message)
        return found

    def events_for(self, build_id: str, *, until_type: str, timeout: float = 30) -> list[Any]:
        """CloudEvents of one build from the topic's ``audit`` subscription, in order."""
        found: list[Any] = []
        deadline = time.monotonic() + timeout
        with (
            self.bus() as client,
            client.get_subscription_receiver("image-build-events", "audit") as receiver,
        ):
            while time.monotonic() < deadline:
                for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                    receiver.complete_message(message)
                    event = json.loads(b"".join(message.body))
                    if event["subject"] == build_id:
                        found.append(event)
                if found and found[-1]["type"] == until_type:
                    return found
        raise AssertionError(f"no {until_type} event for {build_id} in {timeout}s: {found}")

    # --- the app's HTTP API -------------------------------------------------------------------
    def api(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"{self.host_url}/api/{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def send_raw(self, body: bytes, message_id: str) -> None:
        with self.bus() as client, client.get_queue_sender("image-builds") as sender:
            sender.send_messages(ServiceBusMessage(body, message_id=message_id), timeout=10)

    def send_request(self, document: dict[str, Any], message_id: str | None = None) -> None:
        with self.bus() as client, client.get_queue_sender("image-builds") as sender:
            sender.send_messages(
                ServiceBusMessage(
                    json.dumps(document),
                    message_id=message_id or document.get("requestId") or uuid.uuid4().hex,
                    content_type="application/json",
                ),
                timeout=10,
            )

    def wait_for_build(
        self,
        build_id: str,
        *,
        states: tuple[str, ...] = ("succeeded", "failed"),
        timeout: float = 60,
    ) -> dict[str, Any]:
        found: dict[str, Any] = wait_for(
            lambda: _state_in(self.api(f"builds/{build_id}"), states),
            timeout=timeout,
            what=f"build {build_id} to reach {states}",
        )
        return found


def _state_in(answer: tuple[int, Any], states: tuple[str, ...]) -> dict[str, Any] | None:
    status, body = answer
    if status == 200 and body["state"] in states:
        result: dict[str, Any] = body
        return result
    return None


def wait_for(check: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def _layout(tmp: Path) -> devstack_cli.Layout:
    ports = {name: free_port() for name in ("azurite", "servicebus", "armsim", "host")}
    return devstack_cli.Layout(
        project_root=REPO_ROOT,
        run_dir=tmp / "run",
        data_dir=tmp / "data",
        settings_file=tmp / "local.settings.json",
        app_module="function_app",
        ports=ports,
        timeout=30.0,
        arm_speed=100.0,
    )


def start_stack(tmp: Path, settings: dict[str, str] | None = None) -> Stack:
    layout = _layout(tmp)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    values = {**TEST_SETTINGS, **(settings or {})}
    layout.settings_file.write_text(json.dumps({"Values": values}))
    processes = devstack_cli.up(layout)
    stack = Stack(layout, processes)
    stack.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        {"id": STORAGE_ACCOUNT_ID, "location": LOCATION, "properties": {}},
    )
    return stack


def stop_stack(stack: Stack) -> None:
    for process in reversed(list(stack.processes.values())):
        process.stop()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield running
    finally:
        stop_stack(running)
