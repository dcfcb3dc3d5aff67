"""Keep secrets out of errors and logs."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_SECRET_KEYS = re.compile(r"(?i)(AccountKey|SharedAccessKey|SharedAccessSignature|sig)=([^;&\s]+)")


def strip_query(url: str) -> str:
    """Return ``url`` without its query string (a SAS token lives there) or fragment.

    >>> strip_query("https://a.blob.core.windows.net/c/x.vhd?sv=2024&sig=abc")
    'https://a.blob.core.windows.net/c/x.vhd'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_secrets(url)
    if not parts.scheme:
        return redact_secrets(url.split("?", 1)[0])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def redact_secrets(text: str) -> str:
    """Mask key material in free text (connection strings, SAS signatures)."""
    return _SECRET_KEYS.sub(lambda m: f"{m.group(1)}=***", text)
