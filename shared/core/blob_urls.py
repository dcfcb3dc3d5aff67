"""Parse blob URLs against the configured storage endpoint templates.

Production blob endpoints are host-style, ``https://{account}.blob.core.windows.net``; Azurite
is path-style, ``http://127.0.0.1:10000/{account}``. Both are *templates* from settings
(``GALLERY_VHD_STORAGE_ENDPOINTS``), with ``{account}`` standing for the storage account name.
:func:`parse_blob_url` matches a URL against them and returns the account, container and blob
name. Query strings (SAS tokens) are accepted but never appear in an error message or in
:attr:`BlobUrl.url_without_query`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import SplitResult, unquote, urlsplit

from shared.core.redaction import strip_query

ACCOUNT_PLACEHOLDER: Final = "{account}"
#: Storage account names: 3-24 lower-case letters and digits.
ACCOUNT_NAME_PATTERN: Final = re.compile(r"^[a-z0-9]{3,24}$")
#: Container names: 3-63 characters, lower-case letters, digits and single dashes inside.
CONTAINER_NAME_PATTERN: Final = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:-?[a-z0-9])*$")
MAX_BLOB_NAME_LENGTH: Final = 1024
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


class InvalidBlobUrl(ValueError):
    """The URL is not a blob URL under a configured endpoint. The message holds no SAS."""


@dataclass(frozen=True)
class BlobUrl:
    """A blob URL split into its parts. ``url`` keeps the query (SAS) and is never shown."""

    url: str = field(repr=False)
    endpoint: str
    account: str
    container: str
    blob_name: str

    @property
    def url_without_query(self) -> str:
        """The URL without query string or fragment: safe to log, and the blob's identity."""
        return strip_query(self.url)

    @property
    def has_query(self) -> bool:
        """True when the URL carries a query string (usually a SAS token)."""
        return bool(urlsplit(self.url).query)

    @property
    def is_https(self) -> bool:
        return urlsplit(self.url).scheme.lower() == "https"

    @property
    def is_loopback(self) -> bool:
        """True when the blob lives on this machine (the local emulator)."""
        return (urlsplit(self.url).hostname or "").lower() in _LOOPBACK_HOSTS


@dataclass(frozen=True)
class _Template:
    text: str
    scheme: str
    host: str  # may contain {account} as its first label
    port: int
    path_prefix: tuple[str, ...]  # path segments; may contain {account}


def _port(parts: SplitResult) -> int:
    return parts.port if parts.port is not None else _DEFAULT_PORTS.get(parts.scheme.lower(), 0)


def _parse_template(template: str) -> _Template:
    parts = urlsplit(template.replace(ACCOUNT_PLACEHOLDER, "accountplaceholder"))
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"storage endpoint template {template!r} is not an http(s) URL")
    host = parts.hostname.lower().replace("accountplaceholder", ACCOUNT_PLACEHOLDER)
    segments = tuple(
        s.replace("accountplaceholder", ACCOUNT_PLACEHOLDER) for s in parts.path.split("/") if s
    )
    if (ACCOUNT_PLACEHOLDER in host) == (ACCOUNT_PLACEHOLDER in segments):
        raise ValueError(
            f"storage endpoint template {template!r} needs {ACCOUNT_PLACEHOLDER} exactly once, "
            "either as the first host label or as a path segment"
        )
    return _Template(template, parts.scheme.lower(), host, _port(parts), segments)


def check_endpoint_template(template: str) -> None:
    """Raise ``ValueError`` naming the problem when ``template`` is not a usable endpoint."""
    _parse_template(template)


def _match_host(template_host: str, host: str) -> str | None:
    """The account named by ``host`` under ``template_host`` ('' when the host has no account)."""
    if ACCOUNT_PLACEHOLDER not in template_host:
        return "" if host == template_host else None
    prefix, _, suffix = template_host.partition(ACCOUNT_PLACEHOLDER)
    if host.startswith(prefix) and host.endswith(suffix) and len(host) > len(prefix + suffix):
        account = host[len(prefix) : len(host) - len(suffix)]
        return account if "." not in account else None
    return None


def _match(template: _Template, url: str, parts: SplitResult) -> BlobUrl | None:
    if parts.scheme.lower() != template.scheme or _port(parts) != template.port:
        return None
    account = _match_host(template.host, (parts.hostname or "").lower())
    if account is None:
        return None
    # Split the raw path: '/' inside a blob name is a virtual directory separator.
    segments = parts.path.split("/")[1:] if parts.path.startswith("/") else []
    if len(segments) < len(template.path_prefix) + 2:
        return None
    for expected, actual in zip(template.path_prefix, segments, strict=False):
        if expected == ACCOUNT_PLACEHOLDER:
            account = actual
        elif expected.lower() != actual.lower():
            return None
    rest = segments[len(template.path_prefix) :]
    container, blob_name = unquote(rest[0]), unquote("/".join(rest[1:]))
    endpoint = template.text.replace(ACCOUNT_PLACEHOLDER, account).rstrip("/")
    return BlobUrl(url, endpoint, account, container, blob_name)


def is_loopback_endpoint(template: str) -> bool:
    """True when an endpoint template points at this machine (an emulator such as Azurite)."""
    return _parse_template(template).host in _LOOPBACK_HOSTS


def parse_blob_url(url: str, endpoint_templates: Sequence[str]) -> BlobUrl:
    """Match ``url`` against ``endpoint_templates``; raise :class:`InvalidBlobUrl` otherwise.

    >>> b = parse_blob_url("https://acct1.blob.core.windows.net/vhds/os/a.vhd?sig=x",
    ...                    ["https://{account}.blob.core.windows.net"])
    >>> (b.account, b.container, b.blob_name, b.url_without_query)
    ('acct1', 'vhds', 'os/a.vhd', 'https://acct1.blob.core.windows.net/vhds/os/a.vhd')
    """
    shown = strip_query(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidBlobUrl(f"'{shown}' is not a valid URL") from None
    if parts.scheme.lower() not in _DEFAULT_PORTS or not parts.hostname:
        raise InvalidBlobUrl(f"'{shown}' is not an http(s) URL")
    if parts.username or parts.password:
        raise InvalidBlobUrl("a blob URL must not carry user credentials")
    for template in endpoint_templates:
        blob = _match(_parse_template(template), url, parts)
        if blob is None:
            continue
        if not ACCOUNT_NAME_PATTERN.fullmatch(blob.account):
            raise InvalidBlobUrl(
                f"'{blob.account}' is not a storage account name (3-24 lower-case letters, digits)"
            )
        if not CONTAINER_NAME_PATTERN.fullmatch(blob.container):
            raise InvalidBlobUrl(
                f"'{blob.container}' is not a container name "
                "(3-63 lower-case letters, digits and single dashes)"
            )
        if not blob.blob_name or len(blob.blob_name) > MAX_BLOB_NAME_LENGTH:
            raise InvalidBlobUrl(f"blob name must have 1-{MAX_BLOB_NAME_LENGTH} characters")
        return blob
    raise InvalidBlobUrl(
        f"'{shown}' is not under a configured storage endpoint ({', '.join(endpoint_templates)})"
    )
