"""The validation rules of the build-request contract, as small pure functions.

:func:`shared.contract.parse.parse_build_request` walks a request and calls these rules on each
part, collecting every :class:`~shared.core.errors.Problem` before it raises; nothing here stops
at the first problem. Rule names (``Rule.*``) are stable and machine-readable; they appear in CLI
output and dead-letter descriptions. Each rule is documented in ``docs/build-requests.md``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from shared.contract.regions import PUBLIC_REGIONS
from shared.core.errors import Problem
from shared.core.settings import SettingName, Settings

if TYPE_CHECKING:
    from shared.contract.known_tenants import SourceTenants

GIB: Final = 1024**3
TIB: Final = 1024**4
#: The gallery service refuses sources above 2 TiB ("source resource size ... exceeds the max
#: size 2048"), unless the version uses Shallow replication (up to 32 TiB).
MAX_IMAGE_BYTES_FULL: Final = 2 * TIB
MAX_IMAGE_BYTES_SHALLOW: Final = 32 * TIB

MIN_REPLICA_COUNT: Final = 1
MAX_REPLICA_COUNT: Final = 100
MAX_LUN: Final = 63
STORAGE_ACCOUNT_TYPES: Final = ("Standard_LRS", "Standard_ZRS", "Premium_LRS", "PremiumV2_LRS")
REPLICATION_MODES: Final = ("Full", "Shallow")
HOST_CACHING_MODES: Final = ("None", "ReadOnly", "ReadWrite")
OS_TYPES: Final = ("Linux", "Windows")
OS_STATES: Final = ("Generalized", "Specialized")
HYPERV_GENERATIONS: Final = ("V1", "V2")
ARCHITECTURES: Final = ("x64", "Arm64")

#: Gallery, definition, resource group and identifier names: shared.contract.naming.
#: A region after normalisation (``East US 2`` -> ``eastus2``).
REGION_PATTERN: Final = re.compile(r"^[a-z][a-z0-9]{1,63}$")
#: Request ids double as Service Bus message ids (at most 128 characters).
REQUEST_ID_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")

MAX_TAGS: Final = 50
MAX_TAG_NAME_LENGTH: Final = 512
MAX_TAG_VALUE_LENGTH: Final = 256
MAX_END_OF_LIFE_DAYS: Final = 36500


class Rule:
    """Machine-readable rule names used in :class:`~shared.core.errors.Problem`."""

    # -- decoding (shared.contract.decode): the bytes before any field is read
    DOCUMENT_SIZE: Final = "document-size"
    ENCODING: Final = "encoding"
    SYNTAX: Final = "json-syntax"
    NESTING: Final = "nesting"
    DUPLICATE_KEY: Final = "duplicate-key"
    NON_FINITE_NUMBER: Final = "non-finite-number"
    NUMBER_RANGE: Final = "number-range"
    LONE_SURROGATE: Final = "lone-surrogate"
    DOCUMENT_TYPE: Final = "document-type"
    # -- fields
    TYPE: Final = "type"
    REQUIRED: Final = "required"
    UNKNOWN_FIELD: Final = "unknown-field"
    ENUM: Final = "enum"
    LENGTH: Final = "length"
    SCHEMA_VERSION: Final = "schema-version"
    REQUEST_ID: Final = "request-id"
    SUBSCRIPTION_ID: Final = "subscription-id"
    # -- names (shared.contract.naming): each rule of a name has its own name
    RESOURCE_GROUP_NAME_LENGTH: Final = "resource-group-name-length"
    RESOURCE_GROUP_NAME_CHARACTERS: Final = "resource-group-name-characters"
    RESOURCE_GROUP_NAME_TRAILING_PERIOD: Final = "resource-group-name-trailing-period"
    GALLERY_NAME_LENGTH: Final = "gallery-name-length"
    GALLERY_NAME_CHARACTERS: Final = "gallery-name-characters"
    GALLERY_NAME_START: Final = "gallery-name-start"
    GALLERY_NAME_END: Final = "gallery-name-end"
    DEFINITION_NAME_LENGTH: Final = "definition-name-length"
    DEFINITION_NAME_CHARACTERS: Final = "definition-name-characters"
    DEFINITION_NAME_START: Final = "definition-name-start"
    DEFINITION_NAME_END: Final = "definition-name-end"
    IDENTIFIER_LENGTH: Final = "identifier-length"
    IDENTIFIER_CHARACTERS: Final = "identifier-characters"
    IDENTIFIER_START: Final = "identifier-start"
    IDENTIFIER_TRAILING_PERIOD: Final = "identifier-trailing-period"
    # -- the rest
    VERSION_FORMAT: Final = "version-format"
    VERSION_OR_POLICY: Final = "version-or-policy"
    VERSION_POLICY: Final = "version-policy"
    EXACTLY_ONE_SOURCE: Final = "exactly-one-source"
    RESOURCE_ID: Final = "resource-id"
    RESOURCE_TYPE: Final = "resource-type"
    TENANT_ID: Final = "tenant-id"
    VHD_URL: Final = "vhd-url"
    VHD_BLOB_NAME: Final = "vhd-blob-name"
    HTTPS_REQUIRED: Final = "https-required"
    STORAGE_ACCOUNT_MATCH: Final = "storage-account-match"
    UNIQUE_LUNS: Final = "unique-luns"
    LUN_RANGE: Final = "lun-range"
    UNIQUE_SOURCES: Final = "unique-sources"
    DATA_DISKS_NEED_DISK_SOURCE: Final = "data-disks-need-disk-source"
    REGION_NAME: Final = "region-name"
    UNIQUE_REGIONS: Final = "unique-regions"
    TARGET_REGIONS_REQUIRED: Final = "target-regions-required"
    SOURCE_REGION_IN_TARGETS: Final = "source-region-in-targets"
    GALLERY_REGION_IN_TARGETS: Final = "gallery-region-in-targets"
    REPLICA_COUNT: Final = "replica-count"
    STORAGE_ACCOUNT_TYPE: Final = "storage-account-type"
    END_OF_LIFE_ONE_OF: Final = "end-of-life-date-or-days"
    END_OF_LIFE_FORMAT: Final = "end-of-life-format"
    END_OF_LIFE_FUTURE: Final = "end-of-life-future"
    BLOCK_DELETION_NEEDS_END_OF_LIFE: Final = "block-deletion-needs-end-of-life"
    DATA_DISK_SIZE: Final = "data-disk-size"
    IMAGE_SIZE: Final = "image-size"
    TARGET_GALLERY_ALLOWED: Final = "target-gallery-allowed"
    SOURCE_SUBSCRIPTION_ALLOWED: Final = "source-subscription-allowed"
    SOURCE_TENANT_NOT_CONFIGURED: Final = "source-tenant-not-configured"
    SOURCE_TENANTS_LIMIT: Final = "source-tenants-limit"
    TAGS: Final = "tags"


@dataclass(frozen=True)
class ValidationContext:
    """Facts known only at run time; a rule that needs a missing fact is skipped.

    ``source_region`` is where the OS source lives; ``os_disk_size_bytes`` the OS source's size;
    ``data_disk_size_bytes`` maps a data disk's LUN to its source's size. ``source_tenants``:
    the tenants the pipeline knows and can get tokens in (default: from the settings'
    ``GALLERY_SOURCE_TENANTS`` / ``GALLERY_CROSS_TENANT_*``; :mod:`shared.contract.tenants`).
    """

    source_region: str | None = None
    os_disk_size_bytes: int | None = None
    data_disk_size_bytes: Mapping[int, int] = field(default_factory=dict)
    source_tenants: SourceTenants | None = None
    #: The region names a request may target: the built-in list unless the live one is passed
    #: in (:func:`shared.contract.regions.with_known_regions`); ``None`` checks only a name's
    #: form (a stored request, whose regions were checked when it came in).
    known_regions: frozenset[str] | None = PUBLIC_REGIONS


#: The context for re-reading a request the pipeline stored: every run-time fact is skipped,
#: the region list too (a live list accepted its regions when it came in).
STORED_REQUEST: Final = ValidationContext(known_regions=None)


class ProblemList:
    """Collects problems in the order found."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def add(self, path: str, rule: str, message: str, hint: str = "") -> None:
        self.items.append(Problem(path=path, rule=rule, message=message, hint=hint))

    def __len__(self) -> int:
        return len(self.items)


def normalise_region(name: str) -> str:
    """``"East US 2"`` -> ``"eastus2"``: lower case, spaces removed (Azure's own short form)."""
    return "".join(name.split()).lower()


def _allow_list_part_matches(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern.lower() == value.lower()


def target_gallery_allowed(
    allowed: tuple[str, ...], subscription_id: str, resource_group: str, gallery: str
) -> bool:
    """True when ``<subscription>/<resourceGroup>/<gallery>`` matches an allow-list entry.

    Entries are ``<subscriptionId>/<resourceGroup>/<gallery>``, compared case-insensitively;
    ``*`` matches one whole part (``*/rg-images/*``). An entry without exactly three parts never
    matches anything.
    """
    wanted = (subscription_id, resource_group, gallery)
    for entry in allowed:
        parts = entry.strip().split("/")
        if len(parts) == 3 and all(
            _allow_list_part_matches(p.strip(), v) for p, v in zip(parts, wanted, strict=True)
        ):
            return True
    return False


def source_subscription_allowed(
    allowed: tuple[str, ...], target_subscription_id: str, source_subscription_id: str
) -> bool:
    """A source may live in the target's subscription or in an allowed one (``*``: any)."""
    if source_subscription_id.lower() == target_subscription_id.lower():
        return True
    return any(_allow_list_part_matches(entry.strip(), source_subscription_id) for entry in allowed)


#: How alike (difflib ratio, case-insensitive) a name must be to an allowed one to be a typo.
TYPO_SIMILARITY: Final = 0.8
_PART_NAMES: Final = ("subscription", "resource group", "gallery")


def _typo_of_allowed(allowed: tuple[str, ...], wanted: tuple[str, str, str]) -> str | None:
    """``"did you mean gallery 'devgallery'?"`` when ``wanted`` misses an allow-list entry only
    by near misses (each part matches, or is close to the entry's part), else ``None``."""
    for entry in allowed:
        parts = [part.strip() for part in entry.strip().split("/")]
        if len(parts) != 3:
            continue
        fixes = []
        for name, pattern, value in zip(_PART_NAMES, parts, wanted, strict=True):
            if _allow_list_part_matches(pattern, value):
                continue
            ratio = difflib.SequenceMatcher(None, pattern.lower(), value.lower()).ratio()
            if ratio < TYPO_SIMILARITY:
                break
            fixes.append(f"{name} '{pattern}'")
        else:
            if fixes:
                return f"did you mean {' and '.join(fixes)}?"
    return None


def target_gallery_hint(settings: Settings, subscription_id: str, rg: str, gallery: str) -> str:
    """The fix for a target gallery that is not allowed: a near miss of an allowed gallery is a
    typo to correct, never something to allow-list."""
    entry = f"{subscription_id}/{rg}/{gallery}"
    typo = _typo_of_allowed(settings.allowed_target_galleries, (subscription_id, rg, gallery))
    if typo is not None:
        return typo
    if not settings.allowed_target_galleries:
        return (
            f"no target gallery is allowed yet: set {SettingName.ALLOWED_TARGET_GALLERIES} "
            f"(e.g. '{entry}'; entries are <subscriptionId>/<resourceGroup>/<gallery>, "
            "'*' matches one part)"
        )
    return (
        f"publish into an allowed gallery, or ask the operator to add '{entry}' to "
        f"{SettingName.ALLOWED_TARGET_GALLERIES}"
    )


def source_subscription_hint(settings: Settings, source_subscription_id: str) -> str:
    if not settings.allowed_source_subscriptions:
        return (
            "sources must be in the target's subscription; to allow another one, set "
            f"{SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS} (e.g. '{source_subscription_id}')"
        )
    return (
        "use a source in the target's subscription, or ask the operator to add "
        f"'{source_subscription_id}' to {SettingName.ALLOWED_SOURCE_SUBSCRIPTIONS}"
    )


def max_data_disk_bytes(settings: Settings, replication_mode: str) -> int:
    """The data disk limit: the setting, capped by the service's hard limit for the mode."""
    return min(settings.max_data_disk_gib * GIB, max_image_bytes(replication_mode))


def max_image_bytes(replication_mode: str) -> int:
    """The OS image limit: 2 TiB, or 32 TiB with Shallow replication."""
    return MAX_IMAGE_BYTES_SHALLOW if replication_mode == "Shallow" else MAX_IMAGE_BYTES_FULL


def format_bytes(size: int) -> str:
    """``1099511627776`` -> ``"1024 GiB"`` (whole GiB rounded up, for messages)."""
    return f"{-(-size // GIB)} GiB"
