"""A local Event Grid: event sources, subscriptions with filters, delivery with retry and backoff.

Sources publish Event Grid schema events into an :class:`EventGridBroker`:

* :class:`BlobCreatedSource` polls Azurite and emits ``Microsoft.Storage.BlobCreated`` like
  Azure: a page blob as soon as it is created (``api: PutBlob``, ``contentLength`` = declared
  size, before any page is written); a block blob when it is committed (``PutBlockList`` after
  staged blocks, ``PutBlob`` for a single-shot upload, ``CopyBlob`` for a copy). An overwrite
  (new content) is a new event. ``Microsoft.Storage.BlobDeleted`` is emitted when a blob goes.
* Anything may POST an event array to the topic endpoint the host serves
  (``/eventgrid/api/events``): the ARM simulator's ``ResourceWriteSuccess`` webhook does.

Each event goes to every subscription whose filters match (event types; subject begins/ends
with, case-insensitive unless configured). A delivery is one function invocation per event; an
exception is a failed delivery, retried with exponential backoff up to ``maxDeliveryAttempts``,
then dead-lettered (logged, kept in :attr:`EventGridBroker.dead_letters`, and appended to a
JSON-lines file when configured).
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobProperties, BlobServiceClient, BlobType

from devstack.host.quiet import quietly

logger = logging.getLogger(__name__)

BLOB_CREATED = "Microsoft.Storage.BlobCreated"
BLOB_DELETED = "Microsoft.Storage.BlobDeleted"
DEFAULT_STORAGE_TOPIC = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-devstack"
    "/providers/Microsoft.Storage/storageAccounts/devstoreaccount1"
)
_REQUIRED_EVENT_FIELDS = ("id", "subject", "eventType", "eventTime")

#: Delivers one event to one function; raises on failure. ``(function_name, event) -> None``.
Deliver = Callable[[str, Mapping[str, Any]], None]


class InvalidEventsError(ValueError):
    """A published payload is not an Event Grid schema event array (message says why)."""


def event_time_now() -> str:
    """The current time as Event Grid writes it (7 fractional digits, ``Z``)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between delivery attempts."""

    max_delivery_attempts: int = 30
    initial_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    multiplier: float = 2.0

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before delivery attempt ``attempt`` (2, 3, ...)."""
        delay = self.initial_delay_seconds * self.multiplier ** max(attempt - 2, 0)
        return float(min(delay, self.max_delay_seconds))


@dataclass(frozen=True)
class EventSubscription:
    """An event subscription: which events reach which function."""

    name: str
    function: str
    included_event_types: tuple[str, ...] = ()
    subject_begins_with: str = ""
    subject_ends_with: str = ""
    is_subject_case_sensitive: bool = False
    topic: str | None = None
    max_delivery_attempts: int | None = None

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.included_event_types and event.get("eventType") not in self.included_event_types:
            return False
        if self.topic is not None and str(event.get("topic", "")).lower() != self.topic.lower():
            return False
        subject = str(event.get("subject", ""))
        begins, ends = self.subject_begins_with, self.subject_ends_with
        if not self.is_subject_case_sensitive:
            subject, begins, ends = subject.lower(), begins.lower(), ends.lower()
        return subject.startswith(begins) and subject.endswith(ends)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EventSubscription:
        try:
            name, function = str(data["name"]), str(data["function"])
        except KeyError as exc:
            raise ValueError(f"event subscription {data!r}: missing {exc.args[0]!r}") from None
        attempts = data.get("maxDeliveryAttempts")
        return cls(
            name=name,
            function=function,
            included_event_types=tuple(data.get("includedEventTypes") or ()),
            subject_begins_with=str(data.get("subjectBeginsWith") or ""),
            subject_ends_with=str(data.get("subjectEndsWith") or ""),
            is_subject_case_sensitive=bool(data.get("isSubjectCaseSensitive", False)),
            topic=data.get("topic"),
            max_delivery_attempts=int(attempts) if attempts is not None else None,
        )


@dataclass(frozen=True)
class BlobSourceConfig:
    """Where the BlobCreated source looks and how often."""

    enabled: bool = True
    connection_setting: str = "AzureWebJobsStorage"
    topic: str = DEFAULT_STORAGE_TOPIC
    poll_interval_seconds: float = 0.5
    containers: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventGridConfig:
    """The whole local Event Grid configuration (see docs/devstack-host.md for the format)."""

    subscriptions: tuple[EventSubscription, ...] = ()
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    blob_source: BlobSourceConfig = field(default_factory=BlobSourceConfig)
    dead_letter_file: Path | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, base_dir: Path) -> EventGridConfig:
        retry = data.get("retry") or {}
        blobs = data.get("blobSource") or {}
        dead_letter = data.get("deadLetterFile")
        return cls(
            subscriptions=tuple(
                EventSubscription.from_json(item) for item in data.get("subscriptions", [])
            ),
            retry=RetryPolicy(
                max_delivery_attempts=int(retry.get("maxDeliveryAttempts", 30)),
                initial_delay_seconds=float(retry.get("initialDelaySeconds", 1.0)),
                max_delay_seconds=float(retry.get("maxDelaySeconds", 60.0)),
                multiplier=float(retry.get("multiplier", 2.0)),
            ),
            blob_source=BlobSourceConfig(
                enabled=bool(blobs.get("enabled", True)),
                connection_setting=str(blobs.get("connectionSetting", "AzureWebJobsStorage")),
                topic=str(blobs.get("topic", DEFAULT_STORAGE_TOPIC)),
                poll_interval_seconds=float(blobs.get("pollIntervalSeconds", 0.5)),
                containers=tuple(blobs.get("containers") or ()),
            ),
            dead_letter_file=(base_dir / dead_letter) if dead_letter else None,
        )

    @classmethod
    def load(cls, path: Path) -> EventGridConfig:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")), base_dir=path.parent)


def validate_events(payload: Any, *, default_topic: str | None = None) -> list[dict[str, Any]]:
    """Check an Event Grid schema payload (an array, or one event); fill ``metadataVersion``."""
    events = payload if isinstance(payload, list) else [payload]
    if not events:
        raise InvalidEventsError("the event array is empty")
    checked: list[dict[str, Any]] = []
    for index, raw_event in enumerate(events):
        if not isinstance(raw_event, dict):
            raise InvalidEventsError(f"event [{index}] is not a JSON object")
        missing = [name for name in _REQUIRED_EVENT_FIELDS if not raw_event.get(name)]
        if missing:
            raise InvalidEventsError(
                f"event [{index}]: required properties missing: {', '.join(missing)}"
            )
        event = dict(raw_event)
        event.setdefault("dataVersion", "")
        event.setdefault("metadataVersion", "1")
        if default_topic and not event.get("topic"):
            event["topic"] = default_topic
        checked.append(event)
    return checked


@dataclass
class _Delivery:
    subscription: EventSubscription
    event: Mapping[str, Any]
    max_attempts: int
    attempt: int = 1
    last_error: str = ""


class EventGridBroker:
    """Routes published events to subscriptions and delivers them with retries."""

    def __init__(
        self,
        deliver: Deliver,
        subscriptions: Sequence[EventSubscription] = (),
        *,
        retry: RetryPolicy | None = None,
        dead_letter_file: Path | None = None,
        workers: int = 4,
    ) -> None:
        self._deliver = deliver
        self.subscriptions = tuple(subscriptions)
        self.retry = retry or RetryPolicy()
        self._dead_letter_file = dead_letter_file
        self.dead_letters: list[dict[str, Any]] = []
        self.delivered = 0
        self._heap: list[tuple[float, int, _Delivery]] = []
        self._sequence = itertools.count()
        self._condition = threading.Condition()
        self._stopping = False
        self._in_flight = 0
        self._threads = [
            threading.Thread(target=self._work, name=f"eventgrid-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        with self._condition:
            self._stopping = True
            pending = len(self._heap)
            self._condition.notify_all()
        if pending:
            logger.warning("event grid stopping with %d undelivered event(s) dropped", pending)
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))

    def publish(self, events: Sequence[Mapping[str, Any]]) -> int:
        """Queue each event for every matching subscription; return the number of deliveries."""
        queued = 0
        with self._condition:
            for event in events:
                for subscription in self.subscriptions:
                    if not subscription.matches(event):
                        continue
                    attempts = (
                        subscription.max_delivery_attempts or self.retry.max_delivery_attempts
                    )
                    delivery = _Delivery(subscription, event, max_attempts=attempts)
                    heapq.heappush(self._heap, (time.monotonic(), next(self._sequence), delivery))
                    queued += 1
                if queued == 0:
                    logger.debug(
                        "event %s (%s %s) matched no subscription",
                        event.get("id"),
                        event.get("eventType"),
                        event.get("subject"),
                    )
            self._condition.notify_all()
        return queued

    def idle(self) -> bool:
        """True when nothing is queued, waiting for a retry, or being delivered."""
        with self._condition:
            return not self._heap and self._in_flight == 0

    def _next_due(self) -> _Delivery | None:
        with self._condition:
            while not self._stopping:
                if self._heap:
                    due, _, delivery = self._heap[0]
                    wait = due - time.monotonic()
                    if wait <= 0:
                        heapq.heappop(self._heap)
                        self._in_flight += 1
                        return delivery
                    self._condition.wait(min(wait, 1.0))
                else:
                    self._condition.wait(1.0)
            return None

    def _work(self) -> None:
        while True:
            delivery = self._next_due()
            if delivery is None:
                return
            try:
                self._attempt(delivery)
            finally:
                with self._condition:
                    self._in_flight -= 1
                    self._condition.notify_all()

    def _attempt(self, delivery: _Delivery) -> None:
        subscription, event = delivery.subscription, delivery.event
        try:
            self._deliver(subscription.function, event)
        except Exception as exc:
            delivery.last_error = f"{type(exc).__name__}: {exc}"
            if delivery.attempt >= delivery.max_attempts:
                self._dead_letter(delivery)
                return
            delay = self.retry.delay_before(delivery.attempt + 1)
            logger.warning(
                "event grid: delivery of event %s to subscription %s failed (attempt %d/%d, %s); "
                "retrying in %.2fs",
                event.get("id"),
                subscription.name,
                delivery.attempt,
                delivery.max_attempts,
                delivery.last_error,
                delay,
            )
            delivery.attempt += 1
            with self._condition:
                heapq.heappush(
                    self._heap, (time.monotonic() + delay, next(self._sequence), delivery)
                )
                self._condition.notify_all()
            return
        with self._condition:
            self.delivered += 1

    def _dead_letter(self, delivery: _Delivery) -> None:
        record = {
            **delivery.event,
            "deadLetterReason": "MaxDeliveryAttemptsExceeded",
            "deliveryAttempts": delivery.attempt,
            "lastDeliveryOutcome": delivery.last_error,
            "lastDeliveryAttemptTime": event_time_now(),
            "subscription": delivery.subscription.name,
        }
        logger.error(
            "event grid: event %s dead-lettered for subscription %s after %d attempts: %s",
            delivery.event.get("id"),
            delivery.subscription.name,
            delivery.attempt,
            delivery.last_error,
        )
        with self._condition:
            self.dead_letters.append(record)
            if self._dead_letter_file is not None:
                self._dead_letter_file.parent.mkdir(parents=True, exist_ok=True)
                with self._dead_letter_file.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")


@dataclass(frozen=True)
class _SeenBlob:
    created: datetime | None
    etag: str
    fingerprint: tuple[Any, ...]
    metadata: tuple[tuple[str, str], ...]
    blob_type: str


class BlobCreatedSource:
    """Polls Azurite and publishes BlobCreated / BlobDeleted events (see the module docstring)."""

    def __init__(
        self,
        service: BlobServiceClient,
        publish: Callable[[list[dict[str, Any]]], Any],
        *,
        topic: str = DEFAULT_STORAGE_TOPIC,
        poll_interval: float = 0.5,
        containers: Sequence[str] = (),
    ) -> None:
        self._service = service
        self._publish = publish
        self._topic = topic
        self._poll_interval = poll_interval
        self._containers = tuple(containers)
        self._seen: dict[tuple[str, str], _SeenBlob] = {}
        self._sequence = itertools.count(int(time.time() * 1000))
        self._stop = threading.Event()
        self._thread = threading.Thread(  # polling is the host's work, not the app's: untraced
            target=quietly(self._run), name="eventgrid-blobs", daemon=True
        )
        self.scans = 0

    def start(self) -> None:
        """Take a baseline of the blobs already there (no events for them), then poll."""
        self.scan(emit=False)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self._poll_interval):
            try:
                self.scan(emit=True)
            except AzureError as exc:
                logger.warning("blob source: scan failed: %s", exc)
            except Exception:
                logger.exception("blob source: scan failed")

    def _container_names(self) -> list[str]:
        if self._containers:
            return list(self._containers)
        return [c.name for c in self._service.list_containers() if not c.name.startswith("$")]

    def scan(self, *, emit: bool) -> list[dict[str, Any]]:
        """List every watched container once; publish and return the events found."""
        events: list[dict[str, Any]] = []
        present: set[tuple[str, str]] = set()
        listed: set[str] = set()
        for container_name in self._container_names():
            container = self._service.get_container_client(container_name)
            try:
                blobs = list(container.list_blobs(include=["metadata", "copy"], timeout=10))
            except AzureError as exc:
                logger.debug("blob source: cannot list %s: %s", container_name, exc)
                continue
            listed.add(container_name)
            for blob in blobs:
                key = (container_name, blob.name)
                present.add(key)
                seen = self._seen.get(key)
                current = _SeenBlob(
                    created=blob.creation_time,
                    etag=str(blob.etag),
                    fingerprint=(blob.size, _md5(blob)),
                    metadata=tuple(sorted((blob.metadata or {}).items())),
                    blob_type=_blob_type_name(blob.blob_type),
                )
                self._seen[key] = current
                if emit and self._is_creation(seen, current, blob):
                    events.append(self._created_event(container_name, blob))
        for key in set(self._seen) - present:
            if key[0] not in listed:
                continue  # not listed this time (error, or no longer watched): no verdict
            gone = self._seen.pop(key)
            if emit:
                events.append(self._deleted_event(key[0], key[1], gone))
        self.scans += 1
        if events:
            self._publish(events)
        return events

    @staticmethod
    def _is_creation(seen: _SeenBlob | None, current: _SeenBlob, blob: BlobProperties) -> bool:
        if seen is None or seen.created != current.created:
            return True  # a new blob, or deleted and created again
        if seen.etag == current.etag or blob.blob_type == BlobType.PAGEBLOB:
            return False  # Put Page / property writes on a page blob emit nothing
        # a block blob's etag moved: an overwrite unless only metadata/properties changed
        return seen.fingerprint != current.fingerprint or seen.metadata == current.metadata

    def _api_for(self, container: str, blob: BlobProperties) -> str:
        if blob.copy is not None and blob.copy.id:
            return "CopyBlob"
        if blob.blob_type == BlobType.PAGEBLOB:
            return "PutBlob"
        if blob.blob_type == BlobType.APPENDBLOB:
            return "PutBlob"
        try:
            committed, _ = self._service.get_blob_client(container, blob.name).get_block_list(
                "committed", timeout=10
            )
        except AzureError:
            return "PutBlockList"
        return "PutBlockList" if committed else "PutBlob"

    def _next_sequencer(self) -> str:
        return f"{next(self._sequence):032d}"

    def _created_event(self, container: str, blob: BlobProperties) -> dict[str, Any]:
        url = self._service.get_blob_client(container, blob.name).url
        blob_type = _blob_type_name(blob.blob_type)
        return {
            "topic": self._topic,
            "subject": f"/blobServices/default/containers/{container}/blobs/{blob.name}",
            "eventType": BLOB_CREATED,
            "eventTime": event_time_now(),
            "id": str(uuid.uuid4()),
            "data": {
                "api": self._api_for(container, blob),
                "clientRequestId": str(uuid.uuid4()),
                "requestId": str(uuid.uuid4()),
                "eTag": f'"{str(blob.etag).strip(chr(34))}"',
                "contentType": blob.content_settings.content_type or "application/octet-stream",
                "contentLength": int(blob.size),
                "blobType": blob_type,
                "url": url,
                "sequencer": self._next_sequencer(),
                "storageDiagnostics": {"batchId": str(uuid.uuid4())},
            },
            "dataVersion": "",
            "metadataVersion": "1",
        }

    def _deleted_event(self, container: str, name: str, gone: _SeenBlob) -> dict[str, Any]:
        return {
            "topic": self._topic,
            "subject": f"/blobServices/default/containers/{container}/blobs/{name}",
            "eventType": BLOB_DELETED,
            "eventTime": event_time_now(),
            "id": str(uuid.uuid4()),
            "data": {
                "api": "DeleteBlob",
                "clientRequestId": str(uuid.uuid4()),
                "requestId": str(uuid.uuid4()),
                "contentType": "application/octet-stream",
                "blobType": gone.blob_type,
                "url": self._service.get_blob_client(container, name).url,
                "sequencer": self._next_sequencer(),
                "storageDiagnostics": {"batchId": str(uuid.uuid4())},
            },
            "dataVersion": "",
            "metadataVersion": "1",
        }


def _md5(blob: BlobProperties) -> str | None:
    md5 = blob.content_settings.content_md5
    return bytes(md5).hex() if md5 else None


def _blob_type_name(blob_type: BlobType | str | None) -> str:
    names = {BlobType.PAGEBLOB: "PageBlob", BlobType.APPENDBLOB: "AppendBlob"}
    return names.get(blob_type, "BlockBlob") if isinstance(blob_type, BlobType) else "BlockBlob"
