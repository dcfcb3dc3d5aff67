"""Transport: one port serving HTTPS (ARM) and plain HTTP (identity + admin).

The first byte of each connection decides: ``0x16`` (a TLS handshake) is wrapped with the
devstack certificate; anything else is served as plain HTTP, where only ``/msi/token`` and
``/admin/*`` answer. That lets ``IDENTITY_ENDPOINT=http://127.0.0.1:PORT/msi/token`` work with
azure-identity unchanged while ARM stays HTTPS, as azure-core's bearer policy requires.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from devstack.armsim.admin import handle_admin
from devstack.armsim.entra import is_entra_path
from devstack.armsim.errors import ArmError
from devstack.armsim.protocol import Reply, Request
from devstack.armsim.simulator import Simulator

logger = logging.getLogger(__name__)

TLS_HANDSHAKE = 0x16
SOCKET_TIMEOUT_SECONDS = 60.0
MAX_BODY_BYTES = 8 * 1024 * 1024


def _scope_path(path: str) -> str:
    """ARM reads an encoded ``/`` as a path separator: SDKs send a ``{scope}`` parameter (a
    resource id) as ``%2F``-encoded segments, or after the template's own ``/`` (``//``)."""
    return re.sub(r"/{2,}", "/", re.sub(r"%2[fF]", "/", path))


class ArmHttpServer(ThreadingHTTPServer):
    """A threading HTTP server that speaks TLS or plain HTTP per connection."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl_context.load_cert_chain(sim.config.cert_file, sim.config.key_file)
        super().__init__(("127.0.0.1", sim.config.port), ArmRequestHandler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        connection: socket.socket = request
        connection.settimeout(SOCKET_TIMEOUT_SECONDS)
        # headers and body go out in two writes: without this, Nagle's algorithm holds the body
        # until the client's delayed ACK (~40 ms per response on a keep-alive connection)
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            first = connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first and first[0] == TLS_HANDSHAKE:
            try:
                tls = self.ssl_context.wrap_socket(connection, server_side=True)
            except (ssl.SSLError, OSError) as exc:
                logger.debug("TLS handshake failed from %s: %s", client_address, exc)
                return
            try:
                ArmRequestHandler(tls, client_address, self)
            finally:
                with contextlib.suppress(OSError):
                    tls.close()
            return
        ArmRequestHandler(connection, client_address, self)


class ArmRequestHandler(BaseHTTPRequestHandler):
    """Parses requests and hands them to the simulator."""

    protocol_version = "HTTP/1.1"
    server_version = "armsim"
    server: ArmHttpServer

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def _serve(self) -> None:
        parts = urlsplit(re.sub(r"^/{2,}", "/", self.path))  # else "//x" reads as a host
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {name.lower(): value for name, value in self.headers.items()}
        length = int(headers.get("content-length") or 0)
        if length > MAX_BODY_BYTES:
            self._send(Reply(413, {"error": {"code": "RequestTooLarge", "message": "too large"}}))
            return
        raw = self.rfile.read(length) if length else b""
        body: Any = None
        form = (
            headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")
        )
        if raw and form:  # the Entra token endpoint's client-credentials form
            body = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        elif raw:
            try:
                body = json.loads(raw)
            except ValueError:
                error = ArmError(
                    400, "InvalidRequestContent", "The request content was invalid JSON."
                )
                self._send(Reply(400, error.body()))
                return
        request = Request(
            method=self.command,
            path=_scope_path(parts.path),
            query=query,
            headers=headers,
            body=body,
            raw_query=parts.query,
        )
        self._send(self._dispatch(request))

    def _dispatch(self, request: Request) -> Reply:
        sim = self.server.sim
        secure = isinstance(self.connection, ssl.SSLSocket)
        lowered = request.path.lower()
        if lowered == "/msi/token":
            if request.method != "GET":
                return Reply(405, {"error": "invalid_request", "error_description": "GET only"})
            try:
                return Reply(200, sim.identity.issue(request.query, request.headers))
            except ArmError as error:
                return Reply(
                    error.status, {"error": error.code, "error_description": error.message}
                )
        if lowered.startswith("/admin/"):
            return handle_admin(sim, request)
        if is_entra_path(request.path):  # the Entra-shaped token service (HTTPS for MSAL)
            return sim.entra.handle(request)
        if not secure:
            refusal = ArmError(
                400,
                "HttpsRequired",
                f"ARM is served over HTTPS only: use {sim.config.base_url}{request.path}",
            )
            return Reply(400, refusal.body())
        try:
            return sim.handle_arm(request)
        except Exception:
            logger.exception("unhandled error serving %s %s", request.method, request.path)
            failure = ArmError(500, "InternalServerError", "The simulator failed unexpectedly.")
            return Reply(500, failure.body())

    def _send(self, reply: Reply) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.body is not None:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload and self.command != "HEAD":
            self.wfile.write(payload)

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()
