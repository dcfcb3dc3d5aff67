"""Wires ports to adapters from the one :class:`~shared.core.settings.Settings` object.

Handlers in ``functions/`` call these factories; each builds its object once per process (the
SDK clients keep connections open) from ``os.environ``. Tests that change the environment call
:func:`reset`. Nothing here holds domain logic.

Telemetry: ``function_app.py`` calls :func:`telemetry_on_first_use`; the first factory call
(every one starts with :func:`settings`), or the first span a handler opens, whichever comes
first, then configures OpenTelemetry when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set
(``shared.adapters.telemetry``). Lazily, so importing the app stays as cheap as before; only the
app opts in, so ``galleryctl`` and the tests that use these factories never export anything.
"""

from __future__ import annotations

import functools
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.core import tracing
from shared.core.settings import Settings

if TYPE_CHECKING:
    from shared.adapters.blob_audit_store import BlobAuditStore
    from shared.adapters.compute_gallery import ComputeClients, ComputeGallery
    from shared.adapters.identity import TokenCredential
    from shared.adapters.service_bus import ServiceBusMessaging
    from shared.adapters.storage import BlobServiceClient, ContainerClient
    from shared.builds.common import BuildJournal
    from shared.builds.ledger import SourceLedger
    from shared.builds.records import BuildRecords
    from shared.builds.starter import BuildStarter
    from shared.builds.tracker import BuildTracker
    from shared.builds.worker import BuildWorker
    from shared.contract.regions import RegionCatalog
    from shared.intake.service import IntakeService
    from shared.lifecycle.service import LifecycleService


def utc_now() -> datetime:
    return datetime.now(UTC)


_telemetry_requested = threading.Event()


def telemetry_on_first_use() -> None:
    """Configure telemetry on the first factory call or span of this process (the app's
    composition root, ``function_app.py``, calls this once)."""
    _telemetry_requested.set()
    tracing.before_first_operation(settings)  # a settings error surfaces in the handler


@functools.cache
def settings() -> Settings:
    current = Settings.from_env(os.environ)
    if _telemetry_requested.is_set() and current.telemetry.enabled:
        from shared.adapters.telemetry import configure_telemetry  # noqa: PLC0415  (lazy)

        configure_telemetry(current.telemetry)  # once per process; never raises
    return current


@functools.cache
def credential() -> TokenCredential:
    """``DefaultAzureCredential``: managed identity in Azure, the simulator's MSI locally."""
    from shared.adapters.identity import default_credential  # noqa: PLC0415  (0.3 s import)

    return default_credential()


@functools.cache
def blob_service() -> BlobServiceClient:
    """The app's own storage account (ledger, build records, audit): ``AzureWebJobsStorage``."""
    from shared.adapters.storage import blob_service_client  # noqa: PLC0415

    return blob_service_client(settings(), credential)


@functools.cache
def messaging() -> ServiceBusMessaging:
    from shared.adapters.service_bus import ServiceBusMessaging  # noqa: PLC0415

    return ServiceBusMessaging.from_settings(settings(), credential)


@functools.cache
def compute_clients() -> ComputeClients:
    """One azure-mgmt-compute client per subscription, shared by the gallery and snapshot reads."""
    from shared.adapters.compute_gallery import ComputeClients, build_compute_client  # noqa: PLC0415
    from shared.adapters.identity import CrossTenantIdentity  # noqa: PLC0415

    current = settings()
    cross = current.cross_tenant
    return ComputeClients(
        lambda sub: build_compute_client(current, sub, credential()),
        # sources in other tenants (GALLERY_SOURCE_TENANTS): the app registration's tokens
        cross_tenant=CrossTenantIdentity(cross, credential, connection_verify=current.arm_ca_bundle)
        if cross.configured
        else None,
        client_with=lambda sub, primary, auxiliary: build_compute_client(
            current, sub, primary, auxiliary_credentials=auxiliary
        ),
    )


@functools.cache
def region_catalog() -> RegionCatalog:
    """Azure's region names for request validation: ARM's locations list of the target's
    subscription, cached per process, the built-in list while ARM cannot be asked."""
    from shared.adapters.arm_regions import ArmRegionCatalog  # noqa: PLC0415

    return ArmRegionCatalog.from_settings(settings(), credential)


@functools.cache
def gallery() -> ComputeGallery:
    from shared.adapters.compute_gallery import ComputeGallery  # noqa: PLC0415

    return ComputeGallery(compute_clients())


def ledger_container() -> ContainerClient:
    """The container of the ledger, build records and version reservations (by prefix)."""
    return blob_service().get_container_client(settings().ledger_container)


@functools.cache
def ledger() -> SourceLedger:
    from shared.adapters.blob_document_store import BlobDocumentStore  # noqa: PLC0415
    from shared.builds.ledger import SourceLedger, build_id_for  # noqa: PLC0415

    container = ledger_container()
    return SourceLedger(
        BlobDocumentStore(container),
        clock=utc_now,
        new_build_id=build_id_for,
        active=BlobDocumentStore(container, prefix="active/"),
        lease_seconds=settings().claim_recovery_seconds,
    )


def reset() -> None:
    """Forget every object built so far (tests that change the environment)."""
    factories: tuple[Any, ...] = (
        settings,
        credential,
        blob_service,
        messaging,
        compute_clients,
        gallery,
        region_catalog,
        ledger,
        build_journal,
        build_starter,
        build_worker,
        build_tracker,
        build_records,
        lifecycle_audit,
        lifecycle_service,
        intake_service,
    )
    for factory in factories:
        factory.cache_clear()


@functools.cache
def build_journal() -> BuildJournal:
    """Build records, each change published on the events topic (worker and tracker)."""
    from shared.builds.common import BuildJournal  # noqa: PLC0415

    return BuildJournal(
        records=build_records(),
        sender=messaging(),
        events_topic=settings().events_topic,
        clock=utc_now,
    )


@functools.cache
def build_starter() -> BuildStarter:
    """Starting and ending builds: shared by the build worker and the tracker."""
    from shared.adapters.blob_document_store import BlobDocumentStore  # noqa: PLC0415
    from shared.adapters.vhd_inspector import BlobVhdInspector  # noqa: PLC0415
    from shared.builds.reservations import VersionReservations  # noqa: PLC0415
    from shared.builds.starter import BuildStarter  # noqa: PLC0415

    current = settings()
    container = ledger_container()
    return BuildStarter(
        settings=current,
        gallery=gallery(),
        ledger=ledger(),
        reservations=VersionReservations(
            BlobDocumentStore(container, prefix="reservations/"), clock=utc_now
        ),
        journal=build_journal(),
        vhd_inspector=BlobVhdInspector(current, credential),
        clock=utc_now,
    )


@functools.cache
def build_worker() -> BuildWorker:
    """The build worker (``functions/build_worker.py``), wired to Azure."""
    from shared.builds.worker import BuildWorker  # noqa: PLC0415

    bus = messaging()
    return BuildWorker(
        settings=settings(),
        ledger=ledger(),
        journal=build_journal(),
        starter=build_starter(),
        sender=bus,
        rejects=bus,
        clock=utc_now,
        regions=region_catalog(),
    )


@functools.cache
def build_tracker() -> BuildTracker:
    """The build tracker (``functions/build_tracker.py``), wired to Azure."""
    from shared.builds.tracker import BuildTracker  # noqa: PLC0415

    return BuildTracker(
        settings=settings(),
        gallery=gallery(),
        ledger=ledger(),
        journal=build_journal(),
        starter=build_starter(),
        rejects=messaging(),
        clock=utc_now,
    )


@functools.cache
def build_records() -> BuildRecords:
    from shared.adapters.blob_document_store import BlobDocumentStore  # noqa: PLC0415
    from shared.builds.records import BuildRecords  # noqa: PLC0415

    container = ledger_container()
    return BuildRecords(BlobDocumentStore(container, prefix="builds/"), clock=utc_now)


@functools.cache
def lifecycle_audit() -> BlobAuditStore:
    """The lifecycle audit store: one blob per run in ``GALLERY_LIFECYCLE_AUDIT_CONTAINER``."""
    from shared.adapters.blob_audit_store import BlobAuditStore  # noqa: PLC0415

    name = settings().lifecycle.audit_container
    return BlobAuditStore(lambda: blob_service().get_container_client(name), clock=utc_now)


@functools.cache
def lifecycle_service() -> LifecycleService:
    """The lifecycle timer's (and ``galleryctl lifecycle``'s) service, wired to Azure."""
    from shared.adapters.gallery_inventory import arm_lifecycle_adapters  # noqa: PLC0415
    from shared.adapters.management_locks import arm_lock_reader  # noqa: PLC0415
    from shared.lifecycle.events import TopicEventSink  # noqa: PLC0415
    from shared.lifecycle.halt import HaltRegistry  # noqa: PLC0415
    from shared.lifecycle.service import (  # noqa: PLC0415
        DeletePacer,
        LifecycleService,
        policy_from_settings,
    )

    current = settings()
    inventory, writer, counter = arm_lifecycle_adapters(current, credential)
    return LifecycleService(
        inventory=inventory,
        writer=writer,
        audit=lifecycle_audit(),
        policy=policy_from_settings(current.lifecycle),
        target_patterns=current.allowed_target_galleries,
        in_use_subscriptions=current.lifecycle.in_use_subscriptions,
        pacer=DeletePacer(current.lifecycle.delete_budget),
        clock=utc_now,
        events=TopicEventSink(messaging, current.events_topic),
        halts=HaltRegistry(lifecycle_audit().documents(), clock=utc_now),
        locks=arm_lock_reader(current, credential, per_retry_policies=[counter]),
    )


@functools.cache
def intake_service() -> IntakeService:
    """Upload and snapshot intake (``functions/vhd_uploaded``, ``snapshot_created``, re-check)."""
    from shared.adapters.blob_document_store import BlobDocumentStore  # noqa: PLC0415
    from shared.adapters.blob_uploads import BlobUploads  # noqa: PLC0415
    from shared.adapters.compute_snapshots import ComputeSnapshots  # noqa: PLC0415
    from shared.intake.service import IntakeService  # noqa: PLC0415

    current = settings()
    container = blob_service().get_container_client(current.intake.container)
    bus = messaging()
    return IntakeService(
        current,
        blobs=BlobUploads(current, credential),
        snapshots=ComputeSnapshots(compute_clients()),
        pending=BlobDocumentStore(container, prefix="pending/"),
        done=BlobDocumentStore(container, prefix="done/"),
        sender=bus,
        rejects=bus,
        clock=utc_now,
        regions=region_catalog(),
    )
