"""The one compiled module, the delay line's relay; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension(
    "authbench.infra.netdelay._relay",
    sources=["authbench/infra/netdelay/_relay.c"],
    libraries=["pthread"],
    optional=False,  # a missing compiler must fail the install, not the first netdelay run
)])
