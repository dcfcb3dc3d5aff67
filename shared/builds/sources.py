"""Every source a build reads is busy while it runs: taking and giving back all of them.

Azure refuses a new image version from a snapshot or disk that another version is still being
built or replicated from, whether it is the OS source or a data disk. A build of one source
claims that source's ledger entry. A build of several sources *holds* each of them in one fixed
order (sorted keys, the same for every build, so two builds can never wait for each other) and
waits in the FIFO of the first one that is busy, keeping those it holds. Once it holds them all,
its OS source's entry is promoted to ``claimed`` with a lease, and it starts like any build.
Every step is idempotent, so whoever comes next (a redelivery, the hand-over of the source it
waited for, the tracker) simply runs :meth:`SourceLocks.acquire` again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.builds.ledger import (
    BuildState,
    ClaimOutcome,
    InFlightBuild,
    ReleaseResult,
    SourceLedger,
    build_id_for,
)


@dataclass(frozen=True)
class Acquisition:
    """What taking a request's sources did. ``CLAIMED``: the caller holds the lease of
    ``build`` and starts it; ``ADOPTED``: the build is already claimed or started (``build`` is
    it as the OS source's entry has it); the others: nothing to start now."""

    outcome: ClaimOutcome
    build: InFlightBuild | None = None


class SourceLocks:
    def __init__(self, ledger: SourceLedger) -> None:
        self._ledger = ledger

    def acquire(
        self, primary: str, keys: tuple[str, ...], request_id: str, stored: Mapping[str, Any]
    ) -> Acquisition:
        """Take every source in ``keys`` (lock order) for ``request_id``; ``primary`` (the OS
        source) holds the build's state."""
        if len(keys) <= 1:
            claim = self._ledger.claim(primary, request_id, stored)
            return Acquisition(claim.outcome, claim.build)
        for key in keys:
            claim = self._ledger.claim(key, request_id, stored, sources=keys)
            if claim.outcome not in (ClaimOutcome.CLAIMED, ClaimOutcome.ADOPTED):
                return Acquisition(claim.outcome)  # waits for this source, or is done already
        build_id = build_id_for(request_id)
        promoted = self._ledger.promote(primary, build_id)
        if promoted is not None:
            return Acquisition(ClaimOutcome.CLAIMED, promoted)
        entry = self._ledger.get(primary)
        current = entry.in_flight if entry is not None else None
        if current is None or current.build_id != build_id or current.state is BuildState.HELD:
            raise AssertionError("a promoted build left its OS source's entry")
        return Acquisition(ClaimOutcome.ADOPTED, current)

    def release(
        self, primary: str, keys: tuple[str, ...], build_id: str
    ) -> list[tuple[str, InFlightBuild]]:
        """Give back every source of the build (reverse lock order): each source's next
        request, now its owner, with the source it owns."""
        handed_over = []
        for key in sorted(set(keys) | {primary}, reverse=True):
            released: ReleaseResult = self._ledger.release(key, build_id)
            if released.next_build is not None:
                handed_over.append((key, released.next_build))
        return handed_over
