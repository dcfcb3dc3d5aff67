"""A mini Azure Functions host for the local stack (the real host cannot be installed here).

It loads ``function_app.py`` like the Python worker (``app.get_functions()`` once), resolves
``%SETTING%`` references from ``local.settings.json`` and the environment, builds trigger
arguments with the real ``azure.functions`` converters and runs each trigger with the real
host's semantics: Event Grid (local Event Grid with a BlobCreated source over Azurite and an
ARM webhook endpoint), Service Bus (azure-servicebus peek-lock receiver), timer (NCRONTAB) and
HTTP. See ``docs/devstack-host.md``.
"""

from devstack.host.host import FunctionsHost, HostOptions

__all__ = ["FunctionsHost", "HostOptions"]
