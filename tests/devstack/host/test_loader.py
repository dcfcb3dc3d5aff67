"""Indexing the app: bindings, %SETTING% resolution, parameter checks, settings and host.json."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from devstack.host.loader import (
    AppSettings,
    FunctionIndexingError,
    HostJson,
    index_functions,
    load_function_app,
    parse_timespan,
)
from tests.conftest import REPO_ROOT
from tests.devstack.host.conftest import SAMPLE_APP


def _settings(**values: str) -> AppSettings:
    return AppSettings(
        values={"TEST_QUEUE": "builds-q", "TICK_SCHEDULE": "*/5 * * * * *", **values}
    )


def test_discovers_every_trigger_and_resolves_settings() -> None:
    app = load_function_app(SAMPLE_APP, REPO_ROOT)
    specs = index_functions(app, _settings())
    assert {name: spec.trigger_type for name, spec in specs.items()} == {
        "on_event": "eventGridTrigger",
        "on_queue_message": "serviceBusTrigger",
        "tick": "timerTrigger",
        "slow_tick": "timerTrigger",
        "hello": "httpTrigger",
    }
    queue = specs["on_queue_message"].trigger
    assert queue["queueName"] == "builds-q"  # was %TEST_QUEUE%
    assert queue["connection"] == "ServiceBusConnection"
    assert specs["tick"].trigger["schedule"] == "*/5 * * * * *"
    assert specs["tick"].trigger["runOnStartup"] is True
    assert specs["hello"].wants_context
    assert specs["hello"].trigger["route"] == "hello/{name}"


def test_indexing_twice_reuses_the_single_get_functions_call() -> None:
    app = load_function_app(SAMPLE_APP, REPO_ROOT)
    first = index_functions(app, _settings())
    second = index_functions(app, _settings(TEST_QUEUE="other-q"))
    assert first["on_queue_message"].trigger["queueName"] == "builds-q"
    assert second["on_queue_message"].trigger["queueName"] == "other-q"


def test_unresolved_setting_is_an_indexing_error() -> None:
    app = load_function_app(SAMPLE_APP, REPO_ROOT)
    with pytest.raises(FunctionIndexingError, match="'%TEST_QUEUE%' does not resolve"):
        index_functions(app, AppSettings(values={"TICK_SCHEDULE": "* * * * * *"}))


def test_disabled_setting_marks_function_disabled() -> None:
    app = load_function_app(SAMPLE_APP, REPO_ROOT)
    specs = index_functions(app, _settings(**{"AzureWebJobs.tick.Disabled": "true"}))
    assert specs["tick"].disabled
    assert not specs["hello"].disabled


def test_parameters_must_match_binding_names(tmp_path: Path) -> None:
    (tmp_path / "bad_params_app.py").write_text(
        "import azure.functions as func\n"
        "app = func.FunctionApp()\n"
        "@app.timer_trigger(arg_name='timer', schedule='* * * * * *')\n"
        "def f(tmr) -> None: ...\n"
    )
    app = load_function_app("bad_params_app", tmp_path)
    with pytest.raises(FunctionIndexingError, match="declared in Python but not in the bindings"):
        index_functions(app, AppSettings(values={}))


def test_environment_wins_over_local_settings(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {"A": "file", "B": "file"}}))
    settings = AppSettings.load(path, {"A": "env"})
    assert settings.get("A") == "env"
    assert settings.get("B") == "file"
    environ: dict[str, str] = {"A": "env"}
    settings.export_to(environ)
    assert environ == {"A": "env", "B": "file"}


def test_host_json_service_bus_options_and_overrides(tmp_path: Path) -> None:
    path = tmp_path / "host.json"
    path.write_text(
        json.dumps(
            {
                "functionTimeout": "00:10:00",
                "extensions": {
                    "serviceBus": {
                        "maxConcurrentCalls": 4,
                        "maxAutoLockRenewalDuration": "1.00:00:30",
                    }
                },
            }
        )
    )
    host_json = HostJson.load(path, AppSettings(values={}))
    assert host_json.service_bus_max_concurrent_calls == 4
    assert host_json.service_bus_max_lock_renewal == timedelta(days=1, seconds=30)
    assert host_json.function_timeout == timedelta(minutes=10)
    overridden = HostJson.load(
        path,
        AppSettings(
            values={"AzureFunctionsJobHost__extensions__serviceBus__maxConcurrentCalls": "2"}
        ),
    )
    assert overridden.service_bus_max_concurrent_calls == 2


def test_parse_timespan_rejects_garbage() -> None:
    assert parse_timespan("00:00:00.5") == timedelta(milliseconds=500)
    with pytest.raises(ValueError, match="TimeSpan"):
        parse_timespan("5 minutes")
