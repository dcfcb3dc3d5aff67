"""Reads the ``source`` and ``dataDisks`` sections of a build request, VHD URLs included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from shared.contract.display import quoted, visible
from shared.contract.model import (
    DEFAULT_DATA_DISK_HOST_CACHING,
    DataDisk,
    DiskSource,
    ImageVersionSource,
    ManagedImageSource,
    OsSource,
    ResourceSource,
    SnapshotSource,
    VhdSource,
    VirtualMachineSource,
)
from shared.contract.reader import DocumentReader, join_path, json_type
from shared.contract.rules import HOST_CACHING_MODES, MAX_LUN, Rule
from shared.core.blob_urls import BlobUrl, InvalidBlobUrl, parse_blob_url
from shared.core.redaction import strip_query
from shared.core.resource_ids import (
    DISK_TYPE,
    GALLERY_IMAGE_VERSION_TYPE,
    GUID_PATTERN,
    MANAGED_IMAGE_TYPE,
    SNAPSHOT_TYPE,
    STORAGE_ACCOUNT_TYPE,
    VIRTUAL_MACHINE_TYPE,
    ResourceId,
)

# Which resource type each source kind takes.
_SOURCE_TYPES: Final[dict[str, str]] = {
    "snapshot": SNAPSHOT_TYPE,
    "disk": DISK_TYPE,
    "managedImage": MANAGED_IMAGE_TYPE,
    "virtualMachine": VIRTUAL_MACHINE_TYPE,
    "imageVersion": GALLERY_IMAGE_VERSION_TYPE,
}
OS_SOURCE_KINDS: Final = (
    "vhd",
    "snapshot",
    "disk",
    "managedImage",
    "virtualMachine",
    "imageVersion",
)
DATA_DISK_SOURCE_KINDS: Final = ("vhd", "snapshot", "disk")
#: A blob name put after a URL that stops at its container, to tell "no blob name" apart.
_PROBE: Final = "probe.vhd"
_SOURCE_CLASSES: Final[dict[str, type[ResourceSource]]] = {
    "snapshot": SnapshotSource,
    "disk": DiskSource,
    "managedImage": ManagedImageSource,
    "virtualMachine": VirtualMachineSource,
}


def read_source(
    reader: DocumentReader, value: object, path: str, kinds: Sequence[str]
) -> OsSource | None:
    """Read a ``{"<kind>": {...}}`` source object holding exactly one of ``kinds``."""
    source = reader.read_object(value, path, allowed=kinds, what="an object naming one source kind")
    if source is None:
        return None
    given = [k for k in source if k in kinds]
    if len(given) != 1:
        message = "no source given" if not given else f"{len(given)} sources given"
        reader.add(
            path, Rule.EXACTLY_ONE_SOURCE, message, f"give exactly one of: {', '.join(kinds)}"
        )
        return None
    kind = given[0]
    where = join_path(path, kind)
    fields: tuple[str, ...] = ("id",)
    if kind == "vhd":
        fields = ("uri", "storageAccountId")
    elif kind == "imageVersion":
        fields = ("id", "tenantId")
    required = tuple(f for f in fields if f != "tenantId")
    body = reader.read_object(source[kind], where, allowed=fields, required=required)
    if body is None:
        return None
    if kind == "vhd":
        return _read_vhd(reader, body, where)
    return _read_resource_source(reader, body, path, kind, kinds)


def _read_resource_source(
    reader: DocumentReader,
    body: Mapping[str, object],
    path: str,
    kind: str,
    kinds: Sequence[str],
) -> OsSource | None:
    """The body of a source named by a resource id (every kind but ``vhd``)."""
    where = join_path(path, kind)
    if "id" not in body:
        return None

    def right_key(parsed: ResourceId) -> str | None:
        for other in kinds:
            if other in _SOURCE_TYPES and parsed.is_type(_SOURCE_TYPES[other]):
                return join_path(path, other)
        return None

    parsed = reader.resource_id(
        body["id"], join_path(where, "id"), _SOURCE_TYPES[kind], what=f"{kind}", right_key=right_key
    )
    tenant_id: str | None = None
    if kind == "imageVersion" and "tenantId" in body:
        tenant_id = reader.string(
            body,
            "tenantId",
            where,
            pattern=GUID_PATTERN,
            rule=Rule.TENANT_ID,
            hint="give the source tenant's id (a GUID)",
        )
        if tenant_id is None:
            return None
    if parsed is None:
        return None
    if kind == "imageVersion":
        return ImageVersionSource(parsed, tenant_id=tenant_id)
    return _SOURCE_CLASSES[kind](parsed)  # type: ignore[return-value]


def _read_vhd(reader: DocumentReader, body: Mapping[str, object], path: str) -> VhdSource | None:
    """Read a ``vhd`` source body: the blob URL and the storage account that holds it."""
    uri_value = body.get("uri")
    blob = _read_blob_url(reader, uri_value, path) if "uri" in body else None
    account_id: ResourceId | None = None
    if "storageAccountId" in body:
        account_id = reader.resource_id(
            body.get("storageAccountId"),
            join_path(path, "storageAccountId"),
            STORAGE_ACCOUNT_TYPE,
            what="storage account that holds the VHD",
        )
    if blob is not None and account_id is not None and account_id.name.lower() != blob.account:
        reader.add(
            join_path(path, "storageAccountId"),
            Rule.STORAGE_ACCOUNT_MATCH,
            f"storage account '{account_id.name}' does not hold the blob; "
            f"the URL names account '{blob.account}'",
            "give the id of the storage account named in the VHD URL",
        )
        return None
    if blob is None or account_id is None or not isinstance(uri_value, str):
        return None
    return VhdSource(uri=uri_value, storage_account_id=account_id, blob=blob)


def _read_blob_url(reader: DocumentReader, uri_value: object, path: str) -> BlobUrl | None:
    """The VHD's blob URL, under a configured storage endpoint and over https."""
    if not isinstance(uri_value, str) or not uri_value:
        reader.add(
            join_path(path, "uri"), Rule.TYPE, f"expected a blob URL, got {json_type(uri_value)}"
        )
        return None
    endpoints = reader.settings.vhd_storage_endpoints
    try:
        blob = parse_blob_url(uri_value, endpoints)
    except InvalidBlobUrl as exc:
        container = _container_without_blob(uri_value, endpoints)
        if container is not None:
            reader.add(
                join_path(path, "uri"),
                Rule.VHD_BLOB_NAME,
                f"{quoted(strip_query(uri_value))} names container {quoted(container)} but no blob",
                f"add the VHD's blob name to the URL: .../{visible(container)}/<name>.vhd",
            )
        else:
            reader.add(
                join_path(path, "uri"),
                Rule.VHD_URL,
                visible(str(exc)),
                "give the page blob's URL under a configured storage endpoint "
                f"({', '.join(endpoints)})",
            )
        return None
    if blob.blob_name.endswith("/"):
        reader.add(
            join_path(path, "uri"),
            Rule.VHD_BLOB_NAME,
            f"{quoted(blob.url_without_query)} ends with '/': it names a virtual directory, "
            "not a blob",
            "give the URL of the VHD blob itself, e.g. .../images/os.vhd",
        )
        return None
    if not blob.is_https and not blob.is_loopback:
        reader.add(
            join_path(path, "uri"),
            Rule.HTTPS_REQUIRED,
            f"{quoted(blob.url_without_query)} is not https",
            "use the https URL of the blob (plain http is for local emulators only)",
        )
        return None
    return blob


def _container_without_blob(url: str, endpoints: Sequence[str]) -> str | None:
    """The container a URL names when it stops there (``.../vhds`` or ``.../vhds/``): the URL
    is then one blob name short of a blob URL under ``endpoints``. ``None`` otherwise."""
    try:
        parts = urlsplit(url)
        probe = urlunsplit(
            parts._replace(path=parts.path.rstrip("/") + "/" + _PROBE, query="", fragment="")
        )
        blob = parse_blob_url(probe, endpoints)
    except (InvalidBlobUrl, ValueError):
        return None
    return blob.container if blob.blob_name == _PROBE else None


def read_data_disks(
    reader: DocumentReader, document: Mapping[str, object]
) -> list[DataDisk] | None:
    """Read ``dataDisks`` (absent means none); ``None`` when any disk has a problem."""
    items = reader.array(document, "dataDisks", "")
    if items is None:
        return [] if "dataDisks" not in document else None
    disks: list[DataDisk] = []
    ok = True
    seen_luns: dict[int, int] = {}
    for index, item in enumerate(items):
        path = f"dataDisks[{index}]"
        disk = reader.read_object(
            item, path, allowed=("lun", "source", "hostCaching"), required=("lun", "source")
        )
        if disk is None:
            ok = False
            continue
        lun = reader.integer(disk, "lun", path, low=0, high=MAX_LUN, rule=Rule.LUN_RANGE)
        if lun is not None and lun in seen_luns:
            reader.add(
                f"{path}.lun",
                Rule.UNIQUE_LUNS,
                f"duplicate LUN {lun} (also used by dataDisks[{seen_luns[lun]}])",
                "give every data disk its own LUN",
            )
            lun = None
        elif lun is not None:
            seen_luns[lun] = index
        source = (
            read_source(reader, disk["source"], f"{path}.source", DATA_DISK_SOURCE_KINDS)
            if "source" in disk
            else None
        )
        caching = reader.enum(disk, "hostCaching", path, HOST_CACHING_MODES)
        if "hostCaching" in disk and caching is None:
            ok = False
        if lun is None or source is None:
            ok = False
            continue
        assert isinstance(source, VhdSource | SnapshotSource | DiskSource)
        disks.append(DataDisk(lun, source, caching or DEFAULT_DATA_DISK_HOST_CACHING))
    return disks if ok else None
