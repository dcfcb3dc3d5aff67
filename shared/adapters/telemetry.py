"""OpenTelemetry to Application Insights, with the Azure Monitor distro (docs/observability.md).

:func:`configure_telemetry` runs once per process, from the composition root
(``shared.composition.settings`` on the first factory call, when ``function_app.py`` asked for
telemetry), and only when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set: only then is
``azure-monitor-opentelemetry`` (about 0.5 s) imported. It sets up

* traces: the pipeline's own spans (``shared.core.tracing``) and every azure-core SDK call
  (ARM through azure-mgmt-compute, blob, Service Bus) as a dependency, through
  azure-core-tracing-opentelemetry. No other instrumentation is enabled: azure-core already
  traces the SDKs' HTTP calls, and the app makes no other outgoing calls;
* logs: every record of the app's loggers, with its structured fields (``extra=``, and the
  fields of the operation it belongs to) as custom dimensions under stable snake_case names
  (:func:`log_attributes`), secrets masked; Azure SDK chatter below WARNING is left out;
* metrics: the instruments of ``shared.core.metrics`` (and the distro's performance counters).

Work done under OpenTelemetry's "suppress instrumentation" context is not traced (the sampler
drops it): the devstack host marks its own receivers and pollers so, as the real host's calls
are never in the app's telemetry.

With ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` = ``Authorization=AAD`` (and optionally
``ClientId=...``) telemetry is sent with a managed identity (Microsoft Entra authentication).
If the Functions Python worker configured the distro already
(``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY=true``), nothing is configured twice: only the
log handler is adapted.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from shared.core import tracing
from shared.core.redaction import redact_secrets
from shared.core.settings import TelemetrySettings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

logger = logging.getLogger(__name__)

#: The instrumentations of the distro that stay on (the others are off: see the docstring).
ENABLED_INSTRUMENTATIONS: Final = frozenset({"azure_sdk"})
#: Every instrumentation the distro knows (1.8): those not enabled are switched off explicitly.
DISTRO_INSTRUMENTATIONS: Final = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "httpx",
    "httpx2",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)
#: Records below this level are not exported (worker logs are not filtered by host.json).
EXPORTED_LEVEL: Final = logging.INFO
#: Loggers whose records are exported only from WARNING up (per-request chatter otherwise).
QUIET_LOGGERS: Final = ("azure", "msal", "urllib3", "uamqp")
#: Loggers never exported: the exporter's own (a failed export must not feed itself).
NEVER_EXPORTED: Final = ("azure.monitor.opentelemetry", "opentelemetry")
#: Field names spelled differently across the code base, and the attribute they become.
ATTRIBUTE_ALIASES: Final[Mapping[str, str]] = {"source_key": "source"}

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}
_CAMEL_BOUNDARY: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def attribute_name(field: str) -> str:
    """The stable attribute name of a structured field: snake_case (``buildId`` and
    ``build_id`` are both ``build_id``), with the aliases of :data:`ATTRIBUTE_ALIASES`."""
    name = _CAMEL_BOUNDARY.sub("_", field).lower()
    return ATTRIBUTE_ALIASES.get(name, name)


def _attribute(value: Any) -> str | bool | int | float | None:
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        text = json.dumps(
            sorted(value, key=str) if isinstance(value, set | frozenset) else value, default=str
        )
        return redact_secrets(text)
    plain = tracing.attribute_value(value)
    return redact_secrets(plain) if isinstance(plain, str) else plain


def log_attributes(fields: Mapping[str, Any]) -> dict[str, str | bool | int | float]:
    """Structured fields as log attributes: stable names, primitive values (collections as
    JSON), ``None`` left out, secrets (SAS signatures, account keys) masked."""
    attributes: dict[str, str | bool | int | float] = {}
    for field, value in fields.items():
        name, converted = attribute_name(field), _attribute(value)
        if converted is not None and name not in _STANDARD_RECORD_ATTRIBUTES:
            attributes[name] = converted
    return attributes


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD_RECORD_ATTRIBUTES}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


class TelemetryLogHandler(logging.Handler):
    """Wraps the OpenTelemetry logging handler: passes it a copy of each record with the
    operation's fields and the record's ``extra`` as normalised attributes and a redacted
    message, so the console (and every other handler) sees the record unchanged."""

    def __init__(self, inner: logging.Handler) -> None:
        super().__init__(level=EXPORTED_LEVEL)
        self.inner = inner

    def wanted(self, record: logging.LogRecord) -> bool:
        if record.levelno < EXPORTED_LEVEL or _within(record.name, NEVER_EXPORTED):
            return False
        return record.levelno >= logging.WARNING or not _within(record.name, QUIET_LOGGERS)

    def emit(self, record: logging.LogRecord) -> None:
        if not self.wanted(record):
            return
        try:
            fields = {**tracing.log_fields(), **_extras(record)}
            plain = {k: v for k, v in vars(record).items() if k in _STANDARD_RECORD_ATTRIBUTES}
            copy = logging.makeLogRecord(plain)
            copy.msg, copy.args = redact_secrets(record.getMessage()), None
            copy.__dict__.update(log_attributes(fields))
            self.inner.emit(copy)
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()
        super().close()


def _install_log_handler(root: logging.Logger) -> None:
    """Replace the distro's handler on the root logger by :class:`TelemetryLogHandler`."""
    for handler in list(root.handlers):
        kind = type(handler)
        if kind.__name__ == "LoggingHandler" and kind.__module__.startswith("opentelemetry"):
            root.removeHandler(handler)
            root.addHandler(TelemetryLogHandler(handler))


def entra_credential(settings: TelemetrySettings) -> TokenCredential | None:
    """The managed identity that sends telemetry with Microsoft Entra auth (else ``None``)."""
    if not settings.entra_auth:
        return None
    from azure.identity import ManagedIdentityCredential  # noqa: PLC0415  (lazy: 0.3 s)

    if settings.entra_client_id:
        return ManagedIdentityCredential(client_id=settings.entra_client_id)
    return ManagedIdentityCredential()


def _sdk_already_configured() -> bool:
    """Whether an OpenTelemetry SDK tracer provider is installed (e.g. by the Functions Python
    worker with ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY``): then do not set up twice."""
    from opentelemetry import trace  # noqa: PLC0415

    return type(trace.get_tracer_provider()).__module__.startswith("opentelemetry.sdk")


class _State:
    lock = threading.Lock()
    configured = False


def configure_telemetry(settings: TelemetrySettings) -> bool:
    """Set up OpenTelemetry with Azure Monitor once per process; ``False`` when there is no
    connection string (nothing is imported then). A failure is logged and never stops the app."""
    if not settings.enabled:
        return False
    with _State.lock:
        if _State.configured:
            return True
        _State.configured = True
        try:
            if _sdk_already_configured():
                logger.info("OpenTelemetry is already configured in this process; kept as is")
            else:
                _configure_azure_monitor(settings)
            _install_log_handler(logging.getLogger())
        except Exception:
            logger.exception("telemetry could not be configured; the app runs without it")
            return False
    logger.info(
        "telemetry: OpenTelemetry to Application Insights",
        extra={"entra_auth": settings.entra_auth, "live_metrics": settings.live_metrics},
    )
    return True


def honour_suppression() -> None:
    """Make the tracer provider's sampler drop spans started under suppressed instrumentation
    (``opentelemetry.instrumentation.utils.suppress_instrumentation``); it keeps its own
    decision for everything else."""
    from opentelemetry import context, trace  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult  # noqa: PLC0415

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        return
    inner: Sampler = provider.sampler

    class HonourSuppression(Sampler):
        def should_sample(self, parent_context: Any, *args: Any, **kwargs: Any) -> SamplingResult:
            if context.get_value(context._SUPPRESS_INSTRUMENTATION_KEY, parent_context):
                return SamplingResult(Decision.DROP)
            return inner.should_sample(parent_context, *args, **kwargs)

        def get_description(self) -> str:
            return f"HonourSuppression({inner.get_description()})"

    provider.sampler = HonourSuppression()


def _configure_azure_monitor(settings: TelemetrySettings) -> None:
    from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415  (0.5 s)

    options: dict[str, Any] = {
        "connection_string": settings.connection_string,
        "logger_name": "",  # the root logger: every module's logger
        "enable_live_metrics": settings.live_metrics,
        "instrumentation_options": {
            name: {"enabled": name in ENABLED_INSTRUMENTATIONS} for name in DISTRO_INSTRUMENTATIONS
        },
    }
    credential = entra_credential(settings)
    if credential is not None:
        options["credential"] = credential
    configure_azure_monitor(**options)
    honour_suppression()
