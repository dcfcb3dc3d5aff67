"""Unit tests of the emulator's parts that need no network: config, codec, store."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from proton import Data, Message, symbol, timestamp

from devstack.servicebus import codec
from devstack.servicebus.config import ConfigError, load_config, parse_config, parse_duration
from devstack.servicebus.entities import EntityError, Namespace
from devstack.servicebus.store import (
    LockLostError,
    MessageStore,
    NewMessage,
    Settlement,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT30S", 30.0), ("PT1M", 60.0), ("P14D", 14 * 86400.0), ("P1DT2H0.5S", 93600.5)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["30s", "P", "PT", "1D", ""])
def test_parse_duration_rejects_non_iso(text: str) -> None:
    with pytest.raises(ConfigError, match="lockDuration"):
        parse_duration(text, field_name="lockDuration")


def test_default_config_declares_what_the_pipeline_uses() -> None:
    namespace = Namespace(load_config())
    builds = namespace.send_target("amqps://127.0.0.1:5672/Image-Builds")
    assert builds.duplicate_window_ms == 600_000
    assert namespace.policy("image-builds").max_delivery_count == 5
    events = namespace.send_target("image-build-events")
    assert events.is_topic
    assert len(events.targets) >= 1


def test_config_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"queues\[0\]: unknown properties \['lockDuraton'\]"):
        parse_config({"queues": [{"name": "q", "lockDuraton": "PT1S"}]})
    with pytest.raises(ConfigError, match=r"maxDeliveryCount"):
        parse_config({"queues": [{"name": "q", "maxDeliveryCount": 0}]})
    with pytest.raises(ConfigError, match="declared twice"):
        parse_config({"queues": [{"name": "q"}], "topics": [{"name": "Q"}]})
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(broken)


def test_namespace_refuses_wrong_addresses() -> None:
    namespace = Namespace(
        parse_config(json.loads('{"queues": [{"name": "q"}], "topics": [{"name": "t"}]}'))
    )
    with pytest.raises(EntityError) as missing:
        namespace.send_target("nope")
    assert missing.value.condition == "amqp:not-found"
    with pytest.raises(EntityError) as topic:
        namespace.receive_entity("t")
    assert topic.value.condition == "amqp:not-allowed"
    assert namespace.receive_entity("Q/$DeadLetterQueue").path == "q/$deadletterqueue"
    assert namespace.knows("q/$management")


def _message(body: bytes, **properties: object) -> bytes:
    message = Message(body=body, id="m", properties=dict(properties))
    message.inferred = True  # bytes body -> a data section
    return bytes(message.encode())


def test_batch_envelope_is_split_and_plain_message_is_not() -> None:
    first, second = _message(b"one", n=1), _message(b"two", n=2)
    envelope = Data()
    for inner in (first, second):
        envelope.put_described()
        envelope.enter()
        envelope.put_ulong(codec.DATA)
        envelope.put_binary(inner)
        envelope.exit()
    assert codec.unpack_transfer(bytes(envelope.encode())) == [first, second]
    assert codec.unpack_transfer(first) == [first]


def test_render_sets_header_annotations_and_dead_letter_properties() -> None:
    original = _message(b"payload", kind="vhd")
    rendered = codec.render(
        original,
        delivery_count=3,
        annotations={
            symbol("x-opt-sequence-number"): 7,
            symbol("x-opt-enqueued-time"): timestamp(5),
        },
        application_properties={"DeadLetterReason": "Bad"},
    )
    decoded = Message()
    decoded.decode(rendered)
    assert decoded.delivery_count == 3
    annotations = dict(decoded.annotations or {})
    assert annotations[symbol("x-opt-sequence-number")] == 7
    assert dict(decoded.properties or {}) == {"kind": "vhd", "DeadLetterReason": "Bad"}
    assert decoded.body == b"payload"
    facts = codec.read_facts(original)
    assert facts.message_id == "m"


def test_store_settlement_needs_a_live_lock(tmp_path: Path) -> None:
    namespace = Namespace(
        parse_config({"queues": [{"name": "q", "lockDuration": "PT1S", "maxDeliveryCount": 2}]})
    )
    store = MessageStore(tmp_path / "sb.sqlite3")
    try:
        policy = namespace.policy("q")
        store.enqueue(
            "q",
            ["q"],
            [NewMessage(_message(b"x"), "m", None, None)],
            now_ms=1_000,
            default_ttl_ms=None,
            duplicate_window_ms=None,
        )
        locked = store.lock_next(policy, 1_000)
        assert locked is not None and locked.lock_token is not None
        assert store.lock_next(policy, 1_000) is None  # locked messages are not handed out twice
        with pytest.raises(LockLostError):
            store.settle(locked.lock_token, Settlement.COMPLETE, namespace.policy, 2_500)
        with pytest.raises(LockLostError):
            store.settle(uuid.uuid4(), Settlement.COMPLETE, namespace.policy, 1_100)
        assert store.expire_locks(namespace.policy, 2_500) == {"q", "q/$deadletterqueue"}
        again = store.lock_next(policy, 2_600)
        assert again is not None and again.delivery_count == 1
        store.settle(again.lock_token or uuid.uuid4(), Settlement.ABANDON, namespace.policy, 2_700)
        assert store.count("q") == 0
        (dead,) = store.peek("q/$deadletterqueue", 1, 10)
        assert dead.dead_letter_reason == "MaxDeliveryCountExceeded"
    finally:
        store.close()
