"""HTTP trigger over real HTTP, and the admin API."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import azure.functions as func
import pytest

from tests.devstack.host import sample_app
from tests.devstack.host.conftest import HostFactory

TIMEOUT = 10


def _url(host: object, path: str) -> str:
    return f"http://127.0.0.1:{host.options.http_port}{path}"  # type: ignore[attr-defined]


def test_http_trigger_answers_over_http(host_factory: HostFactory) -> None:
    host = host_factory(enabled=("hello",))
    request = urllib.request.Request(
        _url(host, "/api/hello/world?q=42"), data=b"ping", method="POST"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        status, headers, body = response.status, response.headers, json.loads(response.read())
    assert status == 201
    assert headers["X-Function"] == "hello"
    assert headers["Content-Type"].startswith("application/json")
    assert body["name"] == "world"
    assert body["q"] == "42"
    assert body["body"] == "ping"
    ((req, context),) = sample_app.wait_for("hello", 1, timeout=1)
    assert isinstance(req, func.HttpRequest)
    assert req.method == "POST"
    assert req.url.endswith("/api/hello/world?q=42")
    assert context.invocation_id == body["invocation"]


def test_http_trigger_rejects_unknown_route_and_method(host_factory: HostFactory) -> None:
    host = host_factory(enabled=("hello",))
    for path, method in (("/api/nothing", "GET"), ("/api/hello/world", "DELETE")):
        request = urllib.request.Request(_url(host, path), method=method)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=TIMEOUT)
        assert caught.value.code == 404


def test_admin_api_status_and_manual_invocation(host_factory: HostFactory) -> None:
    host = host_factory(enabled=("tick", "hello"))
    sample_app.wait_for("tick", 1, timeout=3)  # run on startup
    request = urllib.request.Request(
        _url(host, "/admin/functions/tick"), data=b'{"input": ""}', method="POST"
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
        assert response.status == 202
    records = sample_app.wait_for("tick", 2, timeout=3)
    assert records[1][0].past_due is False
    with urllib.request.urlopen(_url(host, "/admin/host/status"), timeout=TIMEOUT) as response:
        status = json.loads(response.read())
    assert status["state"] == "Running"
    assert status["invocations"]["tick"]["Succeeded"] == 2
    missing = urllib.request.Request(_url(host, "/admin/functions/nope"), data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(missing, timeout=TIMEOUT)
    assert caught.value.code == 404
