"""Event Grid system-topic emulation: ResourceWriteSuccess events to registered webhooks.

A webhook is registered with ``POST /admin/webhooks {"url", "eventTypes"?, "subjectBeginsWith"?}``.
Deliveries use the Event Grid event schema (an array of one event), run off the request
thread, and are retried a bounded number of times with a per-attempt timeout.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from devstack.armsim.clock import azure_timestamp
from devstack.armsim.errors import ArmError
from devstack.armsim.stats import Stats
from devstack.armsim.store import Store

logger = logging.getLogger(__name__)

WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
DELIVERY_ATTEMPTS = 3
DELIVERY_TIMEOUT_SECONDS = 5.0


def validate_webhook(body: dict[str, Any]) -> dict[str, Any]:
    """Check a registration body; loopback URLs only (the simulator never calls out)."""
    url = body.get("url")
    if not isinstance(url, str):
        raise ArmError(400, "InvalidWebhook", "'url' is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.hostname not in ("127.0.0.1", "localhost"):
        raise ArmError(400, "InvalidWebhook", "webhook urls must be http(s)://127.0.0.1:PORT/...")
    event_types = body.get("eventTypes") or [WRITE_SUCCESS]
    if not isinstance(event_types, list) or not all(isinstance(t, str) for t in event_types):
        raise ArmError(400, "InvalidWebhook", "'eventTypes' must be a list of strings")
    prefix = body.get("subjectBeginsWith") or ""
    if not isinstance(prefix, str):
        raise ArmError(400, "InvalidWebhook", "'subjectBeginsWith' must be a string")
    return {
        "id": str(body.get("id") or uuid.uuid4()),
        "url": url,
        "eventTypes": event_types,
        "subjectBeginsWith": prefix,
    }


def resource_event(
    event_type: str,
    resource_id: str,
    operation_name: str,
    subscription_id: str,
    *,
    method: str,
    url: str,
    correlation_id: str,
) -> dict[str, Any]:
    """A ResourceWrite/DeleteSuccess event in the Event Grid schema."""
    data: dict[str, Any] = {
        "authorization": {
            "scope": resource_id,
            "action": operation_name,
            "evidence": {"role": "Contributor"},
        },
        "claims": {"appid": "armsim", "ver": "1.0"},
        "correlationId": correlation_id,
        "resourceProvider": resource_id.split("/providers/", 1)[1].split("/", 1)[0],
        "resourceUri": resource_id,
        "operationName": operation_name,
        "status": "Succeeded",
        "subscriptionId": subscription_id,
        "tenantId": TENANT_ID,
    }
    if event_type == DELETE_SUCCESS or method == "PATCH":
        data["httpRequest"] = {
            "clientRequestId": correlation_id,
            "clientIpAddress": "127.0.0.1",
            "method": method,
            "url": url,
        }
    return {
        "subject": resource_id,
        "eventType": event_type,
        "eventTime": azure_timestamp(dt.datetime.now(dt.UTC)).replace("0+00:00", "Z"),
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{subscription_id}",
    }


class EventPublisher:
    """Posts events to matching webhooks on a small thread pool."""

    def __init__(self, store: Store, stats: Stats) -> None:
        self._store = store
        self._stats = stats
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="armsim-events")
        self._pending = 0
        self._lock = threading.Lock()

    def publish(self, event: dict[str, Any]) -> None:
        for webhook in self._store.webhooks():
            if event["eventType"] not in webhook["eventTypes"]:
                continue
            if not event["subject"].lower().startswith(webhook["subjectBeginsWith"].lower()):
                continue
            with self._lock:
                self._pending += 1
            self._pool.submit(self._deliver, webhook["url"], event)

    def pending(self) -> int:
        with self._lock:
            return self._pending

    def _deliver(self, url: str, event: dict[str, Any]) -> None:
        payload = json.dumps([event]).encode()
        try:
            for attempt in range(1, DELIVERY_ATTEMPTS + 1):
                request = urllib.request.Request(
                    url,
                    data=payload,
                    method="POST",
                    headers={
                        "Content-Type": "application/json",
                        "aeg-event-type": "Notification",
                        "aeg-delivery-count": str(attempt - 1),
                    },
                )
                try:
                    with urllib.request.urlopen(request, timeout=DELIVERY_TIMEOUT_SECONDS) as reply:
                        if 200 <= reply.status < 300:
                            self._stats.count_event(delivered=True)
                            return
                except (urllib.error.URLError, OSError) as exc:
                    logger.info("event delivery to %s failed (attempt %d): %s", url, attempt, exc)
                time.sleep(0.2 * attempt)
            self._stats.count_event(delivered=False)
        finally:
            with self._lock:
                self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
