"""Load a v2 Python function app the way the real worker does, and read the host's settings.

* :func:`load_function_app` imports the script module and finds its single ``FunctionRegister``.
* :func:`index_functions` calls ``app.get_functions()`` exactly once (a second call raises), checks
  that the Python parameters match the binding names, and resolves ``%SETTING%`` references in
  binding properties against the app settings, like the real host.
* :class:`AppSettings` merges ``local.settings.json`` ``Values`` with the environment (the
  environment wins, as in Core Tools).
* :class:`HostJson` reads the ``host.json`` values the devstack host honours, including the
  ``AzureFunctionsJobHost__path__to__setting`` overrides.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.functions.decorators.function_app import FunctionRegister

logger = logging.getLogger(__name__)

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")
_TIMESPAN = re.compile(
    r"^(?:(?P<days>\d+)\.)?(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2})(?:\.(?P<f>\d+))?$"
)
#: Binding properties that name things rather than hold values: never %-resolved.
_UNRESOLVED_PROPERTIES = frozenset({"name", "type", "direction"})
JOB_HOST_OVERRIDE_PREFIX = "AzureFunctionsJobHost__"


class FunctionIndexingError(RuntimeError):
    """The function app cannot be indexed (import failure, bad bindings, unresolved settings)."""


@dataclass(frozen=True)
class AppSettings:
    """App settings as the worker sees them: environment first, then ``local.settings.json``."""

    values: Mapping[str, str]
    from_file: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, settings_file: Path | None, environ: Mapping[str, str]) -> AppSettings:
        file_values: dict[str, str] = {}
        if settings_file is not None and settings_file.is_file():
            document = json.loads(settings_file.read_text(encoding="utf-8"))
            raw_values = document.get("Values") or {}
            if not isinstance(raw_values, dict):
                raise FunctionIndexingError(f"{settings_file}: 'Values' must be an object")
            file_values = {str(k): "" if v is None else str(v) for k, v in raw_values.items()}
        merged = dict(file_values)
        for key in file_values:
            if key in environ and environ[key] != file_values[key]:
                logger.info(
                    "Skipping '%s' from local settings as it's already defined in current "
                    "environment variables.",
                    key,
                )
        merged.update(environ)
        return cls(values=merged, from_file=file_values)

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def export_to(self, environ: MutableMapping[str, str]) -> None:
        """Put the file's values into ``environ`` where not already set (what Core Tools does)."""
        for key, value in self.from_file.items():
            environ.setdefault(key, value)

    def resolve(self, text: str, *, where: str) -> str:
        """Replace every ``%NAME%`` in ``text`` with the setting's value."""

        def replace(match: re.Match[str]) -> str:
            value = self.values.get(match.group(1))
            if value is None:
                raise FunctionIndexingError(
                    f"Error indexing {where}: '{match.group(0)}' does not resolve to a value."
                )
            return value

        return _SETTING_REFERENCE.sub(replace, text)

    def is_true(self, name: str) -> bool:
        return (self.values.get(name) or "").strip().lower() in {"1", "true"}


def parse_timespan(text: str) -> timedelta:
    """Parse a .NET TimeSpan as used in host.json: ``[d.]hh:mm:ss[.fffffff]``."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise ValueError(f"not a TimeSpan ([d.]hh:mm:ss[.fffffff]): {text!r}")
    fraction = match.group("f") or "0"
    return timedelta(
        days=int(match.group("days") or 0),
        hours=int(match.group("h")),
        minutes=int(match.group("m")),
        seconds=int(match.group("s")),
        microseconds=int(fraction[:6].ljust(6, "0")),
    )


def _lookup(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = document
    for key in path:
        if not isinstance(node, Mapping):
            return None
        # host.json keys are case-insensitive in the real host
        matches = [k for k in node if k.lower() == key.lower()]
        if not matches:
            return None
        node = node[matches[0]]
    return node


@dataclass(frozen=True)
class HostJson:
    """The ``host.json`` settings the devstack host honours."""

    document: Mapping[str, Any]
    overrides: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None, settings: AppSettings) -> HostJson:
        document: dict[str, Any] = {}
        if path is not None and path.is_file():
            document = json.loads(path.read_text(encoding="utf-8"))
        overrides = {
            key[len(JOB_HOST_OVERRIDE_PREFIX) :].lower(): value
            for key, value in settings.values.items()
            if key.startswith(JOB_HOST_OVERRIDE_PREFIX)
        }
        return cls(document=document, overrides=overrides)

    def get(self, *path: str) -> Any:
        override = self.overrides.get("__".join(path).lower())
        if override is not None:
            return override
        return _lookup(self.document, path)

    @property
    def service_bus_max_concurrent_calls(self) -> int:
        value = self.get("extensions", "serviceBus", "maxConcurrentCalls")
        # documented default: 16 per processor
        return int(value) if value is not None else 16 * (os.cpu_count() or 1)

    @property
    def service_bus_auto_complete(self) -> bool:
        value = self.get("extensions", "serviceBus", "autoCompleteMessages")
        if value is None:
            return True
        return value if isinstance(value, bool) else str(value).lower() == "true"

    @property
    def service_bus_max_lock_renewal(self) -> timedelta:
        value = self.get("extensions", "serviceBus", "maxAutoLockRenewalDuration")
        return parse_timespan(str(value)) if value is not None else timedelta(minutes=5)

    @property
    def function_timeout(self) -> timedelta | None:
        value = self.get("functionTimeout")
        return parse_timespan(str(value)) if value is not None else None


@dataclass(frozen=True)
class FunctionSpec:
    """One indexed function: its trigger, resolved bindings, and the user callable."""

    name: str
    trigger: Mapping[str, Any]
    bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any]
    parameters: tuple[str, ...]
    wants_context: bool
    disabled: bool = False

    @property
    def trigger_type(self) -> str:
        return str(self.trigger["type"])

    @property
    def trigger_parameter(self) -> str:
        return str(self.trigger["name"])

    @property
    def output_bindings(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(
            b
            for b in self.bindings
            if str(b.get("direction", "")).upper() == "OUT" and b.get("name") != "$return"
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trigger": dict(self.trigger),
            "bindings": [dict(b) for b in self.bindings],
            "isDisabled": self.disabled,
        }


def load_function_app(module_name: str, project_root: Path) -> FunctionRegister:
    """Import ``module_name`` from ``project_root``; return its single FunctionApp instance."""
    root = str(project_root.resolve())
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise FunctionIndexingError(f"cannot import function app {module_name!r}: {exc}") from exc
    registers = [value for value in vars(module).values() if isinstance(value, FunctionRegister)]
    if len(registers) != 1:
        raise FunctionIndexingError(
            f"{module_name}: expected exactly one top-level function app instance "
            f"(FunctionApp/AsgiFunctionApp/WsgiFunctionApp), found {len(registers)}"
        )
    return registers[0]


def _resolve_binding(
    binding: Mapping[str, Any], settings: AppSettings, function_name: str
) -> dict[str, Any]:
    resolved: dict[str, Any] = {}
    for key, value in binding.items():
        if isinstance(value, str) and key not in _UNRESOLVED_PROPERTIES:
            where = f"function '{function_name}' property '{key}'"
            resolved[key] = settings.resolve(value, where=where)
        else:
            resolved[key] = value
    return resolved


@dataclass(frozen=True)
class _IndexedFunction:
    name: str
    raw_bindings: tuple[Mapping[str, Any], ...]
    user_function: Callable[..., Any]


# app.get_functions() raises on a second call (azure-functions-python-worker#1867): index each
# app object once per process and reuse the result (several hosts may run in one test process).
_indexed: dict[int, tuple[FunctionRegister, list[_IndexedFunction]]] = {}
_indexed_lock = threading.Lock()


def _functions_of(app: FunctionRegister) -> list[_IndexedFunction]:
    with _indexed_lock:
        cached = _indexed.get(id(app))
        if cached is not None and cached[0] is app:
            return cached[1]
        functions = [
            _IndexedFunction(
                name=str(function.get_function_name()),
                raw_bindings=tuple(json.loads(function.get_function_json())["bindings"]),
                user_function=function.get_user_function(),
            )
            for function in app.get_functions()
        ]
        _indexed[id(app)] = (app, functions)
        return functions


def index_functions(app: FunctionRegister, settings: AppSettings) -> dict[str, FunctionSpec]:
    """Index every function of ``app`` (``get_functions()`` runs once per app object)."""
    specs: dict[str, FunctionSpec] = {}
    for function in _functions_of(app):
        name = function.name
        bindings = tuple(_resolve_binding(b, settings, name) for b in function.raw_bindings)
        triggers = [b for b in bindings if str(b["type"]).endswith("Trigger")]
        if len(triggers) != 1:
            raise FunctionIndexingError(f"function '{name}' must have exactly one trigger")
        user_function = function.user_function
        parameters = tuple(inspect.signature(user_function).parameters)
        binding_names = {str(b["name"]) for b in bindings if b["name"] != "$return"}
        declared = set(parameters) - {"context"}
        if declared - binding_names:
            raise FunctionIndexingError(
                f"function '{name}': the following parameters are declared in Python but not in "
                f"the bindings: {sorted(declared - binding_names)}"
            )
        if binding_names - declared:
            raise FunctionIndexingError(
                f"function '{name}': the following bindings have no Python parameter: "
                f"{sorted(binding_names - declared)}"
            )
        specs[name] = FunctionSpec(
            name=name,
            trigger=triggers[0],
            bindings=bindings,
            user_function=user_function,
            parameters=parameters,
            wants_context="context" in parameters,
            disabled=settings.is_true(f"AzureWebJobs.{name}.Disabled"),
        )
    return specs
