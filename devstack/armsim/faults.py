"""Injected faults, set through ``POST /admin/faults`` and persisted with the state.

* ``latencyMs``: added to every ARM response;
* ``errorRates``: ``{operationGroup: probability}`` of answering 500 InternalExecutionError;
* ``replicationFailures``: ``{region: message}``: new version operations fail in that region
  halfway through its replication (operation error code :data:`REPLICATION_FAILED_CODE`);
* ``slowRegions``: ``{region: factor}``: replication to that region takes ``factor`` times longer;
* ``slowOperations``: factor applied to every new version operation's duration;
* ``throttle``: ``{operationGroup: {"limit": n, "windowSeconds": s}}`` shrinks a bucket.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from devstack.armsim.errors import ArmError
from devstack.armsim.regions import region_key

#: Operation error code when an injected replication failure hits a region.
REPLICATION_FAILED_CODE = "ReplicationFailed"


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
        return data

    def should_fail(self, group: str, rng: random.Random) -> bool:
        rate = self.error_rates.get(group, self.error_rates.get("*", 0.0))
        return rate > 0 and rng.random() < rate
