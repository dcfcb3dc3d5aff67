from __future__ import annotations

import dataclasses

import pytest

from shared.core.errors import PermanentError
from shared.core.settings import DEFAULT_VHD_STORAGE_ENDPOINTS, SettingName, Settings


def test_defaults_when_environment_is_empty() -> None:
    settings = Settings.from_env({})
    assert settings.build_queue == "image-builds"
    assert settings.events_topic == "image-build-events"
    assert settings.arm_endpoint == "https://management.azure.com"
    assert settings.vhd_storage_endpoints == DEFAULT_VHD_STORAGE_ENDPOINTS
    assert settings.allowed_target_galleries == ()
    assert settings.max_data_disk_gib == 1024


def test_lists_are_split_on_commas_and_semicolons() -> None:
    settings = Settings.from_env(
        {
            SettingName.ALLOWED_TARGET_GALLERIES: "s1/rg/g1, s2/rg/g2;s3/rg/g3",
            SettingName.VHD_STORAGE_ENDPOINTS: "http://127.0.0.1:10000/{account}",
            SettingName.ARM_ENDPOINT: "https://127.0.0.1:8443/",
        }
    )
    assert settings.allowed_target_galleries == ("s1/rg/g1", "s2/rg/g2", "s3/rg/g3")
    assert settings.vhd_storage_endpoints == ("http://127.0.0.1:10000/{account}",)
    assert settings.arm_endpoint == "https://127.0.0.1:8443"


def test_settings_are_frozen() -> None:
    settings = Settings.from_env({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.build_queue = "other"  # type: ignore[misc]


@pytest.mark.parametrize("raw", ["abc", "0", "-5"])
def test_bad_numbers_name_the_setting(raw: str) -> None:
    with pytest.raises(PermanentError, match=SettingName.MAX_DATA_DISK_GIB):
        Settings.from_env({SettingName.MAX_DATA_DISK_GIB: raw})


def test_repr_hides_connection_strings() -> None:
    settings = Settings.from_env(
        {SettingName.STORAGE_CONNECTION: "AccountName=a;AccountKey=c2VjcmV0"}
    )
    assert "c2VjcmV0" not in repr(settings)
    assert "***" in repr(settings)


@pytest.mark.parametrize(
    "template",
    ["ftp://x/{account}", "https://example.net/container", "https://{account}.x/{account}"],
)
def test_bad_storage_endpoint_templates_fail_at_startup(template: str) -> None:
    with pytest.raises(PermanentError, match=SettingName.VHD_STORAGE_ENDPOINTS):
        Settings.from_env({SettingName.VHD_STORAGE_ENDPOINTS: template})


def test_the_account_name_shorthand_gives_the_blob_service_uri() -> None:
    settings = Settings.from_env({"AzureWebJobsStorage__accountName": "appstore01"})
    assert settings.storage_blob_service_uri == "https://appstore01.blob.core.windows.net"
    explicit = Settings.from_env(
        {
            "AzureWebJobsStorage__accountName": "appstore01",
            "AzureWebJobsStorage__blobServiceUri": "https://other.blob.core.windows.net",
        }
    )
    assert explicit.storage_blob_service_uri == "https://other.blob.core.windows.net"


def test_the_arm_audience_defaults_to_the_public_cloud_and_can_be_changed() -> None:
    assert Settings.from_env({}).arm_audience == "https://management.azure.com"
    government = Settings.from_env(
        {"GALLERY_ARM_AUDIENCE": "https://management.usgovcloudapi.net/"}
    )
    assert government.arm_audience == "https://management.usgovcloudapi.net"


def test_a_json_setting_nested_too_deeply_is_refused_not_a_crash() -> None:
    import pytest

    from shared.core.errors import PermanentError
    from shared.core.settings import SettingName, Settings

    with pytest.raises(PermanentError, match="nested too deeply"):
        Settings.from_env({SettingName.VHD_ROUTES: "[" * 100_000 + "]" * 100_000})
