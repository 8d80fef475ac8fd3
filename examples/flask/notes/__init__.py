"""An example of a team's own API for authbench: notes, with sessions or JWT (NOTES_AUTH)."""

from .app import create_app

__all__ = ["create_app"]
