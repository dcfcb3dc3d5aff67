"""A small client of the function app's status API (``/api/builds``), for ``status``, ``builds``
and ``submit --wait``. Standard library only: following a build loads no SDK.

The address is ``--api``, else ``GALLERY_API_URL`` (from the environment or the settings file),
else the local host ``http://127.0.0.1:7071``; both ``https://<app>.azurewebsites.net`` and
``https://<app>.azurewebsites.net/api`` are accepted. A function key is sent from ``--key`` or
``GALLERY_API_KEY``.

Answers are told apart as the API gives them: a 404 whose body is the API's own error document
(``{"error": {"code": "NotFound", ...}}``) is an unknown build (:class:`NotFoundAnswer`); any
other 404 means there is no status API at that address (:class:`ApiMissing`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
import urllib.error
import urllib.request
from typing import Any, Final

from shared.cli import exit_codes
from shared.core.redaction import strip_query

logger = logging.getLogger(__name__)

API_URL_VARIABLE: Final = "GALLERY_API_URL"
API_KEY_VARIABLE: Final = "GALLERY_API_KEY"
DEFAULT_API: Final = "http://127.0.0.1:7071"
REQUEST_TIMEOUT: Final = 10.0


class ApiError(Exception):
    """The status API could not answer as asked; ``code`` is the exit code it stands for."""

    code: int = exit_codes.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiUnavailable(ApiError):
    """Unreachable, timed out, throttled or a server error: try again later."""

    code = exit_codes.UNAVAILABLE


class ApiMissing(ApiUnavailable):
    """Nothing at that address answers as the status API (a wrong URL, an app not deployed)."""

    code = exit_codes.NOT_FOUND


class NotFoundAnswer(ApiError):
    """The API answered that what was asked for does not exist (an unknown build)."""

    code = exit_codes.NOT_FOUND


class ApiRefused(ApiError):
    """401/403: no function key, or a wrong one."""

    code = exit_codes.USAGE


def add_api_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api",
        metavar="URL",
        help=f"the function app (default: {API_URL_VARIABLE}, else {DEFAULT_API})",
    )
    parser.add_argument("--key", help=f"a function key (default: {API_KEY_VARIABLE})")


def api_base(url: str | None = None) -> str:
    """The app's address without a trailing ``/`` or ``/api`` (either form is accepted)."""
    chosen = (url or os.environ.get(API_URL_VARIABLE) or DEFAULT_API).strip().rstrip("/")
    if chosen.lower().endswith("/api"):
        chosen = chosen[: -len("/api")]
    return chosen


def api_key(key: str | None = None) -> str | None:
    return key or os.environ.get(API_KEY_VARIABLE) or None


def _error_document(body: bytes) -> dict[str, Any] | None:
    """The API's ``{"error": {"code", "message"}}``, or ``None`` for any other body."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error if isinstance(error, dict) and isinstance(error.get("code"), str) else None


def _http_error(url: str, error: urllib.error.HTTPError) -> ApiError:
    body = error.read() if error.fp is not None else b""
    answer = _error_document(body)
    message = str(answer.get("message") or answer["code"]) if answer else f"HTTP {error.code}"
    if error.code == 404:
        if answer is not None and answer["code"] == "NotFound":
            return NotFoundAnswer(message)
        return ApiMissing(
            f"the status API was not found at {url} (HTTP 404): check --api or {API_URL_VARIABLE}"
        )
    if error.code in (401, 403):
        return ApiRefused(
            f"{url}: access denied (HTTP {error.code}): pass the function key "
            f"with --key or {API_KEY_VARIABLE}"
        )
    if error.code == 429 or error.code >= 500:
        return ApiUnavailable(f"{url}: HTTP {error.code}: {message}")
    return ApiError(f"{url}: HTTP {error.code}: {message}")


def get_json(base: str, path: str, key: str | None = None, timeout: float = REQUEST_TIMEOUT) -> Any:
    """GET ``{base}/api/{path}`` and return its JSON; raises an :class:`ApiError`."""
    url = f"{base}/api/{path}"
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    if key:
        request.add_header("x-functions-key", key)
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        logger.debug("GET %s -> HTTP %s", strip_query(url), error.code)
        raise _http_error(strip_query(url), error) from error
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ApiUnavailable(f"{strip_query(base)} is unreachable: {reason}") from error
    logger.debug(
        "GET %s -> HTTP %s in %.0f ms",
        strip_query(url),
        status,
        (time.monotonic() - started) * 1000,
    )
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ApiMissing(
            f"{strip_query(url)} did not answer JSON: is it the status API?"
        ) from error
