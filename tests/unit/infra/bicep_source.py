"""Reading ``infra/**/*.bicep`` without a Bicep compiler: ``pycep-parser`` and a few helpers.

pycep turns a file into JSON-like dictionaries: ``parameters``, ``variables``, ``resources`` and
``modules`` keyed by symbolic name. Identifiers and string literals both come out as ``str``, so
a value is resolved against the file's variables where a variable of that name exists.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[3]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"

#: Built-in roles the templates may assign: data-plane roles and Monitoring Metrics Publisher.
ALLOWED_BUILTIN_ROLES: dict[str, str] = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "69a216fc-b8fb-44d8-bc22-1f3c2cd27a39": "Azure Service Bus Data Sender",
    "4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0": "Azure Service Bus Data Receiver",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
#: Never assigned, by name or by GUID.
FORBIDDEN_ROLES: dict[str, str] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
}
GUID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE
)
ROLE_ASSIGNMENT = "Microsoft.Authorization/roleAssignments"


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def relative(path: Path) -> str:
    return path.relative_to(INFRA).as_posix()


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()


@functools.cache
def parsed(path: Path) -> dict[str, Any]:
    """The pycep document of one file (cached: parsing is the slow part)."""
    return cast(dict[str, Any], _parser().parse(file_path=path))


def target_scope(path: Path) -> str:
    scope = parsed(path).get("globals", {}).get("scope", {})
    return str(scope.get("value", "resourceGroup"))


def unwrap(config: dict[str, Any]) -> dict[str, Any]:
    """The body of a resource or module, under its loop or condition if it has one."""
    if "config" in config and ("loop_type" in config or "condition" in config):
        return cast(dict[str, Any], config["config"])
    return config


def resources(path: Path) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], parsed(path).get("resources", {}))


def resource_bodies(path: Path, resource_type: str) -> list[dict[str, Any]]:
    """Bodies of the resources of one type that a file creates (``existing`` ones left out)."""
    return [
        unwrap(resource["config"])
        for resource in resources(path).values()
        if resource["type"] == resource_type and not resource["existing"]
    ]


def created_anywhere(resource_type: str) -> list[tuple[Path, dict[str, Any]]]:
    return [(path, body) for path in bicep_files() for body in resource_bodies(path, resource_type)]


def modules(path: Path) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], parsed(path).get("modules", {}))


def module_target(path: Path, module: dict[str, Any]) -> Path:
    return (path.parent / str(module["detail"]["path"])).resolve()


def module_params(module: dict[str, Any]) -> dict[str, Any]:
    return cast(dict[str, Any], unwrap(module["config"]).get("params", {}))


def variables(path: Path) -> dict[str, Any]:
    return {name: entry["value"] for name, entry in parsed(path).get("variables", {}).items()}


def parameters(path: Path) -> dict[str, dict[str, Any]]:
    return cast(dict[str, dict[str, Any]], parsed(path).get("parameters", {}))


def resolve(path: Path, value: Any) -> Any:
    """A value, with a bare variable name replaced by the variable's value."""
    if isinstance(value, str):
        known = variables(path)
        if value in known:
            return known[value]
    return value


def render(value: Any) -> str:
    """A compact text form of a pycep expression, enough to compare references."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, dict) and "operator" in value:
        operator = value["operator"]
        operands = operator.get("operands", {})
        if operator["type"] == "property_accessor":
            return f"{render(operands['operand_1'])}.{render(operands['operand_2'])}"
        return f"{operator['type']}({', '.join(render(v) for v in operands.values())})"
    if isinstance(value, dict) and "function" in value:
        function = value["function"]
        arguments = function.get("parameters", {}).values()
        return f"{function['type']}({', '.join(render(v) for v in arguments if v is not None)})"
    return json.dumps(value, sort_keys=True, default=str)


def setting_key(key: str) -> str:
    """An object key as written (quoted keys keep their quotes in pycep)."""
    return key.strip("'")


def strip_comments(text: str) -> str:
    """Bicep source without ``//`` and ``/* */`` comments; string literals are kept whole."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text.startswith("'''", i):
            end = text.find("'''", i + 3)
            end = n if end < 0 else end + 3
            out.append(text[i:end])
            i = end
        elif text[i] == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def string_literals(text: str) -> list[str]:
    """Every single-quoted string literal of a Bicep source (comments removed)."""
    return re.findall(r"'((?:[^'\\\n]|\\.)*)'", strip_comments(text).replace("'''", "\n"))
