"""`salesforce-appcues-sandbox serve ...`: both emulators in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from .server import Sandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="salesforce-appcues-sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve both emulated APIs over HTTPS on 127.0.0.1")
    serve.add_argument("--salesforce-port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--appcues-port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--data-dir", help="keep SQLite files and the CA here (default: memory)")
    serve.add_argument("--seed", choices=["none", "demo"], default="none")
    serve.add_argument("--connection-file", required=True, help="JSON written once ready")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sandbox = Sandbox(
        salesforce_port=args.salesforce_port,
        appcues_port=args.appcues_port,
        data_dir=args.data_dir,
        seed=args.seed,
        connection_file=args.connection_file,
    )
    stopping = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    sandbox.start()
    print(f"sandbox ready: {args.connection_file}", file=sys.stderr, flush=True)
    stopping.wait()
    sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
