"""Parse ARM resource ids and request paths into typed parts."""

from __future__ import annotations

from dataclasses import dataclass

#: Resource types the simulator serves, keyed by the lower-cased type path after the provider.
KNOWN_TYPES: dict[str, str] = {
    "microsoft.compute/galleries": "Microsoft.Compute/galleries",
    "microsoft.compute/galleries/images": "Microsoft.Compute/galleries/images",
    "microsoft.compute/galleries/images/versions": "Microsoft.Compute/galleries/images/versions",
    "microsoft.compute/snapshots": "Microsoft.Compute/snapshots",
    "microsoft.compute/disks": "Microsoft.Compute/disks",
    "microsoft.compute/images": "Microsoft.Compute/images",
    "microsoft.compute/virtualmachines": "Microsoft.Compute/virtualMachines",
    "microsoft.compute/virtualmachinescalesets": "Microsoft.Compute/virtualMachineScaleSets",
    "microsoft.storage/storageaccounts": "Microsoft.Storage/storageAccounts",
}

GALLERY = "Microsoft.Compute/galleries"
IMAGE = "Microsoft.Compute/galleries/images"
VERSION = "Microsoft.Compute/galleries/images/versions"
SNAPSHOT = "Microsoft.Compute/snapshots"
DISK = "Microsoft.Compute/disks"
MANAGED_IMAGE = "Microsoft.Compute/images"
VM = "Microsoft.Compute/virtualMachines"
VMSS = "Microsoft.Compute/virtualMachineScaleSets"
STORAGE_ACCOUNT = "Microsoft.Storage/storageAccounts"


@dataclass(frozen=True)
class ResourceRef:
    """A resource (``names`` complete) or a collection (one name short of ``type``'s depth).

    ``type`` is the canonical type (``Microsoft.Compute/galleries/images``); ``names`` are the
    names along the type path; ``segments`` the type segments after the provider.
    """

    subscription: str
    resource_group: str
    provider: str
    segments: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def type(self) -> str:
        return "/".join((self.provider, *self.segments))

    @property
    def is_collection(self) -> bool:
        return len(self.names) < len(self.segments)

    @property
    def name(self) -> str:
        return self.names[-1]

    @property
    def name_path(self) -> str:
        return "/".join(self.names)

    @property
    def id(self) -> str:
        """The canonical id (for a collection: the collection path)."""
        parts = [
            "/subscriptions",
            self.subscription,
            "resourceGroups",
            self.resource_group,
            "providers",
            self.provider,
        ]
        for index, segment in enumerate(self.segments):
            parts.append(segment)
            if index < len(self.names):
                parts.append(self.names[index])
        return "/".join(parts)

    @property
    def key(self) -> str:
        """Case-insensitive identity of the resource (ARM ids are case-insensitive)."""
        return self.id.lower()

    def parent(self) -> ResourceRef | None:
        """The parent resource (for nested types), or ``None`` for a top-level resource."""
        if len(self.segments) <= 1:
            return None
        return ResourceRef(
            self.subscription,
            self.resource_group,
            self.provider,
            self.segments[:-1],
            self.names[: len(self.segments) - 1],
        )

    def child_collection(self, segment: str) -> ResourceRef:
        return ResourceRef(
            self.subscription,
            self.resource_group,
            self.provider,
            (*self.segments, segment),
            self.names,
        )

    def child(self, segment: str, name: str) -> ResourceRef:
        return ResourceRef(
            self.subscription,
            self.resource_group,
            self.provider,
            (*self.segments, segment),
            (*self.names, name),
        )


def parse_resource_path(path: str) -> ResourceRef | None:
    """Parse ``/subscriptions/s/resourceGroups/rg/providers/NS/type/name[/type/name...]``.

    Returns ``None`` when the path is not a resource or collection of a type the simulator knows.
    Canonical casing is applied to fixed segments; names keep the caller's casing.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) < 6:
        return None
    if parts[0].lower() != "subscriptions" or parts[2].lower() != "resourcegroups":
        return None
    if parts[4].lower() != "providers":
        return None
    subscription, resource_group, namespace = parts[1], parts[3], parts[5]
    rest = parts[6:]
    if not rest:
        return None
    segments = rest[0::2]
    names = rest[1::2]
    type_key = "/".join([namespace, *segments]).lower()
    canonical = KNOWN_TYPES.get(type_key)
    if canonical is None:
        return None
    provider, *canonical_segments = canonical.split("/")
    return ResourceRef(
        subscription, resource_group, provider, tuple(canonical_segments), tuple(names)
    )


def parse_resource_id(resource_id: str) -> ResourceRef | None:
    """Parse a full resource id; ``None`` if malformed, unknown or a collection."""
    ref = parse_resource_path(resource_id)
    if ref is None or ref.is_collection:
        return None
    return ref
