"""``python -m devstack up|status|down`` as subprocesses, on free ports, files in tmp dirs."""

from __future__ import annotations

import json
import re
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from devstack.procs import free_port, port_accepts
from tests.conftest import REPO_ROOT, TlsFiles

COMPONENTS = ("azurite", "servicebus", "armsim", "host")


def _cli(tmp_path: Path, ports: dict[str, int]) -> list[str]:
    return [
        sys.executable, "-m", "devstack",
        "--azurite-port", str(ports["azurite"]),
        "--servicebus-port", str(ports["servicebus"]),
        "--arm-port", str(ports["armsim"]),
        "--host-port", str(ports["host"]),
        "--run-dir", str(tmp_path / "run"),
        "--data-dir", str(tmp_path / "data"),
        "--settings-file", str(tmp_path / "local.settings.json"),
    ]  # fmt: skip


def _run(argv: list[str], command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv[:3], command, *argv[3:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )


def test_up_status_down(tmp_path: Path, tls_files: TlsFiles) -> None:
    ports = {name: free_port() for name in COMPONENTS}
    argv = _cli(tmp_path, ports)
    (tmp_path / "local.settings.json").write_text(
        json.dumps({"Values": {"MY_OWN_SETTING": "kept", "GALLERY_BUILD_QUEUE": "custom-q"}})
    )
    try:
        started = time.monotonic()
        up = _run(argv, "up")
        elapsed = time.monotonic() - started
        assert up.returncode == 0, up.stdout + up.stderr
        assert elapsed < 30
        assert re.search(r"devstack ready in \d+\.\ds", up.stdout)
        for name in COMPONENTS:
            assert re.search(rf"^{name}\s+ready", up.stdout, re.MULTILINE), up.stdout
            assert port_accepts(ports[name])
        status = _run(argv, "status", timeout=30)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("ready") == len(COMPONENTS)
        values = json.loads((tmp_path / "local.settings.json").read_text())["Values"]
        assert (
            f"BlobEndpoint=http://127.0.0.1:{ports['azurite']}/devstoreaccount1"
            in values["AzureWebJobsStorage"]
        )
        assert f"sb://127.0.0.1:{ports['servicebus']};" in values["ServiceBusConnection"]
        assert values["GALLERY_ARM_ENDPOINT"] == f"https://127.0.0.1:{ports['armsim']}"
        assert values["IDENTITY_ENDPOINT"] == f"http://127.0.0.1:{ports['armsim']}/msi/token"
        assert values["MY_OWN_SETTING"] == "kept"
        assert values["GALLERY_BUILD_QUEUE"] == "custom-q"
        # the ARM simulator posts its resource events to the host's local Event Grid
        context = ssl.create_default_context(cafile=str(tls_files.cert))
        url = f"https://127.0.0.1:{ports['armsim']}/admin/webhooks"
        with urllib.request.urlopen(url, timeout=10, context=context) as response:
            hooks = json.loads(response.read())["value"]
        assert [h["url"] for h in hooks] == [
            f"http://127.0.0.1:{ports['host']}/eventgrid/api/events"
        ]
        seeded = _run(argv, "seed", timeout=30)
        assert seeded.returncode == 0, seeded.stderr
        definition = "galleries/devgallery/images/ubuntu-24.04"
        assert definition in seeded.stdout and "storageAccounts/devstoreaccount1" in seeded.stdout
        assert re.search(
            r"^snapshot\s+/subscriptions/.*/snapshots/ubuntu-24\.04-os$", seeded.stdout, re.M
        )
        assert f"http://127.0.0.1:{ports['azurite']}/devstoreaccount1/vhds" in seeded.stdout
        assert values["GALLERY_API_URL"] == f"http://127.0.0.1:{ports['host']}"
        assert _run(argv, "seed", timeout=30).returncode == 0  # seeding again is harmless
        again = _run(argv, "up")  # idempotent: everything is already running
        assert again.returncode == 0
        assert again.stdout.count("already running") == len(COMPONENTS)
    finally:
        down = _run(argv, "down", timeout=60)
    assert down.returncode == 0, down.stderr
    assert down.stdout.count("stopped") == len(COMPONENTS)
    for name in COMPONENTS:
        assert not port_accepts(ports[name]), name
    stopped = _run(argv, "status", timeout=30)
    assert stopped.returncode == 1
    assert stopped.stdout.count("stopped") == len(COMPONENTS)


def test_taken_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    ports = {name: free_port() for name in COMPONENTS}
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", ports["servicebus"]))
        blocker.listen()
        result = _run(_cli(tmp_path, ports), "up")
    assert result.returncode == 1
    assert f"port {ports['servicebus']} for servicebus is taken" in result.stderr
    assert "--servicebus-port" in result.stderr
    assert not any(port_accepts(ports[name]) for name in ("azurite", "armsim", "host"))


def test_foreground_stops_everything_on_sigint(tmp_path: Path) -> None:
    ports = {name: free_port() for name in COMPONENTS}
    argv = _cli(tmp_path, ports)
    process = subprocess.Popen(
        [*argv[:3], "up", "--foreground", *argv[3:]],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "Ctrl-C stops everything" in line or not line:
                break
        assert all(port_accepts(ports[name]) for name in COMPONENTS), "".join(lines)
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0, output
    assert output.count("stopped") == len(COMPONENTS)
    assert not any(port_accepts(ports[name]) for name in COMPONENTS)
    assert not list((tmp_path / "run").glob("*.pid"))
