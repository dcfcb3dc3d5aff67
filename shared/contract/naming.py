"""Azure's naming rules for what a request names, one :class:`NameRules` per kind of name.

Each check reports the rule that failed, with its own name: ``<prefix>-length``,
``<prefix>-characters``, ``<prefix>-start``, ``<prefix>-end`` or ``<prefix>-trailing-period``,
and every rule a name breaks, not just the first. Values and characters in messages go through
:mod:`shared.contract.display`, so a zero-width space or a Cyrillic letter shows as a code point.

Sources (see also docs/build-requests.md#naming-rules):

- [ts] "Troubleshoot images in an Azure Compute Gallery",
  https://learn.microsoft.com/azure/virtual-machines/troubleshooting-shared-images
  (MicrosoftDocs/azure-compute-docs, articles/virtual-machines/troubleshooting-shared-images.md):
  the service's own error texts for gallery names, definition names and publisher/offer/SKU;
- [names] "Naming rules and restrictions for Azure resources",
  https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules;
- [types] azure-rest-api-specs ``specification/common-types/resource-management/v3/types.json``,
  ``ResourceGroupNameParameter``: ``^[-\\w\\._\\(\\)]+$``, 1-90 characters.
"""

from __future__ import annotations

import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shared.contract.display import describe_character, describe_characters, quoted
from shared.contract.rules import Rule

_ENGLISH_ALNUM: Final = frozenset(string.ascii_letters + string.digits)
#: What .NET's Char.IsLetterOrDigit accepts: letters of any script and decimal digits.
_LETTER_OR_DIGIT_CATEGORIES: Final = frozenset({"Lu", "Ll", "Lt", "Lm", "Lo", "Nd"})
_ENGLISH: Final = "English letters (A-Z, a-z), digits (0-9)"
_LETTER_OR_DIGIT: Final = "an English letter or a digit"


def _english_or(extra: str) -> Callable[[str], bool]:
    allowed = _ENGLISH_ALNUM | frozenset(extra)
    return allowed.__contains__


def _letter_or_digit_or(extra: str) -> Callable[[str], bool]:
    def allowed(character: str) -> bool:
        return character in extra or unicodedata.category(character) in _LETTER_OR_DIGIT_CATEGORIES

    return allowed


@dataclass(frozen=True)
class NameRules:
    """The rules of one kind of name. ``start``/``end`` are ``None`` when Azure has none."""

    what: str
    length_rule: str
    characters_rule: str
    max_length: int
    allows: Callable[[str], bool]
    allowed_text: str
    start_rule: str | None = None
    end_rule: str | None = None
    #: A character the name may start (end) with; only asked of characters ``allows`` takes.
    start_ok: Callable[[str], bool] = _ENGLISH_ALNUM.__contains__
    end_ok: Callable[[str], bool] = _ENGLISH_ALNUM.__contains__
    start_text: str = _LETTER_OR_DIGIT
    end_text: str = _LETTER_OR_DIGIT
    #: Extra advice when the name holds this character (e.g. a hyphen in a gallery name).
    advice: tuple[tuple[str, str], ...] = ()


#: [ts]: "English alphanumeric characters, with underscores, and periods allowed in the middle,
#: up to 80 characters total. All other special characters, including dashes, are disallowed."
GALLERY_NAME: Final = NameRules(
    what="gallery name",
    length_rule=Rule.GALLERY_NAME_LENGTH,
    characters_rule=Rule.GALLERY_NAME_CHARACTERS,
    max_length=80,
    allows=_english_or("_."),
    allowed_text=f"{_ENGLISH}, underscores (_) and periods (.)",
    start_rule=Rule.GALLERY_NAME_START,
    end_rule=Rule.GALLERY_NAME_END,
    advice=(("-", "gallery names allow no hyphens: use '_' or '.' instead (my_gallery)"),),
)
#: [ts]: "Has an 80-character limit; contains only English letters, numbers, underscores,
#: hyphens and periods; starts and ends with English letters or numbers" (the service's regex
#: ``^[^_\W][\w-._]{0,79}(?<![-.])$``, plus its "invalid trailing characters" check for ``_``).
DEFINITION_NAME: Final = NameRules(
    what="image definition name",
    length_rule=Rule.DEFINITION_NAME_LENGTH,
    characters_rule=Rule.DEFINITION_NAME_CHARACTERS,
    max_length=80,
    allows=_english_or("_.-"),
    allowed_text=f"{_ENGLISH}, underscores (_), hyphens (-) and periods (.)",
    start_rule=Rule.DEFINITION_NAME_START,
    end_rule=Rule.DEFINITION_NAME_END,
)
#: [names] and [types]: 1-90; underscores, hyphens, periods, parentheses, and letters or digits
#: of any script; can't end with a period. Letters and digits are taken as .NET's
#: Char.IsLetterOrDigit (the categories above): stricter than the spec's .NET ``\w``, which
#: would also take combining marks and connector punctuation.
RESOURCE_GROUP_NAME: Final = NameRules(
    what="resource group name",
    length_rule=Rule.RESOURCE_GROUP_NAME_LENGTH,
    characters_rule=Rule.RESOURCE_GROUP_NAME_CHARACTERS,
    max_length=90,
    allows=_letter_or_digit_or("_-.()"),
    allowed_text="letters and digits (any script), underscores (_), hyphens (-), periods (.) "
    "and parentheses",
    end_rule=Rule.RESOURCE_GROUP_NAME_TRAILING_PERIOD,
    end_ok=lambda character: character != ".",
    end_text="anything but a period",
)


def identifier_part(key: str, max_length: int) -> NameRules:
    """``publisher`` (128), ``offer`` or ``sku`` (64) of a definition's identifier. [ts]: "Allowed
    characters are uppercase or lowercase letters, digits, hyphen(-), period (.), underscore
    (_). Names are not allowed to end with period(.)"; "a 128-character limit for publisher or
    64-character limit for offer and SKU". Azure states no rule for the first character; ours
    (a letter or digit) is the stricter choice."""
    return NameRules(
        what=f"definition {key}",
        length_rule=Rule.IDENTIFIER_LENGTH,
        characters_rule=Rule.IDENTIFIER_CHARACTERS,
        max_length=max_length,
        allows=_english_or("_.-"),
        allowed_text=f"{_ENGLISH}, underscores (_), hyphens (-) and periods (.)",
        start_rule=Rule.IDENTIFIER_START,
        end_rule=Rule.IDENTIFIER_TRAILING_PERIOD,
        end_ok=lambda character: character != ".",
        end_text="anything but a period",
    )


PUBLISHER: Final = identifier_part("publisher", 128)
OFFER: Final = identifier_part("offer", 64)
SKU: Final = identifier_part("sku", 64)


@dataclass(frozen=True)
class NameProblem:
    """One broken rule: its name, what is wrong, and how to fix it."""

    rule: str
    message: str
    hint: str


def name_problems(rules: NameRules, name: str) -> list[NameProblem]:
    """Every rule of ``rules`` that the non-empty ``name`` breaks (empty list: valid)."""
    shown = quoted(name)
    problems: list[NameProblem] = []
    if len(name) > rules.max_length:
        problems.append(
            NameProblem(
                rules.length_rule,
                f"{rules.what} {shown} is {len(name)} characters long; "
                f"at most {rules.max_length} are allowed",
                f"shorten it to {rules.max_length} characters or fewer",
            )
        )
    bad = [c for c in name if not rules.allows(c)]
    if bad:
        advice = [text for character, text in rules.advice if character in bad]
        problems.append(
            NameProblem(
                rules.characters_rule,
                f"{rules.what} {shown} contains {describe_characters(bad)}; "
                f"only {rules.allowed_text} are allowed",
                advice[0] if advice else f"use only {rules.allowed_text}",
            )
        )
    problems.extend(_boundary_problems(rules, name, shown))
    return problems


def _boundary_problems(rules: NameRules, name: str, shown: str) -> list[NameProblem]:
    """The first and last character (when allowed at all, else the characters rule said it)."""
    problems: list[NameProblem] = []
    first, last = name[0], name[-1]
    if rules.start_rule and rules.allows(first) and not rules.start_ok(first):
        problems.append(
            NameProblem(
                rules.start_rule,
                f"{rules.what} {shown} starts with {describe_character(first)}; "
                f"it must start with {rules.start_text}",
                f"begin the name with {rules.start_text}",
            )
        )
    if rules.end_rule and rules.allows(last) and not rules.end_ok(last):
        problems.append(
            NameProblem(
                rules.end_rule,
                f"{rules.what} {shown} ends with {describe_character(last)}; "
                f"it must end with {rules.end_text}",
                f"drop the trailing {describe_character(last)}",
            )
        )
    return problems
