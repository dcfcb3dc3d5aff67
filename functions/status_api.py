"""HTTP API: ``POST /api/builds`` (submit), ``GET /api/builds``, ``GET /api/builds/{id}`` and
``GET /api/sources/{key}``.

``POST /api/builds`` validates the request at once: 400 with every problem (field, rule, fix),
or 202 with the build id and where to follow it; the build itself runs from the queue. A request
whose build already ended answers 200 with that build ("already built as <version>").

``{key}`` is a source's ledger key (64 hex digits, as in build records) or the source itself,
URL-encoded (a resource id or a blob URL). Responses are JSON; SAS query strings never appear.
"""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from shared import composition
from shared.builds.status import build_list, build_view, record_view, source_view
from shared.builds.submission import problems_document, submit_request
from shared.core import tracing
from shared.core.errors import PipelineError, ValidationFailed

bp = func.Blueprint()


def _json(document: Any, status_code: int = 200) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(document, indent=2), status_code=status_code, mimetype="application/json"
    )


def _not_found(message: str) -> func.HttpResponse:
    return _json({"error": {"code": "NotFound", "message": message}}, 404)


def _unavailable(error: PipelineError) -> func.HttpResponse:
    return _json({"error": {"code": error.reason, "message": error.message}}, 503)


@bp.route(route="builds", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def submit_build(req: func.HttpRequest) -> func.HttpResponse:
    with tracing.operation("submit_build"):  # the queued request carries this trace
        return _submit(req)


def _submit(req: func.HttpRequest) -> func.HttpResponse:
    try:  # the raw body: bytes that are no JSON document are a 400 with the reason (InvalidJson)
        submitted = submit_request(
            req.get_body(),
            settings=composition.settings(),
            sender=composition.messaging(),
            now=composition.utc_now(),
            records=composition.build_records,
            regions=composition.region_catalog(),
        )
    except ValidationFailed as error:
        return _json(
            {
                "error": {"code": error.reason, "message": error.message},
                "problems": problems_document(error),
            },
            400,
        )
    except PipelineError as error:
        return _unavailable(error)
    if submitted.existing is not None:  # already built (or failed): nothing new was queued
        return _json({"message": submitted.summary, "build": record_view(submitted.existing)})
    return func.HttpResponse(
        json.dumps(
            {
                "requestId": submitted.request_id,
                "buildId": submitted.build_id,
                "status": f"/api/builds/{submitted.build_id}",
            }
        ),
        status_code=202,
        mimetype="application/json",
        headers={"Location": f"/api/builds/{submitted.build_id}"},
    )


@bp.route(route="builds", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def list_builds(req: func.HttpRequest) -> func.HttpResponse:
    try:
        limit = int(req.params.get("limit", "50"))
    except ValueError:
        return _json({"error": {"code": "BadRequest", "message": "limit: a whole number"}}, 400)
    try:
        return _json(build_list(composition.build_records(), limit=limit))
    except PipelineError as error:
        return _unavailable(error)


@bp.route(route="builds/{build_id}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_build(req: func.HttpRequest) -> func.HttpResponse:
    build_id = req.route_params["build_id"]
    try:
        view = build_view(composition.build_records(), build_id)
    except PipelineError as error:
        return _unavailable(error)
    if view is None:
        return _not_found(f"no build {build_id!r} (not received yet, or rejected)")
    return _json(view)


@bp.route(route="sources/{*key}", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def get_source(req: func.HttpRequest) -> func.HttpResponse:
    key = req.route_params["key"]
    try:
        view = source_view(composition.ledger(), key)
    except PipelineError as error:
        return _unavailable(error)
    if view is None:
        return _not_found(f"no ledger entry for source {key!r}")
    return _json(view)
