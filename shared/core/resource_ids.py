"""Parse and format Azure Resource Manager (ARM) resource ids.

An ARM id looks like::

    /subscriptions/{subscriptionId}/resourceGroups/{resourceGroup}
        /providers/{Namespace}/{type}/{name}[/{childType}/{childName}...]

:func:`parse_resource_id` turns that text into a :class:`ResourceId` with the subscription, the
resource group, the provider namespace, the (nested) resource type such as
``Microsoft.Compute/galleries/images/versions`` and the names along the way. ARM compares ids
case-insensitively; :attr:`ResourceId.key` gives the lower-cased form to compare or key on, while
``str()`` keeps the names as written and the keywords in their canonical spelling.

Domain code only: no Azure SDK import.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

#: A subscription or tenant id: a GUID, 8-4-4-4-12 hex digits.
GUID_PATTERN: Final = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
#: Resource group names: 1-90 characters; letters, digits, ``_ . ( ) -``; not ending in ``.``.
#: (ARM also allows non-ASCII letters; the pipeline accepts ASCII only.)
RESOURCE_GROUP_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.()-]{0,89}[A-Za-z0-9_()-]$")
_NAMESPACE_PATTERN: Final = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)+$")
_SEGMENT_PATTERN: Final = re.compile(r"^[^/?#\s]+$")

#: Resource types the pipeline deals with, in their canonical spelling.
SNAPSHOT_TYPE: Final = "Microsoft.Compute/snapshots"
DISK_TYPE: Final = "Microsoft.Compute/disks"
MANAGED_IMAGE_TYPE: Final = "Microsoft.Compute/images"
VIRTUAL_MACHINE_TYPE: Final = "Microsoft.Compute/virtualMachines"
GALLERY_TYPE: Final = "Microsoft.Compute/galleries"
GALLERY_IMAGE_TYPE: Final = "Microsoft.Compute/galleries/images"
GALLERY_IMAGE_VERSION_TYPE: Final = "Microsoft.Compute/galleries/images/versions"
STORAGE_ACCOUNT_TYPE: Final = "Microsoft.Storage/storageAccounts"


class InvalidResourceId(ValueError):
    """The text is not a well-formed ARM resource id; the message says which part is wrong."""


@dataclass(frozen=True)
class ResourceId:
    """A parsed ARM resource id below a resource group.

    ``type_names`` are the type segments after the namespace (``("galleries", "images")``) and
    ``names`` the matching resource names (``("myGallery", "myImage")``).
    """

    subscription_id: str
    resource_group: str
    namespace: str
    type_names: tuple[str, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.type_names or len(self.type_names) != len(self.names):
            raise InvalidResourceId("a resource id needs one name per resource type segment")

    @property
    def resource_type(self) -> str:
        """The full type, e.g. ``Microsoft.Compute/galleries/images/versions``."""
        return "/".join((self.namespace, *self.type_names))

    @property
    def name(self) -> str:
        """The name of the resource itself (the last name segment)."""
        return self.names[-1]

    @property
    def key(self) -> str:
        """The lower-cased id: ARM ids are case-insensitive, so compare and key on this."""
        return str(self).lower()

    def is_type(self, resource_type: str) -> bool:
        """True when this id has ``resource_type`` (compared case-insensitively)."""
        return self.resource_type.lower() == resource_type.lower()

    def __str__(self) -> str:
        tail = "/".join(f"{t}/{n}" for t, n in zip(self.type_names, self.names, strict=True))
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/{self.namespace}/{tail}"
        )


def resource_id(
    subscription_id: str, resource_group: str, resource_type: str, *names: str
) -> ResourceId:
    """Build an id: ``resource_id(sub, rg, "Microsoft.Compute/snapshots", "s1")``."""
    namespace, _, types = resource_type.partition("/")
    return ResourceId(subscription_id, resource_group, namespace, tuple(types.split("/")), names)


def parse_resource_id(text: str) -> ResourceId:
    """Parse an ARM id below a resource group; raise :class:`InvalidResourceId` when malformed.

    The keywords ``subscriptions``, ``resourceGroups`` and ``providers`` are matched
    case-insensitively; the subscription must be a GUID; a trailing slash is tolerated.
    """
    if not isinstance(text, str) or not text.startswith("/"):
        raise InvalidResourceId("expected a resource id starting with '/subscriptions/'")
    segments = text[1:].rstrip("/").split("/")
    if len(segments) < 8:
        raise InvalidResourceId(
            "expected '/subscriptions/<id>/resourceGroups/<name>"
            "/providers/<Namespace>/<type>/<name>'"
        )
    if any(not _SEGMENT_PATTERN.fullmatch(segment) for segment in segments):
        raise InvalidResourceId("resource id has an empty segment or a character not allowed")
    keywords = (segments[0], segments[2], segments[4])
    if tuple(k.lower() for k in keywords) != ("subscriptions", "resourcegroups", "providers"):
        raise InvalidResourceId(
            "expected '/subscriptions/<id>/resourceGroups/<name>/providers/...' in that order"
        )
    subscription_id, resource_group, namespace = segments[1], segments[3], segments[5]
    if not GUID_PATTERN.fullmatch(subscription_id):
        raise InvalidResourceId(f"subscription id {subscription_id!r} is not a GUID")
    if not RESOURCE_GROUP_PATTERN.fullmatch(resource_group):
        raise InvalidResourceId(f"resource group name {resource_group!r} is not valid")
    if not _NAMESPACE_PATTERN.fullmatch(namespace):
        raise InvalidResourceId(f"provider namespace {namespace!r} is not valid")
    rest = segments[6:]
    if len(rest) % 2:
        raise InvalidResourceId("resource id has a resource type without a name")
    return ResourceId(
        subscription_id=subscription_id,
        resource_group=resource_group,
        namespace=namespace,
        type_names=tuple(rest[0::2]),
        names=tuple(rest[1::2]),
    )
