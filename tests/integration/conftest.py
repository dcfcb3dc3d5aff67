"""Integration tests reuse the devstack fixtures (a simulator per module, Azurite per session)."""

from tests.devstack.armsim.conftest import armsim, fresh, identity_env  # noqa: F401
