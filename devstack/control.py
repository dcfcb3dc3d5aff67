"""The local Azure stack as a library: start, stop, inspect and seed its processes.

``devstack up`` (:func:`up`) starts Azurite, the Service Bus emulator, the ARM simulator and the
mini Functions host as background processes (pid files and logs in the :class:`Layout`'s
``run_dir``), waits until each is ready (every wait bounded), writes ``local.settings.json`` for
the local endpoints (:func:`write_local_settings`) and registers the host's Event Grid topic as the
ARM simulator's webhook. :func:`status` reports each service, :func:`down` stops them,
:func:`seed` creates the resources the sample settings publish into and :func:`foreground` waits
until Ctrl-C or SIGTERM, then stops what :func:`up` started.

``python -m devstack`` (``devstack/__main__.py``) parses the command line and calls these;
:mod:`devstack.stack` starts the stack for tests, the demo and the benchmarks through :func:`up`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from devstack import azurite, servicebus
from devstack.armsim.launcher import admin_call, start_armsim
from devstack.armsim.launcher import healthy as armsim_healthy
from devstack.procs import ManagedProcess, StartupError, port_accepts, start_process
from devstack.seeds import (
    DEV_DEFINITION_ID,
    DEV_SNAPSHOT_ID,
    DEV_UPLOAD_CONTAINER,
    GALLERY_ID,
    dev_resources,
)
from devstack.tls import ensure_certificate

logger = logging.getLogger("devstack")

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Simulated ARM seconds per real second for ``devstack up``: a 4 GiB snapshot build (about 270
#: simulated seconds, see devstack/armsim/operations.py) takes about a minute.
DEFAULT_ARM_SPEED = 5.0
DEFAULT_PORTS = {"azurite": 10000, "servicebus": 5672, "armsim": 8443, "host": 7071}
COMPONENTS = ("azurite", "servicebus", "armsim", "host")
IDENTITY_HEADER = "devstack"
WEBHOOK_ID = "devstack-eventgrid"
ARM_EVENT_TYPES = (
    "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess",
)


class DevstackError(RuntimeError):
    """A clear, user-facing failure of ``devstack up``/``down``."""


@dataclass(frozen=True)
class Layout:
    """Where the stack keeps its files, and its ports."""

    project_root: Path
    run_dir: Path
    data_dir: Path
    settings_file: Path
    app_module: str
    ports: dict[str, int]
    timeout: float
    arm_speed: float

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.log"

    @property
    def tls_dir(self) -> Path:
        return self.project_root / ".devstack" / "tls"


def _http_ok(url: str, *, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _available(name: str) -> bool:
    """Whether the component's code exists in this checkout."""
    if name in {"azurite"}:
        return azurite.AZURITE_BLOB_BIN.exists()
    package = {"servicebus": "servicebus", "armsim": "armsim", "host": "host"}[name]
    return (REPO_ROOT / "devstack" / package / "__main__.py").is_file()


def _ready_check(name: str, layout: Layout) -> Callable[[], bool]:
    port = layout.ports[name]
    if name == "armsim":
        return lambda: armsim_healthy(port)  # the launcher's own check (plain-HTTP admin)
    if name == "host":
        return lambda: _http_ok(f"http://127.0.0.1:{port}/admin/host/status")
    return lambda: port_accepts(port)


def _python_env(layout: Layout) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    paths = [str(REPO_ROOT), str(layout.project_root)]
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def _start(name: str, layout: Layout) -> ManagedProcess:
    port = layout.ports[name]
    log = layout.log_file(name)
    if name == "azurite":
        return azurite.start_azurite(port, layout.data_dir / "azurite", log, layout.timeout)
    if name == "servicebus":
        return servicebus.start_servicebus(
            port, layout.data_dir / "servicebus", log, timeout=layout.timeout
        )
    if name == "armsim":
        cert, key = ensure_certificate(REPO_ROOT / ".devstack" / "tls")
        return start_armsim(
            port,
            layout.data_dir / "armsim",
            log,
            cert=cert,
            key=key,
            speed=layout.arm_speed,
            identity_header=IDENTITY_HEADER,
            blob_connection_string=azurite.connection_string(layout.ports["azurite"]),
            timeout=layout.timeout,
        )
    argv = [
        sys.executable,
        "-m",
        "devstack.host",
        "--project-root",
        str(layout.project_root),
        "--app",
        layout.app_module,
        "--port",
        str(port),
        "--settings",
        str(layout.settings_file),
        "--state-dir",
        str(layout.data_dir / "host"),
    ]
    return start_process(
        name,
        argv,
        ready=_ready_check(name, layout),
        log_path=log,
        timeout=layout.timeout,
        env=_python_env(layout),
        cwd=REPO_ROOT,
    )


# ----- pid files ------------------------------------------------------------------------------


def _read_pid(layout: Layout, name: str) -> dict[str, Any] | None:
    try:
        record = json.loads(layout.pid_file(name).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is not alive
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _running_record(layout: Layout, name: str) -> dict[str, Any] | None:
    record = _read_pid(layout, name)
    if record is None or not _alive(int(record["pid"])):
        return None
    return record


def _write_pid(layout: Layout, name: str, process: ManagedProcess) -> None:
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    record = {"pid": process.pid, "port": layout.ports[name], "log": str(process.log_path)}
    layout.pid_file(name).write_text(json.dumps(record))


def _terminate(pid: int, timeout: float = 10.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


# ----- settings ---------------------------------------------------------------------------------


def write_local_settings(layout: Layout, started: set[str]) -> Path:
    """Write ``local.settings.json``: the sample, the developer's values, then local endpoints."""
    sample = json.loads((layout.project_root / "local.settings.sample.json").read_text())
    values: dict[str, str] = dict(sample.get("Values", {}))
    with contextlib.suppress(OSError, ValueError):
        existing = json.loads(layout.settings_file.read_text())
        values.update(existing.get("Values", {}))
    ports = layout.ports
    values["AzureWebJobsStorage"] = azurite.connection_string(ports["azurite"])
    values["GALLERY_VHD_STORAGE_ENDPOINTS"] = (
        f"https://{{account}}.blob.core.windows.net,http://127.0.0.1:{ports['azurite']}/{{account}}"
    )
    if "servicebus" in started:
        values["ServiceBusConnection"] = servicebus.connection_string(ports["servicebus"])
    if "host" in started or _available("host"):
        # Where galleryctl finds the status API (status, builds, submit --wait).
        values["GALLERY_API_URL"] = f"http://127.0.0.1:{ports['host']}"
    if "armsim" in started:
        arm = f"https://127.0.0.1:{ports['armsim']}"
        values["GALLERY_ARM_ENDPOINT"] = arm
        values["GALLERY_ARM_CA_BUNDLE"] = str((layout.tls_dir / "cert.pem").resolve())
        # The MSI endpoint is plain HTTP, as on App Service (one port serves both).
        values["IDENTITY_ENDPOINT"] = f"http://127.0.0.1:{ports['armsim']}/msi/token"
        values["IDENTITY_HEADER"] = IDENTITY_HEADER
        # The simulator is the local Entra too (tokens of other tenants for cross-tenant sources).
        values["GALLERY_AUTHORITY_HOST"] = arm
    document = {"IsEncrypted": False, "Values": values}
    layout.settings_file.write_text(json.dumps(document, indent=2) + "\n")
    return layout.settings_file


def seed(layout: Layout) -> int:
    """Create the gallery, definition, upload storage account and a sample snapshot the sample
    settings and ``docs/examples/local/`` use, in the running ARM simulator; print their ids."""
    try:
        body = admin_call(
            layout.ports["armsim"], "POST", "/admin/seed", {"resources": dev_resources()}
        )
    except OSError as error:
        raise DevstackError(
            f"the ARM simulator on port {layout.ports['armsim']} did not take the seed: {error}"
        ) from error
    for resource in body.get("value", []):  # what the simulator says it created
        print(f"seeded  {resource['id']}")
    upload = f"{azurite.blob_endpoint(layout.ports['azurite'])}/{DEV_UPLOAD_CONTAINER}"
    print()
    print(f"gallery     {GALLERY_ID}")
    print(f"definition  {DEV_DEFINITION_ID}")
    print(f"snapshot    {DEV_SNAPSHOT_ID}")
    print(f"upload      {upload}  (python -m devstack upload-vhd NAME)")
    return 0


def upload_vhd(layout: Layout, name: str, size_mib: int) -> int:
    """Upload a generated fixed VHD of ``size_mib`` MiB (a sparse page blob: only the footer is
    sent) as ``vhds/<name>`` to the running Azurite; print its URL."""
    from azure.core.exceptions import AzureError, ResourceExistsError  # noqa: PLC0415
    from azure.storage.blob import BlobServiceClient  # noqa: PLC0415

    from devstack.vhdgen import upload_fixed_vhd  # noqa: PLC0415

    service = BlobServiceClient.from_connection_string(
        azurite.connection_string(layout.ports["azurite"]), connection_timeout=5, read_timeout=10
    )
    try:
        with contextlib.suppress(ResourceExistsError):
            service.create_container(DEV_UPLOAD_CONTAINER, timeout=10)
        blob = service.get_blob_client(DEV_UPLOAD_CONTAINER, name)
        upload_fixed_vhd(blob, size_mib * 1024 * 1024, timeout=10)
    except AzureError as error:
        raise DevstackError(
            f"could not upload to Azurite on port {layout.ports['azurite']}: {error}"
        ) from error
    print(blob.url)
    return 0


def register_arm_webhook(layout: Layout) -> None:
    """Point the ARM simulator's ResourceWrite/DeleteSuccess events at the host's Event Grid."""
    body = {
        "id": WEBHOOK_ID,
        "url": f"http://127.0.0.1:{layout.ports['host']}/eventgrid/api/events",
        "eventTypes": list(ARM_EVENT_TYPES),
    }
    try:
        admin_call(layout.ports["armsim"], "POST", "/admin/webhooks", body)
    except OSError as error:
        raise DevstackError(f"ARM simulator refused the webhook: {error}") from error


# ----- commands ---------------------------------------------------------------------------------


def up(layout: Layout) -> dict[str, ManagedProcess]:
    """Start every available component that is not running yet; return the ones started."""
    began = time.monotonic()
    ensure_certificate(layout.tls_dir)
    layout.run_dir.mkdir(parents=True, exist_ok=True)
    available = [name for name in COMPONENTS if _available(name)]
    for name in COMPONENTS:
        if name not in available:
            print(f"{name:<11} MISSING  ({_missing_hint(name)}); not started")
    if "azurite" not in available:
        raise DevstackError("Azurite is required: run `make setup` (npm ci) first")
    to_start: list[str] = []
    for name in available:
        record = _running_record(layout, name)
        if record is not None:
            print(f"{name:<11} already running (pid {record['pid']}, port {record['port']})")
            continue
        if port_accepts(layout.ports[name]):
            flag = f"--{name}-port" if name != "armsim" else "--arm-port"
            env = f"DEVSTACK_{'ARM' if name == 'armsim' else name.upper()}_PORT"
            raise DevstackError(
                f"port {layout.ports[name]} for {name} is taken by another process; "
                f"stop it or choose another port with {flag} or {env}"
            )
        to_start.append(name)
    started: dict[str, ManagedProcess] = {}
    try:
        backends = [name for name in to_start if name != "host"]
        with ThreadPoolExecutor(max_workers=max(1, len(backends))) as pool:
            futures = {name: pool.submit(_start, name, layout) for name in backends}
            errors = []
            for name, future in futures.items():
                try:
                    started[name] = future.result()
                    _write_pid(layout, name, started[name])
                except (StartupError, OSError) as exc:
                    errors.append(f"{name}: {exc}")
            if errors:
                raise DevstackError("\n".join(errors))
        running = {n for n in available if n in started or _running_record(layout, n)}
        write_local_settings(layout, running)
        if "host" in to_start:
            started["host"] = _start("host", layout)
            _write_pid(layout, "host", started["host"])
        if "armsim" in running and "host" in available:
            register_arm_webhook(layout)
    except BaseException:
        for process in reversed(list(started.values())):
            process.stop()
        for name in started:
            layout.pid_file(name).unlink(missing_ok=True)
        raise
    elapsed = time.monotonic() - began
    for name in available:
        print(f"{name:<11} ready    {_endpoint(name, layout)}")
    print(f"settings    {layout.settings_file}")
    print(f"devstack ready in {elapsed:.1f}s (logs in {layout.run_dir})")
    return started


def _missing_hint(name: str) -> str:
    if name == "azurite":
        return "node_modules missing: run `make setup`"
    return f"devstack/{name}/ is not in this checkout"


def _endpoint(name: str, layout: Layout) -> str:
    port = layout.ports[name]
    return {
        "azurite": azurite.blob_endpoint(port),
        "servicebus": f"sb://127.0.0.1:{port} (AMQP)",
        "armsim": f"https://127.0.0.1:{port}",
        "host": f"http://127.0.0.1:{port} (Event Grid topic: /eventgrid/api/events)",
    }[name]


def down(layout: Layout) -> int:
    stopped = 0
    for name in reversed(COMPONENTS):
        record = _read_pid(layout, name)
        if record is None:
            continue
        pid = int(record["pid"])
        if _alive(pid):
            _terminate(pid)
            print(f"{name:<11} stopped (pid {pid})")
            stopped += 1
        layout.pid_file(name).unlink(missing_ok=True)
    if stopped == 0:
        print("devstack: nothing was running")
    return 0


def status(layout: Layout) -> int:
    """Print one line per component; exit 0 only when every started component is ready."""
    healthy = True
    any_running = False
    for name in COMPONENTS:
        if not _available(name):
            print(f"{name:<11} missing  ({_missing_hint(name)})")
            continue
        record = _running_record(layout, name)
        if record is None:
            print(f"{name:<11} stopped")
            healthy = False
            continue
        any_running = True
        port_layout = Layout(**{**layout.__dict__, "ports": {**layout.ports, name: record["port"]}})
        ready = _ready_check(name, port_layout)()
        healthy &= ready
        state = "ready" if ready else "NOT READY"
        print(f"{name:<11} {state:<9} pid {record['pid']:<7} {_endpoint(name, port_layout)}")
    return 0 if healthy and any_running else 1


def foreground(layout: Layout, started: dict[str, ManagedProcess]) -> int:
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print("running in the foreground; Ctrl-C stops everything", flush=True)
    exit_code = 0
    while not stop.wait(0.5):
        dead = [name for name, process in started.items() if not process.alive()]
        if dead:
            print(f"devstack: {', '.join(dead)} exited unexpectedly; stopping", file=sys.stderr)
            exit_code = 1
            break
    for name in reversed(list(started)):
        started[name].stop(timeout=10)
        layout.pid_file(name).unlink(missing_ok=True)
        print(f"{name:<11} stopped", flush=True)
    return exit_code
