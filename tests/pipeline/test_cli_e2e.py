"""``galleryctl submit`` and ``galleryctl status`` against the running stack (subprocesses)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT
from tests.pipeline.conftest import Stack, wait_for
from tests.pipeline.test_builds_e2e import request


def galleryctl(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        check=False,
    )


def test_submit_prints_the_build_id_and_status_waits_for_it(stack: Stack, tmp_path: Path) -> None:
    definition = "e2e-cli"
    stack.seed_definition(definition)
    document = request(definition, stack.seed_snapshot("e2e-cli-os"))
    del document["requestId"]  # derived from the content
    path = tmp_path / "request.json"
    path.write_text(json.dumps(document))
    settings = str(stack.layout.settings_file)

    sent = galleryctl("submit", str(path), "--settings", settings, "--json")
    assert sent.returncode == 0, sent.stderr
    build_id = json.loads(sent.stdout)["buildId"]

    waited = galleryctl(
        "status",
        build_id,
        "--api",
        stack.host_url,
        "--wait",
        "--timeout",
        "60",
        "--interval",
        "0.3",
    )
    assert waited.returncode == 0, waited.stderr
    lines = waited.stdout.splitlines()
    assert lines[0].startswith(f"{build_id}  queued") or lines[0].startswith(f"{build_id}  started")
    assert f"build    {build_id}  (succeeded)" in waited.stdout
    assert "West Europe" in waited.stdout and "100%" in waited.stdout

    listing = galleryctl("status", "--api", stack.host_url)
    assert listing.returncode == 0 and build_id in listing.stdout

    again = galleryctl("submit", str(path), "--settings", settings, "--json")
    assert json.loads(again.stdout)["buildId"] == build_id  # the same request, the same build


def test_submit_refuses_an_invalid_request_without_sending(stack: Stack, tmp_path: Path) -> None:
    document = request("e2e-cli", "/subscriptions/x")
    document["publishing"]["replicaCount"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))

    result = galleryctl("submit", str(path), "--settings", str(stack.layout.settings_file))

    assert result.returncode == 1
    assert "publishing.replicaCount [replica-count]" in result.stderr


def test_status_of_an_unknown_build_and_an_unreachable_api() -> None:
    unreachable = galleryctl("status", "b-x", "--api", "http://127.0.0.1:9")
    assert unreachable.returncode == 3 and "API unavailable" in unreachable.stderr


def test_rejects_lists_dead_lettered_requests_with_their_reasons(stack: Stack) -> None:
    document = request("e2e-cli", "/subscriptions/x")
    document["publishing"]["storageAccountType"] = "Floppy_LRS"
    stack.send_raw(json.dumps(document).encode(), "cli-rejects-1")
    settings = str(stack.layout.settings_file)

    def listed() -> list[dict[str, str]]:
        shown = galleryctl("rejects", "--settings", settings, "--json", "--limit", "500")
        assert shown.returncode == 0, shown.stderr
        return [r for r in json.loads(shown.stdout) if r["messageId"] == "cli-rejects-1"]

    [letter] = wait_for(listed, timeout=30, what="the dead letter to show")
    assert letter["reason"] == "ValidationFailed"
    assert "publishing.storageAccountType" in letter["description"]
    table = galleryctl("rejects", "--settings", settings, "--limit", "500")
    assert "cli-rejects-1  ValidationFailed" in table.stdout
