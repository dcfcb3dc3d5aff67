"""Composition root: registers one blueprint per module in ``functions/``. No logic here.

Telemetry is asked for here and configured on the first invocation, only when
``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (docs/observability.md).
"""

import azure.functions as func

from functions import (
    build_tracker,
    build_worker,
    lifecycle_timer,
    snapshot_created,
    status_api,
    status_ui,
    upload_readiness,
    vhd_uploaded,
)
from shared import composition

composition.telemetry_on_first_use()

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)

app.register_functions(build_worker.bp)
app.register_functions(build_tracker.bp)
app.register_functions(status_api.bp)
app.register_functions(status_ui.bp)
app.register_functions(lifecycle_timer.bp)
app.register_functions(vhd_uploaded.bp)
app.register_functions(snapshot_created.bp)
app.register_functions(upload_readiness.bp)
