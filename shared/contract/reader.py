"""A small generic reader of decoded JSON that records a problem for each thing wrong.

:class:`DocumentReader` reads typed values (objects, strings, numbers, booleans, enums, arrays,
resource ids) out of a build request without ever stopping at the first problem; the section
readers (:mod:`shared.contract.target`, :mod:`shared.contract.source`, ...) are built on it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Final

from shared.contract.display import quoted, visible
from shared.contract.model import MAX_TEXT_LENGTH
from shared.contract.naming import NameRules, name_problems
from shared.contract.rules import ProblemList, Rule, ValidationContext
from shared.core.redaction import strip_query
from shared.core.resource_ids import InvalidResourceId, ResourceId, parse_resource_id
from shared.core.settings import Settings

#: Marks a key that is absent (as opposed to present with the value ``None``).
_MISSING: Final = object()


def join_path(path: str, key: str) -> str:
    """The problem path of ``key`` under ``path`` (``""`` is the document's root); a key with
    characters outside printable ASCII shows them as code points."""
    shown = visible(key)
    return f"{path}.{shown}" if path else shown


def json_type(value: object) -> str:
    """The JSON type name of a decoded value, for "expected ..., got ..." messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _did_you_mean(key: str, allowed: Sequence[str]) -> str:
    """``"did you mean 'versionPolicy'? "`` when ``key`` is a near miss of an allowed key (the
    same but for case, or close by :mod:`difflib`), else ``""``."""
    by_case = [name for name in allowed if name.lower() == key.lower()]
    lowered = {name.lower(): name for name in allowed}
    close = by_case or [
        lowered[match] for match in difflib.get_close_matches(key.lower(), lowered, 1, 0.75)
    ]
    return f"did you mean {quoted(close[0])}? " if close else ""


class DocumentReader:
    """Reads typed values out of JSON, recording a problem for each thing wrong."""

    def __init__(self, settings: Settings, now: datetime, context: ValidationContext) -> None:
        self.settings = settings
        self.now = now
        self.context = context
        self.problems = ProblemList()
        self.end_of_life_after_days: int | None = None

    def add(self, path: str, rule: str, message: str, hint: str = "") -> None:
        self.problems.add(path, rule, message, hint)

    # -- primitive readers ------------------------------------------------------------------

    def read_object(
        self,
        value: object,
        path: str,
        *,
        allowed: Sequence[str],
        required: Sequence[str] = (),
        what: str = "an object",
    ) -> Mapping[str, object] | None:
        if not isinstance(value, Mapping):
            self.add(path, Rule.TYPE, f"expected {what}, got {json_type(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.add(
                    join_path(path, str(key)),
                    Rule.UNKNOWN_FIELD,
                    f"unknown field {quoted(str(key))}",
                    f"{_did_you_mean(str(key), allowed)}remove it; allowed here: "
                    f"{', '.join(allowed)}",
                )
        for key in required:
            if key not in value:
                self.add(join_path(path, key), Rule.REQUIRED, f"'{key}' is required")
        return value

    def string(
        self,
        parent: Mapping[str, object],
        key: str,
        path: str,
        *,
        max_length: int = MAX_TEXT_LENGTH,
        pattern: re.Pattern[str] | None = None,
        rule: str = Rule.TYPE,
        hint: str = "",
    ) -> str | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = join_path(path, key)
        if not isinstance(value, str) or not value:
            self.add(where, Rule.TYPE, f"expected a non-empty string, got {json_type(value)}")
            return None
        if len(value) > max_length:
            self.add(where, Rule.LENGTH, f"is {len(value)} characters; at most {max_length}")
            return None
        if pattern is not None and not pattern.fullmatch(value):
            self.add(where, rule, f"{quoted(value)} is not valid", hint)
            return None
        return value

    def name(
        self, parent: Mapping[str, object], key: str, path: str, rules: NameRules
    ) -> str | None:
        """A name under Azure's ``rules``; each broken rule is a problem of its own."""
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = join_path(path, key)
        if not isinstance(value, str) or not value:
            self.add(where, Rule.TYPE, f"expected a non-empty string, got {json_type(value)}")
            return None
        problems = name_problems(rules, value)
        for problem in problems:
            self.add(where, problem.rule, problem.message, problem.hint)
        return None if problems else value

    def integer(
        self,
        parent: Mapping[str, object],
        key: str,
        path: str,
        *,
        low: int,
        high: int,
        rule: str,
    ) -> int | None:
        value: object = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        where = join_path(path, key)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.add(where, Rule.TYPE, f"expected a whole number, got {json_type(value)}")
            return None
        if not low <= value <= high:
            self.add(where, rule, f"{value} is out of range", f"use a number from {low} to {high}")
            return None
        return value

    def boolean(self, parent: Mapping[str, object], key: str, path: str) -> bool | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.add(
                join_path(path, key), Rule.TYPE, f"expected true or false, got {json_type(value)}"
            )
            return None
        return value

    def enum(
        self,
        parent: Mapping[str, object],
        key: str,
        path: str,
        choices: Sequence[str],
        rule: str = Rule.ENUM,
    ) -> str | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, str) or value not in choices:
            shown = quoted(value) if isinstance(value, str) else json_type(value)
            close = [c for c in choices if isinstance(value, str) and c.lower() == value.lower()]
            hint = f"did you mean '{close[0]}'? " if close else ""
            self.add(
                join_path(path, key),
                rule,
                f"{shown} is not allowed",
                f"{hint}use one of: {', '.join(choices)}",
            )
            return None
        return value

    def array(self, parent: Mapping[str, object], key: str, path: str) -> list[object] | None:
        value = parent.get(key, _MISSING)
        if value is _MISSING:
            return None
        if not isinstance(value, list | tuple):
            self.add(join_path(path, key), Rule.TYPE, f"expected an array, got {json_type(value)}")
            return None
        return list(value)

    # -- domain readers ---------------------------------------------------------------------

    def resource_id(
        self,
        value: object,
        path: str,
        expected_type: str,
        *,
        what: str,
        right_key: Callable[[ResourceId], str | None] | None = None,
    ) -> ResourceId | None:
        if not isinstance(value, str) or not value:
            self.add(path, Rule.TYPE, f"expected a resource id string, got {json_type(value)}")
            return None
        try:
            parsed = parse_resource_id(value)
        except InvalidResourceId as exc:
            self.add(
                path,
                Rule.RESOURCE_ID,
                f"{quoted(strip_query(value))} is not a resource id: {visible(str(exc))}",
                f"give the full id of the {what}, "
                f"e.g. /subscriptions/<id>/resourceGroups/<rg>/providers/{expected_type}/<name>",
            )
            return None
        if not parsed.is_type(expected_type):
            better = right_key(parsed) if right_key else None
            hint = (
                f"a {parsed.resource_type} belongs under '{better}'"
                if better
                else f"give the id of a {expected_type}"
            )
            self.add(
                path,
                Rule.RESOURCE_TYPE,
                f"expected a {expected_type} id, got a {parsed.resource_type}",
                hint,
            )
            return None
        return parsed
