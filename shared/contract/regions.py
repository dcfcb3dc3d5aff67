"""Azure region names for the ``region-name`` rule: the built-in list, and how a live one comes in.

The contract stays pure: it never asks Azure. :class:`~shared.contract.rules.ValidationContext`
carries the region names a request may target (``known_regions``). By default that is
:data:`PUBLIC_REGIONS`, the public cloud's physical regions as ``az account list-locations``
lists them, so ``galleryctl check-request`` validates offline. Where the pipeline can ask ARM, a
:class:`RegionCatalog` (``shared.adapters.arm_regions``) supplies the live list of the target's
subscription (sovereign clouds and new regions included) and :func:`with_known_regions` puts it
into the context. :func:`closest_region` finds the region a typo meant (``westeurop`` ->
``westeurope``).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Final, Protocol, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    #: A :class:`~shared.contract.rules.ValidationContext` (not imported: rules imports this).
    _Context = TypeVar("_Context", bound=DataclassInstance)
else:
    _Context = TypeVar("_Context")

#: The public cloud's physical regions (regionType Physical of ``GET /subscriptions/{id}/
#: locations``, 2026). The offline fallback: the live list of the subscription wins.
_PUBLIC_REGION_NAMES: Final = """
    australiacentral australiacentral2 australiaeast australiasoutheast austriaeast
    belgiumcentral brazilsouth brazilsoutheast canadacentral canadaeast centralindia centralus
    centraluseuap chilecentral denmarkeast eastasia eastus eastus2 eastus2euap francecentral
    francesouth germanynorth germanywestcentral indonesiacentral israelcentral italynorth
    japaneast japanwest jioindiacentral jioindiawest koreacentral koreasouth malaysiawest
    mexicocentral newzealandnorth northcentralus northeurope norwayeast norwaywest polandcentral
    qatarcentral southafricanorth southafricawest southcentralus southeastasia southindia
    spaincentral swedencentral swedensouth switzerlandnorth switzerlandwest uaecentral uaenorth
    uksouth ukwest westcentralus westeurope westindia westus westus2 westus3
"""
PUBLIC_REGIONS: Final[frozenset[str]] = frozenset(_PUBLIC_REGION_NAMES.split())
#: How alike (difflib ratio) a name must be to a region to be taken for a typo of it.
SUGGESTION_CUTOFF: Final = 0.75


class RegionCatalog(Protocol):
    """Where the region names come from (the built-in list, or ARM's locations list)."""

    def known_regions(self, subscription_id: str | None) -> frozenset[str]:
        """The physical region names of ``subscription_id``'s cloud (programmatic form)."""
        ...


class BuiltinRegions:
    """The catalog without Azure: :data:`PUBLIC_REGIONS` for every subscription."""

    def known_regions(self, subscription_id: str | None) -> frozenset[str]:
        del subscription_id
        return PUBLIC_REGIONS


BUILTIN_REGIONS: Final = BuiltinRegions()


def target_subscription(document: object) -> str | None:
    """``target.subscriptionId`` of a decoded request, when it is a string (nothing checked)."""
    target = document.get("target") if isinstance(document, Mapping) else None
    value = target.get("subscriptionId") if isinstance(target, Mapping) else None
    return value if isinstance(value, str) and value else None


def with_known_regions(
    context: _Context, document: object, catalog: RegionCatalog | None
) -> _Context:
    """``context`` with the regions of the request's subscription from ``catalog`` (the built-in
    list when there is no catalog)."""
    source = catalog or BUILTIN_REGIONS
    return replace(context, known_regions=source.known_regions(target_subscription(document)))


def closest_region(name: str, known: Collection[str]) -> str | None:
    """The known region ``name`` most likely misspells, if one is close enough."""
    found = difflib.get_close_matches(name, sorted(known), n=1, cutoff=SUGGESTION_CUTOFF)
    return found[0] if found else None
