"""What the chaos suite observes after a seed, and the invariants it checks.

Everything is read from the outside of the app: image versions through the ARM simulator's
API (the real SDK), the simulator's own counters and log, the queues and their dead-letter
queues through the Service Bus emulator (peek, nothing is consumed), and the app's documents
(ledger, build records, version reservations) straight from their blobs in Azurite. The
app's own records are only compared against the gallery, never trusted alone.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from azure.servicebus import ServiceBusSubQueue

from bench.chaos_plan import BASELINE_VERSION, Plan
from devstack.stack import GALLERY, RESOURCE_GROUP, LocalStack
from shared.builds.ledger import build_id_for
from shared.builds.version_body import TAG_BUILD_ID, TAG_REQUEST_ID

BUILD_QUEUE: Final = "image-builds"
REJECTED_QUEUE: Final = "image-builds-rejected"
LEDGER_CONTAINER: Final = "gallery-pipeline-ledger"
PEEK_LIMIT: Final = 250
#: Where the rejects relay carries a rejection's reason (``shared.adapters.service_bus``).
RELAY_REASON: Final = "gallery-pipeline.reject-reason"
RELAY_DESCRIPTION: Final = "gallery-pipeline.reject-description"
#: An image version operation the simulator finished, from its log (``Simulator._finalize``).
_OPERATION_LINE: Final = re.compile(
    r"operation (?P<op>\S+) \((?P<kind>\w+) (?P<resource>\S+)\) finished: (?P<status>\w+)"
)


@dataclass(frozen=True)
class ArmVersion:
    definition: str
    name: str
    state: str
    request_id: str | None
    build_id: str | None
    source_id: str | None


@dataclass(frozen=True)
class PeekedMessage:
    entity: str
    message_id: str
    reason: str
    description: str


@dataclass
class Observed:
    """One look at the stack from the outside."""

    versions: list[ArmVersion] = field(default_factory=list)
    #: entity path -> messages still there (queues, relay, dead-letter queues)
    messages: dict[str, list[PeekedMessage]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)  # build id -> record
    reservations: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> {build: ...}
    ledger: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> source entry
    markers: list[str] = field(default_factory=list)  # active-index keys
    #: Version operations other than create/delete (a re-PUT of an existing version).
    rewrites: list[Rewrite] = field(default_factory=list)

    def busy_sources(self) -> list[dict[str, Any]]:
        return [e for e in self.ledger.values() if e.get("inFlight") or e.get("pending")]

    def held_reservations(self) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.reservations.items() if v}

    def left(self, entity: str) -> list[PeekedMessage]:
        return self.messages.get(entity, [])


@dataclass(frozen=True)
class Violation:
    kind: str
    detail: str
    #: Request or build ids (or other texts) whose host log lines are evidence.
    ids: tuple[str, ...] = ()
    #: When set, an evidence line must also contain this text.
    require: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


# --- observing ----------------------------------------------------------------------------------


def list_versions(stack: LocalStack, definitions: Iterable[str]) -> list[ArmVersion]:
    """Every image version of the definitions, through the simulator's ARM API."""
    found: list[ArmVersion] = []
    with stack.compute(retry_total=3, connection_timeout=5, read_timeout=20) as compute:
        for definition in definitions:
            for item in compute.gallery_image_versions.list_by_gallery_image(
                RESOURCE_GROUP, GALLERY, definition
            ):
                tags = item.tags or {}
                state = item.provisioning_state  # an enum of str; its value is ARM's text
                storage = item.storage_profile
                os_disk = storage.os_disk_image if storage is not None else None
                source = os_disk.source if os_disk is not None else None
                found.append(
                    ArmVersion(
                        definition=definition,
                        name=str(item.name),
                        state=str(getattr(state, "value", state)),
                        request_id=tags.get(TAG_REQUEST_ID),
                        build_id=tags.get(TAG_BUILD_ID),
                        source_id=getattr(source, "id", None),
                    )
                )
    return found


def peek_messages(stack: LocalStack) -> dict[str, list[PeekedMessage]]:
    """What is left in the build queue, the rejects relay and both dead-letter queues."""
    entities = (
        (BUILD_QUEUE, None),
        (f"{BUILD_QUEUE}/$deadletterqueue", ServiceBusSubQueue.DEAD_LETTER),
        (REJECTED_QUEUE, None),
        (f"{REJECTED_QUEUE}/$deadletterqueue", ServiceBusSubQueue.DEAD_LETTER),
    )
    found: dict[str, list[PeekedMessage]] = {}
    with stack.bus() as client:
        for name, sub_queue in entities:
            queue = name.split("/", 1)[0]
            with client.get_queue_receiver(queue, sub_queue=sub_queue) as receiver:
                peeked = receiver.peek_messages(max_message_count=PEEK_LIMIT, timeout=10)
            found[name] = [
                PeekedMessage(
                    entity=name,
                    message_id=str(message.message_id),
                    reason=str(
                        message.dead_letter_reason or _properties(message).get(RELAY_REASON, "")
                    ),
                    description=str(
                        message.dead_letter_error_description
                        or _properties(message).get(RELAY_DESCRIPTION, "")
                    )[:300],
                )
                for message in peeked
            ]
    return found


def _properties(message: Any) -> dict[str, str]:
    """A received message's application properties with text keys and values."""
    return {
        (k.decode() if isinstance(k, bytes) else str(k)): (
            v.decode() if isinstance(v, bytes) else str(v)
        )
        for k, v in (message.application_properties or {}).items()
    }


def read_documents(stack: LocalStack, prefix: str) -> dict[str, dict[str, Any]]:
    """The app's JSON documents under ``prefix`` in its ledger container, by key."""
    container = stack.blob_service().get_container_client(LEDGER_CONTAINER)
    if not container.exists(timeout=10):
        return {}
    documents: dict[str, dict[str, Any]] = {}
    for blob in container.list_blobs(name_starts_with=prefix, timeout=10):
        key = str(blob.name)[len(prefix) :].removesuffix(".json")
        payload = container.download_blob(blob.name, timeout=10).readall()
        documents[key] = json.loads(payload)
    return documents


@dataclass(frozen=True)
class Rewrite:
    """An image version operation that was neither a create nor a delete, from the simulator's
    log: a PUT (or PATCH) on a version that already existed."""

    at: str  # the log line's time (when the operation finished)
    kind: str
    definition: str
    version: str


def version_rewrites(armsim_log: Path) -> list[Rewrite]:
    """Every :class:`Rewrite` in the simulator's log. The pipeline never updates the versions
    it builds: each one is a second PUT of a version."""
    found: list[Rewrite] = []
    try:
        lines = armsim_log.read_text(errors="replace").splitlines()
    except OSError:
        return found
    for line in lines:
        match = _OPERATION_LINE.search(line)
        if match is None or match["kind"] in ("create", "delete"):
            continue
        path = match["resource"].rsplit("/images/", 1)[-1]  # {definition}/versions/{name}
        definition, _, version = path.partition("/versions/")
        if version:
            found.append(Rewrite(line[:23], match["kind"], definition, version))
    return found


def observe(stack: LocalStack, plan: Plan) -> Observed:
    reservations = read_documents(stack, "reservations/")
    return Observed(
        versions=list_versions(stack, plan.definitions),
        messages=peek_messages(stack),
        stats=stack.arm_admin("stats"),
        records=read_documents(stack, "builds/"),
        reservations={
            key: dict(doc.get("reservations") or {}) for key, doc in reservations.items()
        },
        ledger=read_documents(stack, "sources/"),
        markers=sorted(read_documents(stack, "active/")),
        rewrites=version_rewrites(stack.layout.log_file("armsim")),
    )


def converged(plan: Plan, seen: Observed) -> list[str]:
    """What is still missing for the seed to be over (empty: done)."""
    missing: list[str] = []
    succeeded = {v.request_id for v in seen.versions if v.state == "Succeeded" and v.request_id}
    waiting = [r.request_id for r in plan.requests if r.request_id not in succeeded]
    if waiting:
        missing.append(f"{len(waiting)} requests without a succeeded version")
    if seen.busy_sources():
        missing.append(f"{len(seen.busy_sources())} sources busy in the ledger")
    if seen.held_reservations():
        missing.append(f"{len(seen.held_reservations())} definitions with reservations")
    for entity in (BUILD_QUEUE, REJECTED_QUEUE):
        if seen.left(entity):
            missing.append(f"{len(seen.left(entity))} messages on {entity}")
    return missing


# --- checking -----------------------------------------------------------------------------------


def _version_checks(plan: Plan, seen: Observed) -> list[Violation]:
    found: list[Violation] = []
    by_request: dict[str, list[ArmVersion]] = {}
    for version in seen.versions:
        if version.request_id is None:
            if version.name != BASELINE_VERSION:
                found.append(
                    Violation(
                        "stray-version",
                        f"{version.definition}/{version.name} has no request-id tag",
                    )
                )
            continue
        by_request.setdefault(version.request_id, []).append(version)
    planned = {r.request_id: r for r in plan.requests}
    for request_id, versions in sorted(by_request.items()):
        names = ", ".join(f"{v.definition}/{v.name} ({v.state})" for v in versions)
        if request_id not in planned:
            found.append(Violation("stray-version", f"{names}: unknown request {request_id}"))
            continue
        if len(versions) > 1:
            found.append(
                Violation(
                    "duplicate-version",
                    f"request {request_id} has {len(versions)} versions: {names}",
                    (request_id,),
                )
            )
        request = planned[request_id]
        for version in versions:
            problems = []
            if version.state != "Succeeded":
                problems.append(f"state {version.state}")
            if version.definition != request.source.definition:
                problems.append(f"definition {version.definition}")
            if (version.source_id or "").lower() != request.source.snapshot_id.lower():
                problems.append(f"source {version.source_id}")
            if request.version is not None and version.name != request.version:
                problems.append(f"name {version.name}, requested {request.version}")
            if version.build_id != build_id_for(request_id):
                problems.append(f"build-id tag {version.build_id}")
            if problems:
                found.append(
                    Violation(
                        "wrong-version",
                        f"{version.definition}/{version.name} of {request_id}: "
                        + "; ".join(problems),
                        (request_id,),
                    )
                )
    for request_id, request in planned.items():
        if request_id not in by_request:
            found.append(
                Violation(
                    "lost-request",
                    f"request {request_id} ({request.policy_label}, "
                    f"{request.source.name}) has no image version",
                    (request_id,),
                )
            )
    return found


def _broker_checks(seen: Observed) -> list[Violation]:
    found: list[Violation] = []
    for entity, messages in sorted(seen.messages.items()):
        kind = "dead-lettered" if entity.endswith("$deadletterqueue") else "message-left"
        for message in messages:
            request_id = message.message_id.split(".copy", 1)[0].split("~retry", 1)[0]
            found.append(
                Violation(
                    kind,
                    f"{entity}: {message.message_id} {message.reason} {message.description}",
                    (request_id,),
                )
            )
    return found


def _source_checks(seen: Observed) -> list[Violation]:
    found: list[Violation] = []
    conflicts = int(seen.stats.get("sourceConflicts", 0))
    if conflicts:
        sources = sorted(set(seen.stats.get("sourceConflictIds") or []))
        found.append(
            Violation(
                "source-conflict",
                f"ARM refused {conflicts} version PUTs from a busy source "
                f"('Too many requests on source'): {', '.join(sources)}",
                tuple(f"source={key}{end}" for key in sources for end in (" ", "]")),
                require="SourceBusy",
            )
        )
    owners = {(v.definition, v.name): v.request_id for v in seen.versions}
    for rewrite in seen.rewrites:
        owner = owners.get((rewrite.definition, rewrite.version))
        found.append(
            Violation(
                "version-rewritten",
                f"{rewrite.definition}/{rewrite.version} (of {owner}) was PUT again after it "
                f"existed: an '{rewrite.kind}' operation finished at {rewrite.at}",
                (owner,) if owner else (),
            )
        )
    for entry in seen.busy_sources():
        in_flight = entry.get("inFlight") or {}
        found.append(
            Violation(
                "source-busy",
                f"{entry.get('sourceKey')}: in flight {in_flight.get('buildId')} "
                f"({in_flight.get('state')}), {len(entry.get('pending') or [])} pending",
                tuple(str(p.get("requestId")) for p in entry.get("pending") or [])
                + ((str(in_flight["requestId"]),) if in_flight.get("requestId") else ()),
            )
        )
    idle = {key for key, entry in seen.ledger.items() if entry not in seen.busy_sources()}
    found += [
        Violation("active-marker-left", f"active/{key} marks an idle source")
        for key in seen.markers
        if key in idle
    ]
    for key, held in sorted(seen.held_reservations().items()):
        found.append(
            Violation(
                "reservation-left",
                f"reservations/{key}: {json.dumps(held)}",
                tuple(held),
            )
        )
    return found


def _record_checks(plan: Plan, seen: Observed) -> list[Violation]:
    found: list[Violation] = []
    versions = {(v.definition, v.name): v for v in seen.versions}
    expected = {build_id_for(r.request_id): r for r in plan.requests}
    for build_id, record in sorted(seen.records.items()):
        request_id = str(record.get("requestId"))
        state = str(record.get("state"))
        target = record.get("target") or {}
        if build_id not in expected:
            found.append(Violation("stray-record", f"builds/{build_id} ({request_id}, {state})"))
        if state not in ("succeeded", "failed"):
            found.append(
                Violation("record-not-final", f"{build_id} ({request_id}) is {state}", (build_id,))
            )
        elif state == "failed":
            error = record.get("error") or {}
            found.append(
                Violation(
                    "record-failed",
                    f"{build_id} ({request_id}) failed: {error.get('reason')}: "
                    f"{str(error.get('message'))[:300]}",
                    (request_id, build_id),
                )
            )
        else:
            version = versions.get((str(target.get("definition")), str(target.get("version"))))
            if version is None or version.request_id != request_id:
                shown = "missing" if version is None else f"tagged {version.request_id}"
                found.append(
                    Violation(
                        "record-version-mismatch",
                        f"{build_id} ({request_id}) succeeded with "
                        f"{target.get('definition')}/{target.get('version')}: {shown}",
                        (request_id, build_id),
                    )
                )
    for build_id, request in expected.items():
        if build_id not in seen.records:
            found.append(
                Violation(
                    "record-missing",
                    f"no build record for {request.request_id} ({build_id})",
                    (request.request_id,),
                )
            )
    return found


def check(plan: Plan, seen: Observed) -> list[Violation]:
    """Every invariant of a finished seed; empty when all hold."""
    return [
        *_version_checks(plan, seen),
        *_broker_checks(seen),
        *_source_checks(seen),
        *_record_checks(plan, seen),
    ]


def evidence(log: Path, violation: Violation, *, limit: int = 40) -> list[str]:
    """The host log's lines naming any of the violation's ids (a request id also stands for
    its build id) and holding its ``require`` text, the last ``limit`` of them."""
    if not violation.ids:
        return []
    wanted = set(violation.ids) | {build_id_for(i) for i in violation.ids if i.startswith("chaos-")}
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [
        line
        for line in lines
        if any(i in line for i in wanted)
        and (violation.require is None or violation.require in line)
    ]
    return found[-limit:]


#: What the app did under the chaos, from its host log (context for the figures, not a check):
#: (name, texts that together mark one such line).
_ACTIVITY: Final = (
    ("parked", ("ledger claim [", "outcome=parked]")),
    ("redelivery recognised", ("ledger claim [", "outcome=adopted]")),
    ("redelivery recognised", ("ledger claim [", "outcome=already-parked]")),
    ("redelivery recognised", ("ledger claim [", "outcome=already-done]")),
    ("claim taken over", ("recovering a claim whose starter's lease ran out",)),
    ("starter superseded", ("build start superseded",)),
    ("deferred to the tracker", ("build deferred to the tracker",)),
)


def host_activity(log: Path) -> Counter[str]:
    """How often the host log shows each of :data:`_ACTIVITY` (parks, take-overs...)."""
    counts: Counter[str] = Counter()
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return counts
    for line in text.splitlines():
        for name, needles in _ACTIVITY:
            if all(needle in line for needle in needles):
                counts[name] += 1
    return counts
