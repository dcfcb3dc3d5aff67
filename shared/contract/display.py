"""How values from a request are shown in problem messages: what you see is what was sent.

A gallery name with a zero-width space, a Cyrillic ``a`` (U+0430) in place of a Latin one or a
non-breaking space looks right on screen and is still wrong. So every value a message quotes
goes through :func:`visible`: printable ASCII stays as it is, every other character is written
as its code point (``my<U+200B>gallery``). :func:`describe_character` names one character for
"contains ..." messages (``'-'``, ``U+200B ZERO WIDTH SPACE``).

The one rule everywhere: anything outside printable ASCII is shown as a code point. It is the
simplest rule that makes invisible and look-alike characters impossible to miss; a Unicode
resource group name reads a little less nicely in an error message, and is still unambiguous.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Final

#: Longest value quoted in full; longer ones are cut (with a note of their length).
MAX_SHOWN_CHARACTERS: Final = 100


def is_plain(character: str) -> bool:
    """True for printable ASCII (``' '`` to ``'~'``), which messages show as it is."""
    return " " <= character <= "~"


def code_point(character: str) -> str:
    """``'\\u200b'`` -> ``'U+200B'``."""
    return f"U+{ord(character):04X}"


def visible(text: str, *, limit: int = MAX_SHOWN_CHARACTERS) -> str:
    """``text`` with each character outside printable ASCII written as ``<U+XXXX>``.

    >>> visible("my\\u200bgallery")
    'my<U+200B>gallery'
    >>> visible("x" * 120, limit=5)
    'xxxxx... (120 characters)'
    """
    shown = "".join(c if is_plain(c) else f"<{code_point(c)}>" for c in text[:limit])
    return shown if len(text) <= limit else f"{shown}... ({len(text)} characters)"


def quoted(text: str) -> str:
    """``visible(text)`` in single quotes, the way messages quote values."""
    return f"'{visible(text)}'"


def describe_character(character: str) -> str:
    """``'-'`` for printable ASCII; ``U+200B ZERO WIDTH SPACE`` (its Unicode name) otherwise."""
    if is_plain(character):
        return f"'{character}'"
    name = unicodedata.name(character, "")
    return f"{code_point(character)} {name}" if name else code_point(character)


def describe_characters(characters: Iterable[str], *, limit: int = 5) -> str:
    """The distinct characters, in order of appearance, described and joined (at most
    ``limit``, then how many more)."""
    distinct = list(dict.fromkeys(characters))
    shown = ", ".join(describe_character(c) for c in distinct[:limit])
    more = len(distinct) - limit
    return f"{shown} and {more} more" if more > 0 else shown
