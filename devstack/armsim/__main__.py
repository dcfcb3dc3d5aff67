"""``python -m devstack.armsim --port PORT [--speed S] [--data DIR] ...``: run the simulator."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from devstack.armsim.config import SimConfig
from devstack.armsim.server import ArmHttpServer
from devstack.armsim.simulator import Simulator

logger = logging.getLogger("devstack.armsim")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TLS_DIR = REPO_ROOT / ".devstack" / "tls"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.armsim",
        description="ARM Compute Gallery simulator with a managed-identity endpoint.",
    )
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per real second (600: ten minutes take one second)",
    )
    parser.add_argument("--data", type=Path, default=Path(".devstack/armsim"), help="state dir")
    parser.add_argument("--cert", type=Path, default=DEFAULT_TLS_DIR / "cert.pem")
    parser.add_argument("--key", type=Path, default=DEFAULT_TLS_DIR / "key.pem")
    parser.add_argument("--page-size", type=int, default=100, help="items per list page")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After on 429s")
    parser.add_argument(
        "--lro-retry-after",
        type=int,
        default=0,
        help="Retry-After on long-running operations (0: absent, like the 2025+ service)",
    )
    parser.add_argument(
        "--identity-header",
        default=os.environ.get("ARMSIM_IDENTITY_HEADER", "armsim-identity-header"),
        help="the secret clients send as X-IDENTITY-HEADER (their IDENTITY_HEADER)",
    )
    parser.add_argument(
        "--blob-connection-string",
        default=os.environ.get("ARMSIM_BLOB_CONNECTION_STRING"),
        help="blob service holding VHD sources (Azurite); env ARMSIM_BLOB_CONNECTION_STRING",
    )
    parser.add_argument("--max-source-size-gib", type=int, default=2048)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    if args.speed <= 0:
        print("--speed must be positive", file=sys.stderr)
        return 2
    for path in (args.cert, args.key):
        if not path.is_file():
            print(f"{path} is missing: run `make setup` (python -m devstack.tls)", file=sys.stderr)
            return 2
    config = SimConfig(
        port=args.port,
        data_dir=args.data,
        cert_file=args.cert,
        key_file=args.key,
        speed=args.speed,
        page_size=args.page_size,
        throttle_retry_after=args.retry_after,
        lro_retry_after=args.lro_retry_after,
        identity_header=args.identity_header,
        blob_connection_string=args.blob_connection_string,
        max_source_size_gib=args.max_source_size_gib,
    )
    sim = Simulator(config)
    server = ArmHttpServer(sim)

    def stop(signum: int, frame: FrameType | None) -> None:
        del frame
        logger.info("signal %d: stopping", signum)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info(
        "armsim listening on %s (identity http://127.0.0.1:%d/msi/token), speed %.0fx, data %s",
        config.base_url,
        config.port,
        config.speed,
        config.data_dir,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        sim.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
