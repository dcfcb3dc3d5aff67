"""ARM error bodies: ``{"error": {"code", "message", "target"?, "details"?}}`` with the real texts.

Every error the simulator returns is an :class:`ArmError`; the factory functions below hold the
verbatim messages (their sources are cited in ``docs/devstack.md``) so they live in one place.
"""

from __future__ import annotations

from typing import Any

JsonObject = dict[str, Any]

#: Error code used when a VHD source is not a fixed, MiB-aligned VHD. Azure's exact code for this
#: case is not public; the operation fails asynchronously with this code.
VHD_INVALID_CODE = "InvalidParameter"


class ArmError(Exception):
    """An ARM error response: HTTP status, code, message, optional target/details/headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[JsonObject] | None = None,
        innererror: JsonObject | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.innererror = innererror
        self.headers = dict(headers or {})

    def error_object(self) -> JsonObject:
        """The inner ``error`` object (also used for failed operation status bodies)."""
        error: JsonObject = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details is not None:
            error["details"] = self.details
        if self.innererror is not None:
            error["innererror"] = self.innererror
        return error

    def body(self) -> JsonObject:
        return {"error": self.error_object()}


def invalid_parameter(message: str, target: str | None = None) -> ArmError:
    return ArmError(400, "InvalidParameter", message, target=target)


def bad_api_version(value: str, supported: tuple[str, ...]) -> ArmError:
    return ArmError(
        400,
        "InvalidParameter",
        "The value of parameter api-version is invalid.",
        target="api-version",
        innererror={
            "internalErrorCode": "ParameterValueInvalid",
            "supportedApiVersions": list(supported),
            "requested": value,
        },
    )


def missing_api_version() -> ArmError:
    return ArmError(
        400,
        "MissingApiVersionParameter",
        "The api-version query parameter (?api-version=) is required for all requests.",
    )


def resource_not_found(resource_type: str, name_path: str, resource_group: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{resource_type}/{name_path}' under resource group '{resource_group}' "
        "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def parent_not_found(parent_path: str) -> ArmError:
    return ArmError(
        404,
        "ParentResourceNotFound",
        "Can not perform requested operation on nested resource. "
        f"Parent resource '{parent_path}' not found.",
    )


def property_change_not_allowed(target: str) -> ArmError:
    return ArmError(
        409,
        "PropertyChangeNotAllowed",
        f"Changing property '{target}' is not allowed.",
        target=target,
    )


def out_of_range(value: object, prop: str, low: int, high: int) -> ArmError:
    return invalid_parameter(
        f"The value {value} of parameter {prop} is out of range. "
        f"The value must be between {low} and {high}, inclusive.",
        target=prop,
    )


def authentication_missing() -> ArmError:
    return ArmError(
        401,
        "AuthenticationFailed",
        "Authentication failed. The 'Authorization' header is missing.",
        headers={
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                'error="invalid_token", '
                'error_description="The authentication failed because of missing '
                "'Authorization' header.\""
            )
        },
    )


def authentication_invalid(reason: str) -> ArmError:
    return ArmError(
        401,
        "InvalidAuthenticationToken",
        f"The access token is invalid. {reason}".strip(),
        headers={
            "WWW-Authenticate": (
                'Bearer authorization_uri="https://login.microsoftonline.com/common", '
                'error="invalid_token", error_description="The access token is invalid."'
            )
        },
    )


def internal_error() -> ArmError:
    return ArmError(
        500,
        "InternalExecutionError",
        "An internal execution error occurred. Please retry later.",
    )
