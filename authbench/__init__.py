"""authbench: the harness that starts twin targets, drives load and keeps results."""

__version__ = "0.1.0"
__all__ = ["__version__"]
