"""The mini Functions host: indexes a v2 app once and runs every trigger until stopped."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.http import HttpRequest
from azure.functions.servicebus import ServiceBusMessageInConverter
from azure.storage.blob import BlobServiceClient

from devstack import azurite
from devstack.host.eventgrid import (
    BlobCreatedSource,
    EventGridBroker,
    EventGridConfig,
    validate_events,
)
from devstack.host.http_trigger import HostHttpServer, UnknownFunctionError
from devstack.host.loader import (
    AppSettings,
    FunctionIndexingError,
    FunctionSpec,
    HostJson,
    index_functions,
    load_function_app,
)
from devstack.host.runtime import Invoker
from devstack.host.servicebus_trigger import ServiceBusOutputSender, ServiceBusTriggerListener
from devstack.host.timer_trigger import TimerListener, build_timer_request

logger = logging.getLogger(__name__)

DEFAULT_EVENTGRID_CONFIG = Path(__file__).with_name("eventgrid.json")
HOST_VERSION = "4.0.0-devstack"


class _Stoppable(Protocol):
    def stop(self, timeout: float = ...) -> None: ...


@dataclass(frozen=True)
class HostOptions:
    """Where the app and its settings are, and where the host listens."""

    project_root: Path
    app_module: str = "function_app"
    http_port: int = 7071
    settings_file: Path | None = None
    host_json: Path | None = None
    eventgrid_config: Path | None = None
    state_dir: Path | None = None
    export_settings: bool = True

    @property
    def resolved_settings_file(self) -> Path:
        return self.settings_file or self.project_root / "local.settings.json"

    @property
    def resolved_host_json(self) -> Path:
        return self.host_json or self.project_root / "host.json"


def _storage_connection_string(value: str) -> str:
    if value.strip().lower().rstrip(";") == "usedevelopmentstorage=true":
        return azurite.connection_string(10000)
    return value


class FunctionsHost:
    """Loads the app, starts one listener per trigger, serves HTTP; ``stop()`` ends it all."""

    def __init__(
        self, options: HostOptions, environ: MutableMapping[str, str] | None = None
    ) -> None:
        self.options = options
        self._environ = os.environ if environ is None else environ
        self.settings = AppSettings.load(options.resolved_settings_file, self._environ)
        self.host_json = HostJson.load(options.resolved_host_json, self.settings)
        self.invoker = Invoker(options.project_root)
        self.functions: dict[str, FunctionSpec] = {}
        self.event_grid: EventGridBroker | None = None
        self.blob_source: BlobCreatedSource | None = None
        self.http_server: HostHttpServer | None = None
        self._listeners: list[_Stoppable] = []
        self._started_at = time.monotonic()
        self._state = "Default"
        self.host_id = uuid.uuid4().hex[:16]

    # ----- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._state = "Initializing"
        if self.options.export_settings:
            self.settings.export_to(self._environ)
        self.functions = self._index()
        self.invoker.add_output_handler("serviceBus", ServiceBusOutputSender(self.settings))
        for spec in self.functions.values():
            for binding in spec.output_bindings:
                if not self.invoker.supports_output(str(binding["type"])):
                    logger.warning(
                        "function %s: output binding type %r is not supported locally",
                        spec.name,
                        binding["type"],
                    )
        try:
            self._start_event_grid()
            self._start_listeners()
            self.http_server = HostHttpServer(self, self.options.http_port)
            self.http_server.start()
        except BaseException:
            self.stop()
            raise
        self._state = "Running"
        logger.info(
            "Host started: %d function(s) %s; http://127.0.0.1:%d",
            len(self.functions),
            sorted(self.functions),
            self.options.http_port,
        )

    def stop(self, timeout: float = 5.0) -> None:
        """Stop HTTP, sources, listeners and the Event Grid, each bounded by ``timeout``."""
        self._state = "Stopping"
        if self.http_server is not None:
            self.http_server.stop(timeout)
            self.http_server = None
        if self.blob_source is not None:
            self.blob_source.stop(timeout)
            self.blob_source = None
        for listener in self._listeners:
            listener.stop(timeout)
        self._listeners.clear()
        if self.event_grid is not None:
            self.event_grid.stop(timeout)
        self._state = "Stopped"
        logger.info("Host stopped")

    def __enter__(self) -> FunctionsHost:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _index(self) -> dict[str, FunctionSpec]:
        app = load_function_app(self.options.app_module, self.options.project_root)
        return index_functions(app, self.settings)

    def _start_event_grid(self) -> None:
        config_path = self.options.eventgrid_config or DEFAULT_EVENTGRID_CONFIG
        config = EventGridConfig.load(config_path) if config_path.is_file() else EventGridConfig()
        subscriptions = []
        for subscription in config.subscriptions:
            spec = self.functions.get(subscription.function)
            if spec is None or spec.trigger_type != "eventGridTrigger":
                logger.warning(
                    "event subscription %s: no eventGridTrigger function named %r; skipped",
                    subscription.name,
                    subscription.function,
                )
                continue
            subscriptions.append(subscription)
        dead_letter = config.dead_letter_file
        if dead_letter is None and self.options.state_dir is not None:
            dead_letter = self.options.state_dir / "eventgrid-deadletter.jsonl"
        self.event_grid = EventGridBroker(
            self.deliver_event, subscriptions, retry=config.retry, dead_letter_file=dead_letter
        )
        self.event_grid.start()
        blob_config = config.blob_source
        connection = self.settings.get(blob_config.connection_setting)
        if blob_config.enabled and connection:
            service = BlobServiceClient.from_connection_string(
                _storage_connection_string(connection), connection_timeout=5, read_timeout=10
            )
            self.blob_source = BlobCreatedSource(
                service,
                self.event_grid.publish,
                topic=blob_config.topic,
                poll_interval=blob_config.poll_interval_seconds,
                containers=blob_config.containers,
            )
            self.blob_source.start()
        elif blob_config.enabled:
            logger.warning(
                "event grid: blob source disabled, setting %r is not set",
                blob_config.connection_setting,
            )

    def _start_listeners(self) -> None:
        status_dir = self.options.state_dir / "timers" if self.options.state_dir else None
        for spec in self.functions.values():
            if spec.disabled:
                logger.info("function %s is disabled", spec.name)
                continue
            listener: _Stoppable | None = None
            if spec.trigger_type == "timerTrigger":
                timer = TimerListener(
                    spec,
                    lambda s, value, reason: self.invoker.invoke(s, value, reason=reason),
                    status_dir=status_dir,
                )
                timer.start()
                listener = timer
            elif spec.trigger_type == "serviceBusTrigger":
                receiver = ServiceBusTriggerListener(
                    spec,
                    lambda s, value, reason, details: self.invoker.invoke(
                        s, value, reason=reason, details=details
                    ),
                    self.settings,
                    max_concurrent_calls=self.host_json.service_bus_max_concurrent_calls,
                    auto_complete=self.host_json.service_bus_auto_complete,
                    max_lock_renewal=self.host_json.service_bus_max_lock_renewal,
                )
                receiver.start()
                listener = receiver
            elif spec.trigger_type not in {"eventGridTrigger", "httpTrigger"}:
                logger.warning(
                    "function %s: trigger type %s is not supported by the devstack host",
                    spec.name,
                    spec.trigger_type,
                )
            if listener is not None:
                self._listeners.append(listener)

    # ----- deliveries --------------------------------------------------------------------------

    def _function(self, name: str, trigger_type: str | None = None) -> FunctionSpec:
        spec = self.functions.get(name)
        if spec is None or (trigger_type is not None and spec.trigger_type != trigger_type):
            kind = f" with a {trigger_type}" if trigger_type else ""
            raise UnknownFunctionError(f"no function '{name}'{kind}")
        return spec

    def deliver_event(self, function_name: str, event: Mapping[str, Any]) -> None:
        """Invoke an eventGridTrigger function with one event (raises when it fails)."""
        spec = self._function(function_name, "eventGridTrigger")
        if spec.disabled:
            raise RuntimeError(f"function '{function_name}' is disabled")
        value = EventGridEventInConverter.decode(
            meta.Datum(json.dumps(event), "json"), trigger_metadata={}
        )
        self.invoker.invoke(
            spec, value, reason="EventGrid trigger fired", details=f"EventId={event.get('id')}"
        )

    # ----- HostEndpoints (HTTP server) ---------------------------------------------------------

    def host_status(self) -> dict[str, Any]:
        return {
            "id": self.host_id,
            "state": self._state,
            "version": HOST_VERSION,
            "processUptime": int((time.monotonic() - self._started_at) * 1000),
            "functions": sorted(self.functions),
            "invocations": self.invoker.stats.snapshot(),
            "eventGrid": {
                "subscriptions": [s.name for s in self.event_grid.subscriptions]
                if self.event_grid
                else [],
                "delivered": self.event_grid.delivered if self.event_grid else 0,
                "deadLettered": len(self.event_grid.dead_letters) if self.event_grid else 0,
            },
        }

    def function_list(self) -> list[dict[str, Any]]:
        return [spec.describe() for spec in self.functions.values()]

    def http_functions(self) -> Sequence[FunctionSpec]:
        return [
            s for s in self.functions.values() if s.trigger_type == "httpTrigger" and not s.disabled
        ]

    def invoke_http(self, spec: FunctionSpec, request: HttpRequest) -> Any:
        return self.invoker.invoke(
            spec,
            request,
            reason="This function was programmatically called via the host APIs.",
            details=f"{request.method} {request.url}",
        )

    def invoke_admin(self, name: str, input_text: str | None) -> None:
        spec = self._function(name)
        value = self._admin_trigger_value(spec, input_text)
        reason = "This function was programmatically called via the host APIs."

        def run() -> None:
            try:
                self.invoker.invoke(spec, value, reason=reason)
            except Exception:
                logger.debug("admin invocation of %s failed", name, exc_info=True)

        threading.Thread(target=run, name=f"admin-{name}", daemon=True).start()

    def _admin_trigger_value(self, spec: FunctionSpec, input_text: str | None) -> Any:
        if spec.trigger_type == "timerTrigger":
            return build_timer_request(
                past_due=False,
                last=None,
                next_=datetime.now(UTC),
                schedule_text=str(spec.trigger.get("schedule", "")),
            )
        if spec.trigger_type == "eventGridTrigger":
            try:
                event = json.loads(input_text or "")
            except ValueError:
                raise FunctionIndexingError("input must be an Event Grid event (JSON)") from None
            return EventGridEventInConverter.decode(
                meta.Datum(json.dumps(event), "json"), trigger_metadata={}
            )
        if spec.trigger_type == "serviceBusTrigger":
            metadata = {
                "MessageId": meta.Datum(uuid.uuid4().hex, "string"),
                "DeliveryCount": meta.Datum(1, "int"),
                "ApplicationProperties": meta.Datum("{}", "json"),
                "UserProperties": meta.Datum("{}", "json"),
            }
            return ServiceBusMessageInConverter.decode(
                meta.Datum(input_text or "", "string"), trigger_metadata=metadata
            )
        raise UnknownFunctionError(
            f"function '{spec.name}' ({spec.trigger_type}) cannot be invoked via the admin API"
        )

    def publish_events(self, payload: Any) -> int:
        events = validate_events(payload)
        assert self.event_grid is not None
        return self.event_grid.publish(events)

    def deliver_webhook_events(self, function_name: str, payload: Any) -> None:
        self._function(function_name, "eventGridTrigger")
        for event in validate_events(payload):
            self.deliver_event(function_name, event)
