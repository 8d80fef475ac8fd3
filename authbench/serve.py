"""`authbench serve`: one target on uvicorn with uvloop and httptools, one worker."""

from __future__ import annotations

import os

import uvicorn

from authbench.ports import check_port_free
from targets.settings import Settings


def uvicorn_config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    """The uvicorn setup every target uses: uvloop, httptools, no access log."""
    ssl: dict[str, str] = {}
    if settings.tls_cert_file and settings.tls_key_file:
        ssl = {
            "ssl_certfile": str(settings.tls_cert_file),
            "ssl_keyfile": str(settings.tls_key_file),
        }
    return uvicorn.Config(
        "targets.asgi:app",
        factory=True,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        workers=1,
        timeout_graceful_shutdown=5,
        **ssl,  # type: ignore[arg-type]
    )


def serve(overrides: dict[str, str], host: str, port: int) -> None:
    """Run one target in the foreground until interrupted."""
    os.environ.update(overrides)
    settings = Settings.from_env()  # fail here, with the variable's name, before binding
    check_port_free(port, host)
    uvicorn.Server(uvicorn_config(settings, host, port)).run()
