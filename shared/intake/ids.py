"""Deterministic request ids and record keys.

A request id is the Service Bus MessageId, so a duplicate event that slips past the records is
still dropped by the queue's duplicate detection: one id per uploaded content (the blob URL and
its ETag) or per snapshot (its id and ``uniqueId``).
"""

from __future__ import annotations

import hashlib

from shared.core.redaction import strip_query
from shared.core.resource_ids import ResourceId


def _digest(text: str, length: int = 32) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def blob_source_key(url: str) -> str:
    """A blob's identity: the URL without query, scheme and host lower-cased."""
    scheme, _, rest = strip_query(url).partition("://")
    host, _, path = rest.partition("/")
    return f"{scheme.lower()}://{host.lower()}/{path}"


def vhd_request_id(url: str, etag: str) -> str:
    """``vhd-`` + a hash of the blob's identity and its ETag: one id per uploaded content."""
    return f"vhd-{_digest(blob_source_key(url) + '|' + etag.strip(chr(34)))}"


def snapshot_request_id(snapshot_id: ResourceId, identity: str) -> str:
    """``snap-`` + a hash of the snapshot id and its ``uniqueId`` (or ``timeCreated``)."""
    return f"snap-{_digest(snapshot_id.key + '|' + identity)}"


def upload_record_key(url: str) -> str:
    return f"vhd-{_digest(blob_source_key(url), 40)}"


def snapshot_record_key(snapshot_id: ResourceId) -> str:
    return f"snapshot-{_digest(snapshot_id.key, 40)}"
