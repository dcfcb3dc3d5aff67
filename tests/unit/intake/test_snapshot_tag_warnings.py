"""A snapshot tag that looks like ours but is wrong: a warning event and a reject, not silence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.intake.outcomes import IntakeOutcome
from shared.intake.snapshots import near_miss_tag
from tests.unit.intake.test_intake_service import SNAPSHOT_ID, World, make_world, snapshot_event

WARNING_TYPE = "com.gallery-pipeline.intake.warning"


@pytest.fixture
def world() -> World:
    return make_world()


def events(world: World) -> list[dict[str, Any]]:
    """The warning CloudEvents sent on the events topic."""
    return [
        json.loads(message.body)
        for entity, message in world.bus.sent
        if entity == world.settings.events_topic
    ]


@pytest.mark.parametrize(
    "name",
    ["gallery_publish", "GalleryPublish", "gallery publish", "galery-publish", "gallery-publsh"],
)
def test_near_miss_tag_names_are_found(name: str) -> None:
    tags = {"team": "platform", name: "devgallery/ubuntu-24.04"}
    assert near_miss_tag(tags, "gallery-publish") == (name, "devgallery/ubuntu-24.04")


@pytest.mark.parametrize("name", ["team", "gallery", "publish", "gallery-owner", "build"])
def test_unrelated_tag_names_are_not_near_misses(name: str) -> None:
    assert near_miss_tag({name: "x"}, "gallery-publish") is None


def test_the_tag_itself_is_not_a_near_miss() -> None:
    assert near_miss_tag({"Gallery-Publish": "devgallery/x"}, "gallery-publish") is None


def test_misspelt_tag_name_is_rejected_with_the_fix_and_a_warning_event(world: World) -> None:
    world.snapshots.put(tags={"gallery_publish": "devgallery/ubuntu-24.04"})
    result = world.service.on_snapshot_written(snapshot_event())
    assert result.outcome == IntakeOutcome.REJECTED
    assert len(world.bus.rejected) == 1
    _message, _reason, description = world.bus.rejected[0]
    assert "tags.gallery_publish" in description
    assert "rename the tag to 'gallery-publish'" in description
    [warning] = events(world)
    assert warning["type"] == WARNING_TYPE
    assert warning["subject"] == str(SNAPSHOT_ID)
    assert warning["data"]["tag"] == "gallery_publish=devgallery/ubuntu-24.04"
    assert "rename the tag" in warning["data"]["description"]
    # nothing was queued for a build
    assert all(entity != world.settings.build_queue for entity, _ in world.bus.sent)


def test_malformed_publish_tag_value_warns_and_rejects(world: World) -> None:
    world.snapshots.put(tags={"gallery-publish": "ubuntu-24.04"})
    result = world.service.on_snapshot_written(snapshot_event())
    assert result.outcome == IntakeOutcome.REJECTED
    assert "tags.gallery-publish" in world.bus.rejected[0][2]
    [warning] = events(world)
    assert warning["type"] == WARNING_TYPE
    assert warning["data"]["tag"] == "gallery-publish=ubuntu-24.04"
    assert "<gallery>/<definition>" in warning["data"]["description"]


def test_a_redelivered_event_warns_and_rejects_once(world: World) -> None:
    world.snapshots.put(tags={"gallery_publish": "devgallery/ubuntu-24.04"})
    world.service.on_snapshot_written(snapshot_event())
    again = world.service.on_snapshot_written(snapshot_event())
    assert again.outcome == IntakeOutcome.DUPLICATE
    assert len(world.bus.rejected) == 1
    assert len(events(world)) == 1


def test_renaming_the_tag_right_queues_the_build(world: World) -> None:
    world.snapshots.put(tags={"gallery_publish": "devgallery/ubuntu-24.04"})
    world.service.on_snapshot_written(snapshot_event())
    world.snapshots.put(tags={"gallery-publish": "devgallery/ubuntu-24.04"})
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.QUEUED


def test_an_unrelated_tag_is_still_silence(world: World) -> None:
    world.snapshots.put(tags={"team": "platform"})
    assert world.service.on_snapshot_written(snapshot_event()).outcome == IntakeOutcome.IGNORED
    assert world.bus.sent == [] and world.bus.rejected == []
