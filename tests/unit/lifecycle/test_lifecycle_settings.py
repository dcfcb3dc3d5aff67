"""The GALLERY_LIFECYCLE_* settings: safe defaults, parsing and the errors that name the setting."""

from __future__ import annotations

import pytest

from shared.core.errors import PermanentError
from shared.core.settings import (
    DEFAULT_LIFECYCLE_SCHEDULE,
    LifecycleSettings,
    SettingName,
    Settings,
)


def test_defaults_are_the_safe_ones() -> None:
    lifecycle = Settings.from_env({}).lifecycle
    assert lifecycle == LifecycleSettings()
    assert lifecycle.dry_run is True
    assert lifecycle.grace_days == 14
    assert lifecycle.min_keep == 3
    assert lifecycle.max_deletions_per_run == 10
    assert lifecycle.max_age_days is None and lifecycle.max_versions is None
    assert lifecycle.deprecated_replicas is None
    assert lifecycle.delete_budget == 50
    assert lifecycle.schedule == DEFAULT_LIFECYCLE_SCHEDULE == "0 30 2 * * *"
    assert lifecycle.audit_container == "gallery-pipeline-audit"
    assert lifecycle.in_use_subscriptions == ()


def test_every_setting_is_read() -> None:
    lifecycle = Settings.from_env(
        {
            SettingName.LIFECYCLE_DRY_RUN: "False",
            SettingName.LIFECYCLE_GRACE_DAYS: "0",
            SettingName.LIFECYCLE_MIN_KEEP: "5",
            SettingName.LIFECYCLE_MAX_AGE_DAYS: "365",
            SettingName.LIFECYCLE_MAX_VERSIONS: "20",
            SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN: "0",
            SettingName.LIFECYCLE_DEPRECATED_REPLICAS: "1",
            SettingName.LIFECYCLE_DELETE_BUDGET: "100",
            SettingName.LIFECYCLE_SCHEDULE: "0 0 */6 * * *",
            SettingName.LIFECYCLE_AUDIT_CONTAINER: "audit",
            SettingName.INUSE_SUBSCRIPTIONS: "s1; s2,s3",
        }
    ).lifecycle
    assert lifecycle == LifecycleSettings(
        dry_run=False,
        grace_days=0,
        min_keep=5,
        max_age_days=365,
        max_versions=20,
        max_deletions_per_run=0,
        deprecated_replicas=1,
        delete_budget=100,
        schedule="0 0 */6 * * *",
        audit_container="audit",
        in_use_subscriptions=("s1", "s2", "s3"),
    )


@pytest.mark.parametrize("raw", ["1", "true", "YES", "on"])
def test_dry_run_accepts_the_usual_true_spellings(raw: str) -> None:
    assert Settings.from_env({SettingName.LIFECYCLE_DRY_RUN: raw}).lifecycle.dry_run is True


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (SettingName.LIFECYCLE_DRY_RUN, "maybe", "expected true or false"),
        (SettingName.LIFECYCLE_GRACE_DAYS, "-1", "at least 0"),
        (SettingName.LIFECYCLE_MIN_KEEP, "0", "at least 1"),
        (SettingName.LIFECYCLE_MAX_DELETIONS_PER_RUN, "ten", "whole number"),
        (SettingName.LIFECYCLE_DEPRECATED_REPLICAS, "0", "at least 1"),
        (SettingName.LIFECYCLE_DELETE_BUDGET, "0", "at least 1"),
        (SettingName.LIFECYCLE_SCHEDULE, "every day", "six-field NCRONTAB"),
    ],
)
def test_bad_values_name_the_setting(name: str, raw: str, message: str) -> None:
    with pytest.raises(PermanentError, match=message) as caught:
        Settings.from_env({name: raw})
    assert name in caught.value.message


def test_a_timespan_schedule_is_accepted() -> None:
    settings = Settings.from_env({SettingName.LIFECYCLE_SCHEDULE: "01:00:00"})
    assert settings.lifecycle.schedule == "01:00:00"
