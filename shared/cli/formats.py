"""Renderers of JSON-able data as az renders them: ``table``, ``tsv``, ``yaml`` and ``jsonc``.

- ``table``: a list of objects becomes one row per object, one column per scalar field (nested
  objects and arrays are left out, as az does), headed by the field name with a capital first
  letter and a dashed rule; a single object is one row; a list of arrays (``[].[a, b]``) has
  columns ``Column1``, ``Column2``...; scalars and lists of scalars are a ``Result`` column.
  Nothing is cut: a cell is as long as its value.
- ``tsv``: the same rows, tab-separated, without a header; a nested object is an empty cell and a
  nested array its length (as az), tabs and line breaks inside a value become spaces so that
  one record stays one line. ``true``/``false`` and an empty cell for ``null``, as JSON spells
  them.
- ``yaml``: block style, strings quoted (JSON style) unless they are safe plain scalars.
- ``jsonc``: JSON with ANSI colours (keys, strings, numbers, literals).

Non-ASCII characters are escaped (``\\u200b``) in JSON and quoted YAML strings: invisible
characters stay visible, and no terminal encoding can make printing fail.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

# -- table and tsv -------------------------------------------------------------------------------


def cell(value: Any) -> str:
    """A scalar as one cell: JSON's spelling of literals, ``null`` as nothing."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flat_rows(data: Any) -> list[dict[str, Any]]:
    """The rows of ``data``: an object per row, scalar fields only."""
    items = data if isinstance(data, list) else [data]
    rows: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, Mapping):
            rows.append({str(k): v for k, v in item.items() if not isinstance(v, dict | list)})
        elif isinstance(item, list):  # a query such as [].[a, b], as az: Column1, Column2...
            rows.append({f"Column{n}": v for n, v in enumerate(item, start=1)})
        else:
            rows.append({"Result": item})
    return rows


def _header(key: str) -> str:
    return key[:1].upper() + key[1:]


def table(data: Any) -> str:
    """``data`` as an az-style table (see the module's docstring)."""
    rows = _flat_rows(data)
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    if not columns:
        return ""
    headers = [_header(c) for c in columns]
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(line) for line in [h, *(r[i] for r in cells)]) for i, h in enumerate(headers)]
    lines = [headers, ["-" * w for w in widths], *cells]
    return "\n".join(_table_line(line, widths) for line in lines)


def _table_line(values: Sequence[str], widths: Sequence[int]) -> str:
    return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()


def _tsv_cell(value: Any) -> str:
    if isinstance(value, dict):
        return ""
    if isinstance(value, list):
        return str(len(value))
    return re.sub(r"[\t\r\n]+", " ", cell(value))


def tsv(data: Any) -> str:
    """``data`` as tab-separated values without a header (see the module's docstring)."""
    items = data if isinstance(data, list) else [data]
    lines = []
    for item in items:
        lines.append("\t".join(_tsv_cell(v) for v in _tsv_values(item)))
    return "\n".join(lines)


def _tsv_values(item: Any) -> list[Any]:
    """The cells of one record: an object's values, an array's items, or a scalar."""
    if isinstance(item, Mapping):
        return list(item.values())
    return item if isinstance(item, list) else [item]


# -- yaml ----------------------------------------------------------------------------------------

#: Strings YAML reads back as the same string without quotes (a conservative subset).
_PLAIN: Final = re.compile(r"^[A-Za-z_/][A-Za-z0-9_ ./@+:,()=-]*$")
#: Plain words that YAML 1.1 or 1.2 readers take for booleans or null.
_RESERVED: Final = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~"})


def yaml_scalar(value: Any) -> str:
    """One scalar in YAML: literals, numbers, and strings plain when safe, else JSON-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    text = str(value)
    unsafe = (
        not _PLAIN.match(text)
        or text.lower() in _RESERVED
        or text.endswith((" ", ":"))
        or ": " in text
    )
    return json.dumps(text) if unsafe else text


def _is_block(value: Any) -> bool:
    return isinstance(value, dict | list) and len(value) > 0


def _yaml_lines(value: Any, indent: int) -> Iterator[str]:
    pad = " " * indent
    if isinstance(value, dict) and value:
        for key, item in value.items():
            if _is_block(item):
                yield f"{pad}{yaml_scalar(str(key))}:"
                yield from _yaml_lines(item, indent + 2)
            else:
                yield f"{pad}{yaml_scalar(str(key))}: {_inline(item)}"
    elif isinstance(value, list) and value:
        for item in value:
            if _is_block(item):
                first, *rest = _yaml_lines(item, indent + 2)
                yield f"{pad}- {first.lstrip()}"
                yield from rest
            else:
                yield f"{pad}- {_inline(item)}"
    else:
        yield pad + _inline(value)


def _inline(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return yaml_scalar(value)


def yaml(data: Any) -> str:
    """``data`` as a YAML document (block style)."""
    return "\n".join(_yaml_lines(data, 0))


# -- jsonc ---------------------------------------------------------------------------------------

_RESET: Final = "\x1b[0m"
_COLOURS: Final = {
    "key": "\x1b[94m",
    "string": "\x1b[32m",
    "number": "\x1b[36m",
    "literal": "\x1b[35m",
}
_TOKEN: Final = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")(?P<colon>\s*:)?'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<literal>\btrue\b|\bfalse\b|\bnull\b)"
)


def _colour(match: re.Match[str]) -> str:
    if match.group("string") is not None:
        kind = "key" if match.group("colon") else "string"
        return f"{_COLOURS[kind]}{match.group('string')}{_RESET}{match.group('colon') or ''}"
    kind = "number" if match.group("number") is not None else "literal"
    return f"{_COLOURS[kind]}{match.group(0)}{_RESET}"


def jsonc(data: Any) -> str:
    """Indented JSON with ANSI colours for keys, strings, numbers and literals."""
    return _TOKEN.sub(_colour, json.dumps(data, indent=2))


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2)
