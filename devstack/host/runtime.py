"""Invoke user functions: invocation ids, the ``context`` argument, outputs, and one log line each.

Every invocation logs ``Executing 'Functions.<name>' (Reason=..., Id=...)`` and then
``Executed 'Functions.<name>' (Succeeded|Failed, Id=..., Duration=...ms)`` like the real host,
with the same values as structured ``extra`` fields (``invocation_id``, ``function``,
``duration_ms``, ``outcome``) for log processors.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import _abc as functions_abc

from devstack.host.loader import FunctionSpec

logger = logging.getLogger(__name__)


class _TraceContext(functions_abc.TraceContext):
    def __init__(self, invocation_id: str) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{invocation_id.replace('-', '')[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(functions_abc.RetryContext):
    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> functions_abc.RpcException:
        raise AttributeError("no exception: function-level retry policies are not applied")


class InvocationContext(func.Context):
    """The ``context`` argument a function may declare."""

    _thread_local = threading.local

    def __init__(self, invocation_id: str, function_name: str, function_directory: str) -> None:
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = _TraceContext(invocation_id)
        self._retry_context = _RetryContext()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> type[threading.local]:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> functions_abc.TraceContext:
        return self._trace_context

    @property
    def retry_context(self) -> functions_abc.RetryContext:
        return self._retry_context


class OutputValue(func.Out[Any]):
    """A ``func.Out`` the function sets; the host forwards the value after the call."""

    def __init__(self) -> None:
        self._value: Any = None
        self.was_set = False

    def set(self, val: Any) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> Any:
        return self._value


#: Forwards one output binding's value: ``(binding, value) -> None``.
OutputHandler = Callable[[Mapping[str, Any], Any], None]


@dataclass
class InvocationStats:
    """Counts of finished invocations per function and outcome."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, function: str, outcome: str) -> None:
        with self.lock:
            self.counts[(function, outcome)] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self.lock:
            result: dict[str, dict[str, int]] = {}
            for (function, outcome), count in self.counts.items():
                result.setdefault(function, {})[outcome] = count
            return result


class Invoker:
    """Calls user functions with their arguments and logs each invocation."""

    def __init__(
        self,
        project_root: Path,
        output_handlers: Mapping[str, OutputHandler] | None = None,
    ) -> None:
        self._project_root = project_root
        self._output_handlers = dict(output_handlers or {})
        self.stats = InvocationStats()

    def add_output_handler(self, binding_type: str, handler: OutputHandler) -> None:
        self._output_handlers[binding_type] = handler

    def supports_output(self, binding_type: str) -> bool:
        return binding_type in self._output_handlers

    def invoke(
        self,
        spec: FunctionSpec,
        trigger_value: Any,
        *,
        reason: str,
        details: str = "",
    ) -> Any:
        """Run ``spec`` once; return its return value; re-raise its exception after logging."""
        invocation_id = str(uuid.uuid4())
        arguments: dict[str, Any] = {spec.trigger_parameter: trigger_value}
        outputs: dict[str, OutputValue] = {}
        for binding in spec.output_bindings:
            outputs[str(binding["name"])] = OutputValue()
        arguments.update(outputs)
        if spec.wants_context:
            arguments["context"] = InvocationContext(
                invocation_id, spec.name, str(self._project_root)
            )
        extra = {"invocation_id": invocation_id, "function": spec.name}
        suffix = f", {details}" if details else ""
        logger.info(
            "Executing 'Functions.%s' (Reason='%s', Id=%s%s)",
            spec.name,
            reason,
            invocation_id,
            suffix,
            extra=extra,
        )
        started = time.perf_counter()
        try:
            result = spec.user_function(**arguments)
            if inspect.isawaitable(result):
                result = asyncio.run(_await(result))
            for binding in spec.output_bindings:
                value = outputs[str(binding["name"])]
                if value.was_set:
                    self._forward_output(binding, value.get())
        except BaseException as exc:
            duration_ms = (time.perf_counter() - started) * 1000
            self.stats.record(spec.name, "Failed")
            logger.error(
                "Executed 'Functions.%s' (Failed, Id=%s, Duration=%.0fms): %s: %s",
                spec.name,
                invocation_id,
                duration_ms,
                type(exc).__name__,
                exc,
                extra={**extra, "duration_ms": round(duration_ms, 1), "outcome": "Failed"},
            )
            raise
        duration_ms = (time.perf_counter() - started) * 1000
        self.stats.record(spec.name, "Succeeded")
        logger.info(
            "Executed 'Functions.%s' (Succeeded, Id=%s, Duration=%.0fms)",
            spec.name,
            invocation_id,
            duration_ms,
            extra={**extra, "duration_ms": round(duration_ms, 1), "outcome": "Succeeded"},
        )
        return result

    def _forward_output(self, binding: Mapping[str, Any], value: Any) -> None:
        handler = self._output_handlers.get(str(binding["type"]))
        if handler is None:
            raise RuntimeError(
                f"output binding type {binding['type']!r} is not supported by the devstack host"
            )
        handler(binding, value)


async def _await(awaitable: Any) -> Any:
    return await awaitable
