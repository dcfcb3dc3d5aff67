"""Adapters: the only code that imports Azure SDKs; each one translates SDK errors into
:mod:`shared.core.errors` so the domain and the handlers never see azure-core exceptions."""
