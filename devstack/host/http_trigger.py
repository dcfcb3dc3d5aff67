"""The host's HTTP server on 127.0.0.1: HTTP-triggered functions, admin API, Event Grid endpoints.

Routes (the real host's paths where one exists):

* ``/api/<route>``: HTTP-triggered functions. Route templates support ``{name}``,
  ``{name:int}`` (also ``alpha``, ``guid``, ``bool``), optional ``{name?}`` and catch-all
  ``{*rest}``; the methods filter comes from the binding. The request becomes a
  ``func.HttpRequest`` and the return value is encoded, both through the real converters.
  As with Core Tools, ``authLevel`` is not enforced locally.
* ``GET /admin/host/status``, ``GET /admin/functions``: host state and indexed functions.
* ``POST /admin/functions/{name}`` with ``{"input": "..."}``: run a non-HTTP function now
  (202 Accepted; the invocation runs in the background, as in Azure).
* ``POST /runtime/webhooks/eventgrid?functionName=NAME``: the Event Grid extension's webhook
  (``aeg-event-type: Notification`` or ``SubscriptionValidation``); each event is one invocation.
* ``POST /eventgrid/api/events``: the local Event Grid topic endpoint (ARM simulator webhooks
  post here); events are routed through the configured subscriptions.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from azure.functions import meta
from azure.functions.http import HttpRequest, HttpRequestConverter, HttpResponseConverter

from devstack.host.loader import FunctionSpec

logger = logging.getLogger(__name__)

ROUTE_PREFIX = "api"
_ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE")
_CONSTRAINTS = {
    "int": r"-?\d+",
    "long": r"-?\d+",
    "alpha": r"[A-Za-z]+",
    "bool": r"(?i:true|false)",
    "guid": r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}",
}
_PARAMETER = re.compile(r"\{(\*?)([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+))?(\?)?\}")
MAX_BODY_BYTES = 100 * 1024 * 1024


class UnknownFunctionError(KeyError):
    """No function of that name (or not of the expected trigger type) is indexed."""


class HostEndpoints(Protocol):
    """What the HTTP server needs from the host."""

    def host_status(self) -> dict[str, Any]: ...

    def function_list(self) -> list[dict[str, Any]]: ...

    def http_functions(self) -> Sequence[FunctionSpec]: ...

    def invoke_http(self, spec: FunctionSpec, request: HttpRequest) -> Any: ...

    def invoke_admin(self, name: str, input_text: str | None) -> None: ...

    def publish_events(self, payload: Any) -> int: ...

    def deliver_webhook_events(self, function_name: str, payload: Any) -> None: ...


@dataclass(frozen=True)
class HttpRoute:
    """A compiled route template of one HTTP-triggered function."""

    spec: FunctionSpec
    template: str
    pattern: re.Pattern[str]
    methods: frozenset[str]

    @classmethod
    def for_function(cls, spec: FunctionSpec) -> HttpRoute:
        template = str(spec.trigger.get("route") or spec.name).strip("/")
        methods = spec.trigger.get("methods") or _ALL_METHODS
        return cls(
            spec=spec,
            template=template,
            pattern=compile_route(template),
            methods=frozenset(str(m).upper() for m in methods),
        )

    def match(self, path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {k: unquote(v) for k, v in found.groupdict().items() if v is not None}


def compile_route(template: str) -> re.Pattern[str]:
    """Turn an ASP.NET-style route template into a regular expression."""
    regex = ""
    position = 0
    for found in _PARAMETER.finditer(template):
        regex += re.escape(template[position : found.start()])
        catch_all, name, constraint, optional = found.groups()
        if catch_all:
            body = ".*"
        elif constraint:
            if constraint.lower() not in _CONSTRAINTS:
                raise ValueError(f"route {template!r}: unsupported constraint {constraint!r}")
            body = _CONSTRAINTS[constraint.lower()]
        else:
            body = "[^/]+"
        group = f"(?P<{name}>{body})"
        if optional or catch_all:
            if regex.endswith("/"):
                regex = regex[:-1] + f"(?:/{group})?"
            else:
                regex += f"{group}?"
        else:
            regex += group
        position = found.end()
    regex += re.escape(template[position:])
    return re.compile(regex, re.IGNORECASE)


def build_http_request(
    method: str,
    *,
    url: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    route_params: Mapping[str, str],
    body: bytes,
) -> HttpRequest:
    """Build ``func.HttpRequest`` through the real ``HttpRequestConverter``."""
    datum = meta.Datum(
        type="http",
        value={
            "method": meta.Datum(method, "string"),
            "url": meta.Datum(url, "string"),
            "headers": {k: meta.Datum(v, "string") for k, v in headers.items()},
            "query": {k: meta.Datum(v, "string") for k, v in query.items()},
            "params": {k: meta.Datum(v, "string") for k, v in route_params.items()},
            "body": meta.Datum(body, "bytes"),
        },
    )
    request = HttpRequestConverter.decode(datum, trigger_metadata={})
    assert isinstance(request, HttpRequest)
    return request


def encode_http_response(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Encode a function's return value with the real ``HttpResponseConverter``."""
    if result is None:
        return HTTPStatus.NO_CONTENT, [], b""
    datum = HttpResponseConverter.encode(result, expected_type=None)
    if datum.type == "string":
        return HTTPStatus.OK, [("Content-Type", "text/plain; charset=utf-8")], datum.value.encode()
    value = datum.value
    status = int(value["status_code"].value)
    headers = [(name, header.value) for name, header in value["headers"].items()]
    for cookie in value.get("cookies") or []:
        headers.append(("Set-Cookie", cookie.output(header="").strip()))
    body = value["body"].value or b""
    return status, headers, body if isinstance(body, bytes) else str(body).encode()


class _Handler(BaseHTTPRequestHandler):
    server: HostHttpServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("http %s - %s", self.address_string(), format % args)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _send(
        self, status: int, body: bytes = b"", headers: Sequence[tuple[str, str]] = ()
    ) -> None:
        self.send_response(status)
        names = {name.lower() for name, _ in headers}
        for name, value in headers:
            if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                self.send_header(name, value)
        if body and "content-type" not in names:
            self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, document: Any) -> None:
        body = json.dumps(document).encode()
        self._send(status, body, [("Content-Type", "application/json; charset=utf-8")])

    def _error(self, status: int, code: str, message: str) -> None:
        self._send_json(status, {"error": {"code": code, "message": message}})

    def _handle(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.strip("/")
        lowered = path.lower()
        try:
            body = self._read_body()
        except ValueError as exc:
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "RequestTooLarge", str(exc))
            return
        endpoints = self.server.endpoints
        try:
            if lowered == ROUTE_PREFIX or lowered.startswith(ROUTE_PREFIX + "/"):
                self._http_function(path[len(ROUTE_PREFIX) :].strip("/"), parts.query, body)
            elif lowered == "admin/host/status" and self.command == "GET":
                self._send_json(HTTPStatus.OK, endpoints.host_status())
            elif lowered == "admin/functions" and self.command == "GET":
                self._send_json(HTTPStatus.OK, endpoints.function_list())
            elif lowered.startswith("admin/functions/") and self.command == "POST":
                self._admin_invoke(path[len("admin/functions/") :], body)
            elif lowered == "runtime/webhooks/eventgrid" and self.command == "POST":
                self._eventgrid_webhook(parts.query, body)
            elif lowered == "eventgrid/api/events" and self.command == "POST":
                self._eventgrid_topic(body)
            else:
                self._send(HTTPStatus.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away")
        except Exception:
            logger.exception("http: unhandled error for %s %s", self.command, self.path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR)

    def _http_function(self, route_path: str, query_text: str, body: bytes) -> None:
        for route in self.server.routes:
            params = route.match(route_path)
            if params is None or self.command not in route.methods:
                continue
            host = self.headers.get("Host") or f"127.0.0.1:{self.server.server_port}"
            request = build_http_request(
                self.command,
                url=f"http://{host}{self.path}",
                headers=dict(self.headers.items()),
                query=dict(parse_qsl(query_text, keep_blank_values=True)),
                route_params=params,
                body=body,
            )
            try:
                result = self.server.endpoints.invoke_http(route.spec, request)
            except Exception:
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR)
                return
            status, headers, response_body = encode_http_response(result)
            self._send(status, response_body, headers)
            return
        self._send(HTTPStatus.NOT_FOUND)

    def _admin_invoke(self, name: str, body: bytes) -> None:
        input_text: str | None = None
        if body:
            try:
                document = json.loads(body)
            except ValueError:
                self._error(HTTPStatus.BAD_REQUEST, "BadRequest", "body must be JSON")
                return
            raw = document.get("input") if isinstance(document, dict) else None
            input_text = raw if isinstance(raw, str) or raw is None else json.dumps(raw)
        try:
            self.server.endpoints.invoke_admin(unquote(name), input_text)
        except UnknownFunctionError as exc:
            self._error(HTTPStatus.NOT_FOUND, "NotFound", str(exc))
            return
        self._send(HTTPStatus.ACCEPTED)

    def _parse_json(self, body: bytes) -> Any:
        try:
            return json.loads(body)
        except ValueError:
            return None

    def _eventgrid_webhook(self, query_text: str, body: bytes) -> None:
        query = {k.lower(): v for k, v in parse_qsl(query_text)}
        function_name = query.get("functionname", "")
        function_name = function_name.removeprefix("Host.Functions.")
        event_type = (self.headers.get("aeg-event-type") or "").lower()
        if not function_name:
            self._error(HTTPStatus.BAD_REQUEST, "BadRequest", "functionName is required")
            return
        payload = self._parse_json(body)
        if event_type == "subscriptionvalidation":
            first = payload[0] if isinstance(payload, list) and payload else {}
            code = (first.get("data") or {}).get("validationCode") if first else None
            self._send_json(HTTPStatus.OK, {"validationResponse": code})
            return
        if event_type != "notification":
            self._error(HTTPStatus.BAD_REQUEST, "BadRequest", "Missing aeg-event-type header")
            return
        try:
            self.server.endpoints.deliver_webhook_events(function_name, payload)
        except UnknownFunctionError as exc:
            self._error(HTTPStatus.NOT_FOUND, "NotFound", str(exc))
            return
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "BadRequest", str(exc))
            return
        except Exception:
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR)
            return
        self._send(HTTPStatus.ACCEPTED)

    def _eventgrid_topic(self, body: bytes) -> None:
        payload = self._parse_json(body)
        if payload is None:
            self._error(HTTPStatus.BAD_REQUEST, "BadRequest", "body must be an Event Grid array")
            return
        try:
            self.server.endpoints.publish_events(payload)
        except ValueError as exc:
            self._error(HTTPStatus.BAD_REQUEST, "BadRequest", str(exc))
            return
        self._send(HTTPStatus.OK)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle  # noqa: N815


class HostHttpServer(ThreadingHTTPServer):
    """The host's HTTP listener; serve it with :meth:`start` and stop with :meth:`stop`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, endpoints: HostEndpoints, port: int, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), _Handler)
        self.endpoints = endpoints
        self.routes = [HttpRoute.for_function(spec) for spec in endpoints.http_functions()]
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.2}, name="host-http", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(timeout)
        self.server_close()
