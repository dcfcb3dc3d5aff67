"""The one alias for a decoded JSON object that the pipeline builds or reads."""

from __future__ import annotations

from typing import Any

#: A JSON object as ``json.loads`` returns it (and as we build documents to dump).
JsonObject = dict[str, Any]
