"""A test function app: one function per trigger type, recording the typed arguments it got.

Behaviour switches (so tests can make invocations fail):
* ``on_event`` fails while ``data.failTimes`` is larger than the number of earlier attempts of
  the same event id;
* ``on_queue_message`` fails when the message has application property ``fail`` = true.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from typing import Any

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_condition = threading.Condition()
RECORDS: dict[str, list[Any]] = defaultdict(list)


def record(name: str, value: Any) -> None:
    with _condition:
        RECORDS[name].append(value)
        _condition.notify_all()


def wait_for(name: str, count: int, timeout: float) -> list[Any]:
    """Wait for ``count`` records of ``name``; return them (AssertionError on timeout)."""
    deadline = time.monotonic() + timeout
    with _condition:
        while len(RECORDS[name]) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"{name}: expected {count} invocation(s) within {timeout}s, "
                    f"got {len(RECORDS[name])}"
                )
            _condition.wait(remaining)
        return list(RECORDS[name])


def clear() -> None:
    with _condition:
        RECORDS.clear()


@app.event_grid_trigger(arg_name="event")
def on_event(event: func.EventGridEvent) -> None:
    data = event.get_json()
    attempts = sum(1 for e, _ in RECORDS["on_event"] if e.id == event.id)
    record("on_event", (event, time.monotonic()))
    if isinstance(data, dict) and attempts < int(data.get("failTimes", 0)):
        raise RuntimeError(f"planned failure {attempts + 1} of event {event.id}")


@app.service_bus_queue_trigger(
    arg_name="msg", connection="ServiceBusConnection", queue_name="%TEST_QUEUE%"
)
def on_queue_message(msg: func.ServiceBusMessage) -> None:
    started = time.monotonic()
    record("on_queue_message", msg)
    time.sleep(float(msg.application_properties.get("sleep", 0)))
    record("on_queue_message_spans", (started, time.monotonic()))
    if msg.application_properties.get("fail"):
        raise RuntimeError(f"planned failure of message {msg.message_id}")


@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", run_on_startup=True)
def tick(timer: func.TimerRequest) -> None:
    record("tick", (timer, time.monotonic()))


@app.timer_trigger(arg_name="timer", schedule="* * * * * *", use_monitor=False)
def slow_tick(timer: func.TimerRequest) -> None:
    record("slow_tick", timer)
    time.sleep(1.6)


@app.route(route="hello/{name}", methods=["GET", "POST"])
def hello(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    record("hello", (req, context))
    body = req.get_body().decode() if req.get_body() else ""
    return func.HttpResponse(
        f'{{"name": "{req.route_params["name"]}", "q": "{req.params.get("q", "")}", '
        f'"body": "{body}", "invocation": "{context.invocation_id}"}}',
        status_code=201,
        mimetype="application/json",
        headers={"X-Function": context.function_name},
    )
