"""The host's own Azure SDK calls stay out of the app's telemetry.

In Azure the Functions host is a separate (.NET) process: the app's Application Insights data
shows only what the app does. This host runs the app in its own process, so when the app has
configured OpenTelemetry (``APPLICATIONINSIGHTS_CONNECTION_STRING``), the host's Service Bus
receivers and its blob polling would be traced too. :func:`quietly` runs a host thread under
OpenTelemetry's standard "suppress instrumentation" context, which the app's telemetry honours
(``shared.adapters.telemetry``); threads that run functions are not affected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def host_work() -> Iterator[None]:
    """Everything traced in the block is dropped (a no-op without opentelemetry)."""
    try:
        from opentelemetry import context  # noqa: PLC0415  (optional, and only when used)
    except ImportError:
        yield
        return
    token = context.attach(context.set_value(context._SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)


def quietly(target: Callable[[], None]) -> Callable[[], None]:
    """``target`` as a thread body that runs under :func:`host_work`."""

    def run() -> None:
        with host_work():
            target()

    return run
