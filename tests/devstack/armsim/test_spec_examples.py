"""Each REST-spec example (azure-rest-api-specs, GalleryRP ``examples/galleryExamples``) gets a
response with the same keys as the example's response (ids and sources adapted to seeded
resources). The examples are read from ``GALLERY_SPEC_EXAMPLES_DIR`` (``spec-examples-<version>/``
folders); the team's reference copy beside the clone is the default."""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from devstack.vhdgen import upload_fixed_vhd
from tests.conftest import REPO_ROOT, AzuriteInstance
from tests.devstack.armsim.conftest import (
    RESOURCE_GROUP,
    SUBSCRIPTION,
    ArmSim,
    RawArm,
    resource_id,
)

REFERENCE = Path(
    os.environ.get(
        "GALLERY_SPEC_EXAMPLES_DIR", REPO_ROOT.parent / "shared" / "reference" / "payloads"
    )
)
EXAMPLES = sorted(REFERENCE.glob("spec-examples-*/*.json"))
GALLERY_NAME = "myGalleryName"
IMAGE_NAME = "myGalleryImageName"
GALLERY_ID = resource_id("Microsoft.Compute/galleries", GALLERY_NAME)
IMAGE_ID = f"{GALLERY_ID}/images/{IMAGE_NAME}"
REGION = "westus"
GIB = 1024**3
#: Keys the real service returns that the hand-written examples leave out (gallery-api.md
#: §1.2/§1.3, from real recordings): ``type`` on every resource, the top-level
#: ``excludeFromLatest: false`` default, ``architecture: x64`` on definitions, and ``sizeInGB``
#: once a version has Succeeded (the VHD Get example omits it).
EXTRA_KEYS_ALLOWED = {"type", "excludeFromLatest", "architecture", "sizeInGB"}
#: Keys real responses carry that the examples leave out, where they carry them (azure-cli
#: recording test_image_version_end_of_life_date, 2026): ``validationsProfile`` on a version,
#: and ``source: {}`` on the disk images a whole-image source brought.
EXTRA_PATHS_ALLOWED = {
    ("properties", "validationsProfile"),
    ("osDiskImage", "source"),
    ("dataDiskImages]", "source"),
}
#: Keys of the examples the service returns only in some states: ``sizeInGB`` appears once a
#: version has Succeeded (absent in the real 201 body); ``policyViolations`` only for images
#: flagged by a policy scan.
MISSING_KEYS_ALLOWED = {"sizeInGB", "policyViolations"}
READ_ONLY = {
    "provisioningState",
    "replicationStatus",
    "sizeInGB",
    "publishedDate",
    "reportedForPolicyViolation",
    "policyViolations",
    "identifier",
}

pytestmark = pytest.mark.skipif(not EXAMPLES, reason=f"reference payloads not found at {REFERENCE}")


def key_problems(expected: Any, actual: Any, path: str = "$") -> list[str]:
    """Differences between the key sets of two JSON values, recursively."""
    problems: list[str] = []
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {type(actual).__name__}"]
        for key in expected.keys() - actual.keys() - MISSING_KEYS_ALLOWED:
            problems.append(f"{path}.{key}: missing")
        for key in actual.keys() - expected.keys() - EXTRA_KEYS_ALLOWED:
            parent = path.rsplit(".", 1)[-1].split("[", 1)[0] + ("]" if path.endswith("]") else "")
            if (parent, key) not in EXTRA_PATHS_ALLOWED:
                problems.append(f"{path}.{key}: unexpected")
        for key in expected.keys() & actual.keys():
            problems += key_problems(expected[key], actual[key], f"{path}.{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            problems.append(f"{path}: {len(actual)} items, expected {len(expected)}")
        for index, (want, got) in enumerate(zip(expected, actual, strict=False)):
            problems += key_problems(want, got, f"{path}[{index}]")
    return problems


def strip_read_only(value: Any, *, top: bool = True) -> Any:
    if isinstance(value, dict):
        if top:
            value = {k: v for k, v in value.items() if k not in ("id", "name", "type")}
        return {k: strip_read_only(v, top=False) for k, v in value.items() if k not in READ_ONLY}
    if isinstance(value, list):
        return [strip_read_only(v, top=False) for v in value]
    return value


class SourceAdapter:
    """Replaces example sources with seeded resources / uploaded VHDs in the sim's region."""

    def __init__(self, sim: ArmSim, azurite: AzuriteInstance) -> None:
        self.sim = sim
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        self.container = service.get_container_client(f"spec-{uuid.uuid4().hex[:8]}")
        self.container.create_container(timeout=10)
        self.account_id = resource_id("Microsoft.Storage/storageAccounts", "devstoreaccount1")
        sim.seed({"id": self.account_id, "location": REGION, "properties": {}})

    def adapt(self, value: Any) -> Any:
        if isinstance(value, dict):
            result = {k: self.adapt(v) for k, v in value.items()}
            if isinstance(value.get("source"), dict):
                result["source"] = self.source(value["source"])
            return result
        if isinstance(value, list):
            return [self.adapt(v) for v in value]
        return value

    def source(self, source: dict[str, Any]) -> dict[str, Any]:
        name = f"s{uuid.uuid4().hex[:8]}"
        if "uri" in source:
            blob = self.container.get_blob_client(f"{name}.vhd")
            upload_fixed_vhd(blob, GIB)
            return {"storageAccountId": self.account_id, "uri": blob.url}
        kind = str(source["id"]).split("/providers/")[1].split("/")[1]
        new_id = resource_id(f"Microsoft.Compute/{kind}", name)
        props: dict[str, Any] = {"diskSizeGB": 10, "osType": "Windows", "hyperVGeneration": "V1"}
        if kind == "images":
            props = {
                "hyperVGeneration": "V1",
                "storageProfile": {
                    "osDisk": {"osType": "Windows", "osState": "Generalized", "diskSizeGB": 10},
                    "dataDisks": [{"lun": 1, "diskSizeGB": 10}],
                },
            }
        self.sim.seed({"id": new_id, "location": REGION, "properties": props})
        return {"id": new_id}


def _seed_parents(sim: ArmSim) -> None:
    sim.seed(
        {"id": GALLERY_ID, "location": REGION, "properties": {}},
        {
            "id": IMAGE_ID,
            "location": REGION,
            "properties": {
                "osType": "Windows",
                "osState": "Generalized",
                "hyperVGeneration": "V1",
                "identifier": {"publisher": "p", "offer": "o", "sku": "s"},
            },
        },
    )


def _path(params: dict[str, Any]) -> str:
    path = resource_id("Microsoft.Compute/galleries", GALLERY_NAME)
    if "galleryImageName" in params:
        path += f"/images/{IMAGE_NAME}"
    if "galleryImageVersionName" in params:
        path += f"/versions/{params['galleryImageVersionName']}"
    return path


def _create_version(raw: RawArm, adapter: SourceAdapter, name: str, body: dict[str, Any]) -> None:
    request = adapter.adapt(strip_read_only(body))
    request.pop("location", None)
    request["location"] = REGION
    reply = raw.call("PUT", f"{IMAGE_ID}/versions/{name}", request)
    assert reply.status_code == 201, reply.text
    status = raw.wait_operation(reply.headers["Azure-AsyncOperation"])
    assert status["status"] == "Succeeded", status


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_spec_example_keys(
    example: Path, fresh: ArmSim, raw: RawArm, azurite: AzuriteInstance
) -> None:
    spec = json.loads(example.read_text())
    params = spec["parameters"]
    responses = spec["responses"]
    api_version = params.get("api-version") or params.get("version")
    adapter = SourceAdapter(fresh, azurite)
    path = _path(params)
    body_param = next(
        (params[k] for k in ("galleryImageVersion", "galleryImage", "gallery") if k in params),
        None,
    )
    if "gallery" in params:
        reply = raw.call("PUT", path, params["gallery"], api_version=api_version)
    else:
        _seed_parents(fresh)
        if body_param is not None:
            reply = raw.call("PUT", path, adapter.adapt(body_param), api_version=api_version)
            if "galleryImage" in params:  # the seeded definition holds the name: use a new one
                path = path.replace(IMAGE_NAME, "exampleImage")
                body = copy.deepcopy(body_param)
                body["properties"]["identifier"]["sku"] = "other"
                reply = raw.call("PUT", path, body, api_version=api_version)
        elif example.name.endswith("_Delete.json"):
            _create_version(raw, adapter, "1.0.0", _a_version_body())
            reply = raw.call("DELETE", path, api_version=api_version)
        elif "ListByGalleryImage" in example.name:
            item = responses["200"]["body"]["value"][0]
            _create_version(raw, adapter, "1.0.0", item)
            _create_version(raw, adapter, "1.0.1", item)
            fresh.admin("POST", "/admin/config", {"pageSize": 1})
            reply = raw.call("GET", path + "/versions", api_version=api_version)
        else:
            _create_version(
                raw, adapter, params["galleryImageVersionName"], responses["200"]["body"]
            )
            query = {"$expand": params["$expand"]} if "$expand" in params else None
            reply = raw.call("GET", path, api_version=api_version, params=query)
    status = str(reply.status_code)
    assert status in responses, f"{reply.status_code} not among {list(responses)}: {reply.text}"
    expected = responses[status]
    if "body" in expected:
        problems = key_problems(expected["body"], reply.json())
        assert not problems, f"{example.name}: {problems}"
    for header in expected.get("headers", {}):
        assert header in reply.headers, f"{example.name}: header {header} missing"
    assert SUBSCRIPTION and RESOURCE_GROUP


def _a_version_body() -> dict[str, Any]:
    return {
        "location": REGION,
        "properties": {
            "storageProfile": {
                "osDiskImage": {
                    "source": {"id": resource_id("Microsoft.Compute/snapshots", "example")}
                }
            }
        },
    }
