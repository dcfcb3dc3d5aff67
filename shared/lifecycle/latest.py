""" "Latest", region by region: who serves it now, and who must stay so that it keeps resolving.

The rail ``last-latest`` never removes (deprecates or deletes) the last version that serves latest
in a region where the definition has versions: removing a version that *may* serve latest in a
region is refused when no other remaining version *surely* serves it there
(:mod:`shared.lifecycle.facts` explains the two readings of Azure's two flags). A version not
replicated to a region never serves it. The in-use guard holds every version "latest" may resolve
to in any region, under either reading.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from shared.lifecycle.facts import DefinitionFacts, VersionFacts, version_order


class LatestServers:
    """The versions of one definition that serve latest, per region, as a plan removes some."""

    def __init__(self, versions: Iterable[VersionFacts]) -> None:
        self._sure: Counter[str] = Counter()
        for version in versions:
            for key in self._keys(version):
                if version.surely_serves_latest(key):
                    self._sure[key] += 1

    @staticmethod
    def _keys(version: VersionFacts) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.key for r in version.target_regions))

    def stranded_by(self, version: VersionFacts) -> list[str]:
        """Names of the regions where latest would resolve to nothing without ``version``."""
        stranded = []
        for key in self._keys(version):
            others = self._sure[key] - (1 if version.surely_serves_latest(key) else 0)
            if version.may_serve_latest(key) and others <= 0:
                stranded.append(version.region_name(key))
        return stranded

    def remove(self, version: VersionFacts) -> None:
        """The plan deprecates or deletes ``version``: it no longer counts as a server."""
        for key in self._keys(version):
            if version.surely_serves_latest(key):
                self._sure[key] -= 1


def latest_resolutions(definition: DefinitionFacts) -> set[str]:
    """Ids of every version "latest" may resolve to now: per region, the highest version that may
    serve it and the highest that surely serves it."""
    regions = {r.key for v in definition.versions for r in v.target_regions}
    found: set[str] = set()
    for key in regions:
        for serves in (VersionFacts.may_serve_latest, VersionFacts.surely_serves_latest):
            candidates = [v for v in definition.versions if serves(v, key)]
            if candidates:
                found.add(max(candidates, key=lambda v: version_order(v.name)).id)
    return found
