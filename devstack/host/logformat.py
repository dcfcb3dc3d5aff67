"""The host's console log format: the message, then the record's structured fields.

The app logs with ``extra={"build_id": ..., "source": ...}``; Application Insights shows such
fields as custom dimensions. Locally they are appended as ``key=value`` so the console log says
which build, source and version a line is about.
"""

from __future__ import annotations

import logging
from typing import Final

#: Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, "x", 0, "x", None, None)).keys()
) | {"message", "asctime", "taskName"}


class ExtrasFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if not extras:
            return text
        fields = " ".join(f"{key}={value}" for key, value in extras.items() if value is not None)
        if "\n" in text:  # keep a traceback below the fields
            first, rest = text.split("\n", 1)
            return f"{first} [{fields}]\n{rest}"
        return f"{text} [{fields}]"
