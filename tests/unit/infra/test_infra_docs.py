"""``infra/`` cannot drift from the code or from the local stack.

The deployment reference (``infra/reference.md``) must list every app setting the app and its
trigger bindings read, mark the ones the Functions host needs to index the functions, and state
the app's real defaults; the guide (``infra/README.md``) names the roles. The machine-readable
files must describe the same Service Bus entities as the emulator's default config and the same
Event Grid subscriptions as the local Event Grid, and the production settings example must be a
configuration the app accepts.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from devstack.servicebus.config import NamespaceConfig, load_config, parse_config
from shared.contract.parse import parse_build_request
from shared.core.settings import SettingName, Settings
from shared.intake.snapshots import parse_snapshot_defaults
from shared.intake.uploads import parse_routes, vhd_request_document

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
README = INFRA / "README.md"
REFERENCE = INFRA / "reference.md"
SERVICE_BUS_FILE = INFRA / "servicebus-entities.json"
EVENT_GRID_FILE = INFRA / "eventgrid-subscriptions.json"
EXAMPLE_SETTINGS_FILE = INFRA / "app-settings.production.example.json"
ROLES_DIR = INFRA / "roles"
LOCAL_SAMPLE_FILE = ROOT / "local.settings.sample.json"
DEVSTACK_EVENT_GRID_FILE = ROOT / "devstack" / "host" / "eventgrid.json"
FUNCTIONS_DIR = ROOT / "functions"

#: The upload container of the local stack, standing in for ``{uploadContainer}``.
LOCAL_UPLOAD_CONTAINER = "vhds"
PLACEHOLDER = re.compile(r"\{([A-Za-z][A-Za-z0-9]*)\}")
BINDING_SETTING = re.compile(r"%([A-Za-z0-9_]+)%")


# --------------------------------------------------------------------------- reading the sources


def setting_names() -> set[str]:
    """Every constant on :class:`SettingName`."""
    return {
        value
        for key, value in vars(SettingName).items()
        if key.isupper() and isinstance(value, str)
    }


@dataclass
class FunctionDecl:
    """One function of ``functions/*.py`` as the host sees it: name, trigger, bindings."""

    name: str
    module: str
    trigger: str
    binding_settings: set[str] = field(default_factory=set)
    connections: set[str] = field(default_factory=set)


def _string_constants(node: ast.AST) -> Iterator[str]:
    for child in ast.walk(node):
        if isinstance(child, ast.Constant) and isinstance(child.value, str):
            yield child.value


def declared_functions() -> list[FunctionDecl]:
    """Parse ``functions/*.py`` (no import): decorated handlers and their binding settings."""
    found: list[FunctionDecl] = []
    for path in sorted(FUNCTIONS_DIR.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef):
                continue
            decl = FunctionDecl(name=node.name, module=path.stem, trigger="")
            for decorator in node.decorator_list:
                if not (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and isinstance(decorator.func.value, ast.Name)
                    and decorator.func.value.id == "bp"
                ):
                    continue
                kind = decorator.func.attr
                if kind == "function_name" and decorator.args:
                    first = decorator.args[0]
                    if isinstance(first, ast.Constant) and isinstance(first.value, str):
                        decl.name = first.value
                elif kind.endswith("_trigger") or kind in {"route", "schedule"}:
                    decl.trigger = kind
                for keyword in decorator.keywords:
                    for text in _string_constants(keyword.value):
                        decl.binding_settings.update(BINDING_SETTING.findall(text))
                    if keyword.arg == "connection":
                        decl.connections.update(_string_constants(keyword.value))
            if decl.trigger:
                found.append(decl)
    return found


def binding_setting_names() -> set[str]:
    """Every ``%NAME%`` in a trigger binding of ``functions/*.py``."""
    return {name for decl in declared_functions() for name in decl.binding_settings}


def connection_setting_names() -> set[str]:
    """Every ``connection=`` of a binding: the host reads ``<name>`` or ``<name>__...``."""
    return {name for decl in declared_functions() for name in decl.connections}


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


def marked_section(marker: str, path: Path = REFERENCE) -> str:
    text = path.read_text(encoding="utf-8")
    start, end = f"<!-- {marker} -->", f"<!-- /{marker} -->"
    assert start in text, f"infra/{path.name} has no {start} marker"
    assert end in text, f"infra/{path.name} has no {end} marker"
    return text.split(start, 1)[1].split(end, 1)[0]


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table_rows(marker: str, path: Path = REFERENCE) -> dict[str, list[str]]:
    """Rows of the table between the markers, keyed by the backticked name in the first cell."""
    rows: dict[str, list[str]] = {}
    for line in marked_section(marker, path).splitlines():
        if not line.startswith("| `"):
            continue
        cells = _cells(line)
        match = re.fullmatch(r"`([^`]+)`", cells[0])
        assert match, f"first cell is not one backticked name: {line!r}"
        assert match.group(1) not in rows, f"{match.group(1)} is listed twice"
        rows[match.group(1)] = cells
    assert rows, f"no table rows between the {marker} markers"
    return rows


def app_settings_table() -> dict[str, dict[str, str]]:
    header = ["setting", "required", "default", "production", "meaning"]
    return {
        name: dict(zip(header, cells, strict=True))
        for name, cells in table_rows("settings-table:app").items()
    }


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def example_values() -> dict[str, str]:
    values = load_json(EXAMPLE_SETTINGS_FILE)["Values"]
    assert all(isinstance(value, str) for value in values.values()), "app settings are strings"
    return dict(values)


# --------------------------------------------------------------------------- the settings table


def test_the_function_scan_finds_the_handlers_and_their_bindings() -> None:
    functions = {decl.name: decl for decl in declared_functions()}
    assert functions["build_worker"].trigger == "service_bus_queue_trigger"
    assert functions["build_worker"].binding_settings == {SettingName.BUILD_QUEUE}
    assert functions["build_worker"].connections == {SettingName.SERVICE_BUS_CONNECTION}
    assert functions["vhd_uploaded"].trigger == "event_grid_trigger"
    assert functions["get_build"].trigger == "route"
    assert {
        SettingName.TRACKER_SCHEDULE,
        SettingName.INTAKE_RECHECK_SCHEDULE,
        SettingName.LIFECYCLE_SCHEDULE,
    } <= binding_setting_names()


def test_the_settings_table_lists_exactly_the_settings_the_app_reads() -> None:
    expected = setting_names() | binding_setting_names() | connection_setting_names()
    listed = set(app_settings_table())
    assert not expected - listed, (
        f"missing from infra/reference.md 7.1: {sorted(expected - listed)}"
    )
    assert not listed - expected, (
        f"listed in infra/reference.md 7.1 but read by nothing: {sorted(listed - expected)}"
    )


def test_settings_the_host_resolves_are_marked_required_for_the_host() -> None:
    table = app_settings_table()
    host_resolved = binding_setting_names()
    marked = {name for name, row in table.items() if "yes (host)" in row["required"]}
    assert marked == host_resolved, (
        "rows marked 'yes (host)' must be exactly the %NAME% bindings of functions/*.py: "
        f"unmarked {sorted(host_resolved - marked)}, "
        f"wrongly marked {sorted(marked - host_resolved)}"
    )
    intro = reference_text().split("<!-- settings-table:app -->", 1)[0]
    for name in host_resolved:
        assert f"`{name}`" in intro, f"the text above the table should name {name} as required"


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(item) for item in value)
    return str(value)


#: How each setting with a plain default shows up in ``Settings.from_env({})``.
DEFAULT_OF: dict[str, Callable[[Settings], object]] = {
    SettingName.BUILD_QUEUE: lambda s: s.build_queue,
    SettingName.EVENTS_TOPIC: lambda s: s.events_topic,
    SettingName.REJECTED_QUEUE: lambda s: s.rejected_queue,
    SettingName.ARM_ENDPOINT: lambda s: s.arm_endpoint,
    SettingName.ARM_AUDIENCE: lambda s: s.arm_audience,
    SettingName.VHD_STORAGE_ENDPOINTS: lambda s: s.vhd_storage_endpoints,
    SettingName.MAX_DATA_DISK_GIB: lambda s: s.max_data_disk_gib,
    SettingName.LEDGER_CONTAINER: lambda s: s.ledger_container,
    SettingName.FAILED_VERSION_POLICY: lambda s: s.failed_version_policy,
    SettingName.CLAIM_RECOVERY_SECONDS: lambda s: s.claim_recovery_seconds,
    SettingName.VHD_ROUTES: lambda s: s.intake.vhd_routes,
    SettingName.UPLOAD_SETTLE_SECONDS: lambda s: s.intake.upload_settle_seconds,
    SettingName.INTAKE_ABANDON_SECONDS: lambda s: s.intake.abandon_seconds,
    SettingName.INTAKE_CONTAINER: lambda s: s.intake.container,
    SettingName.INTAKE_RECHECK_SCHEDULE: lambda s: s.intake.recheck_schedule,
    SettingName.SNAPSHOT_TAG: lambda s: s.intake.snapshot_tag,
    SettingName.SNAPSHOT_DEFAULTS: lambda s: s.intake.snapshot_defaults,
    SettingName.LIFECYCLE_DRY_RUN: lambda s: s.lifecycle.dry_run,
    SettingName.LIFECYCLE_GRACE_DAYS: lambda s: s.lifecycle.grace_days,
    SettingName.LIFECYCLE_MIN_KEEP: lambda s: s.lifecycle.min_keep,
    SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN: lambda s: s.lifecycle.max_deletions_per_run,
    SettingName.LIFECYCLE_DELETE_BUDGET: lambda s: s.lifecycle.delete_budget,
    SettingName.LIFECYCLE_SCHEDULE: lambda s: s.lifecycle.schedule,
    SettingName.LIFECYCLE_AUDIT_CONTAINER: lambda s: s.lifecycle.audit_container,
    SettingName.LIFECYCLE_MAX_DEPRECATIONS_PER_RUN: lambda s: s.lifecycle.max_deprecations_per_run,
    SettingName.AUTHORITY_HOST: lambda s: s.cross_tenant.authority_host,
}
#: Settings that are unset by default (``None``): the table must say so.
UNSET_BY_DEFAULT: dict[str, Callable[[Settings], object]] = {
    SettingName.ARM_CA_BUNDLE: lambda s: s.arm_ca_bundle,
    SettingName.LIFECYCLE_MAX_AGE_DAYS: lambda s: s.lifecycle.max_age_days,
    SettingName.LIFECYCLE_MAX_VERSIONS: lambda s: s.lifecycle.max_versions,
    SettingName.LIFECYCLE_DEPRECATED_REPLICAS: lambda s: s.lifecycle.deprecated_replicas,
    SettingName.TENANT_ID: lambda s: s.cross_tenant.tenant_id,
    SettingName.CROSS_TENANT_CLIENT_ID: lambda s: s.cross_tenant.client_id,
    SettingName.CROSS_TENANT_CLIENT_SECRET: lambda s: s.cross_tenant.client_secret,
}
#: Settings without a scalar default (connections, allow-lists, the tracker's schedule).
NO_SCALAR_DEFAULT = {
    SettingName.STORAGE_CONNECTION,
    SettingName.STORAGE_BLOB_SERVICE_URI,
    SettingName.STORAGE_ACCOUNT_NAME,
    SettingName.SERVICE_BUS_CONNECTION,
    SettingName.SERVICE_BUS_NAMESPACE,
    SettingName.ALLOWED_TARGET_GALLERIES,
    SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS,
    SettingName.INUSE_SUBSCRIPTIONS,
    SettingName.TRACKER_SCHEDULE,
    SettingName.APPINSIGHTS_CONNECTION_STRING,
    SettingName.APPINSIGHTS_AUTHENTICATION_STRING,
    SettingName.SOURCE_TENANTS,
}


def test_every_setting_is_classified_for_the_default_check() -> None:
    classified = set(DEFAULT_OF) | set(UNSET_BY_DEFAULT) | NO_SCALAR_DEFAULT
    assert classified == setting_names(), (
        "a new SettingName: add it to DEFAULT_OF, UNSET_BY_DEFAULT or NO_SCALAR_DEFAULT here, "
        f"and to infra/reference.md: {sorted(setting_names() ^ classified)}"
    )


def test_the_defaults_in_the_table_are_the_apps_defaults() -> None:
    defaults = Settings.from_env({})
    table = app_settings_table()
    for name, read in DEFAULT_OF.items():
        expected = _text(read(defaults))
        assert f"`{expected}`" in table[name]["default"], (
            f"{name}: the app's default is {expected!r}, the table says {table[name]['default']!r}"
        )
    for name, read in UNSET_BY_DEFAULT.items():
        assert read(defaults) is None
        assert "unset" in table[name]["default"], f"{name} is unset by default"
    assert "none" in table[SettingName.TRACKER_SCHEDULE]["default"]


def test_the_recommended_production_values_are_stated() -> None:
    table = app_settings_table()
    assert "`0 * * * * *`" in table[SettingName.TRACKER_SCHEDULE]["production"]
    assert "daily" in table[SettingName.LIFECYCLE_SCHEDULE]["production"]
    assert table[SettingName.LIFECYCLE_DRY_RUN]["production"].startswith("`true` until")
    assert "never in Azure" in table[SettingName.ARM_CA_BUNDLE]["meaning"]


def test_every_setting_in_the_samples_is_documented() -> None:
    documented = set(app_settings_table()) | set(table_rows("settings-table:host"))
    local = set(load_json(LOCAL_SAMPLE_FILE)["Values"])
    assert not local - documented, f"local.settings.sample.json: {sorted(local - documented)}"
    example = set(example_values())
    assert not example - documented, f"production example: {sorted(example - documented)}"


# --------------------------------------------------------------------------- the production example


def test_the_production_example_is_identity_based_and_complete() -> None:
    values = example_values()
    for secret_or_local in (
        SettingName.STORAGE_CONNECTION,
        SettingName.SERVICE_BUS_CONNECTION,
        SettingName.ARM_CA_BUNDLE,
        SettingName.ARM_ENDPOINT,
        "IDENTITY_ENDPOINT",
        "IDENTITY_HEADER",
    ):
        assert secret_or_local not in values, f"{secret_or_local} does not belong in Azure"
    assert binding_setting_names() <= set(values), "the host cannot index without them"
    assert values[SettingName.TRACKER_SCHEDULE] == "0 * * * * *"
    assert values[SettingName.LIFECYCLE_DRY_RUN] == "true"
    for name in binding_setting_names():
        assert f"`{values[name]}`" in app_settings_table()[name]["production"]


def test_the_production_example_is_a_configuration_the_app_accepts() -> None:
    settings = Settings.from_env(example_values())
    assert settings.storage_connection_string is None
    assert settings.storage_blob_service_uri
    assert settings.service_bus_connection_string is None
    assert settings.service_bus_namespace
    assert settings.service_bus_namespace.endswith(".servicebus.windows.net")
    assert settings.lifecycle.dry_run is True
    assert settings.allowed_target_galleries
    parse_snapshot_defaults(settings.intake.snapshot_defaults)
    routes = parse_routes(settings.intake.vhd_routes)
    assert routes
    for route in routes:
        url = (
            f"https://{route.account}.blob.core.windows.net/{route.container}/{route.prefix}os.vhd"
        )
        document = vhd_request_document(
            route, url, metadata_partial={}, manifest=None, request_id="vhd-infra-example"
        )
        request = parse_build_request(document, settings, now=datetime.now(UTC))
        assert request.request_id == "vhd-infra-example"


# --------------------------------------------------------------------------- Service Bus


def _sorted(config: NamespaceConfig) -> NamespaceConfig:
    topics = tuple(
        replace(topic, subscriptions=tuple(sorted(topic.subscriptions, key=lambda s: s.name)))
        for topic in config.topics
    )
    return NamespaceConfig(
        queues=tuple(sorted(config.queues, key=lambda q: q.name)),
        topics=tuple(sorted(topics, key=lambda t: t.name)),
    )


def infra_entities() -> dict[str, Any]:
    document = load_json(SERVICE_BUS_FILE)
    return {"queues": document["queues"], "topics": document["topics"]}


def test_service_bus_entities_have_the_emulators_names() -> None:
    infra, local = _sorted(parse_config(infra_entities())), _sorted(load_config())
    assert [q.name for q in infra.queues] == [q.name for q in local.queues]
    assert [t.name for t in infra.topics] == [t.name for t in local.topics]
    for mine, theirs in zip(infra.topics, local.topics, strict=True):
        assert [s.name for s in mine.subscriptions] == [s.name for s in theirs.subscriptions]


def test_service_bus_entities_have_the_emulators_properties() -> None:
    # parse_config applies the service's defaults, so "omitted" and "explicit default" agree.
    assert _sorted(parse_config(infra_entities())) == _sorted(load_config())


def test_service_bus_entities_match_the_settings_defaults() -> None:
    defaults = Settings.from_env({})
    config = parse_config(infra_entities())
    queues = {queue.name for queue in config.queues}
    assert {defaults.build_queue, defaults.rejected_queue} == queues
    assert [topic.name for topic in config.topics] == [defaults.events_topic]
    build_queue = next(q for q in config.queues if q.name == defaults.build_queue)
    assert build_queue.send.requires_duplicate_detection, "idempotency relies on it"
    assert build_queue.send.duplicate_window_s == 600
    assert build_queue.receive.max_delivery_count == 5


def test_every_service_bus_entity_has_a_purpose() -> None:
    document = load_json(SERVICE_BUS_FILE)
    names = {q["name"] for q in document["queues"]} | {t["name"] for t in document["topics"]}
    names |= {s["name"] for t in document["topics"] for s in t.get("subscriptions", [])}
    assert set(document["purposes"]) == names


def test_the_service_bus_table_in_the_readme_matches_the_json() -> None:
    rows = table_rows("servicebus-table")
    document = load_json(SERVICE_BUS_FILE)

    def cell(value: object) -> str:
        return f"`{_text(value)}`"

    for queue in document["queues"]:
        row = rows[queue["name"]]
        assert row[1] == "queue"
        assert row[2] == cell(queue.get("lockDuration", "PT1M"))
        assert row[3] == cell(queue.get("maxDeliveryCount", 10))
        assert row[4] == cell(queue["defaultMessageTimeToLive"])
        window = queue.get("duplicateDetectionHistoryTimeWindow", "PT10M")
        assert row[5] == (cell(window) if queue.get("requiresDuplicateDetection") else "off")
        assert row[6] == cell(queue.get("deadLetteringOnMessageExpiration", False))
    for topic in document["topics"]:
        row = rows[topic["name"]]
        assert row[1] == "topic"
        assert row[4] == cell(topic["defaultMessageTimeToLive"])
        if not topic.get("requiresDuplicateDetection"):
            assert row[5] == "off"
        for subscription in topic["subscriptions"]:
            sub_row = rows[subscription["name"]]
            assert sub_row[1] == f"subscription of `{topic['name']}`"
            assert sub_row[2] == cell(subscription.get("lockDuration", "PT1M"))
            assert sub_row[3] == cell(subscription.get("maxDeliveryCount", 10))
            assert sub_row[6] == cell(subscription.get("deadLetteringOnMessageExpiration", False))
    assert len(rows) == len(document["purposes"]), "one reference.md row per entity"


# --------------------------------------------------------------------------- Event Grid


def infra_event_subscriptions() -> list[dict[str, Any]]:
    document = load_json(EVENT_GRID_FILE)
    return [sub for topic in document["systemTopics"] for sub in topic["subscriptions"]]


def test_event_grid_placeholders_are_declared() -> None:
    text = EVENT_GRID_FILE.read_text(encoding="utf-8")
    used = set(PLACEHOLDER.findall(text))
    declared = set(load_json(EVENT_GRID_FILE)["parameters"])
    assert used == declared, (
        f"undeclared {sorted(used - declared)}, unused {sorted(declared - used)}"
    )


def test_event_grid_subscriptions_match_the_local_event_grid() -> None:
    local = {sub["name"]: sub for sub in load_json(DEVSTACK_EVENT_GRID_FILE)["subscriptions"]}
    infra = {sub["name"]: sub for sub in infra_event_subscriptions()}
    assert set(infra) == set(local)
    for name, sub in infra.items():
        event_filter = sub["properties"]["filter"]
        theirs = local[name]
        assert sub["function"] == theirs["function"], name
        assert event_filter["includedEventTypes"] == theirs["includedEventTypes"], name
        begins = event_filter.get("subjectBeginsWith", "").replace(
            "{uploadContainer}", LOCAL_UPLOAD_CONTAINER
        )
        assert begins == theirs.get("subjectBeginsWith", ""), name
        assert event_filter.get("subjectEndsWith", "") == theirs.get("subjectEndsWith", ""), name


def test_event_grid_subscriptions_deliver_to_the_event_grid_functions() -> None:
    handlers = {d.name for d in declared_functions() if d.trigger == "event_grid_trigger"}
    targets = {sub["function"] for sub in infra_event_subscriptions()}
    assert targets == handlers, "every Event Grid function needs a subscription, and only they"
    for sub in infra_event_subscriptions():
        properties = sub["properties"]
        destination = properties["destination"]
        assert destination["endpointType"] == "WebHook"
        url = destination["properties"]["endpointUrl"]
        assert "/runtime/webhooks/eventgrid?" in url
        assert f"functionName={sub['function']}&" in url
        assert "code={eventgridExtensionKey}" in url
        # the handlers take func.EventGridEvent (event_type, subject, get_json())
        assert properties["eventDeliverySchema"] == "EventGridSchema"
        assert properties["deadLetterWithResourceIdentity"]["deadLetterDestination"]
        assert properties["retryPolicy"]["maxDeliveryAttempts"] >= 1


def test_the_snapshot_subscription_filters_on_snapshot_writes() -> None:
    (snapshots,) = [s for s in infra_event_subscriptions() if s["function"] == "snapshot_created"]
    assert snapshots["properties"]["filter"]["advancedFilters"] == [
        {
            "operatorType": "StringIn",
            "key": "data.operationName",
            "values": ["Microsoft.Compute/snapshots/write"],
        }
    ]


# --------------------------------------------------------------------------- roles and names


def role_files() -> list[Path]:
    return sorted(ROLES_DIR.glob("*.json"))


def test_custom_roles_are_well_formed_role_definitions() -> None:
    assert role_files(), "infra/roles/ holds the custom role definitions"
    names: set[str] = set()
    for path in role_files():
        role = load_json(path)
        assert role["IsCustom"] is True, path.name
        assert role["Name"].startswith("Gallery Pipeline "), path.name
        assert role["Name"] not in names, f"{role['Name']} is defined twice"
        names.add(role["Name"])
        assert role["Description"], path.name
        assert role["Actions"], path.name
        for action in role["Actions"]:
            assert re.fullmatch(r"Microsoft\.[A-Za-z]+(/[A-Za-z*]+)+", action), action
            assert "*" not in action, f"{path.name}: least privilege means no wildcard ({action})"
        assert role["DataActions"] == [], path.name
        assert role["AssignableScopes"], path.name


def test_the_docs_name_every_function_subscription_role_and_file() -> None:
    reference, guide = reference_text(), readme_text()
    missing = [d.name for d in declared_functions() if f"`{d.name}`" not in reference]
    assert not missing, f"functions not named in infra/reference.md: {missing}"
    assert f"**Functions the host must index** ({_number(len(declared_functions()))})" in reference
    for sub in infra_event_subscriptions():
        assert f"`{sub['name']}`" in reference, sub["name"]
    for path in role_files():
        for text, name in ((reference, "reference.md"), (guide, "README.md")):
            assert f"`roles/{path.name}`" in text, f"infra/{name} does not name {path.name}"
            assert f"**{load_json(path)['Name']}**" in text, f"infra/{name}: {path.name}"
    for path in (SERVICE_BUS_FILE, EVENT_GRID_FILE, EXAMPLE_SETTINGS_FILE):
        assert f"`{path.name}`" in reference, path.name


def _number(count: int) -> str:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    return words[count] if count < len(words) else str(count)


@pytest.mark.parametrize("path", [SERVICE_BUS_FILE, EVENT_GRID_FILE, EXAMPLE_SETTINGS_FILE])
def test_the_json_files_are_valid_json_objects(path: Path) -> None:
    assert isinstance(load_json(path), dict)
