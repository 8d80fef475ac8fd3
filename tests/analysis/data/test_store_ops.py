"""Store operations per request from the store's per-command counts."""

from __future__ import annotations

import math

from analysis.data.store_ops import ops_per_request, request_commands


def test_the_harness_own_reads_are_not_request_work() -> None:
    delta = {"get": 1000, "info": 12, "ping": 3, "mget": 0, "expire": 4, "client|setinfo": 2}
    assert request_commands(delta) == {"get": 1000, "expire": 4}
    assert ops_per_request(delta, 1000) == 1.004


def test_without_counts_or_requests_it_is_unknown() -> None:
    assert math.isnan(ops_per_request(None, 100))
    assert math.isnan(ops_per_request({}, 100))
    assert math.isnan(ops_per_request({"get": 5}, 0))
