"""In-memory fakes of the build worker's and tracker's ports (unit tests only)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.builds.common import BuildJournal
from shared.builds.gallery import DefinitionRef, RegionReplication, VersionRef, VersionStatus
from shared.builds.ledger import SourceLedger, build_id_for
from shared.builds.records import BuildRecords
from shared.builds.reservations import VersionReservations
from shared.builds.starter import BuildStarter
from shared.builds.tracker import BuildTracker
from shared.builds.worker import BuildWorker
from shared.contract.model import DefinitionSpec, VhdSource
from shared.core.errors import NotFoundError, TransientError
from shared.core.messaging import OutgoingMessage
from shared.core.settings import SettingName, Settings
from shared.vhd.preflight import DetectedFormat, VhdReport
from tests.unit.store_fakes import Clock, InMemoryDocumentStore

SUB = "6e0f4b2c-1d3a-4c5e-9f7a-2b8c4d6e8f01"


def key(ref: DefinitionRef) -> tuple[str, ...]:
    return tuple(
        p.lower() for p in (ref.subscription_id, ref.resource_group, ref.gallery, ref.definition)
    )


@dataclass
class StoredVersion:
    body: dict[str, Any]
    provisioning_state: str = "Creating"
    regions: dict[str, tuple[str, int]] = field(default_factory=dict)

    def status(self, name: str) -> VersionStatus:
        props = self.body.get("properties") or {}
        return VersionStatus(
            name=name,
            provisioning_state=self.provisioning_state,
            regions=tuple(
                RegionReplication(
                    region=r,
                    state=s,
                    progress=p,
                    details="disk copy failed" if s == "Failed" else "",
                )
                for r, (s, p) in self.regions.items()
            ),
            storage_profile=props.get("storageProfile") or {},
            tags=self.body.get("tags") or {},
        )


class FakeGallery:
    """A gallery with definitions and versions; replication is driven by the test."""

    def __init__(self) -> None:
        self.definitions: dict[tuple[str, ...], DefinitionSpec | None] = {}
        self.versions: dict[tuple[str, ...], dict[str, StoredVersion]] = {}
        self.puts: list[tuple[str, str, dict[str, Any]]] = []
        self.deletes: list[str] = []
        self.fail_next_put: Exception | None = None
        #: One-shot hooks run inside a call, to interleave another starter there (a stall).
        self.during_list: Callable[[], None] | None = None
        self.during_get: Callable[[], None] | None = None
        #: A permanent error for every GET of a version of this definition (poisoned entry).
        self.broken_definitions: dict[tuple[str, ...], Exception] = {}

    def add_definition(self, ref: DefinitionRef) -> None:
        self.definitions[key(ref)] = None
        self.versions.setdefault(key(ref), {})

    def gallery_location(self, definition: DefinitionRef) -> str:
        return "westeurope"

    def definition_exists(self, definition: DefinitionRef) -> bool:
        return key(definition) in self.definitions

    def create_definition(
        self, definition: DefinitionRef, spec: DefinitionSpec, *, location: str
    ) -> None:
        self.definitions[key(definition)] = spec
        self.versions.setdefault(key(definition), {})

    def start_version(self, version: VersionRef, body: Mapping[str, Any]) -> VersionStatus:
        if self.fail_next_put is not None:
            error, self.fail_next_put = self.fail_next_put, None
            raise error
        if key(version.definition) not in self.definitions:
            raise NotFoundError("ParentResourceNotFound", reason="ParentResourceNotFound")
        regions = [r["name"] for r in body["properties"]["publishingProfile"]["targetRegions"]]
        stored = StoredVersion(dict(body), regions=dict.fromkeys(regions, ("Replicating", 0)))
        self.versions[key(version.definition)][version.name] = stored
        self.puts.append((str(version.definition), version.name, dict(body)))
        return stored.status(version.name)

    def get_version(self, version: VersionRef) -> VersionStatus | None:
        if key(version.definition) in self.broken_definitions:
            raise self.broken_definitions[key(version.definition)]
        if self.during_get is not None:
            hook, self.during_get = self.during_get, None
            hook()
        found = self.versions.get(key(version.definition), {}).get(version.name)
        return found.status(version.name) if found else None

    def list_versions(self, definition: DefinitionRef) -> Iterator[VersionStatus]:
        if self.during_list is not None:
            hook, self.during_list = self.during_list, None
            hook()
        for name, stored in list(self.versions.get(key(definition), {}).items()):
            yield stored.status(name)

    def start_delete_version(self, version: VersionRef) -> None:
        self.deletes.append(str(version))
        self.versions[key(version.definition)].pop(version.name, None)

    # test controls
    def complete(self, definition: str, version: str) -> None:
        stored = self._find(definition, version)
        stored.provisioning_state = "Succeeded"
        stored.regions = dict.fromkeys(stored.regions, ("Completed", 100))

    def progress(self, definition: str, version: str, percent: int) -> None:
        stored = self._find(definition, version)
        stored.regions = dict.fromkeys(stored.regions, ("Replicating", percent))

    def fail_region(self, definition: str, version: str, region: str) -> None:
        stored = self._find(definition, version)
        stored.provisioning_state = "Failed"
        stored.regions[region] = ("Failed", 40)

    def _find(self, definition: str, version: str) -> StoredVersion:
        for (_, _, _, name), versions in self.versions.items():
            if name == definition.lower():
                return versions[version]
        raise KeyError(definition)


class RecordingSender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, OutgoingMessage]] = []
        self.fail_next: bool = False

    def send(self, entity: str, message: OutgoingMessage) -> None:
        if self.fail_next:
            self.fail_next = False
            raise TransientError("bus down")
        self.sent.append((entity, message))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(m.body) for e, m in self.sent if e == "image-build-events"]

    def event_types(self, build_id: str | None = None) -> list[str]:
        return [
            e["type"].rsplit(".", 1)[1]
            for e in self.events()
            if build_id is None or e["subject"] == build_id
        ]


class RecordingRejects:
    def __init__(self) -> None:
        self.rejected: list[tuple[OutgoingMessage, str, str]] = []
        self.drains = 0

    def reject(self, message: OutgoingMessage, *, reason: str, description: str) -> None:
        self.rejected.append((message, reason, description))

    def drain_rejects(self) -> int:
        self.drains += 1
        return 0


class FakeVhdInspector:
    def __init__(self) -> None:
        self.bad: dict[str, str] = {}
        self.inspected: list[str] = []

    def inspect(self, source: VhdSource) -> VhdReport:
        from shared.core.errors import Problem

        self.inspected.append(source.uri_without_query)
        problem = self.bad.get(source.uri_without_query)
        return VhdReport(
            file_size=1024 * 1024 + 512,
            footer=None,
            problems=[Problem("vhd.footer.diskType", "fixed-disk-required", problem)]
            if problem
            else [],
            detected_format=DetectedFormat.VHD_FIXED,
            virtual_size=1024 * 1024,
        )


@dataclass
class Harness:
    worker: BuildWorker
    tracker: BuildTracker
    gallery: FakeGallery
    sender: RecordingSender
    rejects: RecordingRejects
    vhd: FakeVhdInspector
    ledger: SourceLedger
    records: BuildRecords
    clock: Clock
    reservations: VersionReservations
    journal: BuildJournal
    starter: BuildStarter
    ledger_store: InMemoryDocumentStore

    def tracker_with(self, **settings_env: str) -> BuildTracker:
        """A tracker over the same state, with other settings (an operator changed them)."""
        return BuildTracker(
            settings=Settings.from_env(dict(settings_env)),
            gallery=self.gallery,
            ledger=self.ledger,
            journal=self.journal,
            starter=self.starter,
            rejects=self.rejects,
            clock=self.clock,
        )


def make_harness(**settings_env: str) -> Harness:
    env = {
        SettingName.ALLOWED_TARGET_GALLERIES: "*/*/*",
        SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS: SUB,
        **settings_env,
    }
    settings = Settings.from_env(env)
    clock = Clock()
    store = InMemoryDocumentStore()
    ledger = SourceLedger(
        store, clock=clock, new_build_id=build_id_for, active=InMemoryDocumentStore()
    )
    records = BuildRecords(InMemoryDocumentStore(), clock=clock)
    gallery, sender, rejects, vhd = (
        FakeGallery(),
        RecordingSender(),
        RecordingRejects(),
        FakeVhdInspector(),
    )
    journal = BuildJournal(
        records=records, sender=sender, events_topic=settings.events_topic, clock=clock
    )
    reservations = VersionReservations(InMemoryDocumentStore(), clock=clock)
    starter = BuildStarter(
        settings=settings,
        gallery=gallery,
        ledger=ledger,
        reservations=reservations,
        journal=journal,
        vhd_inspector=vhd,
        clock=clock,
    )
    worker = BuildWorker(
        settings=settings,
        ledger=ledger,
        journal=journal,
        starter=starter,
        sender=sender,
        rejects=rejects,
        clock=clock,
    )
    tracker = BuildTracker(
        settings=settings,
        gallery=gallery,
        ledger=ledger,
        journal=journal,
        starter=starter,
        rejects=rejects,
        clock=clock,
    )
    return Harness(
        worker,
        tracker,
        gallery,
        sender,
        rejects,
        vhd,
        ledger,
        records,
        clock,
        reservations,
        journal,
        starter,
        store,
    )
