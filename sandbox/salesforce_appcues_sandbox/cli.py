"""`salesforce-appcues-sandbox serve ...`: both emulators in the foreground until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any

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
    serve.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="SERVICE.KEY=VALUE",
        help="a service option, e.g. salesforce.daily_api_limit=5000 (VALUE parsed as JSON "
        "when it parses, else kept as text); repeatable",
    )
    return parser


def _options(pairs: list[str]) -> dict[str, dict[str, Any]]:
    options: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        target, sep, raw = pair.partition("=")
        service, dot, key = target.partition(".")
        if not sep or not dot or service not in ("salesforce", "appcues") or not key:
            raise SystemExit(
                f"--option {pair!r}: expected salesforce.KEY=VALUE or appcues.KEY=VALUE"
            )
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        options.setdefault(service, {})[key] = value
    return options


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sandbox = Sandbox(
        salesforce_port=args.salesforce_port,
        appcues_port=args.appcues_port,
        data_dir=args.data_dir,
        seed=args.seed,
        connection_file=args.connection_file,
        options=_options(args.option),
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
