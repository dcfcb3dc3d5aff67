"""``galleryctl lifecycle``: the common options and exit codes, with a fake lifecycle service."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared import composition
from shared.cli.__main__ import main
from shared.core.errors import TransientError
from shared.core.settings import SettingName
from shared.lifecycle.inventory import GalleryScope
from shared.lifecycle.plan import Action, LifecyclePolicy, Plan, PlanEntry, Rule
from shared.lifecycle.service import LifecycleSnapshot

VERSION = (
    "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/"
)
SNAPSHOT = LifecycleSnapshot(
    run_id="run-1",
    plan=Plan(
        created_at=datetime(2026, 11, 22, tzinfo=UTC),
        policy=LifecyclePolicy(),
        entries=(
            PlanEntry(Action.DELETE, VERSION + "1.0.0", Rule.END_OF_LIFE, "end of life has passed"),
            PlanEntry(Action.SKIP, VERSION + "1.0.1", Rule.MIN_KEEP, "the last version kept"),
        ),
    ),
    scope=GalleryScope(),
)


class FakeService:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error

    def plan(self) -> LifecycleSnapshot:
        if self.error is not None:
            raise self.error
        return SNAPSHOT


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeService:
    monkeypatch.setenv(SettingName.LIFECYCLE_MIN_KEEP, "1")
    fake = FakeService()
    monkeypatch.setattr(composition, "lifecycle_service", lambda: fake)
    return fake


def test_plan_is_a_table_by_default(
    service: FakeService, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lifecycle", "plan"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ACTION", "VERSION", "RULE", "REASON"]
    assert lines[1].split()[:3] == ["delete", "g/d/1.0.0", "end-of-life"]


def test_plan_json_yaml_and_query(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--json"], ["-o", "json"]):
        assert main(["lifecycle", "plan", *argv]) == 0
        assert json.loads(capsys.readouterr().out)["runId"] == "run-1"
    assert main(["lifecycle", "plan", "-o", "yaml"]) == 0
    assert "runId: run-1" in capsys.readouterr().out.splitlines()
    query = "plan.entries[?action=='delete'].versionId"
    assert main(["lifecycle", "plan", "--query", query, "-o", "tsv"]) == 0
    assert capsys.readouterr().out == f"{VERSION}1.0.0\n"
    assert main(["-o", "none", "lifecycle", "plan"]) == 0
    assert capsys.readouterr().out == ""


def test_exit_codes(service: FakeService, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lifecycle", "apply"]) == 2  # refuses without --yes
    assert "refusing to run without --yes" in capsys.readouterr().err
    service.error = TransientError("ARM is throttling")
    assert main(["lifecycle", "plan"]) == 3
    assert "ARM is throttling" in capsys.readouterr().err
