"""``GET /api/ui`` on the local stack: the status page shows a real build, its region bars and a
source with a parked request; headless Chromium renders it (DOM and a narrow screenshot).

The local host, like Core Tools, does not enforce function keys (``devstack/host/http_trigger``),
so the page is fetched without ``?code=`` exactly as the JSON API tests do.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path

import pytest

from shared.builds.ledger import build_id_for
from tests.pipeline.conftest import Stack, wait_for
from tests.pipeline.test_builds_e2e import request
from tests.pipeline.test_lifecycle_e2e import lifecycle_summaries, run_function, version_resource
from tests.unit.builds.test_ui import Elements

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / ".devstack" / "test-artifacts"
CHROMIUM_TIMEOUT_SECONDS = 90
#: A PNG of a 420x900 page with text and bars is tens of kB; a blank one is a few hundred bytes.
MIN_SCREENSHOT_BYTES = 5_000


def fetch_ui(stack: Stack) -> tuple[int, Message, str]:
    """The page's status, headers (case-insensitive) and HTML."""
    with urllib.request.urlopen(f"{stack.host_url}/api/ui", timeout=10) as response:
        return response.status, response.headers, response.read().decode("utf-8")


@dataclass(frozen=True)
class UiScenario:
    build_ids: tuple[str, str]
    source_key: str  # the ledger key, as in build records and the page's data-source-key
    parked_page: Elements  # the page while one build ran and the other waited


def _parked_page(stack: Stack, build_ids: tuple[str, str]) -> tuple[str, Elements] | None:
    """The page once it shows the source busy with one build and the other request parked."""
    status, first = stack.api(f"builds/{build_ids[0]}")
    if status != 200:
        return None
    dom = Elements(fetch_ui(stack)[2])
    if dom.all("tr", data_source_key=first["sourceKey"], data_parked="1"):
        return str(first["sourceKey"]), dom
    return None


@pytest.fixture(scope="module")
def scenario(stack: Stack) -> UiScenario:
    """Two requests on one slow source: the page is read while the second is parked, then both
    are built."""
    definition = "e2e-ui"
    stack.seed_definition(definition)
    snapshot = stack.seed_snapshot("e2e-ui-os")
    documents = [request(definition, snapshot) for _ in range(2)]
    build_ids = (build_id_for(documents[0]["requestId"]), build_id_for(documents[1]["requestId"]))
    stack.arm_admin("faults", {"slowRegions": {"westeurope": 6, "northeurope": 6}})
    try:
        for document in documents:
            stack.send_request(document)
        source_key, parked = wait_for(
            lambda: _parked_page(stack, build_ids),
            timeout=60,
            what="the status page to show the source with one parked request",
            interval=0.5,
        )
    finally:
        stack.arm_admin("faults", {})
    for build_id in build_ids:
        assert stack.wait_for_build(build_id, timeout=90)["state"] == "succeeded"
    return UiScenario(build_ids, source_key, parked)


def test_the_page_shows_the_parked_request_then_the_builds_with_region_bars(
    stack: Stack, scenario: UiScenario
) -> None:
    parked_rows = scenario.parked_page.all("tr", data_source_key=scenario.source_key)
    assert parked_rows[0]["data-parked"] == "1"
    assert any(b in scenario.parked_page.joined for b in scenario.build_ids)  # the one in flight

    status, headers, page = fetch_ui(stack)

    assert status == 200
    assert str(headers["Content-Type"]).startswith("text/html")
    assert "default-src 'none'" in str(headers["Content-Security-Policy"])
    assert headers["Cache-Control"] == "no-store"
    dom = Elements(page)
    assert dom.all("main") and dom.all("table", id="sources") and dom.all("table", id="builds")
    for build_id in scenario.build_ids:
        assert dom.all("tr", data_build_id=build_id), build_id
    bars = {b["aria-label"]: b["value"] for b in dom.all("progress")}
    assert bars.get("West Europe: 100% replicated (Completed)") == "100"
    assert bars.get("North Europe: 100% replicated (Completed)") == "100"
    # Both builds ended: the source is idle again, so it left the sources table.
    assert not dom.all("tr", data_source_key=scenario.source_key)


def _lifecycle_run(dom: Elements) -> tuple[str | None, str | None]:
    """The run id and status the page's lifecycle section shows (``None`` without a run)."""
    found = [attrs for attrs in dom.all("dl") if "data-run-id" in attrs]
    return (found[0]["data-run-id"], found[0]["data-status"]) if found else (None, None)


def test_the_page_summarises_the_newest_lifecycle_run(stack: Stack) -> None:
    definition_id = stack.seed_definition("e2e-ui-lifecycle")
    stack.seed(  # two past their end of life beyond the three newest kept (min-keep)
        version_resource(definition_id, "1.0.0", "2020-01-01T00:00:00Z"),
        version_resource(definition_id, "1.1.0", "2021-01-01T00:00:00Z"),
        version_resource(definition_id, "1.2.0", "2021-01-01T00:00:00Z"),
        version_resource(definition_id, "1.3.0", "2031-01-01T00:00:00Z"),
        version_resource(definition_id, "2.0.0", "2031-01-01T00:00:00Z"),
    )
    before, _ = _lifecycle_run(Elements(fetch_ui(stack)[2]))

    run_function(stack, "lifecycle_timer")

    def finished() -> Elements | None:
        dom = Elements(fetch_ui(stack)[2])
        run_id, status = _lifecycle_run(dom)
        return dom if run_id not in (None, before) and status == "dry-run" else None

    dom = wait_for(finished, timeout=60, what="the page to show the new lifecycle run")
    assert dom.all("table", id="lifecycle")
    assert dom.all("tr", data_action="deprecate", data_rule="end-of-life")
    assert dom.all("tr", data_action="skip", data_rule="min-keep")
    # Take this run's event off the topic, so later lifecycle tests read only their own run.
    assert lifecycle_summaries(stack, timeout=60)


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed (the Makefile's apt step installs it: make setup)")
    return found


def _headless(chromium: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *arguments,
        ],
        capture_output=True,
        text=True,
        timeout=CHROMIUM_TIMEOUT_SECONDS,
        check=False,
    )


def test_chromium_renders_the_page_in_a_narrow_window(
    stack: Stack, scenario: UiScenario, tmp_path: Path
) -> None:
    chromium = _chromium()
    url = f"{stack.host_url}/api/ui"

    dumped = _headless(chromium, tmp_path / "profile-dom", "--dump-dom", url)
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    dom = Elements(dumped.stdout)
    assert "<title>Gallery Pipeline status</title>" in dumped.stdout
    assert dom.all("tr", data_build_id=scenario.build_ids[0])
    # The refresh script ran under the page's Content-Security-Policy: it rewrote the status.
    assert "Refreshes every 10 s." in dom.joined
    buttons = dom.all("button", id="refresh-toggle")
    assert buttons and "hidden" not in buttons[0]  # shown by the script (hidden without it)

    screenshot = tmp_path / "ui.png"
    shot = _headless(
        chromium,
        tmp_path / "profile-shot",
        f"--screenshot={screenshot}",
        "--window-size=420,900",
        "--hide-scrollbars",
        url,
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > MIN_SCREENSHOT_BYTES
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = shutil.copyfile(screenshot, ARTIFACTS / "ui.png")
    print(f"status page screenshot (420x900): {kept}")
