"""List responses in pages: ``$skiptoken`` is the offset, ``nextLink`` carries the rest."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from devstack.armsim.errors import ArmError
from devstack.armsim.protocol import Reply, Request

JsonObject = dict[str, Any]


class Pager:
    """Cuts lists into pages of ``size`` items (``POST /admin/config`` changes ``size``)."""

    def __init__(self, base_url: str, size: int) -> None:
        self.base_url = base_url
        self.size = size

    def page(self, request: Request, items: list[JsonObject]) -> Reply:
        """The page of ``items`` that ``request``'s ``$skiptoken`` asks for, with its nextLink."""
        try:
            start = max(0, int(request.query.get("$skiptoken", "0")))
        except ValueError:
            raise ArmError(400, "InvalidSkipToken", "The $skiptoken is invalid.") from None
        size = max(1, self.size)
        body: JsonObject = {"value": items[start : start + size]}
        if start + size < len(items):
            params = {"api-version": request.api_version, "$skiptoken": str(start + size)}
            if "$expand" in request.query:
                params["$expand"] = request.query["$expand"]
            body["nextLink"] = f"{self.base_url}{request.path}?{urlencode(params)}"
        return Reply(200, body)
