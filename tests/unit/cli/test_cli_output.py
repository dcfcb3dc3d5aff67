"""The output layer: az-style table, tsv, yaml, jsonc, none, and --query."""

from __future__ import annotations

import argparse
import json

import pytest

from shared.cli import formats
from shared.cli.output import compile_query, render

BUILDS = [
    {"buildId": "b-1", "state": "failed", "progress": 40, "ok": False, "target": {"g": "x"}},
    {"buildId": "b-2", "state": "succeeded", "progress": 100, "ok": True, "regions": [1, 2]},
]


def test_a_table_has_a_column_per_scalar_field_and_a_dashed_rule() -> None:
    lines = formats.table(BUILDS).splitlines()
    assert lines[0].split() == ["BuildId", "State", "Progress", "Ok"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["b-1", "failed", "40", "false"]
    assert lines[3].split() == ["b-2", "succeeded", "100", "true"]
    assert "target" not in formats.table(BUILDS).lower()  # nested values are left out, as az


def test_a_table_never_cuts_a_cell() -> None:
    fix = "use one of: " + ", ".join(f"Standard_{n}" for n in range(40))
    text = formats.table([{"rule": "enum", "hint": fix}])
    assert fix in text


def test_a_table_of_scalars_and_of_one_object() -> None:
    assert formats.table(["a", "b"]).splitlines() == ["Result", "------", "a", "b"]
    assert formats.table({"name": "x", "n": None}).splitlines()[2].split() == ["x"]
    assert formats.table([]) == ""


def test_tsv_has_no_header_and_one_line_per_record() -> None:
    text = formats.tsv([*BUILDS, {"buildId": "b-3", "note": "two\tcells\nand lines", "v": None}])
    assert text.splitlines() == [
        "b-1\tfailed\t40\tfalse\t",  # a nested object is an empty cell
        "b-2\tsucceeded\t100\ttrue\t2",  # a nested array is its length, as az
        "b-3\ttwo cells and lines\t",
    ]
    assert formats.tsv(["x", 1, True]) == "x\n1\ntrue"
    assert formats.tsv("b-1") == "b-1"


def test_yaml_blocks_and_quoting() -> None:
    document = {
        "build": {"id": "b-1", "version": "1.0.3", "ok": True, "error": None},
        "regions": [{"name": "West Europe", "progress": 40}, {"name": "East US", "progress": 0}],
        "words": ["yes", "no", "plain", "a: b", "#x", "", "https://x/y"],
        "empty": {},
        "none": [],
    }
    assert formats.yaml(document).splitlines() == [
        "build:",
        "  id: b-1",
        '  version: "1.0.3"',
        "  ok: true",
        "  error: null",
        "regions:",
        "  - name: West Europe",
        "    progress: 40",
        "  - name: East US",
        "    progress: 0",
        "words:",
        '  - "yes"',
        '  - "no"',
        "  - plain",
        '  - "a: b"',
        '  - "#x"',
        '  - ""',
        "  - https://x/y",
        "empty: {}",
        "none: []",
    ]


def test_yaml_of_nested_lists_and_scalars() -> None:
    assert formats.yaml([[1, 2], [{"a": "\u200b"}]]).splitlines() == [
        "- - 1",
        "  - 2",
        '- - a: "\\u200b"',
    ]
    assert formats.yaml("text") == "text"
    assert formats.yaml(3.5) == "3.5"


def test_jsonc_colours_keys_strings_numbers_and_literals() -> None:
    text = formats.jsonc({"name": "b-1", "n": 4, "ok": True, "none": None})
    assert '\x1b[94m"name"\x1b[0m: \x1b[32m"b-1"\x1b[0m' in text
    assert "\x1b[36m4\x1b[0m" in text and "\x1b[35mtrue\x1b[0m" in text
    plain = text.replace("\x1b[0m", "")
    for colour in ("\x1b[94m", "\x1b[32m", "\x1b[36m", "\x1b[35m"):
        plain = plain.replace(colour, "")
    assert json.loads(plain) == {"name": "b-1", "n": 4, "ok": True, "none": None}


def test_jsonc_is_plain_json_when_stdout_is_no_terminal() -> None:
    data = {"a": [1, "x"]}
    assert render(data, "jsonc", human=None, query=None, tty=False) == json.dumps(data, indent=2)
    assert "\x1b[" in render(data, "jsonc", human=None, query=None, tty=True)


def test_the_human_view_is_the_default_table_but_not_with_a_query() -> None:
    def view(_data: object) -> str:
        return "for people"

    assert render(BUILDS, "table", human=view, query=None, tty=False) == "for people"
    queried = render(BUILDS, "table", human=view, query="[].buildId", tty=False)
    assert queried.splitlines() == ["Result", "------", "b-1", "b-2"]
    assert render(BUILDS, "json", human=view, query=None, tty=False).startswith("[")
    assert render(BUILDS, "none", human=view, query=None, tty=False) == ""


def test_a_query_applies_before_every_format() -> None:
    query = "[?state=='failed'].{id: buildId, progress: progress}"
    assert json.loads(render(BUILDS, "json", human=None, query=query, tty=False)) == [
        {"id": "b-1", "progress": 40}
    ]
    assert render(BUILDS, "tsv", human=None, query=query, tty=False) == "b-1\t40"
    assert render(BUILDS, "yaml", human=None, query="[0].buildId", tty=False) == "b-1"


def test_a_bad_query_is_refused_when_the_arguments_are_read() -> None:
    assert compile_query("[].buildId") == "[].buildId"
    with pytest.raises(argparse.ArgumentTypeError, match="invalid JMESPath"):
        compile_query("[?state==")


def test_a_list_of_arrays_has_numbered_columns_as_az() -> None:
    rows = [["b-1", "failed"], ["b-2", "succeeded"]]
    assert formats.table(rows).splitlines()[0].split() == ["Column1", "Column2"]
    assert formats.tsv(rows) == "b-1\tfailed\nb-2\tsucceeded"
