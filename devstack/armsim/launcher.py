"""Start the simulator as a child process (for ``devstack up``, tests and the demo)."""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devstack.procs import ManagedProcess, start_process

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_IDENTITY_HEADER = "armsim-identity-header"


def admin_call(
    port: int, method: str, path: str, body: Any = None, *, timeout: float = 10.0
) -> Any:
    """One call to the simulator's admin API (plain HTTP on its port): the JSON answer, or
    ``None`` for an empty one. HTTP errors raise ``urllib.error.HTTPError`` (an ``OSError``)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout) as reply:
        payload = reply.read()
    return json.loads(payload) if payload else None


def healthy(port: int) -> bool:
    """True when ``GET /admin/health`` answers 200 on ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/health", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def start_armsim(
    port: int,
    data_dir: Path,
    log_path: Path,
    *,
    cert: Path,
    key: Path,
    speed: float = 1.0,
    identity_header: str = DEFAULT_IDENTITY_HEADER,
    blob_connection_string: str | None = None,
    extra_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> ManagedProcess:
    """Run ``python -m devstack.armsim`` on ``127.0.0.1:port``; return once it is healthy."""
    argv = [
        sys.executable,
        "-m",
        "devstack.armsim",
        "--port",
        str(port),
        "--speed",
        str(speed),
        "--data",
        str(data_dir),
        "--cert",
        str(cert),
        "--key",
        str(key),
        "--identity-header",
        identity_header,
        *extra_args,
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if blob_connection_string:
        env["ARMSIM_BLOB_CONNECTION_STRING"] = blob_connection_string
    return start_process(
        "armsim",
        argv,
        ready=lambda: healthy(port),
        log_path=log_path,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=env,
    )
