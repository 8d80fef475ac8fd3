"""The one compiled module, the delay line's relay; everything else is in pyproject.toml."""

import sys

from setuptools import Extension, setup

# The relay is Linux C (epoll, kernel receive timestamps); elsewhere the rest installs and
# `authbench netdelay` says it is not built.
RELAY = Extension(
    "authbench.infra.netdelay._relay",
    sources=["authbench/infra/netdelay/_relay.c"],
    optional=False,  # a missing compiler fails the install, not the first netdelay run
)

setup(ext_modules=[RELAY] if sys.platform.startswith("linux") else [])
