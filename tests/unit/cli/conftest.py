"""Fixtures of the galleryctl tests: a clean environment, settings files, a local status API."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from shared import composition
from shared.cli.api import API_KEY_VARIABLE, API_URL_VARIABLE
from shared.cli.local_settings import APP_SETTINGS, SETTINGS_FILE_VARIABLE, has_app_settings
from shared.core.settings import SettingName
from tests.unit.contract.test_request_fixtures import SUB

ALLOWED_GALLERIES = f"{SUB}/rg-images/*"
#: Seconds a test may wait for the local API; everything answers at once.
SERVER_TIMEOUT = 5.0


@pytest.fixture(autouse=True)
def clean_environment() -> Iterator[None]:
    """No app setting, settings file or API address leaks into a test, and what a test (or a
    --settings file loaded in-process) exports is gone after it."""
    saved = dict(os.environ)
    ours = {SETTINGS_FILE_VARIABLE, API_URL_VARIABLE, API_KEY_VARIABLE, *APP_SETTINGS}
    for name in list(os.environ):
        if name.startswith("GALLERY_") or name in ours:
            del os.environ[name]
    assert not has_app_settings(os.environ)
    composition.reset()
    yield
    os.environ.clear()
    os.environ.update(saved)
    composition.reset()


@pytest.fixture
def allowed_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the environment: the test galleries are allowed."""
    monkeypatch.setenv(SettingName.ALLOWED_TARGET_GALLERIES, ALLOWED_GALLERIES)


def settings_file(tmp_path: Path, values: dict[str, str], name: str = "s.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return path


class FakeStatusApi:
    """A status API on 127.0.0.1: each path answers its queued responses in turn (the last one
    again and again); an unknown path is a 404 with an empty body, as a host without the route."""

    def __init__(self) -> None:
        self.answers: dict[str, list[tuple[int, bytes]]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.timeout = SERVER_TIMEOUT
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,))
        self._thread.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, path: str, *documents: Any, status: int = 200) -> None:
        """Queue ``documents`` (JSON) as the answers to GET ``path``."""
        self.answer_raw(path, *((status, json.dumps(d).encode()) for d in documents))

    def answer_raw(self, path: str, *responses: tuple[int, bytes]) -> None:
        with self._lock:
            self.answers.setdefault(path, []).extend(responses)

    def not_found(self, path: str, message: str = "no build") -> None:
        """The API's own answer for something unknown."""
        self.answer(path, {"error": {"code": "NotFound", "message": message}}, status=404)

    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def _next(self, path: str) -> tuple[int, bytes]:
        with self._lock:
            queued = self.answers.get(path)
            if not queued:
                return 404, b""
            return queued.pop(0) if len(queued) > 1 else queued[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.requests.append((self.path, dict(self.headers.items())))
                status, body = api._next(self.path)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        return Handler

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(SERVER_TIMEOUT)


@pytest.fixture
def status_api() -> Iterator[FakeStatusApi]:
    server = FakeStatusApi()
    server.start()
    yield server
    server.stop()


def build_document(
    state: str = "replicating",
    *progress: int,
    build_id: str = "b-1",
    error: dict[str, str] | None = None,
    definition: str = "d",
    source: str = "/subscriptions/s/resourcegroups/g/providers/microsoft.compute/snapshots/x",
) -> dict[str, Any]:
    """A build as the status API shows it."""
    regions = [
        {"region": name, "state": "Completed" if p == 100 else "Replicating", "progress": p}
        for name, p in zip(("West Europe", "East US"), progress, strict=False)
    ]
    return {
        "buildId": build_id,
        "requestId": "r-1",
        "source": source,
        "state": state,
        "target": {"gallery": "g", "definition": definition, "version": "1.0.0"},
        "regions": regions,
        "progress": round(sum(progress) / len(progress)) if progress else 0,
        "createdAt": "2026-11-22T12:00:00.000+00:00",
        "updatedAt": "2026-11-22T12:00:00.123+00:00",
        "error": error,
        "history": [],
    }
