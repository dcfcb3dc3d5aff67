"""Regions in the build worker: names checked against the region catalog it is given (ARM's
list in Azure), and the gallery's own region required among the targets before any write."""

from __future__ import annotations

import pytest

from shared.builds.common import MessageOutcome
from shared.builds.gallery import DefinitionRef
from shared.builds.records import BuildPhase
from shared.builds.submission import submit_request
from shared.builds.worker import BuildWorker
from shared.core.errors import ValidationFailed
from shared.core.settings import SettingName, Settings
from tests.unit.build_fakes import SUB, Harness, make_harness
from tests.unit.builds.test_builds import message, request_doc

DEFINITION = DefinitionRef(SUB, "rg-images", "platform_images", "ubuntu-24.04")


@pytest.fixture
def h() -> Harness:
    harness = make_harness()
    harness.gallery.add_definition(DEFINITION)
    return harness


class Catalog:
    def __init__(self, *names: str) -> None:
        self.names = frozenset(names)
        self.asked: list[str | None] = []

    def known_regions(self, subscription_id: str | None) -> frozenset[str]:
        self.asked.append(subscription_id)
        return self.names


def _worker(h: Harness, catalog: Catalog) -> BuildWorker:
    return BuildWorker(
        settings=Settings.from_env(
            {
                SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*",
                SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS: SUB,
            }
        ),
        ledger=h.ledger,
        journal=h.journal,
        starter=h.starter,
        sender=h.sender,
        rejects=h.rejects,
        clock=h.clock,
        regions=catalog,
    )


def test_a_region_typo_is_rejected_before_anything_is_written(h: Harness) -> None:
    doc = request_doc(requestId="r-typo")
    doc["publishing"]["targetRegions"].append({"name": "westeurop"})
    outcome = h.worker.handle_message(message(doc))
    assert outcome is MessageOutcome.REJECTED
    [(_, reason, description)] = h.rejects.rejected
    assert reason == "ValidationFailed"
    assert "did you mean 'westeurope'?" in description
    assert h.gallery.puts == [] and list(h.records.all()) == []


def test_the_worker_checks_names_against_its_catalog(h: Harness) -> None:
    catalog = Catalog("westeurope", "eastus")
    worker = _worker(h, catalog)
    assert worker.handle_message(message(request_doc(requestId="r-ok"))) is MessageOutcome.STARTED
    assert catalog.asked == [SUB]
    narrow = _worker(h, Catalog("westeurope"))
    doc = request_doc("os-2", requestId="r-narrow")
    assert narrow.handle_message(message(doc, "m-2")) is MessageOutcome.REJECTED
    [(_, _, description)] = h.rejects.rejected
    assert "'eastus' is not an Azure region" in description


def test_the_gallerys_region_must_be_a_target(h: Harness) -> None:
    doc = request_doc(requestId="r-far")
    doc["publishing"]["targetRegions"] = [{"name": "eastus"}]  # the gallery is in westeurope
    outcome = h.worker.handle_message(message(doc))
    assert outcome is MessageOutcome.FAILED  # claimed, then failed for good: nothing retries
    [(_, reason, description)] = h.rejects.rejected
    assert reason == "ValidationFailed"
    assert "publishing.targetRegions" in description
    assert "gallery 'platform_images' is in 'westeurope'" in description
    assert '{"name": "westeurope"}' in description
    assert h.gallery.puts == []
    [record] = h.records.all()
    assert record.phase is BuildPhase.FAILED and record.error_reason == "ValidationFailed"


def test_a_submission_checks_names_against_its_catalog(h: Harness) -> None:
    settings = Settings.from_env({SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*"})
    doc = request_doc(requestId="r-api")
    with pytest.raises(ValidationFailed) as caught:
        submit_request(
            doc, settings=settings, sender=h.sender, now=h.clock(), regions=Catalog("westeurope")
        )
    assert [p.path for p in caught.value.problems] == ["publishing.targetRegions[1].name"]
    assert h.sender.sent == []
    submitted = submit_request(
        doc,
        settings=settings,
        sender=h.sender,
        now=h.clock(),
        regions=Catalog("westeurope", "eastus"),
    )
    assert submitted.request_id == "r-api"
