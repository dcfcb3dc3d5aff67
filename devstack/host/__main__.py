"""``python -m devstack.host``: run the mini Functions host in the foreground until SIGINT/SIGTERM.

Ready when ``GET http://127.0.0.1:PORT/admin/host/status`` answers 200.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.host.host import FunctionsHost, HostOptions
from devstack.host.loader import FunctionIndexingError
from devstack.host.logformat import ExtrasFormatter

logger = logging.getLogger("devstack.host")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack.host", description=__doc__)
    parser.add_argument("--project-root", type=Path, default=Path.cwd())
    parser.add_argument("--app", default="function_app", help="module holding the FunctionApp")
    parser.add_argument("--port", type=int, default=7071)
    parser.add_argument("--settings", type=Path, help="default: PROJECT_ROOT/local.settings.json")
    parser.add_argument("--host-json", type=Path, help="default: PROJECT_ROOT/host.json")
    parser.add_argument("--eventgrid", type=Path, help="Event Grid subscriptions (JSON)")
    parser.add_argument("--state-dir", type=Path, help="timer status, Event Grid dead letters")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(ExtrasFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    logging.getLogger("azure").setLevel(logging.WARNING)
    logging.getLogger("uamqp").setLevel(logging.WARNING)
    options = HostOptions(
        project_root=args.project_root.resolve(),
        app_module=args.app,
        http_port=args.port,
        settings_file=args.settings,
        host_json=args.host_json,
        eventgrid_config=args.eventgrid,
        state_dir=args.state_dir,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("received signal %d, stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    host = FunctionsHost(options)
    try:
        host.start()
    except (FunctionIndexingError, OSError) as exc:
        logger.error("host failed to start: %s", exc)
        return 1
    try:
        while not stop.wait(0.5):
            pass
    finally:
        host.stop(timeout=5.0)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
