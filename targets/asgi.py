"""The ASGI entry point for uvicorn: `uvicorn targets.asgi:app --factory`."""

from fastapi import FastAPI

from targets.app import create_app


def app() -> FastAPI:
    """Build the target from the environment (uvicorn calls this with --factory)."""
    return create_app()
