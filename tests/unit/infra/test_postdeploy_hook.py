"""The azd postdeploy hook creates the Event Grid subscriptions of the JSON file, and nothing else.

``infra/hooks/postdeploy.sh`` runs here against a fake ``az`` (and ``curl``) on ``PATH`` that
records every call: the test checks the request bodies it PUTs against
``infra/eventgrid-subscriptions.json`` with the placeholders filled in, that the function key
never reaches the output, and that every wait ends (no key, a failed validation).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.infra.bicep_source import INFRA

HOOK = INFRA / "hooks" / "postdeploy.sh"
DEFINITIONS = INFRA / "eventgrid-subscriptions.json"
KEY = "k3y/with+chars=="
HOST = "func-abc123.azurewebsites.net"
TOPICS = "/subscriptions/s1/resourceGroups/rg-x/providers/Microsoft.EventGrid/systemTopics"
UPLOADS_TOPIC = f"{TOPICS}/gallery-uploads"
SNAPSHOTS_TOPIC = f"{TOPICS}/gallery-snapshots"
DEAD_LETTER_ACCOUNT = (
    "/subscriptions/s1/resourceGroups/rg-x/providers/Microsoft.Storage/storageAccounts/stabc"
)

FAKE_AZ = """
import json, os, sys
from pathlib import Path
state = Path(os.environ["FAKE_STATE_DIR"])
args = sys.argv[1:]
with (state / "calls.log").open("a") as log:
    log.write(json.dumps(args) + "\\n")
def value(flag):
    return args[args.index(flag) + 1]
if args[:3] == ["functionapp", "keys", "list"]:
    counter = state / "key-asks"
    asked = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(asked + 1))
    if asked >= int(os.environ.get("FAKE_KEY_AFTER", "0")):
        print(os.environ["FAKE_KEY"])
elif args[:1] == ["rest"] and value("--method") == "put":
    url = value("--url")
    body = Path(value("--body")[1:]).read_text()
    name = url.split("/eventSubscriptions/")[1].split("?")[0]
    (state / f"put-{name}.json").write_text(json.dumps({"url": url, "body": json.loads(body)}))
elif args[:1] == ["rest"] and value("--method") == "get":
    print(os.environ.get("FAKE_PROVISIONING", "Succeeded"))
else:
    sys.exit("fake az: unexpected call " + " ".join(args))
"""

pytestmark = pytest.mark.skipif(
    shutil.which("jq") is None or shutil.which("sh") is None, reason="the hook needs sh and jq"
)


def run_hook(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    az = bin_dir / "az"
    az.write_text(f"#!{sys.executable}\n{FAKE_AZ}")
    az.chmod(0o755)
    curl = bin_dir / "curl"
    curl.write_text("#!/bin/sh\nexit 0\n")
    curl.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
        "FAKE_STATE_DIR": str(state),
        "FAKE_KEY": KEY,
        "AZURE_RESOURCE_GROUP": "rg-x",
        "AZURE_FUNCTION_APP_NAME": "func-abc123",
        "AZURE_FUNCTION_APP_HOST": HOST,
        "GALLERY_UPLOADS_TOPIC_ID": UPLOADS_TOPIC,
        "GALLERY_SNAPSHOTS_TOPIC_ID": SNAPSHOTS_TOPIC,
        "GALLERY_UPLOAD_CONTAINER_LIST": "vhds,isos",
        "GALLERY_DEADLETTER_ACCOUNT_ID": DEAD_LETTER_ACCOUNT,
        "GALLERY_DEADLETTER_CONTAINER": "eventgrid-deadletter",
        "GALLERY_HOOK_POLL_SECONDS": "0",
        "GALLERY_HOOK_TIMEOUT_SECONDS": "20",
        **overrides,
    }
    return subprocess.run(
        ["sh", str(HOOK)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def puts(tmp_path: Path) -> dict[str, dict[str, Any]]:
    return {
        path.stem.removeprefix("put-"): json.loads(path.read_text())
        for path in sorted((tmp_path / "state").glob("put-*.json"))
    }


def expected_properties(topic: str, name: str, container: str) -> Any:
    text = DEFINITIONS.read_text(encoding="utf-8")
    for placeholder, value in {
        "https://{functionApp}.azurewebsites.net": f"https://{HOST}",
        "{functionApp}": "func-abc123",
        "{eventgridExtensionKey}": KEY,
        "{uploadContainer}": container,
        "{deadLetterAccountId}": DEAD_LETTER_ACCOUNT,
        "{deadLetterContainer}": "eventgrid-deadletter",
    }.items():
        text = text.replace(placeholder, value)
    document = json.loads(text)
    (topic_entry,) = [t for t in document["systemTopics"] if t["name"] == topic]
    (subscription,) = [s for s in topic_entry["subscriptions"] if s["name"] == name]
    return subscription["properties"]


def test_the_hook_creates_every_subscription_of_the_json(tmp_path: Path) -> None:
    result = run_hook(tmp_path)
    assert result.returncode == 0, result.stderr
    made = puts(tmp_path)
    assert set(made) == {
        "vhd-uploads-vhds",
        "vhd-manifests-vhds",
        "vhd-uploads-isos",
        "vhd-manifests-isos",
        "snapshots",
    }
    for container in ("vhds", "isos"):
        for name in ("vhd-uploads", "vhd-manifests"):
            put = made[f"{name}-{container}"]
            assert put["url"] == (
                f"{UPLOADS_TOPIC}/eventSubscriptions/{name}-{container}?api-version=2025-02-15"
            )
            assert put["body"] == {
                "properties": expected_properties("gallery-uploads", name, container)
            }
    snapshots = made["snapshots"]
    assert snapshots["url"].startswith(f"{SNAPSHOTS_TOPIC}/eventSubscriptions/snapshots?")
    assert snapshots["body"] == {
        "properties": expected_properties("gallery-snapshots", "snapshots", "")
    }
    endpoint = made["vhd-uploads-isos"]["body"]["properties"]["destination"]["properties"]
    assert endpoint["endpointUrl"] == (
        f"https://{HOST}/runtime/webhooks/eventgrid?functionName=vhd_uploaded&code={KEY}"
    )
    assert KEY not in result.stdout + result.stderr, "the function key must never be printed"


def test_without_a_snapshot_topic_only_uploads_are_wired(tmp_path: Path) -> None:
    result = run_hook(tmp_path, GALLERY_SNAPSHOTS_TOPIC_ID="")
    assert result.returncode == 0, result.stderr
    assert "snapshots" not in puts(tmp_path)
    assert "no snapshot topic" in result.stdout


def test_the_hook_waits_for_the_key_then_goes_on(tmp_path: Path) -> None:
    result = run_hook(tmp_path, FAKE_KEY_AFTER="2")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "state" / "key-asks").read_text() == "3"
    assert len(puts(tmp_path)) == 5


def test_the_hook_gives_up_when_the_key_never_comes(tmp_path: Path) -> None:
    result = run_hook(tmp_path, FAKE_KEY_AFTER="1000000", GALLERY_HOOK_TIMEOUT_SECONDS="1")
    assert result.returncode != 0
    assert "no eventgrid_extension key" in result.stderr
    assert puts(tmp_path) == {}


def test_a_failed_validation_stops_the_hook(tmp_path: Path) -> None:
    result = run_hook(tmp_path, FAKE_PROVISIONING="Failed")
    assert result.returncode != 0
    assert "provisioning Failed" in result.stderr
    assert len(puts(tmp_path)) == 1, "it stops at the first subscription that fails"


def test_missing_outputs_are_named(tmp_path: Path) -> None:
    result = run_hook(tmp_path, GALLERY_UPLOADS_TOPIC_ID="")
    assert result.returncode != 0
    assert "GALLERY_UPLOADS_TOPIC_ID" in result.stderr
