"""Lifecycle transitions as CloudEvents on the ``image-build-events`` topic.

After each run: one ``com.gallery-pipeline.version.deprecated`` or ``...version.deleted`` per
action that was carried out, and one ``com.gallery-pipeline.lifecycle.run`` summary (also for a
dry run, so "what would happen tonight" can be alerted on). The run that trips the circuit
breaker also publishes the alert ``com.gallery-pipeline.lifecycle.halted`` (what it would have
done, the cap, how to acknowledge); the summary of every run held by the halt names it. Consumers
of a version (teams whose scale sets use it) subscribe to the same topic as for builds. Event ids
are deterministic (run id, action, version), so a retried publish is recognisable.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Final, Protocol

from shared.core.cloudevents import EVENT_TYPE_ROOT, cloud_event, event_message
from shared.core.errors import PipelineError
from shared.core.messaging import MessageSender
from shared.lifecycle.apply import RunOutcome
from shared.lifecycle.halt import Halt
from shared.lifecycle.plan import Action

logger = logging.getLogger(__name__)

VERSION_EVENT_PREFIX: Final = EVENT_TYPE_ROOT + "version."
RUN_EVENT_TYPE: Final = EVENT_TYPE_ROOT + "lifecycle.run"
HALTED_EVENT_TYPE: Final = EVENT_TYPE_ROOT + "lifecycle.halted"
LIFECYCLE_SOURCE: Final = "/gallery-pipeline/lifecycle"


class LifecycleEventSink(Protocol):
    def publish(self, event: Mapping[str, Any]) -> None: ...


class TopicEventSink:
    """Publishes CloudEvents through the message port to a topic (the build events topic).

    The sender is built on first publish, so planning (``galleryctl lifecycle plan``) needs no
    Service Bus connection."""

    def __init__(self, sender: Callable[[], MessageSender], topic: str) -> None:
        self._sender = sender
        self._topic = topic

    def publish(self, event: Mapping[str, Any]) -> None:
        self._sender().send(self._topic, event_message(event))


def _definition_of(version_id: str) -> str:
    return version_id.rsplit("/versions/", 1)[0]


def version_events(outcome: RunOutcome, *, time: datetime) -> list[dict[str, Any]]:
    events = []
    for entry in outcome.done:
        action = "deprecated" if entry.action is Action.DEPRECATE else "deleted"
        digest = hashlib.sha256(entry.version_id.lower().encode()).hexdigest()[:16]
        events.append(
            cloud_event(
                event_id=f"{outcome.run_id}:{action}:{digest}",
                event_type="version." + action,
                source=_definition_of(entry.version_id),
                subject=entry.version_id,
                time=time,
                data={
                    "runId": outcome.run_id,
                    "versionId": entry.version_id,
                    "action": action,
                    "rule": entry.rule.value,
                    "reason": entry.reason,
                },
            )
        )
    return events


def run_event(
    outcome: RunOutcome, *, status: str, time: datetime, halt: Halt | None = None
) -> dict[str, Any]:
    plan = outcome.plan
    held = Counter(e.rule.value for e in plan.entries if e.action is Action.SKIP)
    return cloud_event(
        event_id=f"{outcome.run_id}:run",
        event_type=RUN_EVENT_TYPE.removeprefix(EVENT_TYPE_ROOT),
        source=LIFECYCLE_SOURCE,
        subject=outcome.run_id,
        time=time,
        data={
            "runId": outcome.run_id,
            "status": status,
            "haltedBy": halt.run_id if halt is not None and halt.active else None,
            "planned": {
                "deprecate": sum(1 for e in plan.actions() if e.action is Action.DEPRECATE),
                "delete": sum(1 for e in plan.actions() if e.action is Action.DELETE),
            },
            "done": len(outcome.done),
            "failed": len(outcome.failed),
            "heldByRule": dict(sorted(held.items())),
            "circuitBreakerTripped": plan.circuit_breaker_tripped,
            "quotaWarnings": [
                {"subscriptionId": q.subscription_id, "region": q.region, "versions": q.versions}
                for q in plan.quota_warnings
            ],
        },
    )


def halted_event(halt: Halt, *, time: datetime) -> dict[str, Any]:
    """The alert of the run that tripped the circuit breaker."""
    return cloud_event(
        event_id=f"{halt.run_id}:halted",
        event_type=HALTED_EVENT_TYPE.removeprefix(EVENT_TYPE_ROOT),
        source=LIFECYCLE_SOURCE,
        subject=halt.run_id,
        time=time,
        data={
            "runId": halt.run_id,
            "reason": "circuit-breaker",
            "message": halt.message,
            "wouldDelete": len(halt.would_delete),
            "wouldDeprecate": halt.would_deprecate,
            "maxDeletionsPerRun": halt.max_deletions_per_run,
            "acknowledgeWith": f"galleryctl lifecycle ack {halt.run_id}",
        },
    )


def publish_run(
    sink: LifecycleEventSink,
    outcome: RunOutcome,
    status: str,
    *,
    time: datetime,
    halt: Halt | None = None,
    alerts: Iterable[Mapping[str, Any]] = (),
) -> int:
    """Publish the run's events (and ``alerts``); a failure is logged, never raised (the audit
    store has it all and the changes are made). Returns how many were published."""
    published = 0
    for event in [
        *version_events(outcome, time=time),
        run_event(outcome, status=status, time=time, halt=halt),
        *alerts,
    ]:
        try:
            sink.publish(event)
        except PipelineError as error:  # no Service Bus, or unavailable: the audit has it
            logger.warning(
                "lifecycle event not published",
                extra={"run_id": outcome.run_id, "event": event["id"], "reason": error.reason},
            )
            continue
        published += 1
    return published
