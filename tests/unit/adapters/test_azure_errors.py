"""azure-core exceptions become permanent or transient pipeline errors, with ARM codes kept."""

from __future__ import annotations

import json
from typing import Any

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from shared.adapters.azure_errors import azure_call, translate_azure_error
from shared.core.errors import ConflictError, NotFoundError, PermanentError, TransientError


class _Response:
    """Just enough of an azure-core HTTP response for HttpResponseError to parse its body."""

    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        self.status_code = status
        self.reason = "reason"
        self.headers = headers or {}
        self._body = json.dumps(body)

    def text(self) -> str:
        return self._body


def _error(
    cls: type[HttpResponseError], status: int, code: str, message: str, **headers: str
) -> HttpResponseError:
    body = {"error": {"code": code, "message": message}}
    return cls(response=_Response(status, body, headers))  # type: ignore[arg-type]


def test_not_found_is_permanent_and_keeps_the_arm_code() -> None:
    exc = _error(ResourceNotFoundError, 404, "ParentResourceNotFound", "Parent gal/def not found")
    translated = translate_azure_error(exc, action="create version")
    assert isinstance(translated, NotFoundError)
    assert translated.reason == "ParentResourceNotFound"
    assert "ParentResourceNotFound: Parent gal/def not found" in translated.message


def test_property_change_conflict_is_permanent() -> None:
    exc = _error(ResourceExistsError, 409, "PropertyChangeNotAllowed", "Changing property x")
    translated = translate_azure_error(exc, action="create version")
    assert isinstance(translated, ConflictError)
    assert translated.reason == "PropertyChangeNotAllowed"


def test_throttling_is_transient_with_retry_after() -> None:
    exc = _error(HttpResponseError, 429, "OperationNotAllowed", "too many", **{"Retry-After": "7"})
    translated = translate_azure_error(exc, action="get version")
    assert isinstance(translated, TransientError)
    assert translated.retry_after_seconds == 7.0


def test_busy_source_is_transient_whatever_the_status() -> None:
    exc = _error(
        HttpResponseError, 400, "BadRequest", "Too many requests on source '/subscriptions/x'."
    )
    translated = translate_azure_error(exc, action="create version")
    assert isinstance(translated, TransientError)
    assert translated.reason == "SourceBusy"


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient(status: int) -> None:
    exc = _error(HttpResponseError, status, "InternalServerError", "boom")
    assert isinstance(translate_azure_error(exc, action="x"), TransientError)


def test_bad_request_is_permanent() -> None:
    exc = _error(HttpResponseError, 400, "InvalidParameter", "The image version name is invalid.")
    translated = translate_azure_error(exc, action="x")
    assert type(translated) is PermanentError
    assert translated.reason == "InvalidParameter"


def test_connection_and_auth_failures_are_transient() -> None:
    assert isinstance(
        translate_azure_error(ServiceRequestError("refused"), action="x"), TransientError
    )
    assert isinstance(
        translate_azure_error(ClientAuthenticationError("expired"), action="x"), TransientError
    )


def test_secrets_are_redacted_from_messages() -> None:
    exc = _error(HttpResponseError, 400, "InvalidParameter", "bad blob ...?sv=1&sig=SECRETSIG")
    translated = translate_azure_error(exc, action="x")
    assert "SECRETSIG" not in translated.message


def test_azure_call_context_manager_translates() -> None:
    with pytest.raises(NotFoundError), azure_call("get version"):
        raise _error(ResourceNotFoundError, 404, "ResourceNotFound", "missing")


def test_scope_locked_is_permanent_and_names_the_lock_scope_and_the_fix() -> None:
    scope = "/subscriptions/s/resourceGroups/rg-images"
    message = (
        "The scope '/subscriptions/s/resourceGroups/rg-images/providers/Microsoft.Compute/"
        "galleries/g/images/d/versions/1.0.0' cannot perform write operation because following "
        f"scope(s) are locked: '{scope}'. Please remove the lock and try again."
    )
    exc = _error(ResourceExistsError, 409, "ScopeLocked", message)
    translated = translate_azure_error(exc, action="create image version g/d/1.0.0")
    assert isinstance(translated, PermanentError)
    assert not isinstance(translated, ConflictError)
    assert translated.reason == "ScopeLocked"
    assert f"a management lock on {scope} blocks it" in translated.message
    assert f"fix: remove the lock on {scope}" in translated.message
