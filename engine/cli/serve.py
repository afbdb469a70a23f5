"""``hearth-cli serve``: the model behind an OpenAI-compatible HTTP API, headless (no Qt).

The model is loaded through the same scheduler the server submits to; requests queue in
its FIFO. Ctrl+C stops the server (open streams are cancelled) and exits.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from engine.cli._common import add_model_options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the model over an OpenAI-compatible HTTP API")
    add_model_options(p, remote=False)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--api-key", default=None,
                   help="the key clients must send (default: the app's key, kept in the data folder)")
    p.add_argument("--allow-network", action="store_true",
                   help="allow a non-loopback --host: other machines can then reach the model (with the key)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser pages from this origin (repeatable; default: no CORS)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="another name clients use to reach this machine (Host header check)")
    p.add_argument("--max-queue", type=int, default=64, help="requests that may wait (more get 429)")
    p.add_argument("--quiet", action="store_true", help="do not print a line per request")
    p.set_defaults(handler=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from engine.config import LoadConfig
    from engine.scheduler import Scheduler
    from engine.server import LocalServer, ServerConfig
    from engine.server.keys import stored_key
    from engine.tasks import load_task

    key = args.api_key or stored_key()
    config = ServerConfig(host=args.host, port=args.port, api_key=key, allow_network=args.allow_network,
                          cors_origins=tuple(args.cors_origin), allowed_hosts=tuple(args.allowed_host),
                          max_queue=args.max_queue)
    if config.warning:
        print(f"hearth-cli: warning: {config.warning}", file=sys.stderr)
    _configure_logging(args.quiet)
    scheduler = Scheduler(max_queue=config.max_queue)
    try:
        handle = scheduler.submit(load_task, label="load", config=LoadConfig(path=args.model, device=args.device,
                                                                             dtype=args.dtype))
        info = handle.result()
        decoder = scheduler.session().model.extras.get("decoder")
        if decoder is not None and hasattr(decoder, "wait_ready"):  # serve at full speed from the first request
            print("Preparing the fast decode path…", file=sys.stderr, flush=True)
            decoder.wait_ready(timeout=600)
        server = LocalServer(config, scheduler).start()
        print(f"Serving {info['name']} at {server.base_url}", file=sys.stderr)
        print(f"API key: {key}" if args.api_key is None else "API key: the one given with --api-key",
              file=sys.stderr)
        print("Ctrl+C stops the server.", file=sys.stderr, flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("\nStopping…", file=sys.stderr)
        server.stop()
        return 0
    finally:
        scheduler.shutdown(timeout=10)


def _configure_logging(quiet: bool) -> None:
    logger = logging.getLogger("hearth.server")
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.propagate = False
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
