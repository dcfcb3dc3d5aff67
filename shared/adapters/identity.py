"""The app's credential: ``DefaultAzureCredential`` (managed identity in Azure, the simulator's
managed-identity endpoint locally). ``azure.identity`` takes about 0.3 s to import, so it is
imported only when the first credential is needed."""

from __future__ import annotations

from azure.core.credentials import TokenCredential

__all__ = ["TokenCredential", "default_credential"]


def default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential  # noqa: PLC0415  (lazy: cold start)

    return DefaultAzureCredential()
