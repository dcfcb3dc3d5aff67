"""The lifecycle timer: indexed like the host does it (schedule from %GALLERY_LIFECYCLE_SCHEDULE%),
and one invocation runs a dry-run lifecycle and writes the audit document."""

from __future__ import annotations

import json
from pathlib import Path

import azure.functions as func
from azure.functions.timer import TimerRequest
from azure.storage.blob import BlobServiceClient

from devstack.host.loader import AppSettings, index_functions
from functions import lifecycle_timer
from tests.conftest import AzuriteInstance
from tests.devstack.armsim.conftest import ArmSim
from tests.integration.test_lifecycle_cli import app_env  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_timer_schedule_resolves_from_the_sample_settings() -> None:
    app = func.FunctionApp()
    app.register_functions(lifecycle_timer.bp)
    settings = AppSettings.load(REPO_ROOT / "local.settings.sample.json", {})
    spec = index_functions(app, settings)["lifecycle_timer"]
    assert spec.trigger_type == "timerTrigger"
    assert spec.trigger["schedule"] == "0 30 2 * * *"


def test_one_invocation_is_a_dry_run_with_its_audit_document(
    app_env: str,  # noqa: F811
    fresh: ArmSim,
    azurite: AzuriteInstance,
) -> None:
    lifecycle_timer.lifecycle_timer(TimerRequest(past_due=True))
    calls = fresh.admin("GET", "/admin/stats")["armCalls"]
    assert "CreateUpdateGalleryImageVersion" not in calls
    assert "DeleteGalleryImageVersion" not in calls
    container = BlobServiceClient.from_connection_string(
        azurite.connection_string
    ).get_container_client(app_env)
    [blob] = list(container.list_blobs())
    document = json.loads(container.download_blob(blob.name).readall())
    assert document["status"] == "dry-run"
    assert {e["action"] for e in document["plan"]["entries"]} == {"deprecate", "delete", "skip"}
