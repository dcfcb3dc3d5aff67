"""The request and reply objects passed between the transport and the handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass
class Request:
    """One parsed HTTP request."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any = None
    raw_query: str = ""

    @property
    def api_version(self) -> str:
        return self.query.get("api-version", "")


@dataclass
class Reply:
    """One HTTP response; ``body`` None means an empty body."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
