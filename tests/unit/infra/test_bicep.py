"""The azd templates (``azure.yaml``, ``infra/**/*.bicep``) hold together without a compiler.

No Bicep compiler runs on this machine, so these tests parse every file with ``pycep-parser`` and
check what a compiler and a reviewer would: modules and loaded files exist and receive the
parameters they declare; every setting the code reads is deployed; nothing uses a key or a
broad role; local authentication is off; each role is a data role or one of ours, at a resource
or resource-group scope; the names the app reads are the names the templates create.
``.github/workflows/infra.yml`` compiles the same files with ``az bicep build`` where Azure is
available.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from shared.core.settings import SettingName, Settings
from tests.unit.infra.bicep_source import (
    ALLOWED_BUILTIN_ROLES,
    FORBIDDEN_ROLES,
    GUID,
    INFRA,
    MAIN,
    ROLE_ASSIGNMENT,
    ROOT,
    bicep_files,
    created_anywhere,
    module_params,
    module_target,
    modules,
    parameters,
    parsed,
    relative,
    render,
    resolve,
    resource_bodies,
    resources,
    setting_key,
    string_literals,
    strip_comments,
    target_scope,
    unwrap,
    variables,
)
from tests.unit.infra.test_infra_docs import (
    binding_setting_names,
    connection_setting_names,
    load_json,
    setting_names,
    table_rows,
)

FUNCTION_APP = INFRA / "app" / "function-app.bicep"
SERVICE_BUS = INFRA / "app" / "servicebus.bicep"
SERVICE_BUS_TOPIC = INFRA / "app" / "servicebus-topic.bicep"
EVENT_GRID = INFRA / "app" / "eventgrid.bicep"
ROLES = INFRA / "app" / "roles.bicep"
ALERTS = INFRA / "app" / "alerts.bicep"
WORKBOOK_BICEP = INFRA / "app" / "workbook.bicep"
WORKBOOK = INFRA / "workbook.json"
PARAMETERS_FILE = INFRA / "main.parameters.json"
EXAMPLE_SETTINGS = INFRA / "app-settings.production.example.json"
ENTITIES = INFRA / "servicebus-entities.json"
AZURE_YAML = ROOT / "azure.yaml"
README = INFRA / "README.md"
LOAD_CALL = re.compile(r"load(?:Json|Text|YamlFile|File)Content\(\s*'([^']+)'")

#: SettingName values the Bicep deploys: the rest keep the app's default on purpose (below).
DEPLOYED_SETTINGS = {
    SettingName.STORAGE_BLOB_SERVICE_URI,
    SettingName.SERVICE_BUS_NAMESPACE,
    SettingName.BUILD_QUEUE,
    SettingName.EVENTS_TOPIC,
    SettingName.REJECTED_QUEUE,
    SettingName.TRACKER_SCHEDULE,
    SettingName.INTAKE_RECHECK_SCHEDULE,
    SettingName.LIFECYCLE_SCHEDULE,
    SettingName.ALLOWED_TARGET_GALLERIES,
    SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS,
    SettingName.INUSE_SUBSCRIPTIONS,
    SettingName.VHD_ROUTES,
    SettingName.SNAPSHOT_DEFAULTS,
    SettingName.LIFECYCLE_DRY_RUN,
    SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN,
    SettingName.LEDGER_CONTAINER,
    SettingName.INTAKE_CONTAINER,
    SettingName.LIFECYCLE_AUDIT_CONTAINER,
    SettingName.APPINSIGHTS_CONNECTION_STRING,
    SettingName.APPINSIGHTS_AUTHENTICATION_STRING,
}
_CROSS_TENANT = "cross-tenant sources are opt-in (reference.md 6, Cross-tenant sources)"
_TUNING = "a tuning knob whose app default is the recommended production value (reference.md 7.1)"
#: Settings the Bicep leaves unset, and why. A new SettingName must land in one of the two sets.
NOT_DEPLOYED_SETTINGS: dict[str, str] = {
    SettingName.STORAGE_CONNECTION: (
        "a connection string holds the account key; the identity form is set"
    ),
    SettingName.STORAGE_ACCOUNT_NAME: (
        "shorthand of __blobServiceUri, which is set (right in every cloud)"
    ),
    SettingName.SERVICE_BUS_CONNECTION: (
        "a connection string holds a SAS key; the namespace form is set"
    ),
    SettingName.ARM_ENDPOINT: (
        "the default is the public cloud's ARM; only the simulator changes it"
    ),
    SettingName.ARM_AUDIENCE: (
        "the default is the public cloud's (sovereign clouds: reference.md 9)"
    ),
    SettingName.ARM_CA_BUNDLE: "the local simulator's certificate; never in Azure",
    SettingName.VHD_STORAGE_ENDPOINTS: "the default is the public cloud's blob endpoint",
    SettingName.MAX_DATA_DISK_GIB: _TUNING,
    SettingName.FAILED_VERSION_POLICY: _TUNING,
    SettingName.CLAIM_RECOVERY_SECONDS: _TUNING,
    SettingName.UPLOAD_SETTLE_SECONDS: _TUNING,
    SettingName.INTAKE_ABANDON_SECONDS: _TUNING,
    SettingName.SNAPSHOT_TAG: _TUNING,
    SettingName.LIFECYCLE_GRACE_DAYS: _TUNING,
    SettingName.LIFECYCLE_MIN_KEEP: _TUNING,
    SettingName.LIFECYCLE_MAX_AGE_DAYS: "a retention policy of your own; unset keeps every version",
    SettingName.LIFECYCLE_MAX_VERSIONS: "a retention policy of your own; unset keeps every version",
    SettingName.LIFECYCLE_MAX_DEPRECATIONS_PER_RUN: _TUNING,
    SettingName.LIFECYCLE_DEPRECATED_REPLICAS: (
        "a retention policy of your own; unset keeps replicas"
    ),
    SettingName.LIFECYCLE_DELETE_BUDGET: _TUNING,
    SettingName.TENANT_ID: _CROSS_TENANT,
    SettingName.SOURCE_TENANTS: _CROSS_TENANT,
    SettingName.CROSS_TENANT_CLIENT_ID: _CROSS_TENANT,
    SettingName.CROSS_TENANT_CLIENT_SECRET: "a secret for local runs; Azure uses federation",
    SettingName.AUTHORITY_HOST: "the default is the public cloud's Microsoft Entra authority",
}
#: The identity wiring every component needs with a user-assigned identity (reference.md 7.2).
IDENTITY_SETTINGS = {
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AZURE_CLIENT_ID",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
#: Flex Consumption rejects these (the runtime is functionAppConfig.runtime), or they hold keys.
FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    SettingName.STORAGE_CONNECTION,
    SettingName.SERVICE_BUS_CONNECTION,
}


def function_app_settings() -> dict[str, Any]:
    (body,) = resource_bodies(FUNCTION_APP, "Microsoft.Web/sites/config")
    assert body["name"] == "appsettings"
    return {setting_key(key): value for key, value in body["properties"].items()}


# --------------------------------------------------------------------------- every file parses


def test_the_templates_are_there() -> None:
    names = {relative(path) for path in bicep_files()}
    assert {
        "main.bicep",
        "app/function-app.bicep",
        "app/servicebus.bicep",
        "app/eventgrid.bicep",
    } <= names
    assert (INFRA / "abbreviations.json").is_file()
    assert target_scope(MAIN) == "subscription"


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_every_bicep_file_parses(path: Path) -> None:
    document = parsed(path)
    assert document.get("resources") or document.get("modules"), f"{relative(path)} creates nothing"


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_loaded_files_exist(path: Path) -> None:
    for target in LOAD_CALL.findall(path.read_text(encoding="utf-8")):
        loaded = path.parent / target
        assert loaded.is_file(), f"{relative(path)} loads {target}, which does not exist"
        if loaded.suffix == ".json":
            json.loads(loaded.read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_modules_get_exactly_the_parameters_they_declare(path: Path) -> None:
    for name, module in modules(path).items():
        target = module_target(path, module)
        assert module["type"] == "local" and target.is_file(), f"{relative(path)}: {name}"
        declared = parameters(target)
        passed = set(module_params(module))
        unknown = passed - set(declared)
        assert not unknown, f"{relative(path)}: {name} passes unknown {sorted(unknown)}"
        required = {p for p, spec in declared.items() if spec.get("default") is None}
        assert required <= passed, f"{relative(path)}: {name} misses {sorted(required - passed)}"
        if target_scope(target) == "resourceGroup" and target_scope(path) == "subscription":
            assert "scope" in unwrap(module["config"]), f"{relative(path)}: {name} needs a scope"


def test_every_module_file_is_used() -> None:
    used = {MAIN.resolve()}
    for path in bicep_files():
        used |= {module_target(path, module) for module in modules(path).values()}
    unused = {relative(path) for path in bicep_files()} - {relative(path) for path in used}
    assert not unused, f"modules nothing deploys: {sorted(unused)}"


# --------------------------------------------------------------------------- app settings


def test_every_setting_name_is_deployed_or_left_out_for_a_reason() -> None:
    assert not DEPLOYED_SETTINGS & set(NOT_DEPLOYED_SETTINGS)
    classified = DEPLOYED_SETTINGS | set(NOT_DEPLOYED_SETTINGS)
    assert classified == setting_names(), (
        "a new SettingName: add it to the Bicep (DEPLOYED_SETTINGS) or say why not "
        f"(NOT_DEPLOYED_SETTINGS): {sorted(classified ^ setting_names())}"
    )


def test_the_function_app_sets_every_setting_the_code_and_bindings_read() -> None:
    deployed = set(function_app_settings())
    expected = DEPLOYED_SETTINGS | binding_setting_names() | IDENTITY_SETTINGS
    for connection in connection_setting_names():
        expected |= {
            f"{connection}__fullyQualifiedNamespace",
            f"{connection}__credential",
            f"{connection}__clientId",
        }
    missing = expected - deployed
    assert not missing, f"infra/app/function-app.bicep does not set {sorted(missing)}"
    assert not deployed & FORBIDDEN_SETTINGS, sorted(deployed & FORBIDDEN_SETTINGS)


def test_the_deployed_settings_are_the_production_example_and_documented() -> None:
    deployed = set(function_app_settings())
    example = set(load_json(EXAMPLE_SETTINGS)["Values"])
    assert deployed == example, (
        f"only in the Bicep {sorted(deployed - example)}, "
        f"only in the example {sorted(example - deployed)}"
    )
    documented = set(table_rows("settings-table:app")) | set(table_rows("settings-table:host"))
    assert deployed <= documented, (
        f"undocumented in reference.md 7: {sorted(deployed - documented)}"
    )


def test_every_connection_uses_the_user_assigned_identity() -> None:
    settings = function_app_settings()
    for name, value in settings.items():
        if name.endswith("__credential"):
            assert value == "managedidentity", name
        if name.endswith("__clientId") or name == "AZURE_CLIENT_ID":
            assert value == "identityClientId", f"{name} must be the identity's client id"
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert "identityClientId" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


def test_lifecycle_dry_run_is_on_for_new_deployments() -> None:
    assert parameters(MAIN)["lifecycleDryRun"]["default"] is True
    assert parameters(FUNCTION_APP)["lifecycleDryRun"]["default"] is True
    mapped = load_json(PARAMETERS_FILE)["parameters"]["lifecycleDryRun"]["value"]
    assert mapped == "${GALLERY_LIFECYCLE_DRY_RUN=true}"
    assert render(function_app_settings()[SettingName.LIFECYCLE_DRY_RUN]).startswith(
        "conditional(lifecycleDryRun"
    )


def test_the_names_main_creates_are_the_apps_defaults() -> None:
    defaults = Settings.from_env({})
    names = variables(MAIN)
    assert names["buildQueueName"] == defaults.build_queue
    assert names["rejectedQueueName"] == defaults.rejected_queue
    assert names["eventsTopicName"] == defaults.events_topic
    assert names["ledgerContainerName"] == defaults.ledger_container
    assert names["intakeContainerName"] == defaults.intake.container
    assert names["auditContainerName"] == defaults.lifecycle.audit_container
    entities = load_json(ENTITIES)
    assert {q["name"] for q in entities["queues"]} == {
        names["buildQueueName"],
        names["rejectedQueueName"],
    }
    assert [t["name"] for t in entities["topics"]] == [names["eventsTopicName"]]
    app = module_params(modules(MAIN)["functionApp"])
    for param in (
        "buildQueueName",
        "rejectedQueueName",
        "eventsTopicName",
        "ledgerContainerName",
        "intakeContainerName",
        "auditContainerName",
    ):
        assert app[param] == param, f"main.bicep passes {param} its own variable"
    containers = module_params(modules(MAIN)["appStorage"])["containers"]
    for needed in (
        "ledgerContainerName",
        "intakeContainerName",
        "auditContainerName",
        "deadLetterContainerName",
        "deploymentContainerName",
    ):
        assert needed in containers, f"the app account lacks {needed}"


# --------------------------------------------------------------------------- the Function App


def test_the_app_runs_python_311_on_flex_consumption_with_identity_based_deployment() -> None:
    (plan,) = resource_bodies(FUNCTION_APP, "Microsoft.Web/serverfarms")
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True
    (site,) = resource_bodies(FUNCTION_APP, "Microsoft.Web/sites")
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    config = properties["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    storage = config["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    policies = resource_bodies(
        FUNCTION_APP, "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert sorted(p["name"] for p in policies) == ["ftp", "scm"]
    assert all(p["properties"]["allow"] is False for p in policies)


def test_azure_yaml_deploys_the_root_as_a_python_function_with_the_hooks() -> None:
    text = AZURE_YAML.read_text(encoding="utf-8")
    assert re.search(r"^infra:\n  provider: bicep\n  path: infra\n  module: main$", text, re.M)
    assert re.search(
        r"^  pipeline:\n    project: \.\n    language: python\n    host: function$", text, re.M
    )
    runs = re.findall(r"^      run: (\S+)$", text, re.M)
    assert sorted(runs) == ["./infra/hooks/postdeploy.ps1", "./infra/hooks/postdeploy.sh"]
    for run in runs:
        assert (ROOT / run).is_file(), run
    assert (ROOT / "infra/hooks/postdeploy.sh").stat().st_mode & 0o111, "the sh hook is executable"
    (site,) = resource_bodies(FUNCTION_APP, "Microsoft.Web/sites")
    assert parameters(FUNCTION_APP)["serviceName"]["default"] == "pipeline"
    assert "azd-service-name" in json.dumps(site["tags"])


def test_the_package_leaves_out_what_azd_must_not_deploy() -> None:
    ignored = set((ROOT / ".funcignore").read_text(encoding="utf-8").split())
    assert {"infra", "tests", "devstack", "bench", "docs", ".venv", "node_modules"} <= ignored


def test_main_parameters_map_onto_main_bicep() -> None:
    mapped = load_json(PARAMETERS_FILE)["parameters"]
    declared = parameters(MAIN)
    assert set(mapped) <= set(declared), sorted(set(mapped) - set(declared))
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(mapped), sorted(required - set(mapped))
    for name, entry in mapped.items():
        assert re.fullmatch(r"\$\{[A-Z_]+(=[^}]*)?\}", entry["value"]), name


# ------------------------------------------------------------------------ no keys, no broad roles


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_no_template_reads_keys_or_writes_a_key_into_a_connection_string(path: Path) -> None:
    code = strip_comments(path.read_text(encoding="utf-8"))
    assert not re.search(r"\blist[A-Z]\w*\s*\(", code), f"{relative(path)} calls a list* function"
    assert not re.search(r"\.listKeys\b|listkeys\(", code, re.I)
    for marker in ("AccountKey=", "SharedAccessKey=", "SharedAccessSignature="):
        assert marker not in code, f"{relative(path)} builds a key-based connection string"


def test_nothing_names_owner_or_contributor() -> None:
    for path in INFRA.rglob("*"):
        if path.is_file() and path.suffix in {".bicep", ".json", ".sh", ".ps1"}:
            text = path.read_text(encoding="utf-8").lower()
            for guid, name in FORBIDDEN_ROLES.items():
                assert guid not in text, f"{relative(path)} names {name}"
    for path in bicep_files():
        literals = {
            value.strip().lower() for value in string_literals(path.read_text(encoding="utf-8"))
        }
        assert not literals & {"owner", "contributor"}, relative(path)


@pytest.mark.parametrize("path", bicep_files(), ids=relative)
def test_every_role_guid_is_an_allowed_data_role(path: Path) -> None:
    for guid in GUID.findall(strip_comments(path.read_text(encoding="utf-8"))):
        assert guid.lower() in ALLOWED_BUILTIN_ROLES, (
            f"{relative(path)}: {guid} is not a listed role"
        )


# ------------------------------------------------------------------------ local authentication off


def test_local_authentication_is_off_everywhere() -> None:
    accounts = created_anywhere("Microsoft.Storage/storageAccounts")
    namespaces = created_anywhere("Microsoft.ServiceBus/namespaces")
    components = created_anywhere("Microsoft.Insights/components")
    workspaces = created_anywhere("Microsoft.OperationalInsights/workspaces")
    assert accounts and namespaces and components and workspaces, "each kind is created somewhere"
    for path, body in accounts:
        properties = body["properties"]
        assert properties["allowSharedKeyAccess"] is False, relative(path)
        assert properties["allowBlobPublicAccess"] is False, relative(path)
        assert properties["minimumTlsVersion"] == "TLS1_2", relative(path)
        assert properties["supportsHttpsTrafficOnly"] is True, relative(path)
    for path, body in namespaces:
        assert body["properties"]["disableLocalAuth"] is True, relative(path)
        assert body["properties"]["minimumTlsVersion"] == "1.2", relative(path)
    stated = load_json(ENTITIES)["namespace"]["properties"]
    assert stated == {"disableLocalAuth": True, "minimumTlsVersion": "1.2"}
    for path, body in components:
        assert body["properties"]["DisableLocalAuth"] is True, relative(path)
    for path, body in workspaces:
        assert body["properties"]["features"]["disableLocalAuth"] is True, relative(path)


# --------------------------------------------------------------------------- role assignments

#: Modules that assign the role they are given (parameter roleDefinitionId).
ROLE_MODULES = {
    "core/storage/account-role.bicep",
    "core/storage/container-role.bicep",
    "core/security/resource-group-role.bicep",
    "core/security/subscription-role.bicep",
}
#: The one subscription-scope assignment, and the only role it may carry (see its header).
SUBSCRIPTION_SCOPE_MODULE = "core/security/subscription-role.bicep"
SUBSCRIPTION_SCOPE_ROLES = {"roles.outputs.roleIds.inUseReader"}


def custom_role_keys() -> set[str]:
    return set(variables(ROLES)["definitions"])


def allowed_role(path: Path, value: Any) -> bool:
    """A built-in data role by GUID (directly or through a variable), or one of ours by key."""
    resolved = resolve(path, value)
    if isinstance(resolved, str) and resolved.lower() in ALLOWED_BUILTIN_ROLES:
        return True
    rendered = render(value)
    return rendered in {f"roles.outputs.roleIds.{key}" for key in custom_role_keys()}


def test_role_assignments_name_allowed_roles_at_narrow_scopes() -> None:
    found = 0
    for path in bicep_files():
        for body in resource_bodies(path, ROLE_ASSIGNMENT):
            found += 1
            role = body["properties"]["roleDefinitionId"]
            role_text = render(role)
            if relative(path) in ROLE_MODULES:
                assert role_text == "roleId", f"{relative(path)} assigns its parameter"
            else:
                (guid_var,) = re.findall(
                    r"subscription_resource_id\(Microsoft\.Authorization/roleDefinitions, (\w+)\)",
                    role_text,
                )
                assert allowed_role(path, guid_var), f"{relative(path)}: {role_text}"
            assert body["properties"]["principalType"] in {"ServicePrincipal", "principalType"}
            if "scope" in body:
                continue  # on a resource: account, container, queue, topic, component
            scope = target_scope(path)
            if relative(path) == SUBSCRIPTION_SCOPE_MODULE:
                assert scope == "subscription"
            else:
                assert scope == "resourceGroup", f"{relative(path)} assigns at {scope} scope"
    assert found >= 8


def test_role_modules_are_given_allowed_roles_and_scopes() -> None:
    calls = 0
    for path in bicep_files():
        for name, module in modules(path).items():
            target = relative(module_target(path, module))
            if target not in ROLE_MODULES:
                continue
            calls += 1
            role = module_params(module)["roleDefinitionId"]
            assert allowed_role(path, role), f"{relative(path)}: {name} assigns {render(role)}"
            if target == SUBSCRIPTION_SCOPE_MODULE:
                assert render(role) in SUBSCRIPTION_SCOPE_ROLES, f"{name}: subscription scope"
                assert render(unwrap(module["config"])["scope"]).startswith("subscription(")
            elif target == "core/security/resource-group-role.bicep":
                assert render(unwrap(module["config"])["scope"]).startswith("resource_group(")
    assert calls >= 6


def test_every_custom_role_file_becomes_a_definition_and_is_assigned() -> None:
    loaded = set(
        re.findall(r"loadJsonContent\('\.\./roles/([^']+)'\)", ROLES.read_text(encoding="utf-8"))
    )
    assert loaded == {path.name for path in (INFRA / "roles").glob("*.json")}
    main_text = MAIN.read_text(encoding="utf-8")
    for key in custom_role_keys():
        assert f"roles.outputs.roleIds.{key}" in main_text, f"custom role {key} is never assigned"
    monitoring = INFRA / "core" / "monitor" / "monitoring.bicep"
    assert variables(monitoring)["monitoringMetricsPublisher"] in ALLOWED_BUILTIN_ROLES
    (assignment,) = resource_bodies(monitoring, ROLE_ASSIGNMENT)
    assert assignment["scope"] == "applicationInsights"


# ------------------------------------------------------------------------ Service Bus, Event Grid


def _mapped_properties(path: Path, symbol: str) -> set[str]:
    return set(unwrap(resources(path)[symbol]["config"])["properties"])


def test_service_bus_entities_come_from_the_json_with_every_property() -> None:
    assert variables(SERVICE_BUS)["entities"]["function"]["parameters"]["file_path"] == (
        "../servicebus-entities.json"
    )
    assert resources(SERVICE_BUS)["queues"]["config"]["loop_type"]["detail"][
        "array_name"
    ] == "entities.queues" or (
        "entities" in json.dumps(resources(SERVICE_BUS)["queues"]["config"]["loop_type"])
    )
    entities = load_json(ENTITIES)
    queue_keys = {key for queue in entities["queues"] for key in queue} - {"name"}
    assert queue_keys <= _mapped_properties(SERVICE_BUS, "queues"), "a queue property is dropped"
    topic_keys = {key for topic in entities["topics"] for key in topic} - {"name", "subscriptions"}
    assert topic_keys <= _mapped_properties(SERVICE_BUS_TOPIC, "serviceBusTopic")
    subscription_keys = {
        key for topic in entities["topics"] for sub in topic["subscriptions"] for key in sub
    } - {"name"}
    assert subscription_keys <= _mapped_properties(SERVICE_BUS_TOPIC, "subscriptions")
    (namespace,) = resource_bodies(SERVICE_BUS, "Microsoft.ServiceBus/namespaces")
    assert render(namespace["sku"]) == "entities.namespace.sku"


def test_the_event_grid_topics_come_from_the_json() -> None:
    assert "loadJsonContent('../eventgrid-subscriptions.json')" in EVENT_GRID.read_text(
        encoding="utf-8"
    )
    document = load_json(INFRA / "eventgrid-subscriptions.json")
    types = {topic["properties"]["topicType"] for topic in document["systemTopics"]}
    assert types == {"Microsoft.Storage.StorageAccounts", "Microsoft.Resources.Subscriptions"}
    topics = resource_bodies(EVENT_GRID, "Microsoft.EventGrid/systemTopics")
    assert len(topics) == 2
    assert {render(t["properties"]["topicType"]) for t in topics} == {
        "uploadsTopic.properties.topicType",
        "snapshotsTopic.properties.topicType",
    }
    sources = {render(t["properties"]["source"]) for t in topics}
    assert sources == {"uploadAccountId", "subscription().id"}


# --------------------------------------------------------------------------- monitoring


def contract_metrics() -> dict[str, set[str]]:
    rows = table_rows("telemetry-contract", README)
    return {name: set(re.findall(r"`([^`]+)`", cells[2])) for name, cells in rows.items()}


def test_alerts_and_workbook_read_only_the_documented_metrics() -> None:
    contract = contract_metrics()
    assert {
        "gallery.builds.started",
        "gallery.builds.succeeded",
        "gallery.builds.failed",
        "gallery.replication.duration",
        "gallery.requests.rejected",
        "gallery.sources.pending",
        "gallery.lifecycle.deprecations",
        "gallery.lifecycle.deletions",
        "gallery.lifecycle.halts",
    } == set(contract)
    workbook = WORKBOOK.read_text(encoding="utf-8")
    alerts = ALERTS.read_text(encoding="utf-8")
    used = set(re.findall(r"gallery\.[a-z]+\.[a-z]+", workbook + alerts))
    assert used <= set(contract), f"undocumented metrics: {sorted(used - set(contract))}"
    assert set(contract) <= used, f"metrics nothing reads: {sorted(set(contract) - used)}"
    for source in (workbook, alerts):
        for metric, dimension in re.findall(
            r'name (?:==|in) \(?\\?"(gallery\.[a-z.]+)\\?"[^|]*\|[^|]*customDimensions\[\\?"(\w+)',
            source,
        ):
            assert dimension in contract[metric], f"{metric} has no dimension {dimension}"


def test_the_required_alerts_exist() -> None:
    names = set(re.findall(r"^    name: '([a-z-]+)'$", ALERTS.read_text(encoding="utf-8"), re.M))
    assert {
        "gallery-builds-failed",
        "gallery-requests-rejected",
        "gallery-source-stuck",
        "gallery-lifecycle-halted",
        "gallery-version-quota",
    } <= names
    rules = resource_bodies(ALERTS, "Microsoft.Insights/scheduledQueryRules")
    assert rules and render(rules[0]["properties"]["scopes"]) == '["applicationInsightsId"]'
    (dead_letters,) = resource_bodies(ALERTS, "Microsoft.Insights/metricAlerts")[:1]
    criterion = dead_letters["properties"]["criteria"]["allOf"][0]
    assert criterion["metricName"] == "DeadletteredMessages"
    assert criterion["dimensions"][0]["name"] == "EntityName"
    assert "rejectedQueueName" in json.dumps(module_params(modules(MAIN)["alerts"]))


def test_the_quota_alert_matches_the_apps_warning() -> None:
    (prefix,) = re.findall(r'message startswith "([^"]+)"', ALERTS.read_text(encoding="utf-8"))
    sources = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "shared").rglob("*.py"))
    assert f'"{prefix}' in sources, "the alert's text must be what shared/ logs"


def test_the_workbook_is_loaded_from_its_json() -> None:
    workbook = json.loads(WORKBOOK.read_text(encoding="utf-8"))
    assert workbook["version"] == "Notebook/1.0"
    queries = [item["content"]["query"] for item in workbook["items"] if item["type"] == 3]
    assert len(queries) >= 5
    (body,) = resource_bodies(WORKBOOK_BICEP, "Microsoft.Insights/workbooks")
    assert render(body["properties"]["serializedData"]) == "load_text_content(../workbook.json)"
    for item in workbook["items"]:
        if item["type"] == 3:
            assert item["content"]["resourceType"] == "microsoft.insights/components"


# --------------------------------------------------------------------------- docs and CI


def test_the_guide_names_every_module() -> None:
    guide = README.read_text(encoding="utf-8")
    missing = [relative(path) for path in bicep_files() if f"`{relative(path)}`" not in guide]
    assert not missing, f"infra/README.md, What gets created, lacks {missing}"


def test_the_workflow_builds_previews_and_lints() -> None:
    workflow = (ROOT / ".github" / "workflows" / "infra.yml").read_text(encoding="utf-8")
    assert "az bicep build --file infra/main.bicep" in workflow
    assert "azd provision --preview" in workflow
    assert "run: make lint" in workflow
    assert "id-token: write" in workflow, "OIDC login, no stored secret"
    assert "secrets." not in workflow
