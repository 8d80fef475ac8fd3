"""`python -m notes [--port 8000] [--workers 1]`: serve the app under gunicorn on loopback."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> None:
    """Replace this process with gunicorn serving notes:create_app() on 127.0.0.1."""
    parser = argparse.ArgumentParser(prog="python -m notes", description=__doc__)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1,
                        help="more than 1 needs NOTES_REDIS_URL (sessions) and "
                             "NOTES_JWT_SECRET (jwt)")
    args = parser.parse_args(argv)
    here = str(Path(__file__).resolve().parent.parent)
    command = [sys.executable, "-m", "gunicorn", "--chdir", here, "-w", str(args.workers),
               "-b", f"127.0.0.1:{args.port}", "notes:create_app()"]
    os.execv(sys.executable, command)  # noqa: S606 (a fixed argv, no shell)


if __name__ == "__main__":
    main()
