"""The one decoder of JSON that arrives from outside: any bytes in, a dict or a reject out.

Build requests come as Service Bus message bodies, HTTP bodies, files and stdin; manifests and
settings are JSON too. :func:`decode_document` turns *every* byte sequence into either a
``dict`` or a :class:`~shared.core.errors.ValidationFailed` whose problem names the rule:

- ``document-size``: more than :data:`MAX_DOCUMENT_BYTES` (checked before anything is read);
- ``encoding``: not UTF-8, with the byte offset (a UTF-8 byte order mark is accepted);
- ``nesting``: deeper than :data:`MAX_NESTING_DEPTH`, found by a scan of the brackets outside
  strings *before* ``json.loads`` could recurse (a 100,000-deep array is a reject, not a
  ``RecursionError``);
- ``json-syntax``: not JSON, with line and column;
- ``non-finite-number`` (``NaN``, ``Infinity``, ``1e400``), ``number-range`` (integers beyond
  +-(2**53 - 1)), ``duplicate-key`` (naming the key) and ``lone-surrogate`` (``"\\ud800"``):
  JSON that Python reads but strict parsers refuse. RFC 8259 has no NaN or Infinity; RFC 7493
  (I-JSON, https://www.rfc-editor.org/rfc/rfc7493) forbids duplicate names (2.3) and
  unpaired surrogates (2.1) and keeps numbers within IEEE 754 doubles (2.2). Json.NET-based
  Microsoft services refuse duplicate keys ("Property with the same name already exists on
  object", microsoftgraph/msgraph-sdk-dotnet#28); where ARM's exact behaviour is undocumented
  we take the stricter side;
- ``document-type``: the top level is not an object (only :func:`decode_document`;
  :func:`decode_json` takes any top-level value).

Everything but ``document-type`` raises :class:`UnreadableDocument` (dead-letter reason
``InvalidJson``); ``document-type`` is a plain ``ValidationFailed``: the JSON was fine, it is
just not a request. Nothing else escapes from here.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Final

from shared.contract.display import quoted, visible
from shared.contract.reader import json_type
from shared.contract.rules import Rule
from shared.core.errors import Problem, ValidationFailed
from shared.core.jsontypes import JsonObject

#: A build request is a few KiB. 256 KiB is also the Service Bus Standard tier's message limit.
MAX_DOCUMENT_BYTES: Final = 256 * 1024
#: Objects and arrays nested in each other, the top level included. Requests need 5.
MAX_NESTING_DEPTH: Final = 64
#: The largest integer every JSON parser reads exactly (RFC 7493 section 2.2).
MAX_SAFE_INTEGER: Final = 2**53 - 1
#: A hostile document can break a rule thousands of times; this many are listed.
MAX_LISTED_PROBLEMS: Final = 20

_BOM: Final = b"\xef\xbb\xbf"
#: A string (to skip: brackets inside it do not nest) or one bracket. The string part is an
#: unrolled loop, linear on any input; an unterminated string runs to the end of the text.
_STRING_OR_BRACKET: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)|[\[\]{}]', re.DOTALL)
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
#: A ``\\uD800``-``\\uDFFF`` escape somewhere (maybe after an escaped backslash: then harmless).
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F]")


class UnreadableDocument(ValidationFailed):
    """The bytes are not a strict JSON document: too big, not UTF-8, not JSON, too deep..."""

    reason = "InvalidJson"


def decode_document(
    data: bytes | bytearray | str,
    *,
    subject: str = "request",
    path: str = "",
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> JsonObject:
    """Decode ``data`` into a JSON object, or raise :class:`ValidationFailed` saying why not.

    ``subject`` names the document in messages (``request``, ``manifest``...); ``path`` is the
    problem path of its root (``""`` for a request, ``"manifest"`` for a manifest).
    """
    value = decode_json(data, subject=subject, path=path, max_bytes=max_bytes)
    if not isinstance(value, dict):
        problem = Problem(
            path,
            Rule.DOCUMENT_TYPE,
            f"the {subject} is a JSON {json_type(value)}, not an object",
            'send one JSON object: {"target": ..., "source": ..., "publishing": ...}'
            if subject == "request"
            else "write one JSON object: {...}",
        )
        raise ValidationFailed([problem], subject=subject)
    return value


def decode_json(
    data: bytes | bytearray | str,
    *,
    subject: str = "document",
    path: str = "",
    max_bytes: int = MAX_DOCUMENT_BYTES,
) -> object:
    """Decode ``data`` into any JSON value under the rules above (all but ``document-type``)."""
    decoder = _Decoder(subject, path)
    text = decoder.text(data, max_bytes)
    decoder.check_nesting(text)
    value = decoder.parse(text)
    decoder.check_strictness(value, text)
    return value


@dataclass(frozen=True)
class _BadNumber:
    """Stands in for a number the parser met but must not accept (found again by the walk)."""

    text: str
    rule: str


class _ObjectWithDuplicates(dict[str, Any]):
    """An object in which some keys were given more than once (the last copy is kept)."""

    def __init__(self, pairs: list[tuple[str, Any]], duplicates: list[str]) -> None:
        super().__init__(pairs)
        self.duplicates = duplicates


class _Decoder:
    """One decoding: the steps in order, each raising on the first thing wrong."""

    def __init__(self, subject: str, path: str) -> None:
        self.subject = subject
        self.path = path
        #: Set by the parse hooks when something needs the walk of :meth:`check_strictness`.
        self.flagged = False

    def fail(self, rule: str, message: str, hint: str, *, path: str | None = None) -> None:
        problem = Problem(self.path if path is None else path, rule, message, hint)
        raise UnreadableDocument([problem], subject=self.subject)

    # -- 1. bytes to text ---------------------------------------------------------------------

    def text(self, data: bytes | bytearray | str, max_bytes: int) -> str:
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
        if len(raw) > max_bytes:
            self.fail(
                Rule.DOCUMENT_SIZE,
                f"the {self.subject} has more than {max_bytes} bytes, the most accepted",
                f"a {self.subject} is a few KiB of JSON: check that the right file was sent",
            )
        if isinstance(data, str):
            return self._checked_text(data.removeprefix("\ufeff"))
        skipped = len(_BOM) if raw.startswith(_BOM) else 0
        try:
            return raw[skipped:].decode("utf-8")
        except UnicodeDecodeError as exc:
            offset = skipped + exc.start
            bad = raw[offset : skipped + exc.end]
            line = raw.count(b"\n", 0, offset) + 1
            self.fail(
                Rule.ENCODING,
                f"not UTF-8: byte {' '.join(f'0x{b:02X}' for b in bad)} at byte offset {offset} "
                f"(line {line}) is {exc.reason}",
                "save the file as UTF-8 (without other encodings such as UTF-16 or Latin-1)",
            )
            raise AssertionError("unreachable") from None

    def _checked_text(self, text: str) -> str:
        """Text given as ``str`` may hold lone surrogates (from ``surrogateescape``)."""
        found = _SURROGATE.search(text)
        if found is not None:
            self.fail(
                Rule.ENCODING,
                f"not Unicode text: character {found.start()} is a lone surrogate "
                f"U+{ord(found.group()):04X} (bytes that were not UTF-8)",
                "send the document as UTF-8 bytes",
            )
        return text

    # -- 2. nesting, before json.loads can recurse -------------------------------------------

    def check_nesting(self, text: str) -> None:
        if text.count("[") + text.count("{") <= MAX_NESTING_DEPTH:
            return  # cannot be too deep: the common case costs two counts
        depth = 0
        for match in _STRING_OR_BRACKET.finditer(text):
            first = match.group()[0]
            if first in "[{":
                depth += 1
                if depth > MAX_NESTING_DEPTH:
                    self._too_deep(text, match.start())
            elif first in "]}":
                depth = max(depth - 1, 0)

    def _too_deep(self, text: str, offset: int) -> None:
        line = text.count("\n", 0, offset) + 1
        column = offset - (text.rfind("\n", 0, offset) + 1) + 1
        self.fail(
            Rule.NESTING,
            f"objects and arrays are nested more than {MAX_NESTING_DEPTH} deep "
            f"(at line {line}, column {column})",
            f"a {self.subject} nests a few levels; at most {MAX_NESTING_DEPTH} are accepted",
        )

    # -- 3. JSON ------------------------------------------------------------------------------

    def parse(self, text: str) -> object:
        try:
            return json.loads(
                text,
                object_pairs_hook=self._object,
                parse_constant=self._constant,
                parse_float=self._float,
                parse_int=self._integer,
            )
        except json.JSONDecodeError as exc:
            self.fail(
                Rule.SYNTAX,
                f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}",
                "fix the JSON syntax (a validator or `python -m json.tool FILE` shows where)",
            )
        except RecursionError:  # the nesting scan makes this unreachable; never let it out
            self._too_deep(text, 0)
        except ValueError as exc:  # no other ValueError is known; never let one out
            self.fail(Rule.SYNTAX, f"not JSON: {exc}", "fix the JSON syntax")
        raise AssertionError("unreachable")

    def _object(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document = dict(pairs)
        if len(document) == len(pairs):
            return document
        self.flagged = True
        counts = Counter(key for key, _ in pairs)
        return _ObjectWithDuplicates(pairs, [key for key, count in counts.items() if count > 1])

    def _constant(self, name: str) -> _BadNumber:
        self.flagged = True
        return _BadNumber(name, Rule.NON_FINITE_NUMBER)

    def _float(self, text: str) -> float | _BadNumber:
        value = float(text)
        if math.isfinite(value):
            return value
        self.flagged = True
        return _BadNumber(text, Rule.NON_FINITE_NUMBER)

    def _integer(self, text: str) -> int | _BadNumber:
        # 17 digits are always beyond 2**53 - 1; int() of thousands of digits would raise.
        if len(text.lstrip("-")) <= 16 and abs(value := int(text)) <= MAX_SAFE_INTEGER:
            return value
        self.flagged = True
        return _BadNumber(text, Rule.NUMBER_RANGE)

    # -- 4. the strict rules, with the path of each value that breaks one --------------------

    def check_strictness(self, value: object, text: str) -> None:
        if not self.flagged and _SURROGATE_ESCAPE.search(text) is None:
            return
        problems = _strictness_problems(value, self.path)
        if problems:
            raise UnreadableDocument(problems[:MAX_LISTED_PROBLEMS], subject=self.subject)


def _child(path: str, key: str) -> str:
    shown = visible(key)
    return f"{path}.{shown}" if path else shown


def _strictness_problems(root: object, root_path: str) -> list[Problem]:
    """Every bad number, duplicate key and lone surrogate, in document order (no recursion)."""
    problems: list[Problem] = []
    pending: deque[tuple[object, str]] = deque([(root, root_path)])
    while pending and len(problems) < MAX_LISTED_PROBLEMS:
        node, path = pending.popleft()
        if isinstance(node, _BadNumber):
            problems.append(_number_problem(node, path))
        elif isinstance(node, str) and _SURROGATE.search(node):
            problems.append(_surrogate_problem(node, path))
        elif isinstance(node, dict):
            for key in getattr(node, "duplicates", ()):
                problems.append(_duplicate_problem(key, _child(path, key)))
            for key, item in node.items():
                if _SURROGATE.search(key):
                    problems.append(_surrogate_problem(key, _child(path, key), in_key=True))
                pending.append((item, _child(path, key)))
        elif isinstance(node, list):
            pending.extend((item, f"{path}[{index}]") for index, item in enumerate(node))
    return problems


def _number_problem(number: _BadNumber, path: str) -> Problem:
    if number.rule == Rule.NUMBER_RANGE:
        digits = number.text if len(number.text) <= 30 else f"a {len(number.text)}-digit number"
        return Problem(
            path,
            Rule.NUMBER_RANGE,
            f"{digits} is beyond +-{MAX_SAFE_INTEGER}, the integers JSON parsers read exactly",
            "use a number in range (every number in a request is small)",
        )
    return Problem(
        path,
        Rule.NON_FINITE_NUMBER,
        f"{number.text} is not a finite number; JSON has no NaN or Infinity",
        "use a finite number",
    )


def _duplicate_problem(key: str, path: str) -> Problem:
    return Problem(
        path,
        Rule.DUPLICATE_KEY,
        f"key {quoted(key)} is given more than once in the same object",
        "give each key once: strict JSON parsers refuse duplicates, and which copy counts "
        "would be a guess",
    )


def _surrogate_problem(text: str, path: str, *, in_key: bool = False) -> Problem:
    found = _SURROGATE.search(text)
    point = f"U+{ord(found.group()):04X}" if found else "a surrogate"
    where = "key" if in_key else "string"
    return Problem(
        path,
        Rule.LONE_SURROGATE,
        f"the {where} holds the escape of a lone surrogate ({point}), which is not a character",
        "escape characters outside the BMP as a pair (\\ud83d\\ude00) or write them as UTF-8",
    )
