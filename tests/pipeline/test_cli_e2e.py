"""``galleryctl`` against the running stack (subprocesses): submit, status, builds, rejects."""

from __future__ import annotations

import json
import subprocess
import sys
import time
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


def request_file(stack: Stack, tmp_path: Path, definition: str, name: str) -> Path:
    stack.seed_definition(definition)
    document = request(definition, stack.seed_snapshot(f"{definition}-os"))
    del document["requestId"]  # derived from the content
    path = tmp_path / name
    path.write_text(json.dumps(document))
    return path


def test_submit_prints_the_build_id_and_status_waits_for_it(stack: Stack, tmp_path: Path) -> None:
    path = request_file(stack, tmp_path, "e2e-cli", "request.json")
    settings = str(stack.layout.settings_file)

    sent = galleryctl("submit", str(path), "--settings", settings, "--json")
    assert sent.returncode == 0, sent.stderr
    build_id = json.loads(sent.stdout)["buildId"]

    def recorded() -> bool:  # status fails at once for a build no worker has recorded yet
        return galleryctl("status", build_id, "--api", stack.host_url).returncode != 4

    wait_for(recorded, timeout=30, what="the worker to record the build")
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
    progress = [line.split() for line in waited.stderr.splitlines()]  # a line per change
    assert {line[0] for line in progress} == {build_id}
    phases = [line[1] for line in progress]
    order = ["queued", "creating", "replicating", "done"]
    assert phases[-1] == "done" and set(phases) <= set(order)
    assert phases == sorted(phases, key=order.index)  # the phases in their order
    assert f"build    {build_id}  (succeeded)" in waited.stdout
    assert "West Europe" in waited.stdout and "100%" in waited.stdout

    listing = galleryctl("builds", "--api", stack.host_url + "/api", "--state", "succeeded")
    assert listing.returncode == 0 and build_id in listing.stdout
    shown = json.loads(galleryctl("status", build_id, "--api", stack.host_url, "-o", "json").stdout)
    assert shown["state"] == "succeeded"

    again = galleryctl("submit", str(path), "--settings", settings, "--json")
    resubmitted = json.loads(again.stdout)
    assert again.returncode == 0, again.stderr
    assert resubmitted["buildId"] == build_id  # the same request, the same build
    assert resubmitted["sent"] is False
    assert resubmitted["version"] == shown["target"]["version"]
    told = galleryctl("submit", str(path), "--settings", settings)
    assert f"already built as {resubmitted['version']}" in told.stdout


def test_submit_wait_follows_the_build_to_its_end(stack: Stack, tmp_path: Path) -> None:
    path = request_file(stack, tmp_path, "e2e-cli-wait", "wait.json")
    settings = str(stack.layout.settings_file)
    followed = galleryctl(
        "submit",
        str(path),
        "--settings",
        settings,
        "--wait",
        "--api",
        stack.host_url,
        "--interval",
        "0.3",
        "--timeout",
        "60",
        "-o",
        "json",
        timeout=90,
    )
    assert followed.returncode == 0, followed.stderr
    document = json.loads(followed.stdout)
    assert document["sent"] is True and document["build"]["state"] == "succeeded"
    assert "done" in followed.stderr


def test_submit_refuses_an_invalid_request_without_sending(stack: Stack, tmp_path: Path) -> None:
    document = request("e2e-cli", "/subscriptions/x")
    document["publishing"]["replicaCount"] = 0
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))

    result = galleryctl("submit", str(path), "--settings", str(stack.layout.settings_file))

    assert result.returncode == 1
    assert "publishing.replicaCount [replica-count]" in result.stderr


def test_an_unknown_build_a_missing_api_and_an_unreachable_one(stack: Stack) -> None:
    started = time.monotonic()
    unknown = galleryctl("status", "b-000000000000000000000000", "--api", stack.host_url, "--wait")
    assert unknown.returncode == 4 and "no build" in unknown.stderr
    assert time.monotonic() - started < 30  # at once, not after a wait

    missing = galleryctl("status", "b-x", "--api", stack.host_url + "/nothing")
    assert missing.returncode == 4 and "not found at" in missing.stderr

    unreachable = galleryctl("status", "b-x", "--api", "http://127.0.0.1:9")
    assert unreachable.returncode == 3 and "unreachable" in unreachable.stderr


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
    assert " ".join(letter["description"].split()) in " ".join(table.stdout.split())  # all of it
