"""Simulator configuration (from the command line; see ``__main__``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: api-versions accepted for Compute Gallery resources (the real service rejects others).
#: The stable GalleryRP versions the service still serves from 2021-10-01 on (ARM lists them in
#: its NoRegisteredProviderFound error, flatcar/mantle#520; azure-cli 2.85 still sends 2021-10-01
#: for definitions in 2026) up to the one azure-mgmt-compute 39 sends (2026-03-03).
GALLERY_API_VERSIONS: tuple[str, ...] = (
    "2021-10-01",
    "2022-01-03",
    "2022-03-03",
    "2022-08-03",
    "2023-07-03",
    "2024-03-03",
    "2025-03-03",
    "2026-03-03",
)
#: api-versions accepted for disks and snapshots (Compute "DiskRP"): the stable DiskRP versions
#: since 2022-03-02 (azure-rest-api-specs ``DiskRP/stable/*``; the 2023 recordings use 2023-04-02
#: and 2023-10-02) up to the one azure-mgmt-compute 39 sends (2026-03-02).
DISK_API_VERSIONS: tuple[str, ...] = (
    "2022-03-02",
    "2022-07-02",
    "2023-01-02",
    "2023-04-02",
    "2023-10-02",
    "2024-03-02",
    "2025-01-02",
    "2026-03-02",
)
#: api-versions accepted for VMs, scale sets and managed images (Compute "ComputeRP").
COMPUTE_API_VERSIONS: tuple[str, ...] = ("2024-07-01", "2024-11-01", "2025-04-01", "2026-04-01")
#: The ARM audience tokens must be issued for.
ARM_AUDIENCES: tuple[str, ...] = (
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
)


@dataclass(frozen=True)
class SimConfig:
    """Everything the simulator needs to run; immutable once the server starts."""

    port: int
    data_dir: Path
    cert_file: Path
    key_file: Path
    #: Simulated seconds per real second: 600 means ten minutes take one second.
    speed: float = 1.0
    #: Items per page in list responses (``nextLink`` carries the rest).
    page_size: int = 100
    #: Retry-After (seconds) on 429 responses.
    throttle_retry_after: int = 1
    #: Retry-After (seconds) on LRO responses; 0 means absent, as the 2025+ service does.
    lro_retry_after: int = 0
    #: The secret azure-identity must send in X-IDENTITY-HEADER (env IDENTITY_HEADER).
    identity_header: str = "armsim-identity-header"
    #: Connection string for the blob service VHD sources live in (Azurite).
    blob_connection_string: str | None = None
    #: Largest source disk (GiB) a version accepts; larger fails with
    #: GallerySourceResourceExceedsMaxSize.
    max_source_size_gib: int = 2048
    #: Host name clients use in URLs the simulator returns (nextLink, Azure-AsyncOperation).
    public_host: str = "127.0.0.1"

    @property
    def base_url(self) -> str:
        return f"https://{self.public_host}:{self.port}"

    @property
    def blob_endpoint(self) -> str | None:
        """The blob endpoint of :attr:`blob_connection_string` (storage accounts publish it)."""
        return blob_endpoint_of(self.blob_connection_string)


def blob_endpoint_of(connection_string: str | None) -> str | None:
    """The ``BlobEndpoint`` of a storage connection string, if it names one."""
    if not connection_string:
        return None
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "blobendpoint" and value:
            return value.strip()
    return None
