"""A window's data cut into bounded messages and put back together, exactly."""

from __future__ import annotations

import random

import msgpack  # type: ignore[import-untyped]
import pytest
from hdrh.histogram import HdrHistogram

from loadtests import wire


def locust_message(data: dict[str, object], node_id: str = "w1") -> bytes:
    """A custom message as Locust puts it on the wire (locust.rpc.protocol.Message, whose
    import would monkey-patch this process)."""
    packed: bytes = msgpack.dumps((wire.CHUNK_MESSAGE, data, node_id))
    return packed


def delivered(packed: bytes) -> dict[str, object]:
    _, data, _ = msgpack.loads(packed, raw=False, strict_map_key=False)
    result: dict[str, object] = data
    return result


def _wide_histogram() -> HdrHistogram:
    """A histogram whose encoding is larger than one message may be: every bucket from
    1 us to 60 s holds a different count."""
    histogram = HdrHistogram(1, 60_000_000, 3)
    rng = random.Random(7)
    value = 1
    while value < 60_000_000:
        histogram.record_value(value, rng.randint(1, 10**9))
        value = max(value + 1, int(value * 1.001))
    return histogram


def test_a_window_larger_than_a_message_travels_in_chunks_and_merges_exactly() -> None:
    histogram = _wide_histogram()
    body = {"format": "authbench-hdr/3", "histograms": {"GET /api/me": histogram.encode()
                                                         .decode()}, "failures": {"x": 2}}
    bound = 4096
    chunks = wire.chunk_messages(3, body, bound)
    assert len(chunks) > 1 and all(len(c["text"]) <= bound for c in chunks)
    # Through Locust's own encoding of a message, delivered out of order.
    received = [delivered(locust_message(c)) for c in reversed(chunks)]
    assembly = wire.Reassembly()
    results = [assembly.add(chunk) for chunk in received]
    assert results[:-1] == [None] * (len(chunks) - 1)
    joined = results[-1]
    assert joined == body
    decoded = HdrHistogram.decode(joined["histograms"]["GET /api/me"])
    assert decoded.get_total_count() == histogram.get_total_count()
    assert decoded.get_max_value() == histogram.get_max_value()
    for percentile in (50, 90, 99, 99.9, 99.99):
        assert (decoded.get_value_at_percentile(percentile)
                == histogram.get_value_at_percentile(percentile))
    # A merge with the original counts every value twice: nothing lost, nothing added.
    merged = HdrHistogram(1, 60_000_000, 3)
    merged.add(decoded)
    merged.add(histogram)
    assert merged.get_total_count() == 2 * histogram.get_total_count()
    assert assembly.pieces == {}  # nothing kept once the window is joined


def test_the_default_bound_keeps_a_large_window_under_256_kib() -> None:
    histograms = {f"GET /path/{n}": _wide_histogram().encode().decode() for n in range(12)}
    chunks = wire.chunk_messages(1, {"histograms": histograms})
    sizes = [len(locust_message(c, "host_" + "f" * 32)) for c in chunks]
    assert len(chunks) > 1 and max(sizes) < 256 * 1024


def test_windows_of_one_sender_are_joined_apart() -> None:
    assembly = wire.Reassembly()
    first = wire.chunk_messages(1, {"n": "a" * 50}, 16)
    second = wire.chunk_messages(2, {"n": "b" * 50}, 16)
    done = [assembly.add(c) for pair in zip(first, second, strict=False) for c in pair]
    assert [d for d in done if d is not None] == [{"n": "a" * 50}, {"n": "b" * 50}]


def test_an_empty_window_is_one_message() -> None:
    assert wire.split("") == [""]
    with pytest.raises(ValueError, match="chunk bound 0"):
        wire.split("abc", 0)


def test_a_master_hands_on_its_scenario_settings_not_its_paths() -> None:
    env = {"AUTHBENCH_MODE": "jwt", "AUTHBENCH_SEED_USERS": "1000", "AUTHBENCH_CONTROL": "/x",
           "AUTHBENCH_HDR_DIR": "/y", "AUTHBENCH_STATUS": "/z", "AUTHBENCH_API": "/a.json",
           "PATH": "/bin"}
    assert wire.scenario_env(env) == {"AUTHBENCH_MODE": "jwt", "AUTHBENCH_SEED_USERS": "1000"}
