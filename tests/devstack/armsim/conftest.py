"""Fixtures for the ARM simulator contract tests: a simulator subprocess per module (free port,
tmp ``--data``), the managed-identity environment, SDK client and raw-HTTP helpers."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.identity import ManagedIdentityCredential
from azure.mgmt.compute import ComputeManagementClient

from devstack.armsim.launcher import admin_call, healthy, start_armsim
from devstack.procs import ManagedProcess, free_port, wait_until
from tests.conftest import AzuriteInstance, TlsFiles

SUBSCRIPTION = "00000000-0000-0000-0000-0000000000aa"
RESOURCE_GROUP = "rg-armsim"
LOCATION = "eastus"
IDENTITY_SECRET = "test-identity-header"
#: Simulated seconds per real second in tests: a 10 GiB single-region version takes ~0.3 s.
TEST_SPEED = 1000.0
HTTP_TIMEOUT = 10.0
SDK_TIMEOUTS: dict[str, Any] = {"connection_timeout": 5, "read_timeout": 15}


@dataclass
class ArmSim:
    """A running simulator subprocess and how to talk to it."""

    port: int
    data_dir: Path
    log_path: Path
    cert: Path
    key: Path
    extra_args: list[str] = field(default_factory=list)
    speed: float = TEST_SPEED
    process: ManagedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def identity_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/msi/token"

    def start(self) -> None:
        self.process = start_armsim(
            self.port,
            self.data_dir,
            self.log_path,
            cert=self.cert,
            key=self.key,
            speed=self.speed,
            identity_header=IDENTITY_SECRET,
            extra_args=self.extra_args,
        )

    def healthy(self) -> bool:
        return healthy(self.port)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=10)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return admin_call(self.port, method, path, body, timeout=HTTP_TIMEOUT)

    def reset(self) -> None:
        self.admin("POST", "/admin/reset", {})

    def seed(self, *resources: dict[str, Any]) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.admin(
            "POST", "/admin/seed", {"resources": list(resources)}
        )["value"]
        return result

    def token(self) -> str:
        token: str = self.admin("POST", "/admin/token", {})["access_token"]
        return token


def start_sim(
    tmp: Path, tls: TlsFiles, *, speed: float = TEST_SPEED, extra_args: list[str] | None = None
) -> ArmSim:
    sim = ArmSim(
        port=free_port(),
        data_dir=tmp / "data",
        log_path=tmp / "armsim.log",
        cert=tls.cert,
        key=tls.key,
        extra_args=list(extra_args or []),
        speed=speed,
    )
    sim.start()
    return sim


@pytest.fixture(scope="module")
def armsim(
    tmp_path_factory: pytest.TempPathFactory, tls_files: TlsFiles, azurite: AzuriteInstance
) -> Iterator[ArmSim]:
    """One simulator per test module, wired to the session's Azurite for VHD sources."""
    sim = start_sim(
        tmp_path_factory.mktemp("armsim"),
        tls_files,
        extra_args=["--blob-connection-string", azurite.connection_string],
    )
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def fresh(armsim: ArmSim) -> ArmSim:
    """The module's simulator, emptied."""
    armsim.reset()
    return armsim


@pytest.fixture(scope="module")
def identity_env(armsim: ArmSim) -> Iterator[None]:
    """IDENTITY_ENDPOINT / IDENTITY_HEADER as App Service sets them, pointing at the simulator."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("IDENTITY_ENDPOINT", armsim.identity_endpoint)
        patch.setenv("IDENTITY_HEADER", IDENTITY_SECRET)
        yield


def make_client(sim: ArmSim, credential: Any, **kwargs: Any) -> ComputeManagementClient:
    options: dict[str, Any] = {**SDK_TIMEOUTS, "polling_interval": 0, **kwargs}
    return ComputeManagementClient(
        credential,
        SUBSCRIPTION,
        base_url=sim.base_url,
        connection_verify=str(sim.cert),
        **options,
    )


@pytest.fixture(scope="module")
def compute(armsim: ArmSim, identity_env: None) -> ComputeManagementClient:
    """The real SDK client with a real ManagedIdentityCredential against the simulator."""
    del identity_env
    return make_client(armsim, ManagedIdentityCredential())


@dataclass
class RawArm:
    """Plain HTTPS calls with a simulator-issued bearer token (for wire-level assertions)."""

    sim: ArmSim
    session: requests.Session

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        api_version: str | None = "2026-03-03",
        params: dict[str, str] | None = None,
    ) -> requests.Response:
        query = dict(params or {})
        if api_version is not None:
            query["api-version"] = api_version
        url = path if path.startswith("https://") else self.sim.base_url + path
        return self.session.request(
            method,
            url,
            json=body,
            params=query if not path.startswith("https://") else None,
            timeout=HTTP_TIMEOUT,
        )

    def wait_operation(self, url: str, timeout: float = 10.0) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def done() -> bool:
            reply = self.session.get(url, timeout=HTTP_TIMEOUT)
            result.update(reply.json())
            return str(result.get("status")) in ("Succeeded", "Failed")

        wait_until(done, timeout=timeout, interval=0.02, what=f"operation {url}")
        return result


@pytest.fixture(scope="module")
def raw(armsim: ArmSim) -> Iterator[RawArm]:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE in the environment would override verify
    session.verify = str(armsim.cert)
    session.headers["Authorization"] = f"Bearer {armsim.token()}"
    try:
        yield RawArm(armsim, session)
    finally:
        session.close()


def rg_path(*parts: str) -> str:
    tail = "/".join(parts)
    return f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/{tail}"


def resource_id(*parts: str) -> str:
    return rg_path(*parts)


GALLERY = "gal"
IMAGE = "img"
GALLERY_ID = resource_id("Microsoft.Compute/galleries", GALLERY)
IMAGE_ID = f"{GALLERY_ID}/images/{IMAGE}"
STORAGE_ACCOUNT_ID = resource_id("Microsoft.Storage/storageAccounts", "devstoreaccount1")


def seed_gallery(
    sim: ArmSim,
    *,
    os_state: str = "Generalized",
    hyper_v: str = "V2",
    os_type: str = "Linux",
    image: str = IMAGE,
) -> None:
    """A gallery and one image definition, created directly (no LRO)."""
    sim.seed(
        {"id": GALLERY_ID, "location": LOCATION, "properties": {}},
        {
            "id": f"{GALLERY_ID}/images/{image}",
            "location": LOCATION,
            "properties": {
                "osType": os_type,
                "osState": os_state,
                "hyperVGeneration": hyper_v,
                "identifier": {"publisher": "contoso", "offer": image, "sku": "base"},
            },
        },
    )


def seed_snapshot(
    sim: ArmSim, name: str, *, size_gb: int = 10, location: str = LOCATION, **props: Any
) -> str:
    snapshot_id = resource_id("Microsoft.Compute/snapshots", name)
    properties = {"diskSizeGB": size_gb, "osType": "Linux", "hyperVGeneration": "V2", **props}
    sim.seed({"id": snapshot_id, "location": location, "properties": properties})
    return snapshot_id


def snapshot_version_body(source_id: str, **profile: Any) -> dict[str, Any]:
    return {
        "location": LOCATION,
        "properties": {
            "publishingProfile": {"targetRegions": [{"name": LOCATION}], **profile},
            "storageProfile": {"osDiskImage": {"source": {"id": source_id}}},
        },
    }


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = action()
    return result, time.monotonic() - started
