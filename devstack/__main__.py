"""``python -m devstack up [--foreground] | down | status | seed | upload-vhd NAME``: the stack.

``up`` starts Azurite, the Service Bus emulator, the ARM simulator and the mini Functions host as
background processes (pid files and logs in ``.devstack/run/``), waits until each is ready (every
wait bounded), writes ``local.settings.json`` for the local endpoints and registers the host's
Event Grid topic as the ARM simulator's webhook. ``--foreground`` then waits; Ctrl-C or SIGTERM
stops everything. ``status`` reports each service; ``down`` stops them.

Ports default to Azurite 10000, Service Bus 5672, ARM 8443, host 7071; override them with flags
or ``DEVSTACK_AZURITE_PORT``, ``DEVSTACK_SERVICEBUS_PORT``, ``DEVSTACK_ARM_PORT``,
``DEVSTACK_HOST_PORT``.

``seed`` creates the devgallery, its ubuntu-24.04 definition, the upload storage account and a
sample snapshot, and prints their ids. ``upload-vhd NAME`` uploads a generated fixed VHD
(``--size-mib``, default 64) to Azurite's ``vhds`` container and prints its URL.

``--arm-speed S`` (or ``DEVSTACK_ARM_SPEED``) is how many simulated seconds the ARM simulator
works per real second; the default, 5, builds a 4 GiB snapshot into one region in about a minute
(Azure: about 5 minutes).

This module only parses the command line; :mod:`devstack.control` does the work.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from devstack.control import (
    DEFAULT_ARM_SPEED,
    DEFAULT_PORTS,
    REPO_ROOT,
    DevstackError,
    Layout,
    down,
    foreground,
    seed,
    status,
    up,
    upload_vhd,
)


def _port(flag_value: int | None, name: str) -> int:
    if flag_value is not None:
        return flag_value
    env = f"DEVSTACK_{'ARM' if name == 'armsim' else name.upper()}_PORT"
    return int(os.environ.get(env) or DEFAULT_PORTS[name])


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "status", "seed", "upload-vhd"])
    parser.add_argument("name", nargs="?", help="upload-vhd: the blob name in vhds/, e.g. os.vhd")
    parser.add_argument(
        "--size-mib", type=int, default=64, help="upload-vhd: the VHD's size (default 64 MiB)"
    )
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
    parser.add_argument(
        "--arm-speed",
        type=float,
        default=float(os.environ.get("DEVSTACK_ARM_SPEED") or DEFAULT_ARM_SPEED),
        metavar="S",
        help=(
            "simulated ARM seconds per real second (default DEVSTACK_ARM_SPEED or "
            f"{DEFAULT_ARM_SPEED:g}: a 4 GiB snapshot builds in about a minute; 1 is Azure's pace)"
        ),
    )
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
        if args.command == "upload-vhd":
            if not args.name:
                print("devstack: upload-vhd needs a NAME, e.g. os.vhd", file=sys.stderr)
                return 2
            return upload_vhd(layout, args.name, args.size_mib)
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
