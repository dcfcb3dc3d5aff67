"""decode_document: every byte sequence becomes a dict or a ValidationFailed naming the rule."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.contract.decode import (
    MAX_DOCUMENT_BYTES,
    MAX_NESTING_DEPTH,
    UnreadableDocument,
    decode_document,
    decode_json,
)
from shared.contract.rules import Rule
from shared.core.errors import Problem, ValidationFailed, describe


def problems(data: bytes | str, **kwargs: Any) -> list[Problem]:
    with pytest.raises(ValidationFailed) as caught:
        decode_document(data, **kwargs)
    return caught.value.problems


def only(data: bytes | str, **kwargs: Any) -> Problem:
    (problem,) = problems(data, **kwargs)
    return problem


# -- arbitrary bytes: a dict or a ValidationFailed, nothing else --------------------------------


@settings(max_examples=600, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_are_a_dict_or_a_reject(data: bytes) -> None:
    outcome = _decode(data)
    if isinstance(outcome, ValidationFailed):
        assert outcome.problems and all(p.rule for p in outcome.problems)
        describe(outcome).encode("utf-8")  # printable: no lone surrogate reaches a message
    else:
        assert isinstance(outcome, dict)


def _decode(data: bytes | str) -> dict[str, Any] | ValidationFailed:
    """The document, or the ValidationFailed; any other exception fails the test."""
    try:
        return decode_document(data)
    except ValidationFailed as error:
        return error


_JSON_ALPHABET = st.sampled_from(list('{}[]",:0123456789.eE+-tfnrlusaNIy \\\n\ud800\u200b\xff'))


@settings(max_examples=600, deadline=None)
@given(st.lists(_JSON_ALPHABET, max_size=200).map("".join))
def test_json_looking_text_is_a_dict_or_a_reject(text: str) -> None:
    for data in (text, text.encode("utf-8", "surrogatepass")):
        outcome = _decode(data)
        if isinstance(outcome, ValidationFailed):
            describe(outcome).encode("utf-8")
        else:
            assert isinstance(outcome, dict)


_LEAVES = st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8)
_VALUES = st.recursive(
    _LEAVES | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=6), _VALUES, max_size=5))
def test_valid_documents_decode_to_what_json_loads_gives(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    assert decode_document(text.encode()) == json.loads(text)
    assert decode_document(json.dumps(document, ensure_ascii=False).encode()) == document


# -- size, encoding, syntax ---------------------------------------------------------------------


def test_an_oversized_document_is_refused_before_it_is_read() -> None:
    data = b'{"a": "' + b"x" * MAX_DOCUMENT_BYTES + b'"}'
    problem = only(data)
    assert problem.rule == Rule.DOCUMENT_SIZE
    assert str(MAX_DOCUMENT_BYTES) in problem.message


def test_invalid_utf8_names_the_byte_offset() -> None:
    data = b'{"target": "gal\xfflery"}'
    problem = only(data)
    assert problem.rule == Rule.ENCODING
    assert "offset 15" in problem.message and "0xFF" in problem.message
    with pytest.raises(UnreadableDocument):
        decode_document(data)


def test_the_offset_counts_a_leading_bom() -> None:
    problem = only(b'\xef\xbb\xbf{"a": "\xc3"}')
    assert problem.rule == Rule.ENCODING and "offset 10" in problem.message


def test_a_truncated_multibyte_character_is_an_encoding_problem() -> None:
    assert only(b'{"a": "\xe2\x82"}').rule == Rule.ENCODING


def test_utf16_is_not_utf8() -> None:
    assert only('{"a": 1}'.encode("utf-16")).rule == Rule.ENCODING


def test_a_utf8_bom_is_accepted() -> None:
    assert decode_document(b'\xef\xbb\xbf{"a": 1}') == {"a": 1}
    assert decode_document('\ufeff{"a": 1}') == {"a": 1}


def test_text_with_a_raw_lone_surrogate_is_an_encoding_problem() -> None:
    problem = only('{"a": "\ud800"}')
    assert problem.rule == Rule.ENCODING and "U+D800" in problem.message


def test_syntax_errors_name_line_and_column() -> None:
    problem = only(b'{\n  "target": ,\n}')
    assert problem.rule == Rule.SYNTAX
    assert "line 2, column 13" in problem.message
    assert problem.message.startswith("not JSON:")


@pytest.mark.parametrize("data", [b"", b"   ", b"{", b'{"a": 1} {"b": 2}', b"{'a': 1}", b"\x00"])
def test_other_broken_json_is_a_syntax_problem(data: bytes) -> None:
    assert only(data).rule == Rule.SYNTAX


# -- nesting ------------------------------------------------------------------------------------


def test_a_100000_deep_array_is_refused_without_recursing() -> None:
    problem = only(b"[" * 100_000 + b"]" * 100_000)
    assert problem.rule == Rule.NESTING
    assert str(MAX_NESTING_DEPTH) in problem.message
    assert "line 1, column 65" in problem.message


def test_a_deep_object_is_refused() -> None:
    data = '{"a": ' * 5000 + "1" + "}" * 5000
    assert only(data).rule == Rule.NESTING


def test_an_unclosed_deep_array_is_refused_too() -> None:
    assert only(b"[" * 100_000).rule == Rule.NESTING


def test_brackets_inside_strings_do_not_count() -> None:
    text = json.dumps({"a": "[" * 10_000, "b": '\\"[[[' * 100, "c": [[["x"]]]})
    assert decode_document(text)["a"] == "[" * 10_000


def test_nesting_up_to_the_limit_is_fine() -> None:
    inner = MAX_NESTING_DEPTH - 1  # the top-level object is the first level
    fine = '{"a": ' + "[" * inner + "]" * inner + "}"
    assert isinstance(decode_document(fine)["a"], list)
    too_deep = '{"a": ' + "[" * (inner + 1) + "]" * (inner + 1) + "}"
    assert only(too_deep).rule == Rule.NESTING


# -- strictness: what Azure's JSON and RFC 7493 (I-JSON) refuse ---------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1E999"])
def test_non_finite_numbers_are_refused(literal: str) -> None:
    problem = only(f'{{"publishing": {{"replicaCount": {literal}}}}}')
    assert (problem.path, problem.rule) == ("publishing.replicaCount", Rule.NON_FINITE_NUMBER)
    assert literal in problem.message


def test_huge_integers_are_refused_without_crashing() -> None:
    problem = only('{"a": [1, ' + "9" * 5000 + "]}")
    assert (problem.path, problem.rule) == ("a[1]", Rule.NUMBER_RANGE)
    assert only('{"a": 9007199254740992}').rule == Rule.NUMBER_RANGE
    assert decode_document('{"a": -9007199254740991}') == {"a": -(2**53) + 1}


def test_duplicate_keys_are_refused_naming_the_key() -> None:
    problem = only('{"target": {"gallery": "a", "gallery": "b"}}')
    assert (problem.path, problem.rule) == ("target.gallery", Rule.DUPLICATE_KEY)
    assert "'gallery'" in problem.message


def test_every_duplicate_is_listed() -> None:
    found = {(p.path, p.rule) for p in problems('{"a": 1, "a": 2, "b": [{"c": 1, "c": 1}]}')}
    assert found == {("a", Rule.DUPLICATE_KEY), ("b[0].c", Rule.DUPLICATE_KEY)}


def test_lone_surrogate_escapes_are_refused() -> None:
    problem = only('{"tags": {"team": "a\\ud800b"}}')
    assert (problem.path, problem.rule) == ("tags.team", Rule.LONE_SURROGATE)
    assert "U+D800" in problem.message
    key = only('{"\\udfff": 1}')
    assert key.rule == Rule.LONE_SURROGATE and "<U+DFFF>" in key.path


def test_a_surrogate_pair_escape_is_a_character() -> None:
    assert decode_document('{"a": "\\ud83d\\ude00"}') == {"a": "\U0001f600"}


def test_an_escaped_backslash_before_u_d800_is_just_text() -> None:
    assert decode_document('{"a": "\\\\ud800"}') == {"a": "\\ud800"}


def test_the_number_of_problems_listed_is_capped() -> None:
    data = "{" + ", ".join(f'"k": {i}' for i in range(500)) + "}"
    assert 1 <= len(problems(data)) <= 20


# -- the top level is an object -----------------------------------------------------------------


@pytest.mark.parametrize(("data", "kind"), [("[]", "array"), ('"x"', "string"), ("null", "null")])
def test_the_top_level_must_be_an_object(data: str, kind: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_document(data)
    (problem,) = caught.value.problems
    assert (problem.path, problem.rule) == ("", Rule.DOCUMENT_TYPE)
    assert kind in problem.message
    assert caught.value.reason == "ValidationFailed"  # readable JSON, just not a request


def test_unreadable_documents_have_their_own_reason() -> None:
    with pytest.raises(UnreadableDocument) as caught:
        decode_document(b"{nope")
    assert caught.value.reason == "InvalidJson"
    assert "not JSON" in describe(caught.value)


def test_subject_and_path_are_used() -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_document(b'{"a": 1, "a": 2}', subject="manifest", path="manifest")
    assert caught.value.subject == "manifest"
    assert caught.value.problems[0].path == "manifest.a"


def test_decode_json_takes_any_top_level_value() -> None:
    assert decode_json("[1, 2]") == [1, 2]
    with pytest.raises(ValidationFailed):
        decode_json("[NaN]")
