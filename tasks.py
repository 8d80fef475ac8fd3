#!/usr/bin/env python3
"""The one place to run authbench's tasks; each bootstraps the project's own .venv.

    python3 tasks.py quick   # the main job: the quick suite (twin targets under load)
    python3 tasks.py test    # ruff, mypy and the test suite
    python3 tasks.py fast    # ruff, mypy and the tests not marked slow (the inner loop)
    python3 tasks.py lint    # ruff and mypy only

Needs only Python >= 3.11 on the machine: the first run creates .venv and installs
the project with its dev tools (pip, from PyPI); later runs reuse it.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if sys.platform == "win32" else "bin")
STAMP = VENV / ".authbench-installed"
# What the install is built from: a change to any of them reinstalls (and so rebuilds the
# delay line's C relay, which an editable install compiles once, in place).
INSTALL_INPUTS = ("pyproject.toml", "setup.py", "authbench/infra/netdelay/_relay.c")


def _run(*command: str | Path) -> None:
    print("+", " ".join(str(part) for part in command), flush=True)
    done = subprocess.run([str(part) for part in command], cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def bootstrap() -> None:
    """Create .venv and install the project (editable, with dev tools) when needed."""
    if sys.version_info < (3, 11):  # noqa: UP036 (tasks.py runs on any python3)
        raise SystemExit(f"authbench needs Python >= 3.11, this is {sys.version.split()[0]}")
    digest = hashlib.sha256()
    for name in INSTALL_INPUTS:
        digest.update((ROOT / name).read_bytes())
    wanted = digest.hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(wanted)


def lint() -> None:
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "mypy")


def test(extra: list[str]) -> None:
    lint()
    _run(BIN / "python", "-m", "pytest", *extra)


def fast(extra: list[str]) -> None:
    lint()
    _run(BIN / "python", "-m", "pytest", "-m", "not slow", *extra)


def quick(extra: list[str]) -> None:
    _run(BIN / "authbench", "run", "quick", *extra)


def main() -> None:
    task, extra = (sys.argv[1], sys.argv[2:]) if len(sys.argv) > 1 else ("help", [])
    if task not in ("quick", "test", "fast", "lint"):
        print(__doc__)
        raise SystemExit(0 if task == "help" else 2)
    bootstrap()
    if task == "quick":
        quick(extra)
    elif task == "test":
        test(extra)
    elif task == "fast":
        fast(extra)
    else:
        lint()


if __name__ == "__main__":
    main()
