"""The whole local stack from Python: start it, seed it, talk to it, stop it.

:func:`start_local_stack` starts Azurite, the Service Bus emulator, the ARM simulator and the mini
Functions host running ``function_app.py`` on free ports through ``devstack up`` (the same code as
``python -m devstack up``), with every file under one directory. It returns a :class:`LocalStack`:
its endpoints and connection strings, clients with bounded retries and timeouts (Service Bus,
blob, ``ComputeManagementClient`` on the simulator), the simulator's admin API, the app's HTTP
API, and :meth:`LocalStack.stop` (or ``with``). The end-to-end tests (``tests/pipeline``), the
demo (``devstack/demo.py``) and the pipeline benchmark (``bench/pipeline_latency.py``) all start
the stack here.

The resource builders (from :mod:`devstack.seeds`, re-exported here) return ``POST /admin/seed``
documents for the usual test resources: the ``devgallery`` gallery in ``rg-images``, definitions,
empty snapshots in ``rg-builds`` and the Azurite storage account (``devstoreaccount1``) as an ARM
resource.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from azure.core.credentials import AccessToken
from azure.core.exceptions import ResourceExistsError
from azure.mgmt.compute import ComputeManagementClient
from azure.servicebus import ServiceBusClient
from azure.storage.blob import BlobServiceClient

from devstack import azurite, control, servicebus
from devstack.armsim.launcher import admin_call
from devstack.procs import ManagedProcess, free_port
from devstack.seeds import (
    DEV_DEFINITION,
    DEV_LOCATION,
    DEV_UPLOAD_RESOURCE_GROUP,
    GALLERY,
    GALLERY_ID,
    LOCATION,
    RESOURCE_GROUP,
    SNAPSHOT_RESOURCE_GROUP,
    SNAPSHOTS_ID,
    STORAGE_ACCOUNT_ID,
    SUBSCRIPTION,
    definition_resource,
    dev_resources,
    gallery_resource,
    snapshot_body,
    snapshot_resource,
    storage_account_id,
    storage_account_resource,
)
from devstack.vhdgen import dynamic_footer, upload_fixed_vhd

__all__ = [
    "BUS_OPTIONS",
    "DEV_DEFINITION",
    "DEV_LOCATION",
    "DEV_UPLOAD_RESOURCE_GROUP",
    "FAST_PIPELINE_SETTINGS",
    "GALLERY",
    "GALLERY_ID",
    "LOCATION",
    "RESOURCE_GROUP",
    "SNAPSHOTS_ID",
    "SNAPSHOT_RESOURCE_GROUP",
    "STORAGE_ACCOUNT_ID",
    "SUBSCRIPTION",
    "LocalStack",
    "StaticToken",
    "build_request_document",
    "definition_resource",
    "dev_resources",
    "gallery_resource",
    "snapshot_body",
    "snapshot_resource",
    "start_local_stack",
    "storage_account_id",
    "storage_account_resource",
]

#: App settings for driving the pipeline quickly: the tracker runs every second and a claim whose
#: worker died is recovered after 5 s (the end-to-end tests and the pipeline benchmark use them).
FAST_PIPELINE_SETTINGS: Final[Mapping[str, str]] = {
    "GALLERY_TRACKER_SCHEDULE": "*/1 * * * * *",
    "GALLERY_CLAIM_RECOVERY_SECONDS": "5",
}
#: The bus clients retry once, quickly: an emulator that does not answer fails a call in seconds.
BUS_OPTIONS: Final[Mapping[str, Any]] = {"retry_total": 1, "retry_backoff_factor": 0.1}


def build_request_document(
    definition: str, source: dict[str, Any], *, id_prefix: str = "req"
) -> dict[str, Any]:
    """A valid build request into the devgallery: two regions, three replicas in all, an end of
    life in 2030, the next patch version (what the end-to-end tests and the bench publish)."""
    return {
        "requestId": f"{id_prefix}-{uuid.uuid4().hex[:12]}",
        "target": {
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": RESOURCE_GROUP,
            "gallery": GALLERY,
            "definition": definition,
            "versionPolicy": "nextPatch",
        },
        "source": source,
        "publishing": {
            "targetRegions": [
                {"name": "westeurope", "replicaCount": 2},
                {"name": "northeurope", "storageAccountType": "Standard_ZRS"},
            ],
            "replicaCount": 1,
            "storageAccountType": "Standard_LRS",
            "endOfLifeDate": "2030-01-01T00:00:00Z",
            "excludeFromLatest": False,
        },
    }


# --- the running stack ------------------------------------------------------------------------


class StaticToken:
    """A token credential holding one token, e.g. the simulator's admin-issued token."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del scopes, kwargs
        return AccessToken(self._token, int(time.time()) + 3600)


@dataclass
class LocalStack:
    """A running local stack: where it is, and the calls every driver of it makes.

    ``processes`` holds the processes ``devstack up`` started, by component name (``azurite``,
    ``servicebus``, ``armsim``, ``host``); :meth:`stop` stops them in reverse order.
    """

    layout: control.Layout
    processes: dict[str, ManagedProcess]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- endpoints ----------------------------------------------------------------------------
    @property
    def host_url(self) -> str:
        return f"http://127.0.0.1:{self.layout.ports['host']}"

    @property
    def arm_url(self) -> str:
        return f"https://127.0.0.1:{self.layout.ports['armsim']}"

    @property
    def ca_bundle(self) -> Path:
        """The devstack certificate the ARM simulator serves (verify HTTPS against it)."""
        return self.layout.tls_dir / "cert.pem"

    @property
    def bus_connection(self) -> str:
        return servicebus.connection_string(self.layout.ports["servicebus"])

    @property
    def storage_connection(self) -> str:
        return azurite.connection_string(self.layout.ports["azurite"])

    # --- clients ------------------------------------------------------------------------------
    def bus(self) -> ServiceBusClient:
        """A Service Bus client on the emulator (one quick retry; close it, e.g. ``with``)."""
        return ServiceBusClient.from_connection_string(self.bus_connection, **BUS_OPTIONS)

    def blob_service(self) -> BlobServiceClient:
        """A blob client on Azurite with bounded connection and read timeouts."""
        return BlobServiceClient.from_connection_string(
            self.storage_connection, connection_timeout=5, read_timeout=10
        )

    def compute(
        self, *, retry_total: int = 1, connection_timeout: float = 10, read_timeout: float = 30
    ) -> ComputeManagementClient:
        """The real SDK client on the simulator, with a token from its admin endpoint."""
        token = self.arm_admin("token", {})["access_token"]
        return ComputeManagementClient(
            StaticToken(token),
            SUBSCRIPTION,
            base_url=self.arm_url,
            connection_verify=str(self.ca_bundle),
            retry_total=retry_total,
            connection_timeout=connection_timeout,
            read_timeout=read_timeout,
        )

    # --- the ARM simulator's admin API --------------------------------------------------------
    def arm_admin(self, path: str, body: Any | None = None, method: str = "POST") -> Any:
        """``/admin/{path}`` of the simulator: ``method`` with a JSON body, GET without one."""
        return admin_call(
            self.layout.ports["armsim"],
            method if body is not None else "GET",
            f"/admin/{path}",
            body,
        )

    def seed(self, *resources: dict[str, Any]) -> None:
        """Create resources directly in the simulator (parents first; see the builders)."""
        self.arm_admin("seed", {"resources": list(resources)})

    # --- the app ------------------------------------------------------------------------------
    def api(self, path: str) -> tuple[int, Any]:
        """``GET /api/{path}`` of the app: (status, decoded JSON body), also for 4xx/5xx."""
        try:
            with urllib.request.urlopen(f"{self.host_url}/api/{path}", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def upload_vhd(self, container: str, name: str, size: int, *, dynamic: bool = False) -> str:
        """Upload a sparse fixed VHD page blob of ``size`` bytes to Azurite (only the footer is
        sent; ``dynamic`` writes a dynamic-disk footer instead); return its URL (no SAS)."""
        service = self.blob_service()
        with contextlib.suppress(ResourceExistsError):
            service.create_container(container, timeout=10)
        blob = service.get_blob_client(container, name)
        footer = dynamic_footer(size) if dynamic else None
        upload_fixed_vhd(blob, size, footer=footer, timeout=10)
        return str(blob.url)

    def kill_host(self) -> None:
        """SIGKILL the Functions host's process group at once: a crash, nothing is flushed."""
        self.processes["host"].kill()

    def restart_host(self) -> ManagedProcess:
        """Start the Functions host again (same port, settings and log file, appended), as
        ``devstack up`` starts it; wait until it is ready."""
        host = control._start("host", self.layout)
        self.processes["host"] = host
        return host

    def stop(self) -> None:
        """Stop every process ``devstack up`` started, the host first."""
        for process in reversed(list(self.processes.values())):
            process.stop()


def start_local_stack(
    root: Path,
    *,
    settings: Mapping[str, str],
    arm_speed: float,
    timeout: float,
    seed: Sequence[dict[str, Any]] = (),
) -> LocalStack:
    """Start the whole stack on free ports with its files under ``root``; return it running.

    ``settings`` are app settings the host starts with (``devstack up`` adds the sample's and
    the local endpoints); ``arm_speed`` is the simulator's speed (simulated seconds per second);
    ``timeout`` bounds each component's start; ``seed`` resources are created in the simulator
    once it runs (the stack is stopped again if that fails). ``devstack up`` prints one line per
    component. Raises :class:`devstack.control.DevstackError` when a component does not start.
    """
    layout = control.Layout(
        project_root=control.REPO_ROOT,
        run_dir=root / "run",
        data_dir=root / "data",
        settings_file=root / "local.settings.json",
        app_module="function_app",
        ports={name: free_port() for name in control.COMPONENTS},
        timeout=timeout,
        arm_speed=arm_speed,
    )
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    layout.settings_file.write_text(json.dumps({"Values": dict(settings)}))
    stack = LocalStack(layout, control.up(layout))
    if seed:
        try:
            stack.seed(*seed)
        except BaseException:
            stack.stop()
            raise
    return stack
