"""``galleryctl lifecycle plan|apply`` against the ARM simulator, configured like the app."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from shared import composition
from shared.cli.__main__ import main as galleryctl
from shared.core.settings import SettingName
from tests.conftest import AzuriteInstance
from tests.devstack.armsim.conftest import RESOURCE_GROUP, SUBSCRIPTION, ArmSim
from tests.integration.test_lifecycle_arm import EXPECTED, GALLERY, seed_acceptance_gallery

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
    assert document["context"]["armCalls"]["total"] == 11


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
