"""The build worker's VHD preflight over Blob Storage: HEAD plus one 512-byte ranged GET."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.adapters.blob_range_reader import open_blob_reader
from shared.contract.model import VhdSource
from shared.core.settings import Settings
from shared.vhd.preflight import VhdReport, inspect_vhd

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class BlobVhdInspector:
    """:class:`shared.builds.common.VhdInspector`: SAS URL, the storage connection, or the
    identity."""

    def __init__(self, settings: Settings, credential: Callable[[], TokenCredential]) -> None:
        self._settings = settings
        self._credential = credential

    def inspect(self, source: VhdSource) -> VhdReport:
        needs_identity = "sig=" not in source.uri and not self._settings.storage_connection_string
        reader = open_blob_reader(
            source.uri,
            self._settings,
            credential=self._credential() if needs_identity else None,
        )
        return inspect_vhd(reader)
