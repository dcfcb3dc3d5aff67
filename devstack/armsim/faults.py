"""Injected faults, set through ``POST /admin/faults`` and persisted with the state.

* ``latencyMs``: added to every ARM response;
* ``errorRates``: ``{operationGroup: probability}`` of answering 500 InternalExecutionError;
* ``replicationFailures``: ``{region: message}``: new version operations fail in that region
  halfway through its replication (operation error code :data:`REPLICATION_FAILED_CODE`);
* ``slowRegions``: ``{region: factor}``: replication to that region takes ``factor`` times longer;
* ``slowOperations``: factor applied to every new version operation's duration;
* ``throttle``: ``{operationGroup: {"limit": n, "windowSeconds": s}}`` shrinks a bucket;
* ``rules``: targeted faults, each scoped to one operation group (which names the method and the
  resource path's shape, e.g. ``ListGalleryImageVersion`` is ``GET .../images/{i}/versions``):
  ``{"group": "ListGalleryImageVersion", "status": 429, "retryAfter": 20, "delayMs": 0,
  "probability": 1.0, "count": 1}``. For every ARM request the first rule of its group (or of
  ``"*"``) that still has a ``count`` left and wins its ``probability`` draw fires: it waits
  ``delayMs`` (outside the simulator's lock), then answers ``status`` (429 with the throttling
  body, 500 ``InternalExecutionError``, 503 ``ServiceUnavailable`` or 504 ``GatewayTimeout``;
  ``Retry-After: retryAfter`` when given, always on a 429) before the request reaches its
  handler, so nothing changes; without ``status`` the request goes on after the delay.
  ``ruleSeed`` seeds the draws. ``GET /admin/faults`` shows each rule's remaining ``count`` and
  its ``hits``; counts run down in memory (a restart starts from the posted ones).
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devstack.armsim.errors import ArmError, internal_error
from devstack.armsim.regions import region_key

#: Operation error code when an injected replication failure hits a region.
REPLICATION_FAILED_CODE = "ReplicationFailed"
#: The statuses a fault rule can answer with.
RULE_STATUSES = (429, 500, 503, 504)


def rule_error(status: int, group: str, retry_after: int | None) -> ArmError:
    """The error a fault rule answers: ARM's body for that status (429: CRP's throttling body)."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
    if status == 429:
        detail = {"operationGroup": f"{group}3Min"}
        return ArmError(
            429,
            "OperationNotAllowed",
            "The server rejected the request because too many requests have been received "
            "for this subscription.",
            details=[
                {
                    "code": "TooManyRequests",
                    "target": f"{group}3Min",
                    "message": json.dumps(detail),
                }
            ],
            headers={"Retry-After": str(retry_after if retry_after is not None else 1)},
        )
    if status == 503:
        error = ArmError(
            503,
            "ServiceUnavailable",
            "The service is currently unavailable. Please retry the request later.",
        )
    elif status == 504:
        error = ArmError(
            504,
            "GatewayTimeout",
            "The gateway did not receive a response from 'Microsoft.Compute' within the "
            "specified time period.",
        )
    else:
        error = internal_error()
    error.headers.update(headers)
    return error


@dataclass
class FaultRule:
    """One targeted fault (see the module docstring); ``count`` is what is left of it."""

    group: str = "*"
    status: int | None = None
    retry_after: int | None = None
    delay_ms: int = 0
    probability: float = 1.0
    count: int | None = None
    hits: int = 0

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FaultRule:
        rule = cls(
            group=str(data.get("group", "*")),
            status=int(data["status"]) if data.get("status") is not None else None,
            retry_after=int(data["retryAfter"]) if data.get("retryAfter") is not None else None,
            delay_ms=int(data.get("delayMs", 0)),
            probability=float(data.get("probability", 1.0)),
            count=int(data["count"]) if data.get("count") is not None else None,
            hits=int(data.get("hits", 0)),
        )
        if rule.status is not None and rule.status not in RULE_STATUSES:
            raise ValueError(f"rule status must be one of {RULE_STATUSES}, not {rule.status}")
        if rule.status is None and rule.delay_ms <= 0:
            raise ValueError("a rule needs a status, a delayMs, or both")
        if not 0 <= rule.probability <= 1 or rule.delay_ms < 0 or (rule.count or 0) < 0:
            raise ValueError("0 <= probability <= 1, delayMs >= 0 and count >= 0")
        return rule

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"group": self.group, "probability": self.probability}
        if self.status is not None:
            data["status"] = self.status
        if self.retry_after is not None:
            data["retryAfter"] = self.retry_after
        if self.delay_ms:
            data["delayMs"] = self.delay_ms
        if self.count is not None:
            data["count"] = self.count
        data["hits"] = self.hits
        return data


@dataclass
class Faults:
    """The current fault configuration."""

    latency_ms: int = 0
    error_rates: dict[str, float] = field(default_factory=dict)
    replication_failures: dict[str, str] = field(default_factory=dict)
    slow_regions: dict[str, float] = field(default_factory=dict)
    throttle: dict[str, dict[str, float]] = field(default_factory=dict)
    throttle_retry_after: int | None = None
    #: Multiplies every version operation's simulated duration (build, replication, delete).
    slow_operations: float = 1.0
    rules: list[FaultRule] = field(default_factory=list)
    rule_seed: int | None = None
    _rules_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )
    _rules_rng: random.Random | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Faults:
        """Validate and build from the admin API body; raises ArmError 400 on bad input."""
        try:
            faults = cls(
                latency_ms=int(data.get("latencyMs", 0)),
                error_rates={str(k): float(v) for k, v in data.get("errorRates", {}).items()},
                replication_failures={
                    region_key(str(k)): str(v)
                    for k, v in data.get("replicationFailures", {}).items()
                },
                slow_regions={
                    region_key(str(k)): float(v) for k, v in data.get("slowRegions", {}).items()
                },
                throttle={
                    str(group): {
                        "limit": float(spec["limit"]),
                        "windowSeconds": float(spec.get("windowSeconds", 180)),
                    }
                    for group, spec in data.get("throttle", {}).items()
                },
                slow_operations=float(data.get("slowOperations", 1.0)),
                throttle_retry_after=(
                    int(data["throttleRetryAfter"]) if "throttleRetryAfter" in data else None
                ),
                rules=[FaultRule.from_json(dict(rule)) for rule in data.get("rules", [])],
                rule_seed=int(data["ruleSeed"]) if data.get("ruleSeed") is not None else None,
            )
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise ArmError(400, "InvalidFaults", f"invalid fault configuration: {exc}") from exc
        if faults.latency_ms < 0 or any(not 0 <= r <= 1 for r in faults.error_rates.values()):
            raise ArmError(400, "InvalidFaults", "latencyMs >= 0 and 0 <= errorRates <= 1")
        if faults.slow_operations <= 0 or any(f <= 0 for f in faults.slow_regions.values()):
            raise ArmError(400, "InvalidFaults", "slowRegions factors must be positive")
        return faults

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "latencyMs": self.latency_ms,
            "errorRates": self.error_rates,
            "replicationFailures": self.replication_failures,
            "slowRegions": self.slow_regions,
            "throttle": self.throttle,
            "slowOperations": self.slow_operations,
        }
        if self.throttle_retry_after is not None:
            data["throttleRetryAfter"] = self.throttle_retry_after
        with self._rules_lock:
            data["rules"] = [rule.to_json() for rule in self.rules]
        if self.rule_seed is not None:
            data["ruleSeed"] = self.rule_seed
        return data

    def should_fail(self, group: str, rng: random.Random) -> bool:
        """Whether this request of ``group`` gets an injected 500 (``errorRates``).

        The fault ``rules`` are applied first: a firing rule waits its ``delayMs`` here (the
        caller holds no lock) and raises its :class:`ArmError` when it has a ``status``.
        """
        self._apply_rules(group, rng)
        rate = self.error_rates.get(group, self.error_rates.get("*", 0.0))
        return rate > 0 and rng.random() < rate

    def _apply_rules(self, group: str, rng: random.Random) -> None:
        if not self.rules:
            return
        with self._rules_lock:
            fired = self._firing_rule(group, rng)
            if fired is None:
                return
            fired.hits += 1
            if fired.count is not None:
                fired.count -= 1
            delay, status, retry_after = fired.delay_ms, fired.status, fired.retry_after
        if delay:
            time.sleep(delay / 1000)
        if status is not None:
            raise rule_error(status, group, retry_after)

    def _firing_rule(self, group: str, rng: random.Random) -> FaultRule | None:
        """The first rule for ``group`` with a count left that wins its draw (lock held)."""
        if self.rule_seed is not None and self._rules_rng is None:
            self._rules_rng = random.Random(self.rule_seed)
        draw = self._rules_rng or rng
        for rule in self.rules:
            if rule.group not in (group, "*") or rule.count == 0:
                continue
            if rule.probability >= 1 or draw.random() < rule.probability:
                return rule
        return None
