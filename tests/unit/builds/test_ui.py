"""The status page renderer (``shared.builds.ui``) and the views it is fed from
(``shared.builds.status``: active sources, lifecycle summary, per-section failures)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from shared.builds.ledger import SourceLedger
from shared.builds.records import BuildPhase, BuildRecord, BuildRecords, RegionProgress
from shared.builds.status import active_sources, lifecycle_summary, status_page_documents
from shared.builds.ui import CONTENT_SECURITY_POLICY, render_status_page
from shared.core.errors import TransientError
from tests.unit.store_fakes import InMemoryDocumentStore

NOW = "2026-12-04T05:00:00+00:00"
SOURCE = "https://acct.blob.core.windows.net/vhds/os.vhd"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the page's text, for assertions."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [
            found
            for name, found in self.tags
            if name == tag and all(found.get(k.replace("_", "-")) == v for k, v in attrs.items())
        ]

    @property
    def joined(self) -> str:
        return "".join(self.text)


def build(build_id: str = "b-1", **changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "buildId": build_id,
        "state": "replicating",
        "target": {"gallery": "g", "definition": "ubuntu", "version": "1.0.0"},
        "progress": 70,
        "regions": [
            {"region": "West Europe", "state": "Replicating", "progress": 40},
            {"region": "North Europe", "state": "Completed", "progress": 100},
        ],
        "error": None,
        "updatedAt": NOW,
    }
    document.update(changes)
    return document


def page(**sections: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "builds": [],
        "sources": [],
        "failed": [],
        "lifecycle": None,
        "unavailable": {},
    }
    document.update(sections)
    return document


def render(document: dict[str, Any]) -> tuple[str, Elements]:
    html = render_status_page(document, generated_at=NOW)
    return html, Elements(html)


def test_a_build_row_has_one_labelled_bar_per_region_and_the_overall_figure() -> None:
    _, dom = render(page(builds=[build()]))

    assert dom.all("tr", data_build_id="b-1")
    bars = dom.all("progress")
    assert [(b["value"], b["max"]) for b in bars] == [("70", "100"), ("40", "100"), ("100", "100")]
    labels = [b["aria-label"] for b in bars]
    assert labels[1] == "West Europe: 40% replicated (Replicating)"
    assert labels[0] == "Overall: 70% replicated"
    assert "40%" in dom.joined and "Completed" in dom.joined  # also as text, not colour alone


def test_progress_values_are_clamped_to_whole_percentages() -> None:
    regions = [
        {"region": "a", "state": "x", "progress": 250},
        {"region": "b", "state": "x", "progress": -3},
        {"region": "c", "state": "x", "progress": "nonsense"},
        {"region": "d", "state": "x", "progress": 33.6},
    ]
    _, dom = render(page(builds=[build(progress=None, regions=regions)]))

    assert [b["value"] for b in dom.all("progress")] == ["0", "100", "0", "0", "34"]


def test_every_value_is_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    failed = build("b-<img src=x>", state="failed", error={"reason": hostile, "message": hostile})
    html, dom = render(page(builds=[build(hostile)], failed=[failed]))

    assert dom.all("script") == [{}]  # only the page's own script
    assert not dom.all("img")
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert dom.all("tr", data_build_id=hostile)  # attribute values escaped, not broken


def test_no_sas_reaches_the_page() -> None:
    sas = "sv=2024-05-04&sr=b&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D"
    failed = build(
        "b-2",
        state="failed",
        error={"reason": "SourceNotFound", "message": f"blob {SOURCE}?{sas} not found"},
    )
    source = {
        "key": "k" * 64,
        "sourceKey": f"{SOURCE}?{sas}",
        "inFlight": None,
        "pending": [{"requestId": "r-2", "queuedAt": NOW}],
    }
    html, _ = render(page(failed=[failed], sources=[source]))

    assert "c2VjcmV0" not in html and "sig=" not in html and "sv=2024" not in html
    assert SOURCE in html


def test_empty_states_say_so_and_keep_the_tables() -> None:
    _, dom = render(page())

    for table in ("builds", "sources", "failed"):
        assert dom.all("table", id=table), table
        assert dom.all("caption", id=f"{table}-caption")
    assert "No builds yet." in dom.joined
    assert "No source is busy" in dom.joined
    assert "No lifecycle run recorded yet." in dom.joined
    assert not dom.all("progress")


def test_the_page_is_accessible_by_structure() -> None:
    _, dom = render(page(builds=[build()]))

    assert dom.all("html", lang="en") and len(dom.all("main")) == 1
    assert dom.all("meta", name="viewport")
    header_cells = dom.all("th")
    assert header_cells and all(cell.get("scope") in ("col", "row") for cell in header_cells)
    for region in dom.all("div", role="region"):
        assert region["tabindex"] == "0" and region["aria-labelledby"]
    assert dom.all("button", id="refresh-toggle", data_seconds="10")


def test_sources_show_the_build_in_flight_and_the_parked_requests() -> None:
    source = {
        "key": "a" * 64,
        "sourceKey": SOURCE,
        "inFlight": {"buildId": "b-1", "state": "started", "claimedAt": NOW, "startedAt": NOW},
        "pending": [
            {"requestId": "r-2", "queuedAt": NOW},
            {"requestId": "r-3", "queuedAt": NOW},
        ],
    }
    _, dom = render(page(sources=[source]))

    assert dom.all("tr", data_source_key="a" * 64, data_parked="2")
    assert "r-2" in dom.joined and "r-3" in dom.joined and "b-1" in dom.joined


def test_unavailable_sections_are_named_and_the_rejects_note_is_shown() -> None:
    _, dom = render(page(unavailable={"sources": "LedgerUnavailable: storage down"}))

    assert dom.all("p", role="alert")
    assert "Could not read the ledger: LedgerUnavailable: storage down" in dom.joined
    assert "galleryctl rejects" in dom.joined


def test_the_lifecycle_summary_counts_by_action_and_rule() -> None:
    entry = {"versionId": "/v", "reason": "..."}
    run = {
        "runId": "run-1",
        "status": "dry-run",
        "plan": {
            "createdAt": NOW,
            "dryRun": True,
            "circuitBreakerTripped": False,
            "entries": [
                {**entry, "action": "delete", "rule": "end-of-life"},
                {**entry, "action": "skip", "rule": "min-keep"},
                {**entry, "action": "skip", "rule": "min-keep"},
            ],
        },
        "outcome": {"done": [], "failed": []},
    }
    summary = lifecycle_summary(run)
    assert summary is not None
    assert summary["counts"] == [
        {"action": "skip", "rule": "min-keep", "count": 2},
        {"action": "delete", "rule": "end-of-life", "count": 1},
    ]
    _, dom = render(page(lifecycle=summary))
    assert dom.all("table", id="lifecycle")
    assert "run-1" in dom.joined and "min-keep" in dom.joined and "dry-run" in dom.joined
    assert lifecycle_summary(None) is None


def test_the_content_security_policy_allows_only_the_page_itself() -> None:
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert "script-src 'sha256-" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY


# ------------------------------------------------------------------ the views behind the page


def record(build_id: str, phase: BuildPhase, updated_at: str) -> BuildRecord:
    return BuildRecord(
        build_id=build_id,
        request_id=f"r-{build_id}",
        source_key=SOURCE,
        phase=phase,
        subscription_id="s",
        resource_group="rg",
        gallery="g",
        definition="d",
        created_at=updated_at,
        updated_at=updated_at,
        regions=(RegionProgress("West Europe", "Completed", 100),),
    )


def stores() -> tuple[BuildRecords, SourceLedger]:
    store = InMemoryDocumentStore()
    clock = lambda: datetime(2026, 12, 4, 5, 0, tzinfo=UTC)  # noqa: E731
    records = BuildRecords(InMemoryDocumentStore(), clock=clock)
    counter = itertools.count(1)
    ledger = SourceLedger(store, clock=clock, new_build_id=lambda _r: f"b-{next(counter)}")
    return records, ledger


def test_active_sources_are_the_busy_ones_with_their_parked_requests() -> None:
    _, ledger = stores()
    ledger.claim(SOURCE, "r-1", {"requestId": "r-1", "source": {"blob": {"uri": SOURCE + "?s=1"}}})
    ledger.claim(SOURCE, "r-2", {"requestId": "r-2"})

    found = active_sources(ledger)

    assert [s["sourceKey"] for s in found] == [SOURCE]
    assert [p["requestId"] for p in found[0]["pending"]] == ["r-2"]
    assert found[0]["inFlight"]["request"]["source"]["blob"]["uri"] == SOURCE  # no SAS


def test_the_page_documents_keep_the_failed_builds_and_name_a_store_that_failed() -> None:
    records, ledger = stores()
    for build_id, phase in (("b-ok", BuildPhase.SUCCEEDED), ("b-bad", BuildPhase.FAILED)):
        item = replace(record(build_id, phase, NOW), error_reason="SourceNotFound", error="gone")
        records.upsert(lambda _now: item, build_id, lambda current: current)  # noqa: B023

    def broken() -> dict[str, Any]:
        raise TransientError("audit read failed: ServiceRequestError")

    documents = status_page_documents(lambda: records, lambda: ledger, broken)

    assert sorted(b["buildId"] for b in documents["builds"]) == ["b-bad", "b-ok"]
    assert [b["buildId"] for b in documents["failed"]] == ["b-bad"]
    assert documents["sources"] == []
    assert documents["lifecycle"] is None
    assert documents["unavailable"] == {
        "lifecycle": "TransientError: audit read failed: ServiceRequestError"
    }
