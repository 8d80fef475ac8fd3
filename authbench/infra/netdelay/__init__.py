"""A user-space delay line that puts a store "across a network": `authbench netdelay`."""

from authbench.infra.netdelay.address import join_host_port, split_host_port, with_host_port
from authbench.infra.netdelay.process import DelayLine, DelayLineFailed
from authbench.infra.netdelay.relay import (
    NetdelayError,
    Relay,
    RelayStats,
    load_relay,
    run_until_signalled,
)

__all__ = [
    "DelayLine",
    "DelayLineFailed",
    "NetdelayError",
    "Relay",
    "RelayStats",
    "join_host_port",
    "load_relay",
    "run_until_signalled",
    "split_host_port",
    "with_host_port",
]
