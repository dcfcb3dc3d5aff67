"""``galleryctl lifecycle plan|apply`` against the ARM simulator, configured like the app."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from shared import composition
from shared.cli.__main__ import main as galleryctl
from shared.core.settings import SettingName
from shared.lifecycle.halt import HALT_KEY
from tests.conftest import AzuriteInstance
from tests.devstack.armsim.conftest import RESOURCE_GROUP, SUBSCRIPTION, ArmSim
from tests.integration.test_lifecycle_arm import (
    EXPECTED,
    GALLERY,
    definition,
    deprecated,
    seed_acceptance_gallery,
    version,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def app_env(
    fresh: ArmSim, identity_env: None, azurite: AzuriteInstance, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The app's environment pointing at the simulator and Azurite; yields the audit container."""
    del identity_env
    container = f"audit-{uuid.uuid4().hex[:12]}"
    for name, value in {
        SettingName.ARM_ENDPOINT: fresh.base_url,
        SettingName.ARM_CA_BUNDLE: str(fresh.cert),
        SettingName.STORAGE_CONNECTION: azurite.connection_string,
        SettingName.ALLOWED_TARGET_GALLERIES: f"{SUBSCRIPTION}/{RESOURCE_GROUP}/{GALLERY}",
        SettingName.LIFECYCLE_MIN_KEEP: "1",
        SettingName.LIFECYCLE_AUDIT_CONTAINER: container,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(SettingName.LIFECYCLE_DRY_RUN, raising=False)
    composition.reset()
    seed_acceptance_gallery(fresh)
    yield container
    composition.reset()


def _writes(sim: ArmSim) -> int:
    calls = sim.admin("GET", "/admin/stats")["armCalls"]
    return int(
        calls.get("CreateUpdateGalleryImageVersion", 0) + calls.get("DeleteGalleryImageVersion", 0)
    )


def test_plan_prints_a_table_of_action_version_rule_and_reason(
    app_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert galleryctl(["lifecycle", "plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ACTION", "VERSION", "RULE", "REASON"]
    rows = {line.split()[1]: tuple(line.split()[0:3:2]) for line in lines[1 : len(EXPECTED) + 1]}
    assert rows == {
        f"{GALLERY}/{name}": (action.value, rule.value) for name, (action, rule) in EXPECTED.items()
    }
    [eol_row] = [line for line in lines if "lifegal/eol/1.0.0" in line]
    assert eol_row.split(None, 3)[3].startswith("end of life ")  # the reason, last column
    assert eol_row.endswith("has passed")
    assert any("1 to deprecate, 1 to delete, 5 held back (dry run)" in line for line in lines)


def test_plan_json_is_the_plan_document(app_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert galleryctl(["lifecycle", "plan", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    entries = {e["versionId"].split("/images/")[1]: e for e in document["plan"]["entries"]}
    assert {k.replace("/versions", ""): (v["action"], v["rule"]) for k, v in entries.items()} == {
        name: (action.value, rule.value) for name, (action, rule) in EXPECTED.items()
    }
    assert document["plan"]["dryRun"] is True
    # 11 reads of the gallery and its consumers + 1 lock list of its resource group
    assert document["context"]["armCalls"]["total"] == 12
    assert document["context"]["locks"] == []


def test_apply_needs_yes_and_respects_the_dry_run_default(
    app_env: str, fresh: ArmSim, azurite: AzuriteInstance, capsys: pytest.CaptureFixture[str]
) -> None:
    assert galleryctl(["lifecycle", "apply"]) == 2
    assert "--yes" in capsys.readouterr().err
    container = BlobServiceClient.from_connection_string(
        azurite.connection_string
    ).get_container_client(app_env)
    assert not container.exists()

    assert galleryctl(["lifecycle", "apply", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "dry run: nothing changed" in out
    assert _writes(fresh) == 0
    [blob] = list(container.list_blobs())
    assert blob.name.startswith("runs/") and blob.name.endswith(".json")
    assert f"audit: {app_env}/{blob.name}" in out
    document = json.loads(container.download_blob(blob.name).readall())
    assert document["status"] == "dry-run"


def test_apply_for_real_when_dry_run_is_off(
    app_env: str, fresh: ArmSim, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(SettingName.LIFECYCLE_DRY_RUN, "false")
    composition.reset()
    assert galleryctl(["lifecycle", "apply", "--yes"]) == 0
    out = capsys.readouterr().out
    assert "done    deprecate lifegal/eol/1.0.0" in out
    assert "done    delete    lifegal/grace/1.0.0" in out
    assert _writes(fresh) == 2


def test_ack_of_an_unknown_run_fails_with_exit_4(
    app_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert galleryctl(["lifecycle", "ack", "0123456789ab"]) == 4
    assert "no lifecycle run '0123456789ab'" in capsys.readouterr().err


def test_a_halted_run_waits_for_an_acknowledgement_that_records_who_and_when(
    app_env: str,
    fresh: ArmSim,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    fresh.seed(definition("bulk"), *(deprecated("bulk", f"1.{n}.0") for n in range(4)))
    fresh.seed(version("bulk", "2.0.0"))
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(
        json.dumps(
            {
                "Values": {
                    SettingName.LIFECYCLE_DRY_RUN: "false",
                    SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN: "2",
                }
            }
        )
    )
    for name in (SettingName.LIFECYCLE_DRY_RUN, SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN):
        monkeypatch.setenv(name, "")  # registered: what --settings exports is undone afterwards
        monkeypatch.delenv(name)
    settings = ["--settings", str(settings_file)]

    assert galleryctl(["lifecycle", "apply", "--yes", "--json", *settings]) == 5
    halted = json.loads(capsys.readouterr().out)
    run_id = halted["runId"]
    assert halted["status"] == "halted" and halted["halt"]["runId"] == run_id
    assert _writes(fresh) == 0  # 5 deletions planned, the cap is 2: nothing at all is done

    assert galleryctl(["lifecycle", "apply", "--yes", *settings]) == 5
    out = capsys.readouterr().out
    assert f"halted by run {run_id}" in out
    assert f"galleryctl lifecycle ack {run_id}" in out
    assert _writes(fresh) == 0

    assert galleryctl(["lifecycle", "ack", run_id, "--by", "alice", *settings]) == 0
    assert f"run {run_id} acknowledged by alice" in capsys.readouterr().out
    stored = composition.lifecycle_audit().documents().read(HALT_KEY)  # halt.json in app_env
    assert stored is not None
    halt = stored[0]
    assert halt["runId"] == run_id and halt["acknowledgedBy"] == "alice"
    assert halt["acknowledgedAt"]

    assert galleryctl(["lifecycle", "apply", "--yes", *settings]) == 0
    calls = fresh.admin("GET", "/admin/stats")["armCalls"]
    assert calls["DeleteGalleryImageVersion"] == 2  # the cap, oldest first
    assert calls["CreateUpdateGalleryImageVersion"] == 1  # eol/1.0.0 deprecated
