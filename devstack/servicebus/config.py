"""Entity configuration of the Service Bus emulator: queues, topics and subscriptions.

The file is JSON and mirrors the property names of the real Service Bus (ARM / ATOM) with
ISO-8601 durations::

    {"queues": [{"name": "image-builds", "lockDuration": "PT30S", "maxDeliveryCount": 5,
                 "defaultMessageTimeToLive": "P14D", "requiresDuplicateDetection": true,
                 "duplicateDetectionHistoryTimeWindow": "PT10M",
                 "deadLetteringOnMessageExpiration": false}],
     "topics": [{"name": "image-build-events", "defaultMessageTimeToLive": "P14D",
                 "subscriptions": [{"name": "tracker", "lockDuration": "PT30S"}]}]}

Omitted properties take the real service's defaults. Unknown properties are an error, so a typo
cannot silently fall back to a default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent / "default_config.json"

# Service Bus defaults (Standard tier). TimeSpan.MaxValue stands for "never expires".
DEFAULT_LOCK_DURATION_S = 60.0
DEFAULT_MAX_DELIVERY_COUNT = 10
DEFAULT_DUPLICATE_WINDOW_S = 600.0
MAX_LOCK_DURATION_S = 300.0
NEVER_EXPIRES_S = 10675199 * 86400.0

_ENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/~]{0,259}$")
_SUBSCRIPTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-~]{0,49}$")
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


class ConfigError(ValueError):
    """The emulator's entity configuration is invalid (names the field and the rule)."""


def parse_duration(text: str, *, field_name: str = "duration") -> float:
    """An ISO-8601 duration such as ``PT30S``, ``P14D`` or ``P1DT2H`` in seconds."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if match is None or text.strip() in {"P", "PT"} or text.strip().endswith("T"):
        raise ConfigError(f"{field_name}: {text!r} is not an ISO-8601 duration like PT30S or P14D")
    parts = {key: float(value) if value else 0.0 for key, value in match.groupdict().items()}
    return (
        parts["weeks"] * 7 * 86400
        + parts["days"] * 86400
        + parts["hours"] * 3600
        + parts["minutes"] * 60
        + parts["seconds"]
    )


@dataclass(frozen=True)
class ReceiveSettings:
    """How a receivable entity (queue or subscription) treats its messages."""

    lock_duration_s: float = DEFAULT_LOCK_DURATION_S
    max_delivery_count: int = DEFAULT_MAX_DELIVERY_COUNT
    default_ttl_s: float = NEVER_EXPIRES_S
    dead_lettering_on_expiration: bool = False


@dataclass(frozen=True)
class SendSettings:
    """How an entity that accepts messages (queue or topic) treats incoming messages."""

    default_ttl_s: float = NEVER_EXPIRES_S
    requires_duplicate_detection: bool = False
    duplicate_window_s: float = DEFAULT_DUPLICATE_WINDOW_S


@dataclass(frozen=True)
class QueueConfig:
    """A queue: it accepts messages and delivers them."""

    name: str
    send: SendSettings
    receive: ReceiveSettings


@dataclass(frozen=True)
class SubscriptionConfig:
    """A subscription of a topic: receives a copy of every message sent to the topic."""

    name: str
    receive: ReceiveSettings


@dataclass(frozen=True)
class TopicConfig:
    """A topic: it accepts messages and fans them out to its subscriptions (no filters)."""

    name: str
    send: SendSettings
    subscriptions: tuple[SubscriptionConfig, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class NamespaceConfig:
    """Every entity of the emulated namespace."""

    queues: tuple[QueueConfig, ...]
    topics: tuple[TopicConfig, ...]


_QUEUE_KEYS = {
    "name",
    "lockDuration",
    "maxDeliveryCount",
    "defaultMessageTimeToLive",
    "requiresDuplicateDetection",
    "duplicateDetectionHistoryTimeWindow",
    "deadLetteringOnMessageExpiration",
}
_TOPIC_KEYS = {
    "name",
    "defaultMessageTimeToLive",
    "requiresDuplicateDetection",
    "duplicateDetectionHistoryTimeWindow",
    "subscriptions",
}
_SUBSCRIPTION_KEYS = {
    "name",
    "lockDuration",
    "maxDeliveryCount",
    "defaultMessageTimeToLive",
    "deadLetteringOnMessageExpiration",
}


def _check_keys(raw: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown properties {unknown}; allowed: {sorted(allowed)}")


def _bool(raw: dict[str, Any], key: str, default: bool, where: str) -> bool:
    value = raw.get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"{where}.{key}: must be true or false, got {value!r}")
    return value


def _duration(raw: dict[str, Any], key: str, default: float, where: str) -> float:
    if key not in raw:
        return default
    seconds = parse_duration(raw[key], field_name=f"{where}.{key}")
    if seconds <= 0:
        raise ConfigError(f"{where}.{key}: must be longer than zero")
    return seconds


def _receive_settings(raw: dict[str, Any], where: str) -> ReceiveSettings:
    lock = _duration(raw, "lockDuration", DEFAULT_LOCK_DURATION_S, where)
    if lock > MAX_LOCK_DURATION_S:
        raise ConfigError(f"{where}.lockDuration: at most PT5M (the Service Bus maximum)")
    max_count = raw.get("maxDeliveryCount", DEFAULT_MAX_DELIVERY_COUNT)
    if isinstance(max_count, bool) or not isinstance(max_count, int) or max_count < 1:
        raise ConfigError(f"{where}.maxDeliveryCount: must be an integer >= 1, got {max_count!r}")
    return ReceiveSettings(
        lock_duration_s=lock,
        max_delivery_count=max_count,
        default_ttl_s=_duration(raw, "defaultMessageTimeToLive", NEVER_EXPIRES_S, where),
        dead_lettering_on_expiration=_bool(raw, "deadLetteringOnMessageExpiration", False, where),
    )


def _send_settings(raw: dict[str, Any], where: str) -> SendSettings:
    window = _duration(
        raw, "duplicateDetectionHistoryTimeWindow", DEFAULT_DUPLICATE_WINDOW_S, where
    )
    return SendSettings(
        default_ttl_s=_duration(raw, "defaultMessageTimeToLive", NEVER_EXPIRES_S, where),
        requires_duplicate_detection=_bool(raw, "requiresDuplicateDetection", False, where),
        duplicate_window_s=window,
    )


def _name(raw: dict[str, Any], pattern: re.Pattern[str], where: str) -> str:
    name = raw.get("name")
    if not isinstance(name, str) or not pattern.match(name) or "$" in name:
        raise ConfigError(f"{where}.name: {name!r} is not a valid entity name")
    return name


def parse_config(raw: Any) -> NamespaceConfig:
    """Validate a decoded config document and build the :class:`NamespaceConfig`."""
    if not isinstance(raw, dict):
        raise ConfigError("config: the document must be a JSON object")
    _check_keys(raw, {"queues", "topics"}, "config")
    queues: list[QueueConfig] = []
    topics: list[TopicConfig] = []
    seen: set[str] = set()
    for index, item in enumerate(raw.get("queues", [])):
        where = f"queues[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be an object")
        _check_keys(item, _QUEUE_KEYS, where)
        name = _name(item, _ENTITY_NAME, where)
        if name.lower() in seen:
            raise ConfigError(
                f"{where}.name: {name!r} is declared twice (names are case-insensitive)"
            )
        seen.add(name.lower())
        queues.append(
            QueueConfig(name, _send_settings(item, where), _receive_settings(item, where))
        )
    for index, item in enumerate(raw.get("topics", [])):
        where = f"topics[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be an object")
        _check_keys(item, _TOPIC_KEYS, where)
        name = _name(item, _ENTITY_NAME, where)
        if name.lower() in seen:
            raise ConfigError(
                f"{where}.name: {name!r} is declared twice (names are case-insensitive)"
            )
        seen.add(name.lower())
        subscriptions: list[SubscriptionConfig] = []
        sub_names: set[str] = set()
        for sub_index, sub in enumerate(item.get("subscriptions", [])):
            sub_where = f"{where}.subscriptions[{sub_index}]"
            if not isinstance(sub, dict):
                raise ConfigError(f"{sub_where}: must be an object")
            _check_keys(sub, _SUBSCRIPTION_KEYS, sub_where)
            sub_name = _name(sub, _SUBSCRIPTION_NAME, sub_where)
            if sub_name.lower() in sub_names:
                raise ConfigError(f"{sub_where}.name: {sub_name!r} is declared twice")
            sub_names.add(sub_name.lower())
            subscriptions.append(SubscriptionConfig(sub_name, _receive_settings(sub, sub_where)))
        topics.append(TopicConfig(name, _send_settings(item, where), tuple(subscriptions)))
    return NamespaceConfig(queues=tuple(queues), topics=tuple(topics))


def load_config(path: Path | None = None) -> NamespaceConfig:
    """Read the config file at ``path`` (the packaged default config when ``None``)."""
    source = path or DEFAULT_CONFIG_PATH
    try:
        raw = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ConfigError(f"{source}: not valid JSON ({error})") from error
    return parse_config(raw)
