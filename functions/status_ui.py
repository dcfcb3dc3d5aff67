"""The status page: ``GET /api/ui``, read-only HTML for people who would rather look.

Recent builds with per-region replication bars, the sources with a build in flight or requests
parked, the failed builds with their reasons, and the newest lifecycle run's plan summary
(docs/pipeline.md, "Status page"). Behind the same function key as the JSON API; SAS query
strings never appear. Each section is read on its own: a store that cannot be read is named on
the page, the rest is shown.
"""

from __future__ import annotations

import azure.functions as func

from shared import composition
from shared.builds.status import status_page_documents
from shared.builds.ui import CONTENT_SECURITY_POLICY, render_status_page

bp = func.Blueprint()

#: No caching (the page is a live view), no sniffing, and only the page's own style and script.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}


@bp.route(route="ui", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status_page(req: func.HttpRequest) -> func.HttpResponse:
    page = status_page_documents(
        composition.build_records,
        composition.ledger,
        lambda: composition.lifecycle_audit().latest_run(),
    )
    generated_at = composition.utc_now().isoformat(timespec="seconds")
    return func.HttpResponse(
        render_status_page(page, generated_at=generated_at),
        status_code=200,
        mimetype="text/html",
        charset="utf-8",
        headers=HEADERS,
    )
