"""The telemetry adapter: settings, the log handler's attributes and filters, Entra auth, and
that nothing is configured (nor imported) without a connection string."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from shared import composition
from shared.adapters import telemetry
from shared.core import tracing
from shared.core.settings import SettingName, Settings, TelemetrySettings
from tests.unit.otel_capture import span_exporter

CONNECTION = (
    "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def record(
    name: str = "shared.builds.worker", level: int = logging.INFO, **extra: Any
) -> logging.LogRecord:
    made = logging.LogRecord(name, level, __file__, 1, "built %s", ("it",), None)
    made.__dict__.update(extra)
    return made


def test_telemetry_settings_come_from_the_app_insights_settings() -> None:
    settings = Settings.from_env(
        {
            SettingName.APPINSIGHTS_CONNECTION_STRING: CONNECTION + ";LiveEndpoint=https://live/",
            SettingName.APPINSIGHTS_AUTHENTICATION_STRING: "ClientId=abc;Authorization=AAD",
        }
    ).telemetry
    assert settings.enabled and settings.live_metrics
    assert settings.entra_auth and settings.entra_client_id == "abc"
    assert "InstrumentationKey" not in repr(
        Settings.from_env({SettingName.APPINSIGHTS_CONNECTION_STRING: CONNECTION})
    )


@pytest.mark.parametrize(
    ("authentication", "entra", "client_id"),
    [
        ("Authorization=AAD", True, None),
        ("authorization=aad;clientid=xyz", True, "xyz"),
        ("ClientId=xyz", False, None),  # no Authorization=AAD: the instrumentation key is used
        ("", False, None),
    ],
)
def test_entra_authentication_is_read_from_the_authentication_string(
    authentication: str, entra: bool, client_id: str | None
) -> None:
    settings = TelemetrySettings.from_env(
        {
            SettingName.APPINSIGHTS_CONNECTION_STRING: CONNECTION,
            SettingName.APPINSIGHTS_AUTHENTICATION_STRING: authentication,
        }
    )
    assert (settings.entra_auth, settings.entra_client_id) == (entra, client_id)
    assert not settings.live_metrics  # a local capture endpoint has no LiveEndpoint


def test_entra_auth_uses_the_managed_identity() -> None:
    from azure.identity import ManagedIdentityCredential

    assert telemetry.entra_credential(TelemetrySettings(CONNECTION)) is None
    user = telemetry.entra_credential(TelemetrySettings(CONNECTION, True, "abc"))
    system = telemetry.entra_credential(TelemetrySettings(CONNECTION, True))
    assert isinstance(user, ManagedIdentityCredential)
    assert isinstance(system, ManagedIdentityCredential)


@pytest.mark.parametrize(
    ("field", "name"),
    [
        ("build_id", "build_id"),
        ("buildId", "build_id"),
        ("requestId", "request_id"),
        ("source_key", "source"),
        ("sourceKey", "source"),
        ("gallery", "gallery"),
    ],
)
def test_field_names_become_stable_snake_case_attributes(field: str, name: str) -> None:
    assert telemetry.attribute_name(field) == name


def test_log_attributes_are_primitive_and_free_of_secrets() -> None:
    attributes = telemetry.log_attributes(
        {
            "source": "https://a.blob.core.windows.net/c/x.vhd?sv=1&sig=SECRET",
            "outcomes": {"queued": 2},
            "regions": ("westeurope",),
            "attempt": 2,
            "missing": None,
            "connection": "AccountName=a;AccountKey=KEY;",
        }
    )
    assert attributes == {
        "source": "https://a.blob.core.windows.net/c/x.vhd?sv=1&sig=***",
        "outcomes": '{"queued": 2}',
        "regions": '["westeurope"]',
        "attempt": 2,
        "connection": "AccountName=a;AccountKey=***;",
    }


def test_the_handler_passes_a_copy_with_the_operations_fields_and_leaves_the_record_alone() -> None:
    span_exporter()
    inner = Captured()
    handler = telemetry.TelemetryLogHandler(inner)
    original = record(buildId="b-1", reason="VersionConflict")

    with tracing.operation("work", fields={"source": "/snapshots/os", "build_id": "b-0"}):
        handler.handle(original)

    (sent,) = inner.records
    assert sent is not original
    assert sent.getMessage() == "built it"
    assert (sent.build_id, sent.source, sent.reason) == ("b-1", "/snapshots/os", "VersionConflict")  # type: ignore[attr-defined]
    assert not hasattr(sent, "buildId")
    assert not hasattr(original, "source") and original.buildId == "b-1"  # type: ignore[attr-defined]


def test_the_handler_masks_secrets_in_the_message() -> None:
    inner = Captured()
    handler = telemetry.TelemetryLogHandler(inner)
    leaky = logging.LogRecord(
        "shared.x", logging.WARNING, __file__, 1, "GET %s", ("https://a/b?sig=S3CRET",), None
    )

    handler.handle(leaky)

    assert inner.records[0].getMessage() == "GET https://a/b?sig=***"


@pytest.mark.parametrize(
    ("name", "level", "exported"),
    [
        ("shared.builds.tracker", logging.INFO, True),
        ("shared.builds.tracker", logging.DEBUG, False),
        ("azure.core.pipeline.policies.http_logging_policy", logging.INFO, False),
        ("azure.servicebus", logging.WARNING, True),
        ("azure.monitor.opentelemetry.exporter", logging.ERROR, False),
        ("opentelemetry.sdk", logging.WARNING, False),
        ("devstack.host.runtime", logging.INFO, True),
    ],
)
def test_the_handler_leaves_out_sdk_chatter_and_its_own_exporter(
    name: str, level: int, exported: bool
) -> None:
    inner = Captured()
    telemetry.TelemetryLogHandler(inner).handle(record(name, level))
    assert bool(inner.records) is exported


def test_the_distros_handler_on_the_root_logger_is_wrapped() -> None:
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    root = logging.Logger("root-under-test")
    distro = LoggingHandler()
    other = logging.StreamHandler()
    root.addHandler(distro)
    root.addHandler(other)

    telemetry._install_log_handler(root)

    wrapped = [h for h in root.handlers if isinstance(h, telemetry.TelemetryLogHandler)]
    assert len(wrapped) == 1 and wrapped[0].inner is distro
    assert other in root.handlers and distro not in root.handlers


def test_nothing_is_configured_without_a_connection_string(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(settings: TelemetrySettings) -> None:
        raise AssertionError("configured without a connection string")

    monkeypatch.setattr(telemetry, "_configure_azure_monitor", fail)
    assert telemetry.configure_telemetry(TelemetrySettings()) is False


def test_configuration_runs_once_and_a_failure_does_not_stop_the_app(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[TelemetrySettings] = []

    def broken(settings: TelemetrySettings) -> None:
        calls.append(settings)
        raise ValueError("bad connection string")

    monkeypatch.setattr(telemetry._State, "configured", False)
    monkeypatch.setattr(telemetry, "_sdk_already_configured", lambda: False)
    monkeypatch.setattr(telemetry, "_configure_azure_monitor", broken)
    settings = TelemetrySettings(CONNECTION)

    assert telemetry.configure_telemetry(settings) is False
    assert telemetry.configure_telemetry(settings) is True  # once per process, never again
    assert calls == [settings]


def test_the_app_asks_for_telemetry_and_the_first_factory_call_configures_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configured: list[TelemetrySettings] = []
    monkeypatch.setattr(telemetry, "configure_telemetry", configured.append)
    monkeypatch.setattr(tracing._SetUp, "hooks", [])  # the hook it registers goes with the test
    monkeypatch.setenv(SettingName.APPINSIGHTS_CONNECTION_STRING, CONNECTION)
    composition.reset()
    try:
        composition.settings()
        assert configured == []  # galleryctl, tests: nothing unless the app asked for it

        monkeypatch.setattr(
            composition, "_telemetry_requested", type(composition._telemetry_requested)()
        )
        composition.telemetry_on_first_use()
        composition.reset()
        composition.settings()
        assert [s.connection_string for s in configured] == [CONNECTION]
    finally:
        composition.reset()
