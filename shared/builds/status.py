"""Read-only views for the status API, the status page (``GET /api/ui``) and ``galleryctl
status`` (JSON documents, no secrets)."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from shared.builds.events import overall_progress
from shared.builds.ledger import SourceEntry, SourceLedger, ledger_key
from shared.builds.records import BuildPhase, BuildRecord, BuildRecords
from shared.core.errors import PipelineError
from shared.core.redaction import redact_secrets, strip_query

logger = logging.getLogger(__name__)

_LEDGER_KEY = re.compile(r"^[0-9a-f]{64}$")


def _without_secrets(value: Any) -> Any:
    """A copy of a stored request with every ``uri`` stripped of its query (SAS)."""
    if isinstance(value, dict):
        return {
            k: strip_query(v) if k == "uri" and isinstance(v, str) else _without_secrets(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_without_secrets(v) for v in value]
    return value


def record_view(record: BuildRecord) -> dict[str, Any]:
    document = record.to_document()
    document["progress"] = overall_progress(record)
    document["sourceKey"] = ledger_key(record.source_key)
    return document


def build_view(records: BuildRecords, build_id: str) -> dict[str, Any] | None:
    record = records.get(build_id)
    return record_view(record) if record is not None else None


def build_list(records: BuildRecords, *, limit: int = 50) -> dict[str, Any]:
    """The most recently updated builds first."""
    return {"builds": [record_view(r) for r in records.recent(limit)]}


def _entry_view(entry: SourceEntry) -> dict[str, Any]:
    document = _without_secrets(entry.to_document())
    document["key"] = ledger_key(entry.source_key)
    result: dict[str, Any] = document
    return result


def source_key_of(text: str) -> str:
    """A source as people and ARM write it, in the ledger's form: a resource id lower-cased
    (ARM ids are case-insensitive), a blob URL without its query with scheme and host
    lower-cased (blob names are case-sensitive)."""
    text = strip_query(text.strip())
    if text.lower().startswith("subscriptions/"):  # a route parameter loses the leading "/"
        text = "/" + text
    if text.lower().startswith("/subscriptions/"):
        return text.lower()
    scheme, separator, rest = text.partition("://")
    if not separator:
        return text
    host, _, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}/{path}"


def source_view(ledger: SourceLedger, key: str) -> dict[str, Any] | None:
    """The ledger entry of a source, by ledger key or by the source itself (any case)."""
    if _LEDGER_KEY.match(key.lower()):
        entry = ledger.get_by_key(key.lower())
    else:
        entry = ledger.get(source_key_of(key))
    return _entry_view(entry) if entry is not None else None


def active_sources(ledger: SourceLedger, *, limit: int = 50) -> list[dict[str, Any]]:
    """The sources with a build in flight or requests parked (the ledger's active index), as
    :func:`source_view` shows them, at most ``limit``."""
    found: list[dict[str, Any]] = []
    for entry in ledger.active_entries():
        if len(found) >= limit:
            break
        found.append(_entry_view(entry))
    return found


#: The sections of the status page, each read on its own: one store that cannot be read leaves
#: the others shown, with a note saying what is missing and why.
PAGE_SECTIONS: Final = ("builds", "sources", "lifecycle")


def status_page_documents(
    records: Callable[[], BuildRecords],
    ledger: Callable[[], SourceLedger],
    latest_lifecycle_run: Callable[[], Mapping[str, Any] | None],
    *,
    limit: int = 50,
) -> dict[str, Any]:
    """What ``GET /api/ui`` renders: ``{"builds": [...], "sources": [...], "failed": [...],
    "lifecycle": {...} | None, "unavailable": {section: reason}}`` (``lifecycle`` is
    :func:`lifecycle_summary`). A section whose store fails (a :class:`PipelineError`) is left
    empty and named in ``unavailable``.

    ``failed`` are the failed builds among the recent ones, with their error reason: what the
    page shows of rejects, since reading dead letters needs Service Bus (``galleryctl rejects``).
    """
    readers: dict[str, Callable[[], Any]] = {
        "builds": lambda: build_list(records(), limit=limit)["builds"],
        "sources": lambda: active_sources(ledger(), limit=limit),
        "lifecycle": lambda: lifecycle_summary(latest_lifecycle_run()),
    }
    page: dict[str, Any] = {"unavailable": {}}
    for section in PAGE_SECTIONS:
        try:
            page[section] = readers[section]()
        except PipelineError as error:
            logger.warning("status page section unavailable", extra={"section": section})
            page[section] = None if section == "lifecycle" else []
            page["unavailable"][section] = f"{error.reason}: {error.message}"
    page["failed"] = [b for b in page["builds"] if b["state"] == BuildPhase.FAILED.value]
    return page


def lifecycle_summary(document: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The summary of a lifecycle run's audit document (the newest one, for the page): its id,
    status, time, dry-run flag and breaker, and the plan's entries counted by action and rule
    (``[{"action", "rule", "count"}]``, most first), with how many were done and failed. A run
    that failed before planning has ``error`` and no counts."""
    if document is None:
        return None
    plan = document.get("plan") or {}
    counts: Counter[tuple[str, str]] = Counter(
        (str(e.get("action")), str(e.get("rule"))) for e in plan.get("entries") or ()
    )
    outcome = document.get("outcome") or {}
    error = document.get("error")
    return {
        "runId": str(document.get("runId") or ""),
        "status": str(document.get("status") or ""),
        "createdAt": str(plan.get("createdAt") or document.get("createdAt") or ""),
        "dryRun": bool(plan.get("dryRun")),
        "circuitBreakerTripped": bool(plan.get("circuitBreakerTripped")),
        "counts": [
            {"action": action, "rule": rule, "count": count}
            for (action, rule), count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        ],
        "done": len(outcome.get("done") or ()),
        "failed": len(outcome.get("failed") or ()),
        "error": redact_secrets(f"{document.get('reason')}: {error}") if error else None,
    }
