"""Fixtures shared by every test folder: ports, the devstack TLS certificate, Azurite."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from devstack.azurite import blob_endpoint, connection_string, start_azurite
from devstack.procs import free_port
from devstack.tls import ensure_certificate

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class TlsFiles:
    cert: Path
    key: Path


@dataclass(frozen=True)
class AzuriteInstance:
    port: int
    blob_endpoint: str
    connection_string: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1 (the one `make setup` made, or a fresh one)."""
    made = REPO_ROOT / ".devstack" / "tls"
    directory = made if (made / "cert.pem").exists() else tmp_path_factory.mktemp("tls")
    cert, key = ensure_certificate(directory)
    return TlsFiles(cert=cert, key=key)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteInstance]:
    """One Azurite blob service for the whole session, on a free port, stopped at the end."""
    work = tmp_path_factory.mktemp("azurite")
    port = free_port()
    process = start_azurite(port, work / "data", work / "azurite.log", timeout=30)
    try:
        yield AzuriteInstance(
            port=port, blob_endpoint=blob_endpoint(port), connection_string=connection_string(port)
        )
    finally:
        process.stop()
