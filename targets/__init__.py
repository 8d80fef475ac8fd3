"""The servers under test: one FastAPI app, four auth modes, three stores.

Nothing here imports the harness; the harness starts targets as processes.
"""

from targets.app import create_app
from targets.settings import ENV_VARS, ConfigError, Settings

__all__ = ["ENV_VARS", "ConfigError", "Settings", "create_app"]
