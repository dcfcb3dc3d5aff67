"""Service Bus emulator: an AMQP 1.0 server on Qpid Proton for the real azure-servicebus SDK.

Start it with ``python -m devstack.servicebus --port PORT [--data DIR] [--config FILE]`` or
:func:`start_servicebus`; connect with :func:`connection_string`. See
``docs/devstack-servicebus.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from devstack.procs import ManagedProcess, port_accepts, start_process

REPO_ROOT = Path(__file__).resolve().parents[2]
SAS_KEY_NAME = "RootManageSharedAccessKey"
# The emulator accepts any token; this is the placeholder the Microsoft emulator documents.
SAS_KEY_VALUE = "SAS_KEY_VALUE"

__all__ = ["SAS_KEY_NAME", "SAS_KEY_VALUE", "connection_string", "start_servicebus"]


def connection_string(port: int) -> str:
    """The azure-servicebus connection string of an emulator on ``127.0.0.1:port``.

    ``UseDevelopmentEmulator=true`` must be lower case: it makes the SDK speak plain AMQP.
    """
    return (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName={SAS_KEY_NAME};"
        f"SharedAccessKey={SAS_KEY_VALUE};UseDevelopmentEmulator=true;"
    )


def start_servicebus(
    port: int,
    data_dir: Path,
    log_path: Path,
    config: Path | None = None,
    timeout: float = 30.0,
) -> ManagedProcess:
    """Start the emulator on ``127.0.0.1:port`` with its SQLite data in ``data_dir``.

    Returns once the port accepts connections; ``ManagedProcess.stop()`` sends SIGTERM.
    """
    argv = [
        sys.executable,
        "-m",
        "devstack.servicebus",
        "--port",
        str(port),
        "--data",
        str(data_dir),
    ]
    if config is not None:
        argv += ["--config", str(config)]
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])]
    )
    return start_process(
        "servicebus",
        argv,
        ready=lambda: port_accepts(port),
        log_path=log_path,
        timeout=timeout,
        env=env,
        cwd=REPO_ROOT,
    )
