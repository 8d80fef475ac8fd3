"""An example of a team's own API for authbench: bookmarks in aiohttp, sessions or JWT."""

from .app import create_app
from .settings import ConfigError, Settings

__all__ = ["ConfigError", "Settings", "create_app"]
