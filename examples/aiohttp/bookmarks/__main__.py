"""`python -m bookmarks [--host 127.0.0.1] [--port 8000]`: serve the app, one process."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from .app import create_app
from .settings import ConfigError


def main(argv: list[str] | None = None) -> None:
    """Serve create_app() with aiohttp's own server until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bookmarks", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                                                   "%(message)s")
    try:
        app = create_app()
    except ConfigError as error:
        parser.exit(2, f"python -m bookmarks: {error}\n")
    # No access log, as gunicorn's default: one line per request would be part of the cost.
    web.run_app(app, host=args.host, port=args.port, access_log=None)


if __name__ == "__main__":
    main()
