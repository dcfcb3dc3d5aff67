"""``python -m devstack.servicebus --port PORT [--data DIR] [--config FILE]``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from proton.reactor import Container

from devstack.servicebus import REPO_ROOT
from devstack.servicebus.broker import Broker
from devstack.servicebus.config import ConfigError, load_config
from devstack.servicebus.entities import Namespace
from devstack.servicebus.store import MessageStore

logger = logging.getLogger("devstack.servicebus")

DATABASE_NAME = "servicebus.sqlite3"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.servicebus",
        description="Service Bus emulator (AMQP 1.0) for the azure-servicebus SDK.",
    )
    parser.add_argument("--port", type=int, default=5672, help="TCP port (default 5672)")
    parser.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    parser.add_argument(
        "--data",
        type=Path,
        default=REPO_ROOT / ".devstack" / "servicebus",
        help="directory of the SQLite database (default .devstack/servicebus)",
    )
    parser.add_argument(
        "--config", type=Path, default=None, help="entity config JSON (default: the pipeline's)"
    )
    parser.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    return parser.parse_args(argv)


def serve(host: str, port: int, data_dir: Path, config_path: Path | None) -> None:
    """Run the emulator until SIGTERM or SIGINT."""
    namespace = Namespace(load_config(config_path))
    store = MessageStore(data_dir / DATABASE_NAME)
    broker = Broker(namespace, store, host, port)

    def stop(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal %d received", signum)
        broker.request_stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        Container(broker).run()
    finally:
        store.close()
        logger.info("stopped; data flushed to %s", data_dir / DATABASE_NAME)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        serve(args.host, args.port, args.data, args.config)
    except ConfigError as error:
        logger.error("invalid config: %s", error)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
