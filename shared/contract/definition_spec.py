"""Reads the ``definitionSpec`` section of a build request: how to create a missing definition."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from shared.contract.model import (
    DEFAULT_ARCHITECTURE,
    DEFAULT_HYPERV_GENERATION,
    DefinitionFeature,
    DefinitionSpec,
)
from shared.contract.naming import OFFER, PUBLISHER, SKU, NameRules
from shared.contract.reader import DocumentReader
from shared.contract.rules import ARCHITECTURES, HYPERV_GENERATIONS, OS_STATES, OS_TYPES

_PATH: Final = "definitionSpec"
_FIELDS: Final = (
    "osType",
    "osState",
    "hyperVGeneration",
    "architecture",
    "publisher",
    "offer",
    "sku",
    "features",
)
_REQUIRED: Final = ("osType", "osState", "publisher", "offer", "sku")
_IDENTIFIER_RULES: Final[dict[str, NameRules]] = {
    "publisher": PUBLISHER,
    "offer": OFFER,
    "sku": SKU,
}


def read_definition_spec(reader: DocumentReader, value: object) -> DefinitionSpec | None:
    """Read ``definitionSpec``; ``None`` when any part of it has a problem (each is recorded)."""
    spec = reader.read_object(value, _PATH, allowed=_FIELDS, required=_REQUIRED)
    if spec is None:
        return None
    before = len(reader.problems)
    os_type = reader.enum(spec, "osType", _PATH, OS_TYPES)
    os_state = reader.enum(spec, "osState", _PATH, OS_STATES)
    generation = reader.enum(spec, "hyperVGeneration", _PATH, HYPERV_GENERATIONS)
    architecture = reader.enum(spec, "architecture", _PATH, ARCHITECTURES)
    identifier = {
        key: reader.name(spec, key, _PATH, rules) for key, rules in _IDENTIFIER_RULES.items()
    }
    features = _read_features(reader, spec)
    if len(reader.problems) != before or os_type is None or os_state is None:
        return None
    return DefinitionSpec(
        os_type=os_type,
        os_state=os_state,
        publisher=str(identifier["publisher"]),
        offer=str(identifier["offer"]),
        sku=str(identifier["sku"]),
        hyper_v_generation=generation or DEFAULT_HYPERV_GENERATION,
        architecture=architecture or DEFAULT_ARCHITECTURE,
        features=tuple(features),
    )


def _read_features(reader: DocumentReader, spec: Mapping[str, object]) -> list[DefinitionFeature]:
    """The ``{"name", "value"}`` features read without a problem."""
    features: list[DefinitionFeature] = []
    for index, item in enumerate(reader.array(spec, "features", _PATH) or []):
        where = f"{_PATH}.features[{index}]"
        feature = reader.read_object(
            item, where, allowed=("name", "value"), required=("name", "value")
        )
        if feature is None:
            continue
        name = reader.string(feature, "name", where, max_length=128)
        feature_value = reader.string(feature, "value", where, max_length=256)
        if name is not None and feature_value is not None:
            features.append(DefinitionFeature(name, feature_value))
    return features
