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


def resources_api_version(value: str, supported: tuple[str, ...]) -> ArmError:
    """ARM's own answer to an unknown api-version of a ``Microsoft.Resources`` call."""
    return ArmError(
        400,
        "InvalidApiVersionParameter",
        f"The api-version '{value}' is invalid. The supported versions are "
        f"'{','.join(supported)}'.",
    )


def location_not_available(
    location: str,
    available: str,
    *,
    resource_type: str = "Microsoft.Compute/galleries",
    target: str | None = None,
) -> ArmError:
    """An unknown region: ARM's ``LocationNotAvailableForResourceType``. The troubleshooting
    guide of Compute Gallery quotes it with the galleries' resource type for galleries, image
    definitions and image versions alike, so that is the default type named."""
    return ArmError(
        400,
        "LocationNotAvailableForResourceType",
        f"The provided location '{location}' is not available for resource type "
        f"'{resource_type}'. List of available regions for the resource type is "
        f"'{available}'.",
        target=target,
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


# --- disks and snapshots (DiskRP) -----------------------------------------------------------


def disk_source_not_found(source_name: str) -> ArmError:
    """``creationData.sourceResourceId`` names nothing in the disk's region (missing, or a copy
    across regions): 404 ``NotFound``, the text ``az snapshot create`` shows for it."""
    return ArmError(404, "NotFound", f"Resource {source_name} is not found.")


def copy_start_wrong_source() -> ArmError:
    """``CopyStart`` from something that is not a snapshot (e.g. a managed disk)."""
    return invalid_parameter("Entity not of expected type")


#: Azure refuses CopyStart of full snapshots; its exact text is not public (docs/devstack.md).
COPY_START_FULL_SNAPSHOT_MESSAGE = (
    "CopyStart is only supported for creating an incremental snapshot from an incremental "
    "snapshot. Set 'incremental' to true and copy an incremental snapshot."
)


def copy_start_full_snapshot() -> ArmError:
    return invalid_parameter(COPY_START_FULL_SNAPSHOT_MESSAGE, target="incremental")


def disk_property_change_not_allowed(prop: str, disk_name: str) -> ArmError:
    """A PUT on an existing disk or snapshot that changes how it was created (``BadRequest``
    and the text as ``az snapshot create`` shows them)."""
    return ArmError(
        400,
        "BadRequest",
        f"Changing property '{prop}' is not allowed for existing disk '{disk_name}'.",
    )
