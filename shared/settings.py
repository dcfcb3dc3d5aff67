"""One frozen settings object, built once from the environment.

Setting names are constants on :class:`SettingName`; nothing else in the code base reads
``os.environ`` for pipeline configuration. Identity-based connections are supported: where a
connection-string setting is absent, its ``__fullyQualifiedNamespace`` / ``__blobServiceUri``
form is used with ``DefaultAzureCredential``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from shared.blob_urls import check_endpoint_template
from shared.errors import PermanentError


class SettingName:
    """Names of the app settings (environment variables) the pipeline reads."""

    STORAGE_CONNECTION: Final = "AzureWebJobsStorage"
    STORAGE_BLOB_SERVICE_URI: Final = "AzureWebJobsStorage__blobServiceUri"
    SERVICE_BUS_CONNECTION: Final = "ServiceBusConnection"
    SERVICE_BUS_NAMESPACE: Final = "ServiceBusConnection__fullyQualifiedNamespace"
    BUILD_QUEUE: Final = "GALLERY_BUILD_QUEUE"
    EVENTS_TOPIC: Final = "GALLERY_EVENTS_TOPIC"
    ARM_ENDPOINT: Final = "GALLERY_ARM_ENDPOINT"
    ARM_CA_BUNDLE: Final = "GALLERY_ARM_CA_BUNDLE"
    ALLOWED_TARGET_GALLERIES: Final = "GALLERY_ALLOWED_TARGET_GALLERIES"
    ALLOWED_SOURCE_SUBSCRIPTIONS: Final = "GALLERY_ALLOWED_SOURCE_SUBSCRIPTIONS"
    VHD_STORAGE_ENDPOINTS: Final = "GALLERY_VHD_STORAGE_ENDPOINTS"
    MAX_DATA_DISK_GIB: Final = "GALLERY_MAX_DATA_DISK_GIB"
    LEDGER_CONTAINER: Final = "GALLERY_LEDGER_CONTAINER"


#: Where production blob endpoints live. ``{account}`` stands for the storage account name.
DEFAULT_VHD_STORAGE_ENDPOINTS: Final = ("https://{account}.blob.core.windows.net",)
DEFAULT_ARM_ENDPOINT: Final = "https://management.azure.com"


def _split_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(item.strip() for item in raw.replace(";", ",").split(",") if item.strip())


def _positive_int(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PermanentError(f"setting {name}: expected a whole number, got {raw!r}") from None
    if value <= 0:
        raise PermanentError(f"setting {name}: must be positive, got {value}")
    return value


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
            storage_blob_service_uri=environ.get(SettingName.STORAGE_BLOB_SERVICE_URI) or None,
            service_bus_connection_string=environ.get(SettingName.SERVICE_BUS_CONNECTION) or None,
            service_bus_namespace=environ.get(SettingName.SERVICE_BUS_NAMESPACE) or None,
            build_queue=environ.get(SettingName.BUILD_QUEUE) or "image-builds",
            events_topic=environ.get(SettingName.EVENTS_TOPIC) or "image-build-events",
            arm_endpoint=(environ.get(SettingName.ARM_ENDPOINT) or DEFAULT_ARM_ENDPOINT).rstrip(
                "/"
            ),
            arm_ca_bundle=environ.get(SettingName.ARM_CA_BUNDLE) or None,
            allowed_target_galleries=_split_list(environ.get(SettingName.ALLOWED_TARGET_GALLERIES)),
            allowed_source_subscriptions=_split_list(
                environ.get(SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS)
            ),
            vhd_storage_endpoints=endpoints or DEFAULT_VHD_STORAGE_ENDPOINTS,
            max_data_disk_gib=_positive_int(environ, SettingName.MAX_DATA_DISK_GIB, 1024),
            ledger_container=environ.get(SettingName.LEDGER_CONTAINER) or "gallery-pipeline-ledger",
        )

    def __repr__(self) -> str:  # connection strings may hold keys: never print them
        hidden = {"storage_connection_string", "service_bus_connection_string"}
        shown = ", ".join(
            f"{name}={'***' if name in hidden and value else repr(value)}"
            for name, value in self.__dict__.items()
        )
        return f"Settings({shown})"
