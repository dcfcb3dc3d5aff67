"""Carrying out a lifecycle plan: exactly its actions, over two ports, recorded in the audit store.

Nothing is changed in a dry run, nor when the plan tripped the circuit breaker or the lifecycle is
halted (``halted``): the run then only writes its document. A failed action is recorded and the run
goes on; nothing outside the plan is touched, nothing is retried within a run.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from shared.core import metrics
from shared.core.errors import PipelineError
from shared.lifecycle.facts import DEPRECATED, DEPRECATED_AT_TAG, LIFECYCLE_TAG
from shared.lifecycle.plan import Action, Plan, PlanEntry, Rule

logger = logging.getLogger(__name__)


class GalleryWriter(Protocol):
    """The two changes a lifecycle run makes (an adapter over azure-mgmt-compute)."""

    def deprecate(self, version_id: str, *, tags: Mapping[str, str], replicas: int | None) -> None:
        """Exclude the version from latest, at the version and in every target region, and
        merge ``tags`` into its tags."""
        ...

    def delete(self, version_id: str) -> None:
        """Start the deletion of the version (do not wait for it to finish)."""
        ...


class AuditStore(Protocol):
    def write_run(self, run_id: str, document: Mapping[str, Any]) -> None: ...


@dataclass
class RunOutcome:
    run_id: str
    plan: Plan
    done: list[PlanEntry] = field(default_factory=list)
    failed: list[tuple[PlanEntry, str]] = field(default_factory=list)

    def to_document(self) -> dict[str, Any]:
        return {
            "runId": self.run_id,
            "plan": self.plan.to_document(),
            "outcome": {
                "done": [e.to_document() for e in self.done],
                "failed": [{**e.to_document(), "error": error} for e, error in self.failed],
            },
        }


def _deprecation_tags(entry: PlanEntry, stamp: str) -> dict[str, str]:
    if entry.rule is Rule.LATEST_NOT_HIDDEN:
        return {LIFECYCLE_TAG: DEPRECATED}  # already deprecated: keep its deprecated-at (grace)
    return {LIFECYCLE_TAG: DEPRECATED, DEPRECATED_AT_TAG: stamp}


def _carry_out(
    entry: PlanEntry, plan: Plan, writer: GalleryWriter, pace: Callable[[], None]
) -> None:
    if entry.action is Action.DEPRECATE:
        writer.deprecate(
            entry.version_id,
            tags=_deprecation_tags(entry, plan.created_at.isoformat()),
            replicas=plan.policy.deprecated_replica_count,
        )
    else:
        pace()
        writer.delete(entry.version_id)


def apply_plan(
    plan: Plan,
    *,
    run_id: str,
    writer: GalleryWriter,
    audit: AuditStore,
    pace: Callable[[], None] = lambda: None,
    halted: bool = False,
) -> RunOutcome:
    """Carry out exactly the plan's actions and write plan + outcome to the audit store.

    Nothing is carried out in a dry run, when the plan tripped the circuit breaker, or when
    ``halted``. ``pace`` is called before every delete, to stay under the delete throttling bucket.
    """
    outcome = RunOutcome(run_id=run_id, plan=plan)
    if not (plan.policy.dry_run or plan.circuit_breaker_tripped or halted):
        for entry in plan.actions():
            try:
                _carry_out(entry, plan, writer, pace)
            except PipelineError as exc:
                outcome.failed.append((entry, exc.message))
                logger.warning(
                    "lifecycle action failed",
                    extra={"run_id": run_id, "version": entry.version_id, "error": exc.reason},
                )
                continue
            outcome.done.append(entry)
            if entry.action is Action.DEPRECATE:
                metrics.lifecycle_deprecated()
            else:
                metrics.lifecycle_deleted()
            logger.info(
                "lifecycle action done",
                extra={"run_id": run_id, "version": entry.version_id, "action": entry.action},
            )
    audit.write_run(run_id, outcome.to_document())
    return outcome
