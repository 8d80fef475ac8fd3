"""bench-redis-clients measures both clients against real Redis."""

from __future__ import annotations

from authbench.bench.clientbench import compare


async def test_both_clients_are_measured(redis_url: str) -> None:
    results = await compare(redis_url, concurrency=4, batches=5, rounds=2)
    assert set(results) == {"redis-py", "resp.py"}
    for values in results.values():
        assert len(values) == 2
        assert all(0 < v < 100_000 for v in values)
