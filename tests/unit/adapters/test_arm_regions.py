"""The ARM region catalog: physical regions only, cached per subscription with a TTL, and the
built-in list (or the last live one) while ARM cannot be asked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError

from shared.adapters.arm_regions import ArmRegionCatalog, physical_region_names
from shared.contract.regions import PUBLIC_REGIONS

SUB = "11111111-2222-3333-4444-555555555555"


def location(name: str, region_type: str | None = "Physical") -> Any:
    metadata = None if region_type is None else SimpleNamespace(region_type=region_type)
    return SimpleNamespace(name=name, metadata=metadata)


class Lister:
    """Answers with ``answers`` in turn (an exception is raised); counts the calls."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls: list[str] = []

    def __call__(self, subscription_id: str) -> list[Any]:
        self.calls.append(subscription_id)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return list(answer)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SOVEREIGN = [location("usgovvirginia"), location("usgovarizona"), location("usgov", "Logical")]


def test_only_physical_regions_are_names() -> None:
    assert physical_region_names(SOVEREIGN) == frozenset({"usgovvirginia", "usgovarizona"})
    assert physical_region_names([location("WestEurope", None)]) == frozenset({"westeurope"})


def test_the_list_is_cached_per_subscription_until_it_expires() -> None:
    clock, lister = Clock(), Lister(SOVEREIGN)
    catalog = ArmRegionCatalog(lister, cache_seconds=100, clock=clock)
    assert catalog.known_regions(SUB) == frozenset({"usgovvirginia", "usgovarizona"})
    assert catalog.known_regions(SUB.upper()) == frozenset({"usgovvirginia", "usgovarizona"})
    assert lister.calls == [SUB]
    clock.now += 101
    catalog.known_regions(SUB)
    assert lister.calls == [SUB, SUB]


def test_arm_unavailable_falls_back_to_the_built_in_list_for_a_while() -> None:
    clock = Clock()
    lister = Lister(ServiceRequestError("connection refused"), SOVEREIGN)
    catalog = ArmRegionCatalog(lister, retry_seconds=60, clock=clock)
    assert catalog.known_regions(SUB) == PUBLIC_REGIONS
    assert catalog.known_regions(SUB) == PUBLIC_REGIONS  # not asked again at once
    assert len(lister.calls) == 1
    clock.now += 61
    assert catalog.known_regions(SUB) == frozenset({"usgovvirginia", "usgovarizona"})


def test_a_failed_refresh_keeps_the_last_live_list() -> None:
    clock = Clock()
    lister = Lister(SOVEREIGN, ClientAuthenticationError("token expired"), [])
    catalog = ArmRegionCatalog(lister, cache_seconds=10, retry_seconds=5, clock=clock)
    live = catalog.known_regions(SUB)
    clock.now += 11
    assert catalog.known_regions(SUB) == live  # the error: last live list
    clock.now += 6
    assert catalog.known_regions(SUB) == live  # an empty answer counts as no answer


def test_no_subscription_means_the_built_in_list() -> None:
    lister = Lister(SOVEREIGN)
    assert ArmRegionCatalog(lister).known_regions(None) == PUBLIC_REGIONS
    assert lister.calls == []
