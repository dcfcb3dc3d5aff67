"""The pipeline's custom metrics: names, attributes, and the bounded pending-requests gauge."""

from __future__ import annotations

import pytest

from shared.core import metrics
from shared.core.errors import PermanentError, Problem, ValidationFailed
from tests.unit.otel_capture import metric_reader, points, total


def test_the_names_are_the_contract_with_the_alerts() -> None:
    assert (
        metrics.BUILDS_STARTED,
        metrics.BUILDS_SUCCEEDED,
        metrics.BUILDS_FAILED,
        metrics.REPLICATION_DURATION,
        metrics.REQUESTS_REJECTED,
        metrics.SOURCES_PENDING,
        metrics.LIFECYCLE_DEPRECATIONS,
        metrics.LIFECYCLE_DELETIONS,
        metrics.LIFECYCLE_HALTS,
    ) == (
        "gallery.builds.started",
        "gallery.builds.succeeded",
        "gallery.builds.failed",
        "gallery.replication.duration",
        "gallery.requests.rejected",
        "gallery.sources.pending",
        "gallery.lifecycle.deprecations",
        "gallery.lifecycle.deletions",
        "gallery.lifecycle.halts",
    )


def test_build_outcomes_are_counted_with_their_attributes() -> None:
    reader = metric_reader()

    metrics.build_started()
    metrics.build_started()
    metrics.build_succeeded({"westeurope": 120.0, "eastus": 90.5})
    metrics.build_failed("ReplicationFailed")

    assert total(reader, metrics.BUILDS_STARTED) == 2
    assert total(reader, metrics.BUILDS_SUCCEEDED) == 1
    assert total(reader, metrics.BUILDS_FAILED, reason="ReplicationFailed") == 1
    durations = {a["region"]: p.sum for a, p in points(reader, metrics.REPLICATION_DURATION)}
    assert durations == {"westeurope": 120.0, "eastus": 90.5}


def test_rejections_count_under_the_first_problems_rule_or_the_reason() -> None:
    reader = metric_reader()
    invalid = ValidationFailed(
        [Problem("publishing.replicaCount", "replica-count", "too many"), Problem("x", "y", "z")]
    )

    metrics.request_rejected(metrics.rejection_rule(invalid), stage="worker")
    metrics.request_rejected(
        metrics.rejection_rule(PermanentError("exists", reason="VersionConflict")), stage="intake"
    )

    assert total(reader, metrics.REQUESTS_REJECTED, rule="replica-count", stage="worker") == 1
    assert total(reader, metrics.REQUESTS_REJECTED, rule="VersionConflict", stage="intake") == 1


def test_lifecycle_changes_and_halts_are_counted() -> None:
    reader = metric_reader()

    metrics.lifecycle_deprecated()
    metrics.lifecycle_deleted()
    metrics.lifecycle_deleted()
    metrics.lifecycle_halted("tripped")

    assert total(reader, metrics.LIFECYCLE_DEPRECATIONS) == 1
    assert total(reader, metrics.LIFECYCLE_DELETIONS) == 2
    assert total(reader, metrics.LIFECYCLE_HALTS, kind="tripped") == 1


def test_the_pending_gauge_reports_the_total_and_only_the_top_sources() -> None:
    reader = metric_reader()
    counts = {f"source-{n}": n for n in range(10)}  # source-0 has nothing pending

    metrics.sources_pending(counts)

    reported = {
        (a["scope"], a.get("source")): p.value for a, p in points(reader, "gallery.sources.pending")
    }
    assert reported[("total", None)] == sum(counts.values())
    per_source = {source: value for (scope, source), value in reported.items() if scope == "source"}
    assert per_source == {f"source-{n}": n for n in range(5, 10)}


def test_a_stale_pending_snapshot_is_not_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    snapshot = metrics._PendingSnapshot(clock=lambda: now[0])
    snapshot.update({"a": 2})
    assert snapshot.points() == [(2, {"scope": "total"}), (2, {"scope": "source", "source": "a"})]

    now[0] += metrics.PENDING_MAX_AGE_SECONDS + 1

    assert snapshot.points() == []


def test_a_failing_instrument_never_fails_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(provider: object) -> None:
        raise RuntimeError("no meter")

    monkeypatch.setattr(metrics, "_create", broken)
    monkeypatch.setattr(metrics, "_registry", metrics._Registry())

    metrics.build_started()  # logged at debug level, not raised
