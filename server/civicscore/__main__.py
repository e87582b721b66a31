"""`python -m civicscore`: run the server until SIGTERM or Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

import grpc

from civicscore.app import CivicscoreServer, ServerConfig
from civicscore.rulebook import RulesetRefused


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m civicscore", description="Run the civicscore gRPC server.")
    parser.add_argument("--listen", default=os.environ.get("CIVICSCORE_LISTEN", "127.0.0.1:50051"),
                        help="host:port to listen on; port 0 picks a free one (default %(default)s)")
    parser.add_argument("--database", default=os.environ.get("CIVICSCORE_DATABASE", "sqlite:///var/civicscore.db"),
                        help="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://... (default %(default)s)")
    parser.add_argument("--rules", type=Path, default=Path(os.environ.get("CIVICSCORE_RULES", "rules")),
                        help="folder of rule files (default %(default)s)")
    parser.add_argument("--no-watch-rules", dest="watch_rules", action="store_false",
                        help="do not activate the rules folder's files when they change on disk")
    parser.add_argument("--workers", type=int, default=None, help="engine worker processes (default: one per core)")
    parser.add_argument("--demo-data", action="store_true",
                        help="on an empty database, load Hanoi's units and a synthetic quarter of data")
    parser.add_argument("--port-file", type=Path, help="write the bound port to this file once serving")
    parser.add_argument("--log-level", default=os.environ.get("CIVICSCORE_LOG_LEVEL", "INFO"))
    parser.add_argument("--engine-fault-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, *, extra_handlers: Sequence[grpc.GenericRpcHandler] = ()) -> int:
    """Run the server; `extra_handlers` lets the benchmarks add their baseline RPCs."""
    args = _parse(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("civicscore")
    config = ServerConfig(listen=args.listen, database_url=args.database, rules_dir=args.rules,
                          engine_workers=args.workers, engine_fault_delay_s=args.engine_fault_delay,
                          watch_rules=args.watch_rules)
    if config.database_url.startswith("sqlite:///"):
        Path(config.database_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        server = CivicscoreServer(config, extra_handlers)
    except RulesetRefused as refused:  # a broken rules folder and no ruleset in force to fall back on
        log.error("cannot start: the rules folder %s has %d problem(s):\n%s", config.rules_dir, len(refused.issues),
                  "\n".join(f"  {issue}" for issue in refused.issues))
        return 2
    except Exception as exc:  # a bad database URL or a busy port: say what, without a traceback
        log.error("cannot start: %s", exc)
        return 2
    if args.demo_data:
        from civicscore.demo import load_demo_data

        load_demo_data(server.runtime)

    def _stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %s received; shutting down", signal.Signals(signum).name)
        server.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    server.start()
    if args.port_file:
        tmp = args.port_file.with_suffix(".tmp")
        tmp.write_text(str(server.port))
        tmp.replace(args.port_file)
    server.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
