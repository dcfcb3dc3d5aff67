"""Snapshots for intake over azure-mgmt-compute: :class:`shared.intake.ports.SnapshotReader`.

One GET per look (``snapshots.get``; the ``LowCostGet`` throttling bucket). A snapshot that does
not exist (deleted meanwhile, or its resource group) is ``None``; every other failure is
translated by :func:`shared.adapters.azure_errors.azure_call`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from azure.mgmt.compute import ComputeManagementClient

from shared.adapters.azure_errors import azure_call
from shared.adapters.compute_gallery import ComputeClients
from shared.core.errors import NotFoundError
from shared.core.resource_ids import ResourceId, parse_resource_id
from shared.core.timestamps import format_timestamp
from shared.intake.ports import SnapshotState


class ComputeSnapshots:
    """Reads snapshots with one ``ComputeManagementClient`` per subscription."""

    def __init__(self, client_for_subscription: Callable[[str], ComputeManagementClient]) -> None:
        self._client = ComputeClients(client_for_subscription)

    def get(self, snapshot_id: ResourceId) -> SnapshotState | None:
        client = self._client(snapshot_id.subscription_id)
        try:
            with azure_call(f"get snapshot {snapshot_id}"):
                snapshot = client.snapshots.get(snapshot_id.resource_group, snapshot_id.name)
        except NotFoundError:
            return None
        properties = snapshot.properties
        created = properties.time_created if properties is not None else None
        return SnapshotState(
            id=parse_resource_id(snapshot.id) if snapshot.id else snapshot_id,
            location=str(snapshot.location or ""),
            tags=dict(snapshot.tags or {}),
            access_state=_text(properties.snapshot_access_state) if properties else None,
            completion_percent=(
                float(properties.completion_percent)
                if properties is not None and properties.completion_percent is not None
                else None
            ),
            unique_id=properties.unique_id if properties else None,
            time_created=format_timestamp(created) if isinstance(created, datetime) else None,
            disk_size_bytes=properties.disk_size_bytes if properties else None,
            provisioning_state=properties.provisioning_state if properties else None,
        )


def _text(value: object) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))
