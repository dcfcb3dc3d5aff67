"""AMQP 1.0 message sections, split and rebuilt at the byte level with ``proton.Data``.

The emulator keeps every message exactly as the client encoded it and only rewrites the
sections the broker owns: the header (delivery count, time to live), the message annotations
(``x-opt-sequence-number``, ``x-opt-enqueued-time``, ``x-opt-locked-until``, ...) and, for
dead-lettered messages, two application properties. ``proton.Message`` is not used for
payloads because its ``decode`` keeps only the last ``data`` section.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from proton import Data, Described, symbol

logger = logging.getLogger(__name__)

HEADER = 0x70
DELIVERY_ANNOTATIONS = 0x71
MESSAGE_ANNOTATIONS = 0x72
PROPERTIES = 0x73
APPLICATION_PROPERTIES = 0x74
DATA = 0x75
AMQP_SEQUENCE = 0x76
AMQP_VALUE = 0x77
FOOTER = 0x78

_SYMBOLIC_DESCRIPTORS = {
    "amqp:header:list": HEADER,
    "amqp:delivery-annotations:map": DELIVERY_ANNOTATIONS,
    "amqp:message-annotations:map": MESSAGE_ANNOTATIONS,
    "amqp:properties:list": PROPERTIES,
    "amqp:application-properties:map": APPLICATION_PROPERTIES,
    "amqp:data:binary": DATA,
    "amqp:amqp-sequence:list": AMQP_SEQUENCE,
    "amqp:value:*": AMQP_VALUE,
    "amqp:footer:map": FOOTER,
}
_BODY_SECTIONS = {DATA, AMQP_SEQUENCE, AMQP_VALUE}
_BEFORE_APPLICATION_PROPERTIES = {HEADER, DELIVERY_ANNOTATIONS, MESSAGE_ANNOTATIONS, PROPERTIES}

SCHEDULED_ENQUEUE_TIME = symbol("x-opt-scheduled-enqueue-time")


class CodecError(ValueError):
    """The bytes are not a well-formed AMQP message."""


@dataclass(frozen=True)
class Section:
    """One encoded section of a message: its descriptor code and its exact bytes."""

    code: int
    raw: bytes

    def value(self) -> Any:
        """The decoded value of the section (list, dict, bytes, ...)."""
        data = Data()
        data.decode(self.raw)
        data.rewind()
        data.next()
        described = data.get_object()
        value = described.value if isinstance(described, Described) else described
        return bytes(value) if isinstance(value, memoryview) else value


def split_sections(payload: bytes) -> list[Section]:
    """Split an encoded message into its sections; raise :class:`CodecError` if malformed."""
    view = memoryview(payload)
    sections: list[Section] = []
    offset = 0
    while offset < len(view):
        data = Data()
        try:
            used = data.decode(view[offset:])  # type: ignore[arg-type]  # any buffer works
        except Exception as error:  # proton raises DataException subclasses
            raise CodecError(f"undecodable AMQP data at byte {offset}: {error}") from error
        if used <= 0:
            raise CodecError(f"undecodable AMQP data at byte {offset}")
        data.rewind()
        data.next()
        if data.type() != Data.DESCRIBED:
            raise CodecError(f"byte {offset}: a message section must be a described type")
        data.enter()
        data.next()
        descriptor = data.get_object()
        data.exit()
        if isinstance(descriptor, int):
            code = int(descriptor)
        elif isinstance(descriptor, str) and descriptor in _SYMBOLIC_DESCRIPTORS:
            code = _SYMBOLIC_DESCRIPTORS[descriptor]
        else:
            raise CodecError(f"byte {offset}: unknown section descriptor {descriptor!r}")
        if not HEADER <= code <= FOOTER:
            raise CodecError(f"byte {offset}: unknown section descriptor 0x{code:x}")
        sections.append(Section(code, bytes(view[offset : offset + used])))
        offset += used
    if not sections:
        raise CodecError("an empty transfer is not a message")
    return sections


def _looks_like_message(payload: bytes) -> bool:
    try:
        sections = split_sections(payload)
    except CodecError:
        return False
    return any(section.code in _BODY_SECTIONS for section in sections)


def unpack_transfer(payload: bytes) -> list[bytes]:
    """The messages carried by one transfer.

    A batch (``send_messages([...])``, message format 0x80013700) is an envelope whose body
    is several ``data`` sections, each an encoded message. Proton does not expose the message
    format of a delivery, so an envelope is recognised by shape: no header, no application
    properties, only ``data`` body sections, and every one of them decodes as a message.
    """
    sections = split_sections(payload)
    codes = {section.code for section in sections}
    data_sections = [section for section in sections if section.code == DATA]
    if (
        data_sections
        and HEADER not in codes
        and APPLICATION_PROPERTIES not in codes
        and not codes & {AMQP_VALUE, AMQP_SEQUENCE}
    ):
        inner = [section.value() for section in data_sections]
        if all(isinstance(item, bytes) and _looks_like_message(item) for item in inner):
            return [bytes(item) for item in inner]
    return [payload]


@dataclass(frozen=True)
class MessageFacts:
    """What the broker needs to know about an incoming message."""

    message_id: str | None
    ttl_ms: int | None
    scheduled_enqueue_ms: int | None


def _to_ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1000)
    if isinstance(value, int | float):
        return int(value)
    return None


def read_facts(payload: bytes) -> MessageFacts:
    """Message id, header TTL and scheduled enqueue time of an encoded message."""
    message_id: str | None = None
    ttl_ms: int | None = None
    scheduled: int | None = None
    for section in split_sections(payload):
        if section.code == HEADER:
            header = section.value()
            if isinstance(header, list) and len(header) > 2 and header[2] is not None:
                ttl_ms = int(header[2])
        elif section.code == PROPERTIES:
            properties = section.value()
            if isinstance(properties, list) and properties and properties[0] is not None:
                raw_id = properties[0]
                if isinstance(raw_id, bytes):
                    message_id = raw_id.decode("utf-8", errors="replace")
                else:
                    message_id = str(raw_id)
        elif section.code == MESSAGE_ANNOTATIONS:
            annotations = section.value()
            if isinstance(annotations, dict):
                scheduled = _to_ms(annotations.get(SCHEDULED_ENQUEUE_TIME))
    return MessageFacts(message_id=message_id, ttl_ms=ttl_ms, scheduled_enqueue_ms=scheduled)


def _encode_described(code: int, put_value: Any) -> bytes:
    data = Data()
    data.put_described()
    data.enter()
    data.put_ulong(code)
    put_value(data)
    data.exit()
    return bytes(data.encode())


def _encode_header(
    *, durable: bool, priority: int, ttl_ms: int | None, first_acquirer: bool, delivery_count: int
) -> bytes:
    def put(data: Data) -> None:
        data.put_list()
        data.enter()
        data.put_bool(durable)
        data.put_ubyte(priority)
        if ttl_ms is None:
            data.put_null()
        else:
            data.put_uint(ttl_ms)
        data.put_bool(first_acquirer)
        data.put_uint(delivery_count)
        data.exit()

    return _encode_described(HEADER, put)


def _encode_map(code: int, values: Mapping[Any, Any]) -> bytes:
    return _encode_described(code, lambda data: data.put_object(dict(values)))


def render(
    payload: bytes,
    *,
    delivery_count: int,
    annotations: Mapping[symbol, Any],
    application_properties: Mapping[str, Any] | None = None,
) -> bytes:
    """Re-encode a stored message for delivery with broker-owned header and annotations.

    The original message annotations are kept and ``annotations`` override them; delivery
    annotations from the sender are dropped (they are hop-by-hop). ``application_properties``
    are merged into the message's own (used for the dead-letter reason and description).
    """
    sections = split_sections(payload)
    durable, priority, ttl_ms = False, 4, None
    merged_annotations: dict[Any, Any] = {}
    for section in sections:
        if section.code == HEADER:
            header = section.value()
            if isinstance(header, list):
                durable = bool(header[0]) if len(header) > 0 and header[0] is not None else False
                priority = int(header[1]) if len(header) > 1 and header[1] is not None else 4
                ttl_ms = int(header[2]) if len(header) > 2 and header[2] is not None else None
        elif section.code == MESSAGE_ANNOTATIONS:
            original = section.value()
            if isinstance(original, dict):
                merged_annotations.update(original)
    merged_annotations.update(annotations)
    out = [
        _encode_header(
            durable=durable,
            priority=priority,
            ttl_ms=ttl_ms,
            first_acquirer=delivery_count == 0,
            delivery_count=delivery_count,
        ),
        _encode_map(MESSAGE_ANNOTATIONS, merged_annotations),
    ]
    extra = dict(application_properties or {})
    for section in sections:
        if section.code in {HEADER, DELIVERY_ANNOTATIONS, MESSAGE_ANNOTATIONS}:
            continue
        if extra and section.code == APPLICATION_PROPERTIES:
            own = section.value()
            merged = dict(own) if isinstance(own, dict) else {}
            merged.update(extra)
            out.append(_encode_map(APPLICATION_PROPERTIES, merged))
            extra = {}
            continue
        if extra and section.code not in _BEFORE_APPLICATION_PROPERTIES:
            out.append(_encode_map(APPLICATION_PROPERTIES, extra))
            extra = {}
        out.append(section.raw)
    if extra:
        out.append(_encode_map(APPLICATION_PROPERTIES, extra))
    return b"".join(out)


def uuid_from_tag(tag: bytes) -> uuid.UUID:
    """The lock token the SDK derives from a 16-byte delivery tag (``UUID(bytes_le=tag)``)."""
    return uuid.UUID(bytes_le=tag)
