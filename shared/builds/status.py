"""Read-only views for the status API and ``galleryctl status`` (JSON documents, no secrets)."""

from __future__ import annotations

import re
from typing import Any

from shared.builds.events import overall_progress
from shared.builds.ledger import SourceEntry, SourceLedger, ledger_key
from shared.builds.records import BuildRecord, BuildRecords
from shared.core.redaction import strip_query

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
