"""Management locks (``Microsoft.Authorization/locks``): their REST API and what they block.

REST (the ``ManagementLocks_*`` operations of the Resource Manager locks spec, api-versions
2015-01-01, 2016-09-01, 2017-04-01 and 2020-05-01):

* ``PUT/GET/DELETE {scope}/providers/Microsoft.Authorization/locks/{name}``: scope a
  subscription, a resource group or a resource; PUT answers 201 (created) or 200, DELETE 200 or
  204 (nothing there);
* ``GET {scope}/providers/Microsoft.Authorization/locks``: the locks that apply at the scope
  (its own and those inherited from parent scopes) and those below it;
  ``$filter=atScope()`` keeps only those at or above the scope.

Enforcement (:meth:`LockRegistry.check_write`): a lock applies to its scope and everything under
it ("When you apply a lock at a parent scope, all resources within that scope inherit the same
lock"), so a lock on a gallery also covers its definitions and versions. ``CanNotDelete`` blocks
DELETE; ``ReadOnly`` blocks DELETE, PUT, PATCH and POST. A blocked request gets 409
``ScopeLocked`` with ARM's message naming the scope and the locked scopes.

Locks live in the store's settings (``POST /admin/reset`` removes them).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from devstack.armsim import ids
from devstack.armsim.errors import ArmError, resource_not_found
from devstack.armsim.paging import Pager
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.store import Store

JsonObject = dict[str, Any]

LOCK_TYPE = "Microsoft.Authorization/locks"
LOCK_API_VERSIONS: tuple[str, ...] = ("2015-01-01", "2016-09-01", "2017-04-01", "2020-05-01")
CAN_NOT_DELETE = "CanNotDelete"
READ_ONLY = "ReadOnly"
LEVELS = (CAN_NOT_DELETE, READ_ONLY)
MAX_NAME_LENGTH = 260
MAX_NOTES_LENGTH = 512
_LOCKS_KEY = "locks"
_LOCK_PATH = re.compile(
    r"^(?P<scope>.*?)/providers/Microsoft\.Authorization/locks(?:/(?P<name>[^/]+))?/?$",
    re.IGNORECASE,
)
_BAD_NAME = re.compile(r"[<>%&:\\?/\x00-\x1f]")
_SCOPE = re.compile(r"^/subscriptions/[^/]+(?:/resourceGroups/[^/]+(?:/providers/.+)?)?$", re.I)


def parse_lock_path(path: str) -> tuple[str, str | None] | None:
    """``(scope, lock name or None for the collection)`` of a lock path, else ``None``."""
    match = _LOCK_PATH.match(path)
    if match is None:
        return None
    return match.group("scope").rstrip("/"), match.group("name")


def _covers(scope: str, resource_id: str) -> bool:
    """Whether a lock at ``scope`` applies to ``resource_id`` (same or a child scope)."""
    lock = scope.rstrip("/").lower()
    target = resource_id.rstrip("/").lower()
    return target == lock or target.startswith(lock + "/")


def scope_locked(resource_id: str, operation: str, locked: list[str]) -> ArmError:
    """ARM's 409 for a write or delete under a lock."""
    return ArmError(
        409,
        "ScopeLocked",
        f"The scope '{resource_id}' cannot perform {operation} operation because following "
        f"scope(s) are locked: '{','.join(locked)}'. Please remove the lock and try again.",
    )


class LockRegistry:
    """The locks of the simulator and the lock API's handlers."""

    def __init__(self, store: Store, pager: Pager, exists: Callable[[str], bool]) -> None:
        self._store = store
        self._pager = pager
        #: whether a resource id names a stored resource (locks on resources need one)
        self._exists = exists

    # ------------------------------------------------------------------------------ state
    def _all(self) -> dict[str, JsonObject]:
        found: dict[str, JsonObject] = self._store.setting(_LOCKS_KEY, {})
        return found

    def _save(self, locks: dict[str, JsonObject]) -> None:
        self._store.set_setting(_LOCKS_KEY, locks)

    def applying_to(self, resource_id: str) -> list[JsonObject]:
        """The locks at ``resource_id`` or any scope above it."""
        return [lock for lock in self._all().values() if _covers(lock["scope"], resource_id)]

    def check_write(self, method: str, resource_id: str) -> None:
        """Raise ``ScopeLocked`` when a lock blocks ``method`` on ``resource_id``."""
        if method not in ("PUT", "PATCH", "DELETE", "POST"):
            return
        blocking = [
            lock
            for lock in self.applying_to(resource_id)
            if method == "DELETE" or lock["level"] == READ_ONLY
        ]
        if blocking:
            scopes = list(dict.fromkeys(lock["scope"] for lock in blocking))
            operation = "delete" if method == "DELETE" else "write"
            raise scope_locked(resource_id, operation, scopes)

    # ------------------------------------------------------------------------------ REST
    def handle(self, request: Request, scope: str, name: str | None) -> Reply:
        if not request.api_version:
            raise ArmError(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if request.api_version not in LOCK_API_VERSIONS:
            raise ArmError(
                400,
                "NoRegisteredProviderFound",
                "No registered resource provider found for location 'global' and API version "
                f"'{request.api_version}' for type 'locks'. The supported api-versions are "
                f"'{', '.join(LOCK_API_VERSIONS)}'. The supported locations are ''.",
            )
        self._check_scope(scope)
        if name is None:
            if request.method != "GET":
                raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed here")
            return self._list(request, scope)
        if request.method == "PUT":
            return self._put(request, scope, name)
        if request.method == "GET":
            return self._get(scope, name)
        if request.method == "DELETE":
            return self._delete(scope, name)
        raise ArmError(405, "MethodNotAllowed", f"{request.method} is not allowed on a lock")

    def _check_scope(self, scope: str) -> None:
        if not _SCOPE.match(scope):
            raise ArmError(
                400,
                "InvalidLockScope",
                f"The scope '{scope}' is not a subscription, a resource group or a resource.",
            )
        ref = ids.parse_resource_path(scope)
        if ref is not None and not ref.is_collection and not self._exists(ref.key):
            raise resource_not_found(ref.type, ref.name_path, ref.resource_group)

    @staticmethod
    def _lock_id(scope: str, name: str) -> str:
        return f"{scope}/providers/{LOCK_TYPE}/{name}"

    @staticmethod
    def render(lock: JsonObject) -> JsonObject:
        props: JsonObject = {"level": lock["level"]}
        if lock.get("notes"):
            props["notes"] = lock["notes"]
        if lock.get("owners"):
            props["owners"] = lock["owners"]
        return {"properties": props, "id": lock["id"], "type": LOCK_TYPE, "name": lock["name"]}

    def _put(self, request: Request, scope: str, name: str) -> Reply:
        if len(name) > MAX_NAME_LENGTH or _BAD_NAME.search(name):
            raise ArmError(
                400,
                "InvalidLockName",
                f"The lock name '{name}' is invalid. It can be at most {MAX_NAME_LENGTH} "
                "characters and cannot contain <, > %, &, :, \\, ?, /, or any control characters.",
            )
        body = request.body if isinstance(request.body, dict) else {}
        props = body.get("properties") if isinstance(body.get("properties"), dict) else {}
        level = str((props or {}).get("level") or "")
        matched = next((lv for lv in LEVELS if lv.lower() == level.lower()), None)
        if matched is None:
            raise ArmError(
                400,
                "InvalidLockLevel",
                f"The lock level '{level}' is invalid. Possible values are: {', '.join(LEVELS)}.",
                target="properties.level",
            )
        notes = str((props or {}).get("notes") or "")
        if len(notes) > MAX_NOTES_LENGTH:
            raise ArmError(
                400,
                "InvalidLockNotes",
                f"The lock notes can be at most {MAX_NOTES_LENGTH} characters.",
                target="properties.notes",
            )
        locks = self._all()
        lock_id = self._lock_id(scope, name)
        existed = lock_id.lower() in locks
        lock: JsonObject = {
            "id": lock_id,
            "name": name,
            "scope": scope,
            "level": matched,
            "notes": notes,
            "owners": list((props or {}).get("owners") or []),
        }
        locks[lock_id.lower()] = lock
        self._save(locks)
        return Reply(200 if existed else 201, self.render(lock))

    def _get(self, scope: str, name: str) -> Reply:
        lock = self._all().get(self._lock_id(scope, name).lower())
        if lock is None:
            raise ArmError(404, "LockNotFound", f"The lock '{name}' could not be found.")
        return Reply(200, self.render(lock))

    def _delete(self, scope: str, name: str) -> Reply:
        locks = self._all()
        removed = locks.pop(self._lock_id(scope, name).lower(), None)
        if removed is None:
            return Reply(204)
        self._save(locks)
        return Reply(200)

    def _list(self, request: Request, scope: str) -> Reply:
        raw_filter = request.query.get("$filter", "").strip()
        at_scope_only = raw_filter.replace(" ", "").lower() == "atscope()"
        if raw_filter and not at_scope_only:
            raise ArmError(
                400,
                "InvalidFilter",
                f"The filter '{raw_filter}' is not supported. Supported: atScope().",
            )
        items = [
            self.render(lock)
            for lock in self._all().values()
            if _covers(lock["scope"], scope)
            or (not at_scope_only and _covers(scope, lock["scope"]))
        ]
        return self._pager.page(request, items)
