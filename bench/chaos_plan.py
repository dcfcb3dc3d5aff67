"""The chaos suite's plan: everything one seed does, decided up front from the seed alone.

:func:`make_plan` turns a seed and a few sizes into a :class:`Plan`: the sources (snapshots) and
definitions to seed, the build requests (explicit versions and automatic policies), every
delivery of every request (the first, near-simultaneous copies, copies delayed by the broker,
re-sends with the same MessageId, and copies sent after the build finished), the host kills and
the fault episodes (5xx and 429 bursts, and stalls of a starter past its lease). The runner
(:mod:`bench.chaos`) only executes it, so two runs of one seed send the same traffic at the same
moments; what differs is the scheduling of threads and processes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from devstack.stack import GALLERY, RESOURCE_GROUP, SNAPSHOTS_ID, SUBSCRIPTION

#: The version every definition starts with (seeded, untagged). Automatic policies only ever
#: go above the highest version or into their own major, so they stay at 5.0.1 and up, and
#: the explicit versions (majors 1-3, a unique minor each) can never collide with them.
BASELINE_VERSION: Final = "5.0.0"
EXPLICIT_MAJORS: Final = (1, 2, 3)
LATEST_UNDER_MAJORS: Final = (5, 6, 7)
#: Seconds the lease of a starter lasts (``GALLERY_CLAIM_RECOVERY_SECONDS``) in the chaos stack.
LEASE_SECONDS: Final = 6
#: How long a stalled ARM call keeps its starter waiting: past the lease, the tracker's take-over
#: and a whole build at the chaos ARM speed (about 5 s), with a margin.
STALL_SECONDS: Final = 20
#: How long a stall episode's rule is armed (its count is 1: the first call inside it stalls).
STALL_EPISODE_SECONDS: Final = 10.0
#: Operation groups the 5xx/429 episodes pick from (what the pipeline calls while building).
FAULT_GROUPS: Final = (
    "GetGallery",
    "GetGalleryImage",
    "ListGalleryImageVersion",
    "GetGalleryImageVersion",
    "CreateUpdateGalleryImageVersion",
)
#: (policy, weight); ``None`` stands for an explicit ``target.version``.
POLICY_WEIGHTS: Final[tuple[tuple[str | None, int], ...]] = (
    (None, 25),
    ("nextPatch", 25),
    ("nextMinor", 10),
    ("nextMajor", 10),
    ("latestUnderMajor", 15),
    ("date", 15),
)


class CopyKind(StrEnum):
    FIRST = "first"  # the original message
    COPY = "copy"  # another MessageId, sent within seconds (races the first)
    DELAYED = "delayed"  # another MessageId, scheduled by the broker 5-60 s later
    RESEND = "resend"  # the same MessageId again (the broker's duplicate detection drops it)
    LATE = "late"  # another MessageId, sent once every build has finished


class EpisodeKind(StrEnum):
    ERRORS = "errors"  # 5xx and short 429s on a few operation groups, by probability
    LIST_STALL = "list-stall"  # the next version list answers 429, Retry-After past the lease
    PUT_STALL = "put-stall"  # the next version PUT answers 429, Retry-After past the lease
    SLOW_LIST = "slow-list"  # the next version list takes STALL_SECONDS to answer


@dataclass(frozen=True)
class Source:
    name: str
    definition: str

    @property
    def snapshot_id(self) -> str:
        return f"{SNAPSHOTS_ID}/{self.name}"


@dataclass(frozen=True)
class PlannedRequest:
    request_id: str
    source: Source
    #: The policy as sent (a string, ``{"latestUnderMajor": n}``) or None with ``version``.
    policy: str | dict[str, int] | None
    version: str | None
    document: dict[str, Any]

    @property
    def policy_label(self) -> str:
        if self.version is not None:
            return "explicit"
        return self.policy if isinstance(self.policy, str) else "latestUnderMajor"


@dataclass(frozen=True)
class Delivery:
    at: float  # seconds after the traffic starts (late copies: after every build finished)
    request_id: str
    message_id: str
    kind: CopyKind
    #: Broker-side delay (ScheduledEnqueueTimeUtc), seconds.
    delay: float = 0.0


@dataclass(frozen=True)
class Kill:
    at: float
    down_seconds: float


@dataclass(frozen=True)
class FaultEpisode:
    at: float
    seconds: float
    kind: EpisodeKind
    config: dict[str, Any]


@dataclass(frozen=True)
class Plan:
    seed: int
    window: float
    definitions: tuple[str, ...]
    sources: tuple[Source, ...]
    requests: tuple[PlannedRequest, ...]
    deliveries: tuple[Delivery, ...]  # during the window, by time
    late: tuple[Delivery, ...]
    kills: tuple[Kill, ...]
    episodes: tuple[FaultEpisode, ...]
    bursts: tuple[float, ...] = field(default=())

    def request(self, request_id: str) -> PlannedRequest:
        return next(r for r in self.requests if r.request_id == request_id)


def _request_document(
    rng: random.Random, request_id: str, source: Source, seed: int, target_extra: dict[str, Any]
) -> dict[str, Any]:
    regions: list[dict[str, Any]] = [{"name": "westeurope", "replicaCount": rng.choice((1, 2))}]
    if rng.random() < 0.5:
        regions.append({"name": "northeurope"})
    return {
        "requestId": request_id,
        "target": {
            "subscriptionId": SUBSCRIPTION,
            "resourceGroup": RESOURCE_GROUP,
            "gallery": GALLERY,
            "definition": source.definition,
            **target_extra,
        },
        "source": {"snapshot": {"id": source.snapshot_id}},
        "publishing": {
            "targetRegions": regions,
            "replicaCount": 1,
            "endOfLifeDate": "2030-01-01T00:00:00Z",
        },
        "tags": {"chaos-seed": str(seed)},
    }


def _requests(
    rng: random.Random, seed: int, count: int, sources: tuple[Source, ...]
) -> list[PlannedRequest]:
    owners = [sources[i % len(sources)] for i in range(count)]
    rng.shuffle(owners)
    policies = [p for p, _ in POLICY_WEIGHTS]
    weights = [w for _, w in POLICY_WEIGHTS]
    explicit_minor: dict[str, int] = {}
    planned: list[PlannedRequest] = []
    for index, source in enumerate(owners):
        request_id = f"chaos-s{seed}-r{index:03d}-{rng.getrandbits(32):08x}"
        policy: str | dict[str, int] | None = rng.choices(policies, weights)[0]
        version: str | None = None
        if policy is None:
            minor = explicit_minor[source.definition] = explicit_minor.get(source.definition, 0) + 1
            version = f"{rng.choice(EXPLICIT_MAJORS)}.{minor}.{rng.randint(0, 9)}"
            extra: dict[str, Any] = {"version": version}
        else:
            if policy == "latestUnderMajor":
                policy = {"latestUnderMajor": rng.choice(LATEST_UNDER_MAJORS)}
            extra = {"versionPolicy": policy}
        document = _request_document(rng, request_id, source, seed, extra)
        planned.append(PlannedRequest(request_id, source, policy, version, document))
    return planned


def _deliveries(
    rng: random.Random, requests: list[PlannedRequest], bursts: list[float]
) -> tuple[list[Delivery], list[Delivery]]:
    """Per source, requests go in chunks of 2-4 into one burst each, so they queue behind each
    other; each request then gets 1-2 more copies of a random kind."""
    by_source: dict[Source, list[PlannedRequest]] = {}
    for request in requests:
        by_source.setdefault(request.source, []).append(request)
    chunks: list[list[PlannedRequest]] = []
    for source_requests in by_source.values():
        pending = list(source_requests)
        while pending:
            size = min(len(pending), rng.randint(2, 4))
            chunks.append(pending[:size])
            pending = pending[size:]
    rng.shuffle(chunks)  # then dealt over the bursts in turn: every burst gets traffic
    first_at: dict[str, float] = {}
    for number, chunk in enumerate(chunks):
        start = bursts[number % len(bursts)]
        for request in chunk:
            first_at[request.request_id] = start + rng.uniform(0.0, 5.0)
    kinds = [CopyKind.COPY, CopyKind.DELAYED, CopyKind.LATE, CopyKind.RESEND]
    weights = [35, 30, 25, 10]
    window: list[Delivery] = []
    late: list[Delivery] = []
    for request in requests:
        rid = request.request_id
        at = first_at[rid]
        window.append(Delivery(at, rid, rid, CopyKind.FIRST))
        for number in range(1, rng.choice((1, 2)) + 1):
            kind = rng.choices(kinds, weights)[0]
            copy_id = f"{rid}.copy{number}"
            if kind is CopyKind.COPY:
                window.append(Delivery(at + rng.uniform(0.0, 3.0), rid, copy_id, kind))
            elif kind is CopyKind.DELAYED:
                delay = rng.uniform(5.0, 60.0)
                window.append(Delivery(at + rng.uniform(0.0, 2.0), rid, copy_id, kind, delay))
            elif kind is CopyKind.RESEND:
                window.append(Delivery(at + rng.uniform(0.5, 5.0), rid, rid, kind))
            else:
                late.append(Delivery(rng.uniform(0.0, 5.0), rid, copy_id, kind))
    return sorted(window, key=lambda d: d.at), sorted(late, key=lambda d: d.at)


def _stall_bursts(bursts: list[float]) -> list[float]:
    """The bursts a stall episode opens: every other one (the others get kills)."""
    return bursts[::2]


def _kills(
    rng: random.Random, count: int, window: float, bursts: list[float], stalls: list[float]
) -> list[Kill]:
    """Half of the kills land in the first seconds of a burst without a stall (workers
    mid-start), the others anywhere; none lands in a stall episode or before its stalled call
    resumed (that starter must live to resume late). Each leaves the host down 0.5-6 s; kills
    keep apart so that every restart completes first."""
    kill_bursts = [b for b in bursts if b not in _stall_bursts(bursts)] or bursts
    wanted = [rng.choice(kill_bursts) + rng.uniform(0.3, 10.0) for _ in range((count + 1) // 2)]
    wanted += [rng.uniform(5.0, window) for _ in range(count - len(wanted))]
    kills: list[Kill] = []
    for wanted_at in sorted(wanted):
        at = wanted_at
        if kills and at < kills[-1].at + kills[-1].down_seconds + 8.0:
            at = kills[-1].at + kills[-1].down_seconds + 8.0
        for stall_at in sorted(stalls):  # only ever later: the spacing above still holds
            # the stalled call may come at any moment of the episode, and resumes after it
            stall_end = stall_at + STALL_EPISODE_SECONDS + STALL_SECONDS + 5.0
            if stall_at - 1.0 <= at < stall_end:
                at = stall_end
        kills.append(Kill(at, round(rng.uniform(0.5, 6.0), 2)))
    return kills


def _error_rules(rng: random.Random) -> dict[str, Any]:
    rules = []
    for group in rng.sample(FAULT_GROUPS, rng.randint(3, len(FAULT_GROUPS))):
        status = rng.choice((500, 503, 504, 429, 429))
        rule: dict[str, Any] = {
            "group": group,
            "status": status,
            "probability": round(rng.uniform(0.15, 0.5), 2),
        }
        if status == 429 or (status == 503 and rng.random() < 0.5):
            rule["retryAfter"] = rng.randint(1, 3)
        rules.append(rule)
    return {"ruleSeed": rng.randrange(2**31), "rules": rules}


def _stall_config(kind: EpisodeKind) -> dict[str, Any]:
    if kind is EpisodeKind.LIST_STALL:
        rule = {"group": "ListGalleryImageVersion", "status": 429, "retryAfter": STALL_SECONDS}
    elif kind is EpisodeKind.PUT_STALL:
        rule = {
            "group": "CreateUpdateGalleryImageVersion",
            "status": 429,
            "retryAfter": STALL_SECONDS,
        }
    else:
        rule = {"group": "ListGalleryImageVersion", "delayMs": STALL_SECONDS * 1000}
    return {"rules": [{**rule, "count": 1}]}


def _episodes(rng: random.Random, window: float, bursts: list[float]) -> list[FaultEpisode]:
    """A stall episode opens every other burst (its first starter is the one stalled); 5xx/429
    episodes fill the rest of the time, with quiet gaps. Episodes never overlap (a fault
    configuration replaces the previous one)."""
    stall_kinds = [EpisodeKind.LIST_STALL, EpisodeKind.PUT_STALL, EpisodeKind.SLOW_LIST]
    rng.shuffle(stall_kinds)
    stall_bursts = _stall_bursts(bursts)
    episodes: list[FaultEpisode] = []
    ends = [*bursts[1:], window]
    for start, next_start in zip(bursts, ends, strict=True):
        at = start + rng.uniform(0.0, 4.0)
        if start in stall_bursts:
            kind = stall_kinds[stall_bursts.index(start) % len(stall_kinds)]
            stall_at = max(0.0, start - 0.3)
            config = _stall_config(kind)
            episodes.append(FaultEpisode(stall_at, STALL_EPISODE_SECONDS, kind, config))
            at = stall_at + STALL_EPISODE_SECONDS + rng.uniform(3.0, 8.0)
        while at + 8.0 < next_start - 1.0:
            seconds = min(rng.uniform(8.0, 20.0), next_start - 1.0 - at)
            episodes.append(FaultEpisode(at, seconds, EpisodeKind.ERRORS, _error_rules(rng)))
            at += seconds + rng.uniform(3.0, 10.0)
    return episodes


def make_plan(seed: int, *, requests: int, sources: int, kills: int, window: float) -> Plan:
    """The whole plan of one seed (same seed and sizes, same plan)."""
    rng = random.Random(seed)
    definitions = tuple(f"chaos-d{n}" for n in range(max(2, sources // 2)))
    source_list = tuple(
        Source(f"chaos-s{n}", definitions[n % len(definitions)]) for n in range(sources)
    )
    planned = _requests(rng, seed, requests, source_list)
    burst_count = max(3, round(window / 50))
    spacing = 0.8 * window / burst_count
    bursts = [3.0 + n * spacing + rng.uniform(0.0, 5.0) for n in range(burst_count)]
    window_deliveries, late = _deliveries(rng, planned, bursts)
    episodes = _episodes(rng, window, bursts)
    stalls = [e.at for e in episodes if e.kind is not EpisodeKind.ERRORS]
    return Plan(
        seed=seed,
        window=window,
        definitions=definitions,
        sources=source_list,
        requests=tuple(planned),
        deliveries=tuple(window_deliveries),
        late=tuple(late),
        kills=tuple(_kills(rng, kills, window, bursts, stalls)),
        episodes=tuple(episodes),
        bursts=tuple(bursts),
    )
