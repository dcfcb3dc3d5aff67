"""Keyed JSON documents with optimistic concurrency, and the one compare-and-swap loop over them.

The per-source ledger, build records, version reservations and intake records are all small
JSON documents that several function instances may change at once. Each is read with its ETag
and written back only if the ETag still matches; on a conflict the change is computed again
from what is stored now. :func:`cas_update` is that loop, written once: a ``mutate`` function
gets the current document and says what to store (:data:`KEEP` to store nothing, :data:`DELETE`
to remove it), and what to return.

The store is a port (:class:`DocumentStore`); production uses a blob container
(``shared.adapters.blob_document_store``), unit tests an in-memory fake with the same semantics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final, Protocol, TypeVar

from shared.core.errors import TransientError

logger = logging.getLogger(__name__)

#: Attempts of one read-modify-write before giving up with a transient error.
MAX_CAS_ATTEMPTS: Final = 20

Document = dict[str, Any]
_Result = TypeVar("_Result")


class StaleWrite(Exception):
    """Raised by a :class:`DocumentStore` when the document changed since it was read (or, for a
    create, when it already exists). A signal between store and :func:`cas_update`, which
    retries; never a failure of the pipeline."""


class DocumentStore(Protocol):
    """Keyed JSON documents with optimistic concurrency (the ETag is opaque)."""

    def read(self, key: str) -> tuple[Document, str] | None:
        """Return ``(document, etag)``, or ``None`` when there is no document for ``key``."""
        ...

    def write(self, key: str, document: Mapping[str, Any], *, etag: str | None) -> str:
        """Write ``document``; ``etag=None`` means create-only. Raise :class:`StaleWrite` on
        a concurrent change (or when creating a key that exists). Return the new etag."""
        ...

    def list_keys(self) -> Iterator[str]:
        """Every key in the store (page by page; never loads all documents at once)."""
        ...

    def delete(self, key: str, *, etag: str | None) -> None:
        """Delete the document (only if unchanged when ``etag`` is given); absent is fine.
        Raise :class:`StaleWrite` when it changed."""
        ...


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


#: ``mutate`` returns this to store nothing (the document is fine as it is, or stays absent).
KEEP: Final = _Keep()
#: ``mutate`` returns this to delete the document (only if it is still the one it saw).
DELETE: Final = _Delete()

Change = Mapping[str, Any] | _Keep | _Delete
Mutate = Callable[[Document | None], tuple[Change, _Result]]


def cas_update(
    store: DocumentStore,
    key: str,
    mutate: Mutate[_Result],
    *,
    what: str,
    reason: str = "Contention",
    attempts: int = MAX_CAS_ATTEMPTS,
) -> _Result:
    """Apply ``mutate`` to the document under ``key`` by compare-and-swap and return its result.

    ``mutate`` gets a copy of the current document (``None`` when absent) and returns
    ``(change, result)``: a new document to write, :data:`KEEP` or :data:`DELETE`. It may run
    several times (once per conflict), so it must not have side effects that cannot repeat.
    After ``attempts`` conflicts in a row it raises :class:`TransientError` with ``reason``
    (``what`` names the document in the message): the caller retries later.
    """
    for _ in range(attempts):
        found = store.read(key)
        current, etag = (dict(found[0]), found[1]) if found is not None else (None, None)
        change, result = mutate(current)
        try:
            if isinstance(change, _Keep):
                return result
            if isinstance(change, _Delete):
                if etag is not None:
                    store.delete(key, etag=etag)
                return result
            store.write(key, change, etag=etag)
        except StaleWrite:
            logger.debug("concurrent change of %s; computing the change again", what)
            continue
        return result
    raise TransientError(f"{what} kept changing; gave up after {attempts} attempts", reason=reason)
