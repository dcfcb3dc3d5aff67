"""Fixtures for the mini Functions host tests: an in-process host over the sample app."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from devstack.host import FunctionsHost, HostOptions
from devstack.procs import free_port
from tests.conftest import REPO_ROOT
from tests.devstack.host import sample_app

SAMPLE_APP = "tests.devstack.host.sample_app"
ALL_FUNCTIONS = ("on_event", "on_queue_message", "tick", "slow_tick", "hello")

HostFactory = Callable[..., FunctionsHost]


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def host_factory(tmp_path: Path) -> Iterator[HostFactory]:
    """Start hosts over the sample app; only the functions named in ``enabled`` run."""
    hosts: list[FunctionsHost] = []

    def start(
        *,
        enabled: tuple[str, ...],
        settings: Mapping[str, str] | None = None,
        eventgrid: Mapping[str, Any] | None = None,
        host_json: Mapping[str, Any] | None = None,
    ) -> FunctionsHost:
        values = {
            "FUNCTIONS_WORKER_RUNTIME": "python",
            "TEST_QUEUE": "unused-queue",
            "TICK_SCHEDULE": "0 0 3 * * *",
            **{f"AzureWebJobs.{n}.Disabled": "true" for n in ALL_FUNCTIONS if n not in enabled},
            **(settings or {}),
        }
        directory = tmp_path / f"host{len(hosts)}"
        directory.mkdir()
        settings_file = directory / "local.settings.json"
        settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
        eventgrid_file = directory / "eventgrid.json"
        eventgrid_file.write_text(
            json.dumps(eventgrid or {"blobSource": {"enabled": False}, "subscriptions": []})
        )
        host_json_file = directory / "host.json"
        host_json_file.write_text(json.dumps(host_json or {"version": "2.0"}))
        host = FunctionsHost(
            HostOptions(
                project_root=REPO_ROOT,
                app_module=SAMPLE_APP,
                http_port=free_port(),
                settings_file=settings_file,
                host_json=host_json_file,
                eventgrid_config=eventgrid_file,
                state_dir=directory / "state",
                export_settings=False,
            ),
            environ={},
        )
        hosts.append(host)
        host.start()
        return host

    sample_app.clear()
    try:
        yield start
    finally:
        for host in hosts:
            host.stop(timeout=5)
        sample_app.clear()
