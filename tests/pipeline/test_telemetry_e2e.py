"""End to end on the local stack: a build seen the way Application Insights sees it.

A local capture endpoint stands in for Azure Monitor's ingestion API (``POST /v2.1/track`` with
a gzip'd or plain JSON list of envelopes, answered ``{"itemsReceived": n, "itemsAccepted": n,
"errors": []}``). A stack whose Functions host has ``APPLICATIONINSIGHTS_CONNECTION_STRING``
pointing there runs one build, sent with a ``traceparent`` like any instrumented producer would.
What arrives must let an operator follow that build: its log lines carry its build id, source
and version as custom dimensions; the worker's and the tracker's telemetry share the producer's
operation id; the ARM, blob and Service Bus calls are dependencies in it; the build's events
carry its trace on to subscribers; the build metrics are exported; and no SAS signature (the VHD
is read with a real one) or key appears anywhere.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from azure.servicebus import ServiceBusMessage
from azure.storage.blob import BlobSasPermissions, generate_blob_sas

from devstack import azurite
from devstack.procs import free_port
from devstack.stack import STORAGE_ACCOUNT_ID, build_request_document
from shared.builds.ledger import build_id_for
from tests.pipeline.conftest import Stack, start_stack, wait_for

TRACE_ID = "5c6f2bd1e0a94f0c8f3b2a1d4e5f6a7b"
TRACEPARENT = f"00-{TRACE_ID}-1a2b3c4d5e6f7a8b-01"
INSTRUMENTATION_KEY = "00000000-0000-0000-0000-000000000000"
#: Telemetry settings of the host: short export intervals, and nothing sent anywhere but to the
#: capture endpoint (statsbeat, SDK stats and the control plane would call Microsoft endpoints).
TELEMETRY_SETTINGS = {
    "OTEL_METRIC_EXPORT_INTERVAL": "1000",
    "OTEL_BSP_SCHEDULE_DELAY": "300",
    "OTEL_BLRP_SCHEDULE_DELAY": "300",
    "OTEL_TRACES_SAMPLER": "always_on",
    "OTEL_SERVICE_NAME": "gallery-pipeline-e2e",
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
}
#: Key material that must never be sent. A signature azure-core already masked
#: (``sig=REDACTED``) is no secret; any other value after ``sig=`` is.
SECRETS = re.compile(r"sig=(?!REDACTED|\*\*\*)|AccountKey=(?!\*\*\*)|SharedAccessKey=(?!\*\*\*)")


class Ingestion:
    """A local Azure Monitor ingestion endpoint that keeps every envelope it receives."""

    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self.port = free_port()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def connection_string(self) -> str:
        return (
            f"InstrumentationKey={INSTRUMENTATION_KEY};"
            f"IngestionEndpoint=http://127.0.0.1:{self.port}/"
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        ingestion = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip" or body[:2] == b"\x1f\x8b":
                    body = gzip.decompress(body)
                text = body.decode("utf-8")
                try:
                    parsed = json.loads(text)
                except ValueError:  # newline-delimited JSON, one envelope per line
                    parsed = [json.loads(line) for line in text.splitlines() if line.strip()]
                items = parsed if isinstance(parsed, list) else [parsed]
                with ingestion._lock:
                    ingestion.paths.append(self.path)
                    ingestion.raw.append(text)
                    if self.path.rstrip("/").endswith(("/v2.1/track", "/v2/track")):
                        ingestion.envelopes.extend(items)
                answer = json.dumps(
                    {"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        return Handler

    def __enter__(self) -> Ingestion:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def of_type(self, base_type: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.envelopes if e.get("data", {}).get("baseType") == base_type]

    def wait_for(self, check: Callable[[], Any], *, what: str, timeout: float = 45) -> Any:
        return wait_for(check, timeout=timeout, what=what, interval=0.5)


def base(envelope: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = envelope["data"]["baseData"]
    return data


def properties(envelope: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = base(envelope).get("properties") or {}
    return found


def operation_id(envelope: dict[str, Any]) -> str | None:
    tags: dict[str, str] = envelope.get("tags") or {}
    return tags.get("ai.operation.id")


@pytest.fixture(scope="module")
def telemetry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, Ingestion]]:
    with Ingestion() as ingestion:
        settings = {
            **TELEMETRY_SETTINGS,
            "APPLICATIONINSIGHTS_CONNECTION_STRING": ingestion.connection_string,
        }
        with start_stack(tmp_path_factory.mktemp("telemetry"), settings) as stack:
            yield stack, ingestion


def with_sas(url: str) -> str:
    """``url`` with a real read SAS of the Azurite account (the pipeline reads the footer with
    it; the signature must never reach telemetry)."""
    container, name = url.split(f"/{azurite.ACCOUNT_NAME}/", 1)[1].split("/", 1)
    token = generate_blob_sas(
        azurite.ACCOUNT_NAME,
        container,
        name,
        account_key=azurite.ACCOUNT_KEY,
        permission=BlobSasPermissions(read=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    return f"{url}?{token}"


@pytest.fixture(scope="module")
def built(telemetry: tuple[Stack, Ingestion]) -> dict[str, Any]:
    """One VHD build (its URI with a SAS), sent with a traceparent, followed until it
    succeeded."""
    stack, _ = telemetry
    definition = "telemetry-e2e"
    stack.seed_definition(definition)
    url = with_sas(stack.upload_vhd("vhds", "telemetry/os.vhd", 32 * 1024 * 1024))
    document = build_request_document(
        definition, {"vhd": {"uri": url, "storageAccountId": STORAGE_ACCOUNT_ID}}
    )
    with stack.bus() as client, client.get_queue_sender("image-builds") as sender:
        sender.send_messages(
            ServiceBusMessage(
                json.dumps(document),
                message_id=document["requestId"],
                content_type="application/json",
                application_properties={"traceparent": TRACEPARENT},
            ),
            timeout=10,
        )
    build = stack.wait_for_build(build_id_for(document["requestId"]), timeout=90)
    assert build["state"] == "succeeded", build["error"]
    encoded = urlsplit(url).query.split("sig=", 1)[1].split("&", 1)[0]
    return {**build, "sasSignatures": (encoded, unquote(encoded))}


def test_the_builds_log_lines_carry_its_build_id_source_and_version(
    telemetry: tuple[Stack, Ingestion], built: dict[str, Any]
) -> None:
    _, ingestion = telemetry

    def lines() -> list[dict[str, Any]]:
        return [
            t
            for t in ingestion.of_type("MessageData")
            if properties(t).get("build_id") == built["buildId"]
        ]

    ingestion.wait_for(
        lambda: any(base(t)["message"] == "build succeeded" for t in lines()),
        what="the tracker's 'build succeeded' trace",
    )
    found = lines()
    messages = {base(t)["message"] for t in found}
    assert {"image version PUT accepted", "build succeeded"} <= messages
    for line in found:
        dims = properties(line)
        assert dims["source"] == built["source"], line
    accepted = next(t for t in found if base(t)["message"] == "image version PUT accepted")
    assert properties(accepted)["version"] == built["target"]["version"]
    assert properties(accepted)["gallery"] == built["target"]["gallery"]
    assert properties(accepted)["definition"] == built["target"]["definition"]
    # One operation for the whole build: the producer's trace, in the worker and the tracker.
    assert {operation_id(t) for t in found} == {TRACE_ID}


def test_arm_blob_and_service_bus_calls_are_dependencies_of_the_builds_operation(
    telemetry: tuple[Stack, Ingestion], built: dict[str, Any]
) -> None:
    stack, ingestion = telemetry
    arm = f"127.0.0.1:{stack.layout.ports['armsim']}"
    blob = f"127.0.0.1:{stack.layout.ports['azurite']}"
    version = built["target"]["version"]

    def dependencies() -> list[dict[str, Any]]:
        return [d for d in ingestion.of_type("RemoteDependencyData") if operation_id(d) == TRACE_ID]

    def names() -> set[str]:
        return {str(base(d)["name"]) for d in dependencies()}

    def complete() -> bool:
        targets = {str(base(d).get("target")) for d in dependencies()}
        spans = {"build_worker", "build_tracker follow", "ServiceBus.send"} <= names()
        return arm in targets and blob in targets and spans

    ingestion.wait_for(complete, what="ARM, blob and Service Bus dependencies of the build")
    http = {(str(base(d)["name"]), str(base(d).get("target"))) for d in dependencies()}
    puts = {name for name, target in http if target == arm and name.startswith("PUT ")}
    assert any(name.endswith(f"/versions/{version}") for name in puts), puts  # the image version
    reads = {name for name, target in http if target == blob and name.startswith("GET ")}
    assert any("/vhds/" in name for name in reads), reads  # the VHD footer's range read
    assert any("/gallery-pipeline-ledger/" in name for name in reads)  # ledger and records
    assert all(base(d).get("type") for d in dependencies())


def test_the_build_metrics_are_exported(
    telemetry: tuple[Stack, Ingestion], built: dict[str, Any]
) -> None:
    _, ingestion = telemetry

    def metric_names() -> set[str]:
        return {m["name"] for e in ingestion.of_type("MetricData") for m in base(e)["metrics"]}

    ingestion.wait_for(
        lambda: {"gallery.builds.started", "gallery.builds.succeeded"} <= metric_names(),
        what="the build metrics",
    )
    durations = [
        e
        for e in ingestion.of_type("MetricData")
        if base(e)["metrics"][0]["name"] == "gallery.replication.duration"
    ]
    assert {properties(e).get("region") for e in durations} >= {"westeurope", "northeurope"}


def test_no_secret_is_sent(telemetry: tuple[Stack, Ingestion], built: dict[str, Any]) -> None:
    _, ingestion = telemetry
    time.sleep(1.5)  # the last batches
    sent = "\n".join(ingestion.raw)
    assert sent, "nothing was exported"
    assert SECRETS.findall(sent) == []
    assert not any(signature in sent for signature in built["sasSignatures"])
    assert "sig=REDACTED" in sent  # the VHD's ranged GET was recorded, its SAS masked
    assert azurite.ACCOUNT_KEY not in sent
    assert "sv=" not in built["source"]  # the build's source is shown without its SAS


def test_the_builds_events_carry_its_trace_to_subscribers(
    telemetry: tuple[Stack, Ingestion], built: dict[str, Any]
) -> None:
    stack, _ = telemetry
    parents: dict[str, str] = {}
    deadline = time.monotonic() + 30
    with (
        stack.bus() as client,
        client.get_subscription_receiver("image-build-events", "audit") as receiver,
    ):
        while "succeeded" not in parents and time.monotonic() < deadline:
            for message in receiver.receive_messages(max_message_count=50, max_wait_time=1):
                receiver.complete_message(message)
                event = json.loads(b"".join(message.body))
                if event["subject"] != built["buildId"]:
                    continue
                props = {
                    (k.decode() if isinstance(k, bytes) else str(k)): v
                    for k, v in (message.application_properties or {}).items()
                }
                value = props.get("traceparent", b"")
                parents[event["data"]["state"]] = (
                    value.decode() if isinstance(value, bytes) else str(value)
                )
    assert {"queued", "started", "succeeded"} <= set(parents), parents
    assert {parent.split("-")[1] for parent in parents.values()} == {TRACE_ID}
