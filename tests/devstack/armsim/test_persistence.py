"""State survives a restart, including an operation in flight; seeding, reset and the clock."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.compute import models as m

from devstack.procs import wait_until
from tests.conftest import TlsFiles
from tests.devstack.armsim.conftest import (
    GALLERY,
    IMAGE,
    IMAGE_ID,
    LOCATION,
    RESOURCE_GROUP,
    ArmSim,
    make_client,
    seed_gallery,
    seed_snapshot,
    snapshot_version_body,
    start_sim,
)


class _Token:
    """Uses a token minted by the simulator (persisted, so valid across restarts)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: object) -> object:
        from azure.core.credentials import AccessToken

        del scopes, kwargs
        return AccessToken(self.token, 4_102_444_800)


@pytest.fixture
def slow_sim(tmp_path: Path, tls_files: TlsFiles) -> ArmSim:
    # 20x: a 10 GiB single-region version takes about 14 s of real time
    sim = start_sim(tmp_path, tls_files, speed=20)
    return sim


def test_restart_in_the_middle_of_an_operation_loses_nothing(slow_sim: ArmSim) -> None:
    sim = slow_sim
    try:
        seed_gallery(sim)
        token = sim.token()
        client: ComputeManagementClient = make_client(sim, _Token(token))
        snapshot = seed_snapshot(sim, "snap")
        client.gallery_image_versions.begin_create_or_update(
            RESOURCE_GROUP,
            GALLERY,
            IMAGE,
            "1.0.0",
            m.GalleryImageVersion(snapshot_version_body(snapshot)),
        )
        before = client.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
        assert before.provisioning_state == "Creating"
        sim.kill()  # SIGKILL: no chance to flush anything beyond what was committed
        sim.start()
        during = client.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
        assert during.provisioning_state == "Creating"
        assert during.publishing_profile.published_date == before.publishing_profile.published_date
        # move simulated time past the build: the operation completes after the restart
        sim.admin("POST", "/admin/clock", {"advanceSeconds": 3600})
        after = client.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "1.0.0")
        assert after.provisioning_state == "Succeeded"
        assert after.storage_profile.os_disk_image.size_in_gb == 10
    finally:
        sim.stop()


def test_seed_allows_expired_versions_and_reset_clears_everything(
    fresh: ArmSim, compute: ComputeManagementClient
) -> None:
    seed_gallery(fresh)
    fresh.seed(
        {
            "id": f"{IMAGE_ID}/versions/0.9.0",
            "location": LOCATION,
            "properties": {
                "publishingProfile": {
                    "endOfLifeDate": "2020-01-01T00:00:00+00:00",
                    "publishedDate": "2019-01-01T00:00:00+00:00",
                },
                "storageProfile": {"osDiskImage": {"source": {"id": "/x"}, "sizeInGB": 8}},
            },
        }
    )
    version = compute.gallery_image_versions.get(RESOURCE_GROUP, GALLERY, IMAGE, "0.9.0")
    assert version.provisioning_state == "Succeeded"
    assert str(version.publishing_profile.end_of_life_date).startswith("2020-01-01")
    assert version.storage_profile.os_disk_image.size_in_gb == 8
    fresh.reset()
    assert list(compute.galleries.list_by_resource_group(RESOURCE_GROUP)) == []


def test_clock_advance_ages_versions(fresh: ArmSim) -> None:
    before = fresh.admin("GET", "/admin/clock")
    after = fresh.admin("POST", "/admin/clock", {"advanceSeconds": 86400})
    assert after["offsetSeconds"] == before["offsetSeconds"] + 86400
    assert after["now"][:10] > before["now"][:10]
    wait_until(fresh.healthy, timeout=5, what="health")
