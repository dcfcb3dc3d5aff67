"""A function app with ONLY the intake blueprints, so no build worker consumes the queue."""

import azure.functions as func

from functions import snapshot_created, upload_readiness, vhd_uploaded

app = func.FunctionApp()

app.register_functions(vhd_uploaded.bp)
app.register_functions(snapshot_created.bp)
app.register_functions(upload_readiness.bp)
