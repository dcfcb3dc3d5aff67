"""Azurite (blob service) from the npm registry, started on loopback."""

from __future__ import annotations

from pathlib import Path

from devstack.procs import ManagedProcess, port_accepts, start_process

REPO_ROOT = Path(__file__).resolve().parent.parent
AZURITE_BLOB_BIN = REPO_ROOT / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT_NAME = "devstoreaccount1"
# Azurite's well-known development key (public, documented; not a secret).
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def blob_endpoint(port: int) -> str:
    """Path-style blob endpoint of the Azurite account, e.g. ``http://127.0.0.1:10000/devstoreaccount1``."""
    return f"http://127.0.0.1:{port}/{ACCOUNT_NAME}"


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint(port)};"
    )


def start_azurite(
    port: int, data_dir: Path, log_path: Path, timeout: float = 30.0
) -> ManagedProcess:
    """Start ``azurite-blob`` on ``127.0.0.1:port`` with its data in ``data_dir``."""
    if not AZURITE_BLOB_BIN.exists():
        raise FileNotFoundError(f"{AZURITE_BLOB_BIN} is missing: run `make setup` (npm ci)")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        "node",
        str(AZURITE_BLOB_BIN),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--silent",
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--loose",
    ]
    return start_process(
        "azurite", argv, ready=lambda: port_accepts(port), log_path=log_path, timeout=timeout
    )
