"""Where a lifecycle run looks: target-gallery patterns, the inventory port, and the consumers.

Which galleries: the ``GALLERY_ALLOWED_TARGET_GALLERIES`` patterns (``sub/rg/gallery``, ``*`` for
one whole part). ``sub/rg/gallery`` is read directly; ``sub/rg/*`` lists the resource group's
galleries and ``sub/*/...`` the subscription's. A pattern whose subscription is ``*`` cannot be
enumerated without reading every subscription the identity can see: it is skipped, and the skip
is reported in the plan output and the audit document (give the subscription explicitly).

The in-use guard reads every VM and scale-set model in the configured subscriptions (default: the
target galleries' subscriptions). A reference to an exact version holds that version; a reference
to the definition or to ``.../versions/latest`` holds every version "latest" may resolve to now,
in any region (:func:`shared.lifecycle.latest.latest_resolutions`), and the VM's
``exactVersion`` when ARM reports it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from shared.lifecycle.facts import DefinitionFacts, GalleryFacts
from shared.lifecycle.latest import latest_resolutions


@dataclass(frozen=True)
class GalleryRef:
    subscription_id: str
    resource_group: str
    name: str

    @property
    def id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/galleries/{self.name}"
        )

    def __str__(self) -> str:
        return f"{self.subscription_id}/{self.resource_group}/{self.name}"


@dataclass(frozen=True)
class GallerySearch:
    """Galleries to enumerate: a whole subscription, or one resource group, optionally by name."""

    subscription_id: str
    resource_group: str | None
    name: str | None
    pattern: str


@dataclass(frozen=True)
class GalleryScope:
    """What the target-gallery patterns mean for a lifecycle run."""

    galleries: tuple[GalleryRef, ...] = ()
    searches: tuple[GallerySearch, ...] = ()
    #: pattern -> why it cannot be enumerated
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        found = [g.subscription_id for g in self.galleries]
        found += [s.subscription_id for s in self.searches]
        return tuple(dict.fromkeys(s.lower() for s in found))


def gallery_scope(patterns: Iterable[str]) -> GalleryScope:
    """Classify ``sub/rg/gallery`` patterns (``*`` = any one part) into reads and listings."""
    galleries: list[GalleryRef] = []
    searches: list[GallerySearch] = []
    skipped: list[tuple[str, str]] = []
    for pattern in patterns:
        parts = [p.strip() for p in pattern.strip().strip("/").split("/")]
        if len(parts) != 3 or not all(parts):
            skipped.append((pattern, "expected <subscriptionId>/<resourceGroup>/<gallery>"))
            continue
        sub, group, name = parts
        if "*" in sub:
            skipped.append(
                (pattern, "a '*' subscription cannot be enumerated; name the subscription")
            )
        elif "*" in group:
            searches.append(GallerySearch(sub, None, None if name == "*" else name, pattern))
        elif "*" in name:
            searches.append(GallerySearch(sub, group, None, pattern))
        else:
            galleries.append(GalleryRef(sub, group, name))
    return GalleryScope(tuple(galleries), tuple(searches), tuple(skipped))


@dataclass(frozen=True)
class GalleryHeader:
    id: str
    name: str
    tags: Mapping[str, str]


@dataclass(frozen=True)
class ImageReference:
    """A VM or scale-set model that names a gallery image (by version, by definition, or latest)."""

    consumer_id: str
    image_id: str
    exact_version: str | None = None


class GalleryInventory(Protocol):
    """The reading side of a lifecycle run (an adapter over ARM list calls)."""

    def find_galleries(self, search: GallerySearch) -> Iterator[GalleryRef]:
        """Galleries in the subscription (or resource group) that ``search`` names."""
        ...

    def gallery(self, ref: GalleryRef) -> GalleryHeader | None:
        """The gallery's tags, or ``None`` when it does not exist."""
        ...

    def definitions(self, ref: GalleryRef) -> Iterator[DefinitionFacts]:
        """Every definition with its versions, page by page (one version list per definition)."""
        ...

    def image_references(self, subscription_id: str) -> Iterator[ImageReference]:
        """Gallery image references of every VM and scale-set model in the subscription."""
        ...

    def arm_calls(self) -> Mapping[str, int]:
        """ARM requests sent so far, by kind (``"LIST versions"``...)."""
        ...


def in_use_versions(
    references: Iterable[ImageReference], galleries: Sequence[GalleryFacts]
) -> dict[str, list[str]]:
    """Version id (lower-cased) -> the VMs and scale sets that hold it."""
    definitions = {d.id.lower(): d for g in galleries for d in g.definitions}
    held: dict[str, list[str]] = defaultdict(list)
    for reference in references:
        image = reference.image_id.strip().rstrip("/").lower()
        head, marker, version = image.rpartition("/versions/")
        definition_id = head if marker else image
        targets: list[str] = []
        if marker and version != "latest":
            targets.append(image)
        else:
            facts = definitions.get(definition_id)
            if facts is not None:
                targets += sorted(i.lower() for i in latest_resolutions(facts))
        if reference.exact_version:
            targets.append(f"{definition_id}/versions/{reference.exact_version.lower()}")
        for target in dict.fromkeys(targets):
            held[target].append(reference.consumer_id)
    return dict(held)
