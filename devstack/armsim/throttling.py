"""Per-operation-group token buckets, sized from the real ``x-ms-ratelimit-remaining-resource``.

Each group has a 3-minute and a 30-minute window, as Compute reports them. A bucket refills
continuously (``limit`` tokens per window). Every Compute response names its group and what
remains; an empty bucket gives 429 with the CRP body shape and a small ``Retry-After``.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from dataclasses import dataclass

from devstack.armsim.errors import ArmError

#: group -> (3-minute limit, 30-minute limit); from real recordings (gallery-api.md §1.4).
#: Groups marked "assumed" were not in the recordings and reuse a sibling's sizes.
GROUP_LIMITS: dict[str, tuple[int, int]] = {
    "CreateUpdateGalleryImageVersion": (375, 1200),
    "GetGalleryImageVersion": (2000, 10000),
    "DeleteGalleryImageVersion": (150, 1000),
    "ListGalleryImageVersion": (600, 3000),  # assumed (as GetGalleryImage)
    "CreateUpdateGallery": (50, 300),
    "GetGallery": (600, 3000),  # assumed
    "DeleteGallery": (50, 300),
    "ListGalleryInResourceGroup": (100, 1000),
    "CreateUpdateGalleryImage": (150, 750),
    "GetGalleryImage": (600, 3000),
    "DeleteGalleryImage": (50, 300),
    "ListGalleryImage": (600, 3000),  # assumed
    "GetOperationStatus": (5000, 15000),
    # DiskRP and CRP groups as recorded (azure-cli / azure-sdk-for-python recordings 2021-2025):
    "LowCostGet": (15000, 120000),  # disks and snapshots GET
    "HighCostGet": (300, 2400),  # lists (assumed)
    "CreateUpdateDisks": (3000, 25000),  # disk PUT/PATCH, snapshot PATCH and empty PUT
    "HighCostSnapshotCreateHydrate": (1000, 8000),  # snapshot PUT copying a source
    "DeleteDisks": (3000, 24000),
    "GetOperation": (15000, 30000),  # DiskOperations / operations polls (CRP's, the lower)
    "CreateImages": (40, 200),  # managed images
    "GetImages": (360, 1800),
    "DeleteImages": (120, 600),
    "PutVM": (240, 1200),  # VMs and scale sets (assumed)
    "DeleteVM": (240, 1200),
}

WINDOW_3MIN = 180.0
WINDOW_30MIN = 1800.0


class TokenBucket:
    """A bucket of ``limit`` tokens refilled evenly over ``window`` real seconds."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.tokens = float(limit)
        self.updated = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(
            float(self.limit), self.tokens + (now - self.updated) * self.limit / self.window
        )
        self.updated = now

    def remaining(self) -> int:
        self._refill()
        return max(0, math.floor(self.tokens))

    def available(self) -> bool:
        self._refill()
        return self.tokens >= 1.0

    def take(self) -> None:
        self.tokens -= 1.0

    def seconds_until_token(self) -> float:
        self._refill()
        missing = max(0.0, 1.0 - self.tokens)
        return missing * self.window / self.limit


@dataclass(frozen=True)
class ThrottleOverride:
    """Replace the 3-minute window of one group (tests shrink it to see 429s quickly)."""

    limit: int
    window_seconds: float


class Throttler:
    """Buckets for every group, created on first use."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}
        self._overrides: dict[str, ThrottleOverride] = {}

    def configure(self, overrides: dict[str, ThrottleOverride], retry_after: int | None) -> None:
        with self._lock:
            self._overrides = dict(overrides)
            self._buckets.clear()
            if retry_after is not None:
                self.retry_after = retry_after

    def reset(self) -> None:
        with self._lock:
            self._buckets.clear()

    def _buckets_for(self, group: str) -> tuple[TokenBucket, TokenBucket]:
        buckets = self._buckets.get(group)
        if buckets is None:
            short, long = GROUP_LIMITS.get(group, (1000, 10000))
            override = self._overrides.get(group)
            short_bucket = (
                TokenBucket(override.limit, override.window_seconds)
                if override
                else TokenBucket(short, WINDOW_3MIN)
            )
            buckets = (short_bucket, TokenBucket(long, WINDOW_30MIN))
            self._buckets[group] = buckets
        return buckets

    def acquire(self, group: str) -> str:
        """Take a token; return the rate-limit header value, or raise the 429 ArmError."""
        with self._lock:
            short, long = self._buckets_for(group)
            if short.available() and long.available():
                short.take()
                long.take()
                return _header(group, short.remaining(), long.remaining())
            empty, window_name = (short, "3Min") if not short.available() else (long, "30Min")
            header = _header(group, short.remaining(), long.remaining())
            now = dt.datetime.now(dt.UTC)
            detail = {
                "operationGroup": f"{group}{window_name}",
                "startTime": (now - dt.timedelta(seconds=empty.window)).isoformat(),
                "endTime": now.isoformat(),
                "allowedRequestCount": empty.limit,
                "measuredRequestCount": empty.limit + 1,
            }
            raise ArmError(
                429,
                "OperationNotAllowed",
                "The server rejected the request because too many requests have been received "
                "for this subscription.",
                details=[
                    {
                        "code": "TooManyRequests",
                        "target": f"{group}{window_name}",
                        "message": json.dumps(detail),
                    }
                ],
                headers={
                    "Retry-After": str(self.retry_after),
                    "x-ms-ratelimit-remaining-resource": header,
                },
            )


def _header(group: str, short_remaining: int, long_remaining: int) -> str:
    return (
        f"Microsoft.Compute/{group}3Min;{short_remaining},"
        f"Microsoft.Compute/{group}30Min;{long_remaining}"
    )
