"""Management locks the lifecycle respects: a locked version is held back, never failed in apply.

Azure's locks (``Microsoft.Authorization/locks``) apply to their scope and everything below it:
"When you apply a lock at a parent scope, all resources within that scope inherit the same lock"
(Lock your resources to protect your infrastructure, learn.microsoft.com). So a lock on the
subscription, the resource group, the gallery, the definition or the version itself covers a
version. ``CanNotDelete`` refuses deletion; ``ReadOnly`` refuses every write, deprecation (a
PATCH) included. ARM would answer 409 ``ScopeLocked``; the plan holds such versions back with the
rule ``locked`` instead.

A run reads the locks with one list call per resource group that holds a target gallery
(``ManagementLocks_ListAtResourceGroupLevel``: the group's locks, those of the resources in it,
and those inherited from the subscription).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

CAN_NOT_DELETE = "CanNotDelete"
READ_ONLY = "ReadOnly"
_LOCK_SEGMENT = "/providers/microsoft.authorization/locks/"


@dataclass(frozen=True)
class LockFacts:
    """One management lock: its id, the scope it is on, and its level."""

    id: str
    level: str

    @property
    def scope(self) -> str:
        """The locked scope: the lock id up to ``/providers/Microsoft.Authorization/locks``."""
        at = self.id.lower().rfind(_LOCK_SEGMENT)
        return self.id[:at] if at >= 0 else self.id

    @property
    def name(self) -> str:
        return self.id.rstrip("/").rsplit("/", 1)[-1]

    @property
    def read_only(self) -> bool:
        return self.level.lower() == READ_ONLY.lower()

    def covers(self, resource_id: str) -> bool:
        scope = self.scope.rstrip("/").lower()
        target = resource_id.rstrip("/").lower()
        return target == scope or target.startswith(scope + "/")

    def describe(self) -> str:
        return f"{self.level} lock '{self.name}' on {self.scope}"


class LockReader(Protocol):
    """Reads locks (an adapter over ``ManagementLocks_ListAtResourceGroupLevel``)."""

    def locks(self, subscription_id: str, resource_group: str) -> Iterator[LockFacts]:
        """Every lock at, above and below the resource group."""
        ...


class LockIndex:
    """The locks a run read, asked per version and action."""

    def __init__(self, locks: Iterable[LockFacts] = ()) -> None:
        self.locks = tuple(dict.fromkeys(locks))

    def blocking(self, version_id: str, *, delete: bool) -> LockFacts | None:
        """The lock that refuses deleting (``delete``) or updating ``version_id``, if any;
        ``ReadOnly`` ones first (the stricter reason)."""
        covering = [lock for lock in self.locks if lock.covers(version_id)]
        covering.sort(key=lambda lock: not lock.read_only)
        for lock in covering:
            if lock.read_only or delete:
                return lock
        return None

    def to_document(self) -> list[dict[str, str]]:
        return [{"id": lock.id, "scope": lock.scope, "level": lock.level} for lock in self.locks]
