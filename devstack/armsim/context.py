"""What the resource handlers see of the simulator: a :class:`SimContext`.

The simulator (:mod:`devstack.armsim.simulator`) builds one and hands it to every handler, so a
handler reaches the state, the clock, the faults and the configuration, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from devstack.armsim import operations
from devstack.armsim.clock import SimClock
from devstack.armsim.config import SimConfig
from devstack.armsim.events import EventPublisher
from devstack.armsim.faults import Faults
from devstack.armsim.paging import Pager
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.sources import SourceResolver
from devstack.armsim.stats import Stats
from devstack.armsim.store import Store

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class SimContext:
    """The simulator's state and services, as the handlers use them.

    Every member lives as long as the simulator (``POST /admin/reset`` resets them in place);
    only the faults are replaced (``POST /admin/faults``), so they are read through a getter.
    """

    config: SimConfig
    store: Store
    clock: SimClock
    stats: Stats
    events: EventPublisher
    resolver: SourceResolver
    pager: Pager
    current_faults: Callable[[], Faults]

    @property
    def faults(self) -> Faults:
        """The faults in force now."""
        return self.current_faults()

    def page(self, request: Request, items: list[JsonObject]) -> Reply:
        """One page of a list response (see :class:`~devstack.armsim.paging.Pager`)."""
        return self.pager.page(request, items)

    def async_headers(self, operation: JsonObject, *, delete: bool = False) -> dict[str, str]:
        """The monitor headers of a long-running operation's 201/200/202 reply (per family:
        :func:`devstack.armsim.operations.monitor_headers`)."""
        return operations.monitor_headers(
            self.config.base_url,
            operation,
            delete=delete,
            retry_after=self.config.lro_retry_after,
        )
