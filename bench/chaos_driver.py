"""The chaos suite's hands: start and seed the stack, play a plan's timeline, wait for the end.

:class:`Driver` executes a :class:`~bench.chaos_plan.Plan` against a running
:class:`~devstack.stack.LocalStack`: it sends every delivery at its moment (broker-delayed ones
with ``ScheduledEnqueueTimeUtc``), kills the host with SIGKILL and restarts it after the planned
downtime, and replaces the ARM simulator's fault configuration episode by episode, counting
what each episode injected (``GET /admin/faults`` rule hits) before replacing it.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from azure.core.exceptions import AzureError
from azure.servicebus import ServiceBusMessage
from azure.servicebus.exceptions import ServiceBusError

from bench.chaos_checks import BUILD_QUEUE, converged, observe
from bench.chaos_plan import (
    BASELINE_VERSION,
    LEASE_SECONDS,
    Delivery,
    EpisodeKind,
    FaultEpisode,
    Kill,
    Plan,
)
from devstack.procs import StartupError
from devstack.stack import (
    FAST_PIPELINE_SETTINGS,
    GALLERY_ID,
    LOCATION,
    SNAPSHOTS_ID,
    LocalStack,
    definition_resource,
    gallery_resource,
    snapshot_resource,
    start_local_stack,
    storage_account_resource,
)

logger = logging.getLogger("bench.chaos")

START_TIMEOUT: Final = 30.0
POLL_SECONDS: Final = 3.0
BASELINE_SNAPSHOT: Final = "chaos-baseline"


class HarnessError(RuntimeError):
    """The suite itself could not go on (not a finding about the pipeline)."""


class Budget:
    """The seed's deadline; every wait takes the smaller of its own timeout and what is left."""

    def __init__(self, seconds: float) -> None:
        self.started = time.monotonic()
        self.deadline = self.started + seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def sleep_until(self, moment: float) -> None:
        if moment > self.deadline:
            raise HarnessError("the seed ran out of its time budget")
        time.sleep(max(0.0, moment - time.monotonic()))


def start_stack(root: Path, speed: float) -> LocalStack:
    """The whole stack under ``root``: the tracker every second, a 6 s starter lease."""
    output = io.StringIO()
    settings = {**FAST_PIPELINE_SETTINGS, "GALLERY_CLAIM_RECOVERY_SECONDS": str(LEASE_SECONDS)}
    with contextlib.redirect_stdout(output):
        stack = start_local_stack(
            root,
            settings=settings,
            arm_speed=speed,
            timeout=START_TIMEOUT,
            seed=(gallery_resource(), storage_account_resource()),
        )
    if "host" not in stack.processes:
        stack.stop()
        raise HarnessError(f"the Functions host did not start: {output.getvalue()}")
    return stack


def seed_resources(stack: LocalStack, plan: Plan) -> None:
    """Definitions, the sources' snapshots, and each definition's baseline version."""
    stack.seed(
        *(definition_resource(name, publisher="chaos", offer=name) for name in plan.definitions),
        *(snapshot_resource(source.name) for source in plan.sources),
        snapshot_resource(BASELINE_SNAPSHOT),
    )
    baseline_source = {"id": f"{SNAPSHOTS_ID}/{BASELINE_SNAPSHOT}"}
    stack.seed(
        *(
            {
                "id": f"{GALLERY_ID}/images/{name}/versions/{BASELINE_VERSION}",
                "location": LOCATION,
                "properties": {
                    "publishingProfile": {"targetRegions": [{"name": LOCATION}]},
                    "storageProfile": {"osDiskImage": {"source": baseline_source}},
                },
            }
            for name in plan.definitions
        )
    )


def _fault_kind(episode: EpisodeKind, rule: dict[str, Any]) -> str:
    if episode is not EpisodeKind.ERRORS:
        return f"stall:{episode.value}"
    return "429" if rule.get("status") == 429 else "5xx"


class Driver:
    """Plays a plan's timeline against the stack: sends, kills and restarts, fault episodes."""

    def __init__(self, stack: LocalStack, plan: Plan, budget: Budget) -> None:
        self._stack = stack
        self._plan = plan
        self._budget = budget
        self._documents = {r.request_id: json.dumps(r.document) for r in plan.requests}
        self._client = stack.bus()
        self._sender = self._client.get_queue_sender(BUILD_QUEUE)
        self._episode: FaultEpisode | None = None
        #: What was done: deliveries by kind, faults injected by kind, kills.
        self.deliveries: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.kills = 0

    def close(self) -> None:
        with contextlib.suppress(ServiceBusError, OSError):
            self._sender.close()
            self._client.close()

    def run_window(self) -> None:
        """Every planned event at its moment (ends of episodes first at equal times); each
        kill schedules its restart."""
        started = time.monotonic()
        planned: list[Delivery | Kill | FaultEpisode] = [
            *self._plan.deliveries,
            *self._plan.kills,
            *self._plan.episodes,
        ]
        events: list[tuple[float, int, int, Any]] = []
        for number, item in enumerate(planned):
            events.append((item.at, 1, number, item))
            if isinstance(item, FaultEpisode):
                events.append((item.at + item.seconds, 0, number, None))  # the episode's end
        heapq.heapify(events)
        number = len(events)
        while events:
            at, _, _, item = heapq.heappop(events)
            self._budget.sleep_until(started + at)
            if item is None:
                self._set_faults(None)
            elif isinstance(item, Delivery):
                self._send(item)
            elif isinstance(item, FaultEpisode):
                self._set_faults(item)
            elif isinstance(item, Kill):
                logger.info("t=%5.1fs kill the host (down %.1fs)", at, item.down_seconds)
                self._stack.kill_host()
                self.kills += 1
                number += 1
                heapq.heappush(events, (at + item.down_seconds, 2, number, "restart"))
            else:
                self._restart(at)
        self._set_faults(None)

    def send_late(self) -> None:
        """The copies planned for after every build finished."""
        began = time.monotonic()
        for delivery in self._plan.late:
            self._budget.sleep_until(began + delivery.at)
            self._send(delivery)

    def _restart(self, at: float) -> None:
        try:
            self._stack.restart_host()
        except (StartupError, OSError) as error:
            raise HarnessError(f"the host did not restart: {error}") from error
        logger.info("t=%5.1fs host restarted", at)

    def _send(self, delivery: Delivery) -> None:
        message = ServiceBusMessage(
            self._documents[delivery.request_id],
            message_id=delivery.message_id,
            content_type="application/json",
        )
        if delivery.delay:
            delay = timedelta(seconds=delivery.delay)
            message.scheduled_enqueue_time_utc = datetime.now(UTC) + delay
        for attempt in (1, 2):
            try:
                self._sender.send_messages(message, timeout=10)
                break
            except ServiceBusError:
                if attempt == 2:
                    raise
                self.close()  # a broken link: one new connection, then give up
                self._client = self._stack.bus()
                self._sender = self._client.get_queue_sender(BUILD_QUEUE)
        self.deliveries[delivery.kind.value] += 1

    def _set_faults(self, episode: FaultEpisode | None) -> None:
        """Count what the current episode injected, then replace it (``None``: no faults)."""
        if self._episode is not None:
            for rule in self._stack.arm_admin("faults").get("rules", []):
                if rule["hits"]:
                    self.faults[_fault_kind(self._episode.kind, rule)] += int(rule["hits"])
        self._episode = episode
        self._stack.arm_admin("faults", episode.config if episode else {})
        if episode is not None and episode.kind is not EpisodeKind.ERRORS:
            logger.info("t=%5.1fs fault episode %s", episode.at, episode.kind.value)


def wait_converged(stack: LocalStack, plan: Plan, budget: Budget, timeout: float) -> list[str]:
    """Observe until nothing is missing; return what still is when ``timeout`` ran out."""
    deadline = min(time.monotonic() + timeout, budget.deadline)
    while True:
        try:
            missing = converged(plan, observe(stack, plan))
        except (AzureError, ServiceBusError, OSError) as error:
            missing = [f"could not observe: {error.__class__.__name__}: {error}"]
        if not missing or time.monotonic() >= deadline:
            return missing
        time.sleep(POLL_SECONDS)
