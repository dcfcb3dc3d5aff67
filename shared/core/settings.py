"""One frozen settings object, built once from the environment.

Setting names are constants on :class:`SettingName`; nothing else in the code base reads
``os.environ`` for pipeline configuration. Identity-based connections are supported: where a
connection-string setting is absent, its ``__fullyQualifiedNamespace`` / ``__blobServiceUri``
form is used with ``DefaultAzureCredential``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from shared.core.blob_urls import check_endpoint_template
from shared.core.errors import PermanentError


class SettingName:
    """Names of the app settings (environment variables) the pipeline reads."""

    STORAGE_CONNECTION: Final = "AzureWebJobsStorage"
    STORAGE_BLOB_SERVICE_URI: Final = "AzureWebJobsStorage__blobServiceUri"
    STORAGE_ACCOUNT_NAME: Final = "AzureWebJobsStorage__accountName"
    SERVICE_BUS_CONNECTION: Final = "ServiceBusConnection"
    SERVICE_BUS_NAMESPACE: Final = "ServiceBusConnection__fullyQualifiedNamespace"
    BUILD_QUEUE: Final = "GALLERY_BUILD_QUEUE"
    EVENTS_TOPIC: Final = "GALLERY_EVENTS_TOPIC"
    ARM_ENDPOINT: Final = "GALLERY_ARM_ENDPOINT"
    ARM_CA_BUNDLE: Final = "GALLERY_ARM_CA_BUNDLE"
    ARM_AUDIENCE: Final = "GALLERY_ARM_AUDIENCE"
    ALLOWED_TARGET_GALLERIES: Final = "GALLERY_ALLOWED_TARGET_GALLERIES"
    ALLOWED_SOURCE_SUBSCRIPTIONS: Final = "GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS"
    VHD_STORAGE_ENDPOINTS: Final = "GALLERY_VHD_STORAGE_ENDPOINTS"
    MAX_DATA_DISK_GIB: Final = "GALLERY_MAX_DATA_DISK_GIB"
    LEDGER_CONTAINER: Final = "GALLERY_LEDGER_CONTAINER"
    VHD_ROUTES: Final = "GALLERY_VHD_ROUTES"
    UPLOAD_SETTLE_SECONDS: Final = "GALLERY_UPLOAD_SETTLE_SECONDS"
    INTAKE_ABANDON_SECONDS: Final = "GALLERY_INTAKE_ABANDON_SECONDS"
    INTAKE_CONTAINER: Final = "GALLERY_INTAKE_CONTAINER"
    INTAKE_RECHECK_SCHEDULE: Final = "GALLERY_INTAKE_RECHECK_SCHEDULE"
    SNAPSHOT_TAG: Final = "GALLERY_SNAPSHOT_TAG"
    SNAPSHOT_DEFAULTS: Final = "GALLERY_SNAPSHOT_DEFAULTS"
    LIFECYCLE_DRY_RUN: Final = "GALLERY_LIFECYCLE_DRY_RUN"
    LIFECYCLE_GRACE_DAYS: Final = "GALLERY_LIFECYCLE_GRACE_DAYS"
    LIFECYCLE_MIN_KEEP: Final = "GALLERY_LIFECYCLE_MIN_KEEP"
    LIFECYCLE_MAX_AGE_DAYS: Final = "GALLERY_LIFECYCLE_MAX_AGE_DAYS"
    LIFECYCLE_MAX_VERSIONS: Final = "GALLERY_LIFECYCLE_MAX_VERSIONS"
    LIFECYCLE_MAX_DELETIONS_PER_RUN: Final = "GALLERY_LIFECYCLE_MAX_DELETIONS_PER_RUN"
    LIFECYCLE_MAX_DEPRECATIONS_PER_RUN: Final = "GALLERY_LIFECYCLE_MAX_DEPRECATIONS_PER_RUN"
    LIFECYCLE_DEPRECATED_REPLICAS: Final = "GALLERY_LIFECYCLE_DEPRECATED_REPLICAS"
    LIFECYCLE_DELETE_BUDGET: Final = "GALLERY_LIFECYCLE_DELETE_BUDGET"
    LIFECYCLE_SCHEDULE: Final = "GALLERY_LIFECYCLE_SCHEDULE"
    LIFECYCLE_AUDIT_CONTAINER: Final = "GALLERY_LIFECYCLE_AUDIT_CONTAINER"
    INUSE_SUBSCRIPTIONS: Final = "GALLERY_INUSE_SUBSCRIPTIONS"
    REJECTED_QUEUE: Final = "GALLERY_REJECTED_QUEUE"
    TRACKER_SCHEDULE: Final = "GALLERY_TRACKER_SCHEDULE"
    FAILED_VERSION_POLICY: Final = "GALLERY_FAILED_VERSION_POLICY"
    CLAIM_RECOVERY_SECONDS: Final = "GALLERY_CLAIM_RECOVERY_SECONDS"
    #: Sources in other tenants (infra/README.md, "Cross-tenant sources").
    TENANT_ID: Final = "GALLERY_TENANT_ID"
    SOURCE_TENANTS: Final = "GALLERY_SOURCE_TENANTS"
    CROSS_TENANT_CLIENT_ID: Final = "GALLERY_CROSS_TENANT_CLIENT_ID"
    CROSS_TENANT_CLIENT_SECRET: Final = "GALLERY_CROSS_TENANT_CLIENT_SECRET"
    AUTHORITY_HOST: Final = "GALLERY_AUTHORITY_HOST"
    #: Application Insights (OpenTelemetry): docs/observability.md.
    APPINSIGHTS_CONNECTION_STRING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
    APPINSIGHTS_AUTHENTICATION_STRING: Final = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"


#: Where production blob endpoints live. ``{account}`` stands for the storage account name.
DEFAULT_VHD_STORAGE_ENDPOINTS: Final = ("https://{account}.blob.core.windows.net",)
DEFAULT_ARM_ENDPOINT: Final = "https://management.azure.com"
DEFAULT_ARM_AUDIENCE: Final = "https://management.azure.com"
DEFAULT_AUTHORITY_HOST: Final = "https://login.microsoftonline.com"
_GUID: Final = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _split_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(item.strip() for item in raw.replace(";", ",").split(",") if item.strip())


def _blob_service_uri(environ: Mapping[str, str]) -> str | None:
    """``__blobServiceUri``, or the public-cloud endpoint of ``__accountName`` (the host's
    shorthand for identity-based storage connections)."""
    uri = environ.get(SettingName.STORAGE_BLOB_SERVICE_URI)
    if uri:
        return uri
    account = (environ.get(SettingName.STORAGE_ACCOUNT_NAME) or "").strip()
    return f"https://{account}.blob.core.windows.net" if account else None


def _choice(environ: Mapping[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    raw = (environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw not in allowed:
        raise PermanentError(f"setting {name}: expected one of {', '.join(allowed)}, got {raw!r}")
    return raw


#: Daily at 02:30 UTC (six-field NCRONTAB, seconds first).
DEFAULT_LIFECYCLE_SCHEDULE: Final = "0 30 2 * * *"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (environ.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise PermanentError(f"setting {name}: expected true or false, got {raw!r}")


def _whole_number(
    environ: Mapping[str, str], name: str, *, minimum: int, default: int | None
) -> int | None:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PermanentError(f"setting {name}: expected a whole number, got {raw!r}") from None
    if value < minimum:
        raise PermanentError(f"setting {name}: must be at least {minimum}, got {value}")
    return value


def _required_number(environ: Mapping[str, str], name: str, *, minimum: int, default: int) -> int:
    value = _whole_number(environ, name, minimum=minimum, default=default)
    return default if value is None else value


@dataclass(frozen=True)
class LifecycleSettings:
    """The lifecycle timer's settings; every default is the safe one (see docs/lifecycle.md)."""

    #: Only write the plan, change nothing. The default for new deployments.
    dry_run: bool = True
    grace_days: int = 14
    min_keep: int = 3
    max_age_days: int | None = None
    max_versions: int | None = None
    #: The circuit breaker: deletions beyond this wait for the next run (0: never delete).
    max_deletions_per_run: int = 10
    #: Deprecations beyond this wait for the next run (they are throttled ARM updates).
    max_deprecations_per_run: int = 200
    #: Replicas per region left on a deprecated version (None: unchanged).
    deprecated_replicas: int | None = None
    #: Deletions started per 3-minute window; Azure's DeleteGalleryImageVersion bucket is 150.
    delete_budget: int = 50
    schedule: str = DEFAULT_LIFECYCLE_SCHEDULE
    audit_container: str = "gallery-pipeline-audit"
    #: Subscriptions scanned for VMs and scale sets; empty: the target galleries' subscriptions.
    in_use_subscriptions: tuple[str, ...] = ()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LifecycleSettings:
        schedule = (environ.get(SettingName.LIFECYCLE_SCHEDULE) or "").strip()
        if schedule and len(schedule.split()) != 6 and schedule.count(":") != 2:
            raise PermanentError(
                f"setting {SettingName.LIFECYCLE_SCHEDULE}: expected a six-field NCRONTAB "
                f"expression such as {DEFAULT_LIFECYCLE_SCHEDULE!r}, got {schedule!r}"
            )
        return cls(
            dry_run=_flag(environ, SettingName.LIFECYCLE_DRY_RUN, True),
            grace_days=_required_number(
                environ, SettingName.LIFECYCLE_GRACE_DAYS, minimum=0, default=14
            ),
            min_keep=_required_number(
                environ, SettingName.LIFECYCLE_MIN_KEEP, minimum=1, default=3
            ),
            max_age_days=_whole_number(
                environ, SettingName.LIFECYCLE_MAX_AGE_DAYS, minimum=1, default=None
            ),
            max_versions=_whole_number(
                environ, SettingName.LIFECYCLE_MAX_VERSIONS, minimum=1, default=None
            ),
            max_deletions_per_run=_required_number(
                environ, SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN, minimum=0, default=10
            ),
            max_deprecations_per_run=_required_number(
                environ, SettingName.LIFECYCLE_MAX_DEPRECATIONS_PER_RUN, minimum=0, default=200
            ),
            deprecated_replicas=_whole_number(
                environ, SettingName.LIFECYCLE_DEPRECATED_REPLICAS, minimum=1, default=None
            ),
            delete_budget=_required_number(
                environ, SettingName.LIFECYCLE_DELETE_BUDGET, minimum=1, default=50
            ),
            schedule=schedule or DEFAULT_LIFECYCLE_SCHEDULE,
            audit_container=environ.get(SettingName.LIFECYCLE_AUDIT_CONTAINER)
            or "gallery-pipeline-audit",
            in_use_subscriptions=_split_list(environ.get(SettingName.INUSE_SUBSCRIPTIONS)),
        )


#: Every 20 seconds (six-field NCRONTAB, seconds first).
DEFAULT_INTAKE_RECHECK_SCHEDULE: Final = "*/20 * * * * *"


def _json_text(environ: Mapping[str, str], name: str, default: str) -> str:
    """A JSON setting, kept as text (parsed by its user); its syntax is checked here."""
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    try:
        json.loads(raw)
    except ValueError as exc:
        raise PermanentError(f"setting {name}: not valid JSON: {exc}") from None
    except RecursionError:
        raise PermanentError(f"setting {name}: nested too deeply to be read") from None
    return raw


@dataclass(frozen=True)
class IntakeSettings:
    """How uploads and snapshots become build requests (docs/intake.md)."""

    #: JSON list of upload routes (container + blob-name prefix -> target and defaults).
    vhd_routes: str = "[]"
    #: A page blob without a manifest is ready once its footer is valid and its ETag and length
    #: have not changed for this long.
    upload_settle_seconds: int = 60
    #: An upload or snapshot that is still not ready after this long is rejected.
    abandon_seconds: int = 86400
    #: Blob container of the intake records (pending uploads and snapshots, queued sources).
    container: str = "gallery-pipeline-intake"
    #: The re-check timer's schedule (the function binds ``%GALLERY_INTAKE_RECHECK_SCHEDULE%``).
    recheck_schedule: str = DEFAULT_INTAKE_RECHECK_SCHEDULE
    #: The snapshot tag that opts a snapshot in: ``<gallery>/<definition>[:<versionPolicy>]``.
    snapshot_tag: str = "gallery-publish"
    #: JSON object: a partial build request merged under every snapshot's request.
    snapshot_defaults: str = "{}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> IntakeSettings:
        return cls(
            vhd_routes=_json_text(environ, SettingName.VHD_ROUTES, "[]"),
            upload_settle_seconds=_required_number(
                environ, SettingName.UPLOAD_SETTLE_SECONDS, minimum=0, default=60
            ),
            abandon_seconds=_required_number(
                environ, SettingName.INTAKE_ABANDON_SECONDS, minimum=1, default=86400
            ),
            container=environ.get(SettingName.INTAKE_CONTAINER) or "gallery-pipeline-intake",
            recheck_schedule=(environ.get(SettingName.INTAKE_RECHECK_SCHEDULE) or "").strip()
            or DEFAULT_INTAKE_RECHECK_SCHEDULE,
            snapshot_tag=(environ.get(SettingName.SNAPSHOT_TAG) or "").strip() or "gallery-publish",
            snapshot_defaults=_json_text(environ, SettingName.SNAPSHOT_DEFAULTS, "{}"),
        )


def _pairs(text: str) -> dict[str, str]:
    """``Key=Value;Key=Value`` (connection-string style), keys lower-cased."""
    pairs = (part.split("=", 1) for part in text.split(";") if "=" in part)
    return {key.strip().lower(): value.strip() for key, value in pairs}


@dataclass(frozen=True)
class TelemetrySettings:
    """Where telemetry goes (docs/observability.md): nothing is exported without a connection
    string. ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` = ``Authorization=AAD`` (optionally
    ``ClientId=<user-assigned identity>;Authorization=AAD``) sends it with a managed identity."""

    connection_string: str | None = None
    #: Microsoft Entra authentication of the ingestion (local auth disabled on the resource).
    entra_auth: bool = False
    #: The user-assigned managed identity's client id; ``None``: the system-assigned one.
    entra_client_id: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.connection_string)

    @property
    def live_metrics(self) -> bool:
        """Live metrics only when the connection string names a ``LiveEndpoint`` (every one the
        portal gives does; a local capture endpoint does not)."""
        return "liveendpoint" in _pairs(self.connection_string or "")

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> TelemetrySettings:
        auth = _pairs(environ.get(SettingName.APPINSIGHTS_AUTHENTICATION_STRING) or "")
        entra = auth.get("authorization", "").upper() == "AAD"
        return cls(
            connection_string=(environ.get(SettingName.APPINSIGHTS_CONNECTION_STRING) or "").strip()
            or None,
            entra_auth=entra,
            entra_client_id=(auth.get("clientid") or None) if entra else None,
        )

    def __repr__(self) -> str:  # the connection string holds the instrumentation key
        shown = "***" if self.connection_string else None
        return (
            f"TelemetrySettings(connection_string={shown!r}, entra_auth={self.entra_auth!r}, "
            f"entra_client_id={self.entra_client_id!r})"
        )


def _source_tenants(environ: Mapping[str, str]) -> dict[str, str]:
    """``sub1=tenantA,sub2=tenantB`` -> ``{sub1: tenantA, ...}`` (lower-cased GUIDs)."""
    name = SettingName.SOURCE_TENANTS
    found: dict[str, str] = {}
    for entry in _split_list(environ.get(name)):
        subscription, sep, tenant = (part.strip() for part in entry.partition("="))
        if not sep or not _GUID.match(subscription) or not _GUID.match(tenant):
            raise PermanentError(
                f"setting {name}: expected <subscriptionId>=<tenantId> GUID pairs separated by "
                f"',', got {entry!r}"
            )
        found[subscription.lower()] = tenant.lower()
    return found


@dataclass(frozen=True)
class CrossTenantSettings:
    """Sources in other tenants' subscriptions (infra/README.md, "Cross-tenant sources").

    ``source_tenants`` maps a source subscription to its tenant; every other subscription is in
    ``tenant_id``, the app's own tenant (the target galleries'). Tokens for those tenants come
    from the multi-tenant app registration ``client_id``: through a federated credential that
    trusts the app's managed identity, or (local and dev only) ``client_secret``.
    """

    tenant_id: str | None = None
    source_tenants: Mapping[str, str] = field(default_factory=dict)
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    authority_host: str = DEFAULT_AUTHORITY_HOST

    def tenant_of(self, subscription_id: str) -> str | None:
        """The subscription's tenant: mapped, else the app's own (``None`` when unknown)."""
        return self.source_tenants.get(subscription_id.lower(), self.tenant_id)

    def is_foreign(self, subscription_id: str) -> bool:
        """Whether the subscription is mapped to a tenant other than the app's own."""
        tenant = self.source_tenants.get(subscription_id.lower())
        return tenant is not None and tenant != (self.tenant_id or "").lower()

    @property
    def configured(self) -> bool:
        """Whether tokens for other tenants can be had (app registration and own tenant)."""
        return bool(self.client_id and self.tenant_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> CrossTenantSettings:
        tenant = (environ.get(SettingName.TENANT_ID) or "").strip().lower() or None
        if tenant is not None and not _GUID.match(tenant):
            raise PermanentError(
                f"setting {SettingName.TENANT_ID}: expected the tenant id (a GUID), got {tenant!r}"
            )
        client_id = (environ.get(SettingName.CROSS_TENANT_CLIENT_ID) or "").strip() or None
        if client_id is not None and not _GUID.match(client_id):
            raise PermanentError(
                f"setting {SettingName.CROSS_TENANT_CLIENT_ID}: expected the app registration's "
                "client id (a GUID)"
            )
        if client_id is not None and tenant is None:
            raise PermanentError(
                f"setting {SettingName.TENANT_ID} is required with "
                f"{SettingName.CROSS_TENANT_CLIENT_ID}: the app's own tenant (the targets')"
            )
        authority = (environ.get(SettingName.AUTHORITY_HOST) or "").strip().rstrip("/")
        if authority and not authority.startswith("https://"):
            raise PermanentError(f"setting {SettingName.AUTHORITY_HOST}: must be an https URL")
        return cls(
            tenant_id=tenant,
            source_tenants=_source_tenants(environ),
            client_id=client_id,
            client_secret=environ.get(SettingName.CROSS_TENANT_CLIENT_SECRET) or None,
            authority_host=authority or DEFAULT_AUTHORITY_HOST,
        )


@dataclass(frozen=True)
class Settings:
    """Pipeline configuration. Build it with :meth:`from_env`; never mutate it."""

    storage_connection_string: str | None = None
    storage_blob_service_uri: str | None = None
    service_bus_connection_string: str | None = None
    service_bus_namespace: str | None = None
    build_queue: str = "image-builds"
    events_topic: str = "image-build-events"
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    arm_ca_bundle: str | None = None
    #: The token audience for ARM (sovereign clouds differ), e.g.
    #: ``https://management.usgovcloudapi.net``; the scope asked for is ``<audience>/.default``.
    arm_audience: str = DEFAULT_ARM_AUDIENCE
    #: Galleries the pipeline may publish into, as ``<subscriptionId>/<resourceGroup>/<gallery>``
    #: (case-insensitive; ``*`` matches any one part). Empty means: nothing is allowed.
    allowed_target_galleries: tuple[str, ...] = ()
    #: Subscriptions that sources (snapshots, disks, VHD storage accounts...) may live in.
    #: Empty means: only the target's own subscription.
    allowed_source_subscriptions: tuple[str, ...] = ()
    #: Blob endpoints accepted for VHD sources; ``{account}`` is the storage account name.
    vhd_storage_endpoints: tuple[str, ...] = field(default=DEFAULT_VHD_STORAGE_ENDPOINTS)
    max_data_disk_gib: int = 1024
    ledger_container: str = "gallery-pipeline-ledger"
    #: Upload and snapshot intake (``GALLERY_VHD_ROUTES``, ``GALLERY_UPLOAD_*``...; docs/intake.md).
    intake: IntakeSettings = field(default_factory=IntakeSettings)
    #: End of life, retention and safety rails (``GALLERY_LIFECYCLE_*``; docs/lifecycle.md).
    lifecycle: LifecycleSettings = field(default_factory=LifecycleSettings)
    #: Queue that relays rejected requests to its dead-letter queue (shared.adapters.service_bus).
    rejected_queue: str = "image-builds-rejected"
    #: What happens to a version whose replication failed: ``delete`` (it cannot be republished
    #: in place) or ``keep`` (left for inspection; the source is released either way).
    failed_version_policy: str = "delete"
    #: A claim whose PUT was never confirmed is recovered by the tracker after this many seconds.
    claim_recovery_seconds: int = 120
    #: Sources in other tenants (``GALLERY_SOURCE_TENANTS``, ``GALLERY_CROSS_TENANT_*``).
    cross_tenant: CrossTenantSettings = field(default_factory=CrossTenantSettings)
    #: Application Insights through OpenTelemetry (docs/observability.md).
    telemetry: TelemetrySettings = field(default_factory=TelemetrySettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every setting from ``environ`` (pass ``os.environ`` in production)."""
        endpoints = _split_list(environ.get(SettingName.VHD_STORAGE_ENDPOINTS))
        for template in endpoints:
            try:
                check_endpoint_template(template)
            except ValueError as exc:
                raise PermanentError(
                    f"setting {SettingName.VHD_STORAGE_ENDPOINTS}: {exc}"
                ) from None
        return cls(
            storage_connection_string=environ.get(SettingName.STORAGE_CONNECTION) or None,
            storage_blob_service_uri=_blob_service_uri(environ),
            service_bus_connection_string=environ.get(SettingName.SERVICE_BUS_CONNECTION) or None,
            service_bus_namespace=environ.get(SettingName.SERVICE_BUS_NAMESPACE) or None,
            build_queue=environ.get(SettingName.BUILD_QUEUE) or "image-builds",
            events_topic=environ.get(SettingName.EVENTS_TOPIC) or "image-build-events",
            arm_endpoint=(environ.get(SettingName.ARM_ENDPOINT) or DEFAULT_ARM_ENDPOINT).rstrip(
                "/"
            ),
            arm_ca_bundle=environ.get(SettingName.ARM_CA_BUNDLE) or None,
            arm_audience=(environ.get(SettingName.ARM_AUDIENCE) or DEFAULT_ARM_AUDIENCE).rstrip(
                "/"
            ),
            allowed_target_galleries=_split_list(environ.get(SettingName.ALLOWED_TARGET_GALLERIES)),
            allowed_source_subscriptions=_split_list(
                environ.get(SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS)
            ),
            vhd_storage_endpoints=endpoints or DEFAULT_VHD_STORAGE_ENDPOINTS,
            max_data_disk_gib=_required_number(
                environ, SettingName.MAX_DATA_DISK_GIB, minimum=1, default=1024
            ),
            ledger_container=environ.get(SettingName.LEDGER_CONTAINER) or "gallery-pipeline-ledger",
            intake=IntakeSettings.from_env(environ),
            lifecycle=LifecycleSettings.from_env(environ),
            rejected_queue=environ.get(SettingName.REJECTED_QUEUE) or "image-builds-rejected",
            failed_version_policy=_choice(
                environ, SettingName.FAILED_VERSION_POLICY, ("delete", "keep"), "delete"
            ),
            claim_recovery_seconds=_required_number(
                environ, SettingName.CLAIM_RECOVERY_SECONDS, minimum=1, default=120
            ),
            cross_tenant=CrossTenantSettings.from_env(environ),
            telemetry=TelemetrySettings.from_env(environ),
        )

    def __repr__(self) -> str:  # connection strings may hold keys: never print them
        hidden = {"storage_connection_string", "service_bus_connection_string"}
        shown = ", ".join(
            f"{name}={'***' if name in hidden and value else repr(value)}"
            for name, value in self.__dict__.items()
        )
        return f"Settings({shown})"
