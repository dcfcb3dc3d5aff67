"""Per-definition version reservations: automatic version policies without races.

Two sources publishing into one definition with ``nextPatch`` would both list the versions, both
pick ``1.0.4`` and one would fail (or worse, be taken for the other's build). Each definition
therefore has a small compare-and-swap document of the versions reserved by builds in flight:
allocation sees the gallery's versions *and* every reservation, and writes its own reservation
in the same CAS step. A reservation is idempotent per build (a redelivery gets the same version)
and is released when the build ends.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from shared.builds.gallery import DefinitionRef
from shared.contract.versioning import ImageVersion
from shared.core.documents import KEEP, Change, DocumentStore, cas_update

logger = logging.getLogger(__name__)


def definition_key(definition: DefinitionRef) -> str:
    return hashlib.sha256("/".join(definition.key).encode("utf-8")).hexdigest()


class VersionReservations:
    def __init__(self, store: DocumentStore, *, clock: Callable[[], datetime]) -> None:
        self._store = store
        self._clock = clock

    def reserved(self, definition: DefinitionRef) -> dict[str, str]:
        """``{build id: version}`` of every reservation on the definition."""
        found = self._store.read(definition_key(definition))
        if found is None:
            return {}
        return {k: str(v["version"]) for k, v in (found[0].get("reservations") or {}).items()}

    def reserve(
        self,
        definition: DefinitionRef,
        build_id: str,
        allocate: Callable[[Iterable[ImageVersion]], ImageVersion],
    ) -> str:
        """The version reserved for ``build_id``: its existing reservation, or a new one chosen by
        ``allocate`` (given every reserved version of *other* builds) and written atomically."""

        def mutate(found: dict[str, Any] | None) -> tuple[Change, tuple[str, bool]]:
            document = found or {"definition": str(definition), "reservations": {}}
            reservations: dict[str, Mapping[str, Any]] = dict(document.get("reservations") or {})
            mine = reservations.get(build_id)
            if mine is not None:
                return KEEP, (str(mine["version"]), False)
            others = [ImageVersion.parse(str(r["version"])) for r in reservations.values()]
            version = str(allocate(others))
            reservations[build_id] = {"version": version, "at": self._clock().isoformat()}
            return {**document, "reservations": reservations}, (version, True)

        version, new = cas_update(
            self._store, definition_key(definition), mutate, what=self._what(definition)
        )
        if new:
            logger.info(
                "version reserved",
                extra={"build_id": build_id, "definition": str(definition), "version": version},
            )
        return version

    def release(self, definition: DefinitionRef, build_id: str) -> None:

        def mutate(found: dict[str, Any] | None) -> tuple[Change, None]:
            reservations = dict((found or {}).get("reservations") or {})
            if found is None or reservations.pop(build_id, None) is None:
                return KEEP, None
            return {**found, "reservations": reservations}, None

        cas_update(self._store, definition_key(definition), mutate, what=self._what(definition))

    @staticmethod
    def _what(definition: DefinitionRef) -> str:
        return f"version reservations of {definition}"
