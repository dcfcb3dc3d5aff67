"""Composition root: registers one blueprint per module in ``functions/``. No logic here."""

import azure.functions as func

app = func.FunctionApp()

# Blueprints are registered here as the trigger modules are built (issue 5 and 6).
