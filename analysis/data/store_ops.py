"""Store operations per request, from the store's own per-command counts over a window.

Redis counts every command it served (INFO commandstats); the runner keeps their growth
over each window. Some of it is the harness's own reading (INFO, the sampler's CPU reads)
or connection set-up, not a request's work: those are left out. What remains includes
the targets' background checks (the revocation marker, once a second per node), a few
calls against thousands of requests.
"""

from __future__ import annotations

from collections.abc import Mapping

# Commands the harness or a connection's set-up issues, not a request's hot path.
NOT_REQUEST_WORK = frozenset({"info", "ping", "hello", "select", "client", "config", "command",
                              "client|setname", "client|setinfo", "client|id", "config|get",
                              "command|docs", "memory|usage", "dbsize", "debug", "flushall"})


def request_commands(commands_delta: Mapping[str, int] | None) -> dict[str, int]:
    """The window's commands that served requests: {command: calls}."""
    return {name: int(calls) for name, calls in (commands_delta or {}).items()
            if name.lower() not in NOT_REQUEST_WORK and calls > 0}


def ops_per_request(commands_delta: Mapping[str, int] | None, requests: int) -> float:
    """Store commands per request over a window; NaN without counts or requests."""
    if not commands_delta or requests <= 0:
        return float("nan")
    return sum(request_commands(commands_delta).values()) / requests
