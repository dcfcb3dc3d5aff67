"""``python -m devstack up [--foreground] | down | status``: the local Azure stack.

``up`` starts Azurite, the Service Bus emulator, the ARM simulator and the mini Functions host as
background processes (pid files and logs in ``.devstack/run/``), waits until each is ready (every
wait bounded), writes ``local.settings.json`` for the local endpoints and registers the host's
Event Grid topic as the ARM simulator's webhook. ``--foreground`` then waits; Ctrl-C or SIGTERM
stops everything. ``status`` reports each service; ``down`` stops them.

Ports default to Azurite 10000, Service Bus 5672, ARM 8443, host 7071; override them with flags
or ``DEVSTACK_AZURITE_PORT``, ``DEVSTACK_SERVICEBUS_PORT``, ``DEVSTACK_ARM_PORT``,
``DEVSTACK_HOST_PORT``.

This module only parses the command line; :mod:`devstack.control` does the work.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from devstack.control import (
    DEFAULT_PORTS,
    REPO_ROOT,
    DevstackError,
    Layout,
    down,
    foreground,
    seed,
    status,
    up,
)


def _port(flag_value: int | None, name: str) -> int:
    if flag_value is not None:
        return flag_value
    env = f"DEVSTACK_{'ARM' if name == 'armsim' else name.upper()}_PORT"
    return int(os.environ.get(env) or DEFAULT_PORTS[name])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "seed"])
    parser.add_argument("--foreground", action="store_true", help="up: wait; Ctrl-C stops all")
    parser.add_argument("--azurite-port", type=int)
    parser.add_argument("--servicebus-port", type=int)
    parser.add_argument("--arm-port", type=int)
    parser.add_argument("--host-port", type=int)
    parser.add_argument("--project-root", type=Path, default=REPO_ROOT)
    parser.add_argument("--run-dir", type=Path, default=os.environ.get("DEVSTACK_RUN_DIR"))
    parser.add_argument("--data-dir", type=Path, default=os.environ.get("DEVSTACK_DATA_DIR"))
    parser.add_argument(
        "--settings-file", type=Path, default=os.environ.get("DEVSTACK_SETTINGS_FILE")
    )
    parser.add_argument("--app", default="function_app", help="module of the FunctionApp")
    parser.add_argument("--arm-speed", type=float, default=1.0)
    parser.add_argument("--timeout", type=float, default=30.0, help="readiness timeout per service")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = args.project_root.resolve()
    layout = Layout(
        project_root=root,
        run_dir=(args.run_dir or root / ".devstack" / "run").resolve(),
        data_dir=(args.data_dir or root / ".devstack" / "data").resolve(),
        settings_file=(args.settings_file or root / "local.settings.json").resolve(),
        app_module=args.app,
        ports={
            "azurite": _port(args.azurite_port, "azurite"),
            "servicebus": _port(args.servicebus_port, "servicebus"),
            "armsim": _port(args.arm_port, "armsim"),
            "host": _port(args.host_port, "host"),
        },
        timeout=args.timeout,
        arm_speed=args.arm_speed,
    )
    try:
        if args.command == "down":
            return down(layout)
        if args.command == "seed":
            return seed(layout)
        if args.command == "status":
            return status(layout)
        started = up(layout)
    except DevstackError as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 1
    if args.foreground:
        return foreground(layout, started)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
