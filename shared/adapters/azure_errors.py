"""Translate azure-core exceptions into the pipeline's two outcomes: permanent or transient.

Adapters wrap every SDK call with :func:`translate_azure_error` (or the ``azure_call`` context
manager), so nothing above the adapters ever sees an azure-core exception.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from shared.core.errors import (
    ConflictError,
    NotFoundError,
    PermanentError,
    PipelineError,
    TransientError,
)
from shared.core.redaction import redact_secrets

#: ARM error codes that mean "try again later" whatever the HTTP status says.
RETRYABLE_ERROR_CODES = frozenset(
    {
        "TooManyRequests",
        "OperationNotAllowed",  # CRP's throttling wrapper ("too many requests ...")
        "RetryableErrorDueToAnotherOperation",
        "ConflictingOperation",  # another operation on the same resource is in progress
        "AnotherOperationInProgress",
        "InternalServerError",
        "InternalExecutionError",
        "ServiceUnavailable",
        "GatewayTimeout",
    }
)
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
#: Message fragment of the "one build per source" refusal (a busy source, not a bad request).
SOURCE_BUSY_FRAGMENT = "too many requests on source"
#: ARM's refusal of a write or delete under a management lock (409).
SCOPE_LOCKED = "ScopeLocked"
_LOCKED_SCOPES = re.compile(r"following scope\(s\) are locked: '([^']*)'", re.IGNORECASE)


def scope_locked_error(action: str, message: str) -> PermanentError:
    """A permanent error naming the lock's scope and the fix (retrying cannot help)."""
    found = _LOCKED_SCOPES.search(message)
    scopes = found.group(1) if found else "a parent scope"
    return PermanentError(
        f"{action}: {SCOPE_LOCKED}: a management lock on {scopes} blocks it ({message}) "
        f"(fix: remove the lock on {scopes} (az lock delete --ids <lock id>), or publish into "
        "a gallery that is not locked; a ReadOnly lock blocks every write, CanNotDelete only "
        "deletes)",
        reason=SCOPE_LOCKED,
    )


def error_code(exc: HttpResponseError) -> str | None:
    """The ARM ``error.code`` of a response error, when the body had one."""
    error = exc.error
    code = getattr(error, "code", None) if error is not None else None
    return str(code) if code else None


def retry_after_seconds(exc: HttpResponseError) -> float | None:
    """The ``Retry-After`` header of the failed response, in seconds, when present."""
    response = exc.response
    if response is None:
        return None
    headers = getattr(response, "headers", None)
    raw = headers.get("Retry-After") if headers else None
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def translate_azure_error(exc: AzureError, *, action: str) -> PipelineError:
    """Map one azure-core exception to a permanent or transient pipeline error.

    ``action`` says what was being done ("create image version gal/def/1.0.0"); it is part of
    the message, so choose it free of secrets (no SAS URLs).
    """
    detail = redact_secrets(str(exc.message if hasattr(exc, "message") else exc)).strip()
    first_line = detail.splitlines()[0] if detail else exc.__class__.__name__
    if isinstance(exc, ClientAuthenticationError):
        # 401: tokens expire and identities propagate slowly; a retry is the right first answer.
        return TransientError(f"{action}: authentication failed: {first_line}", reason="AuthFailed")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return TransientError(f"{action}: service unreachable: {first_line}", reason="Unreachable")
    if isinstance(exc, HttpResponseError):
        code = error_code(exc) or ""
        status = exc.status_code or 0
        message = (exc.error.message if exc.error is not None else None) or first_line
        text = f"{action}: {code + ': ' if code else ''}{redact_secrets(str(message))}"
        if code == SCOPE_LOCKED:
            return scope_locked_error(action, redact_secrets(str(message)))
        if SOURCE_BUSY_FRAGMENT in text.lower():
            return TransientError(
                text, reason="SourceBusy", retry_after_seconds=retry_after_seconds(exc)
            )
        if status in _RETRYABLE_STATUS or code in RETRYABLE_ERROR_CODES:
            return TransientError(
                text, reason=code or f"HTTP{status}", retry_after_seconds=retry_after_seconds(exc)
            )
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            return NotFoundError(text, reason=code or "NotFound")
        if isinstance(exc, ResourceExistsError) or status == 409:
            return ConflictError(text, reason=code or "Conflict")
        if status == 403:
            return PermanentError(text, reason=code or "AuthorizationFailed")
        return PermanentError(text, reason=code or f"HTTP{status}")
    return TransientError(f"{action}: {first_line}", reason=exc.__class__.__name__)


@contextlib.contextmanager
def azure_call(action: str) -> Iterator[None]:
    """``with azure_call("get image version ..."):`` re-raises azure-core errors translated."""
    try:
        yield
    except AzureError as exc:
        raise translate_azure_error(exc, action=action) from exc
