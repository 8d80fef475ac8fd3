"""The revocation marker in Redis: its scripts, and what INFO says about the server.

One key, '<namespace>:epoch', holding Epoch.to_json(), with no expiry. The guard
(epochs.py) compares it, and the run_id and evicted_keys it records, with INFO.
"""

from __future__ import annotations

from typing import Protocol

from targets.stores.base import Epoch, StoreFacts, StoreUnavailable

# Compare-and-set of the revocation marker: '' stands for "absent".
REPLACE_EPOCH_LUA = """
local current = redis.call('GET', KEYS[1])
if (not current and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return current
"""
# Raise the global cutoff of one epoch; cjson reads the stored numbers exactly (strtod).
RAISE_CUTOFF_LUA = """
local current = redis.call('GET', KEYS[1])
if not current then return nil end
local marker = cjson.decode(current)
if marker[1] == ARGV[1] and marker[3] < tonumber(ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[3])
  return ARGV[3]
end
return current
"""
INFO_SECTIONS = ("server", "stats", "memory")


class MarkerWatch(Protocol):
    """Judges the revocation marker read along with each revocation check."""

    def trusts(self, raw: bytes | None) -> bool: ...


def facts_from(*sections: bytes) -> StoreFacts:
    """StoreFacts from INFO replies ('field:value' lines)."""
    fields: dict[str, str] = {}
    for section in sections:
        for line in section.decode(errors="replace").splitlines():
            name, sep, value = line.partition(":")
            if sep:
                fields[name] = value.strip()
    evicted, maxmemory = fields.get("evicted_keys"), fields.get("maxmemory")
    return StoreFacts(
        server_id=fields.get("run_id"),
        evicted=int(evicted) if evicted is not None else None,
        maxmemory=int(maxmemory) if maxmemory is not None else None,
        maxmemory_policy=fields.get("maxmemory_policy"),
    )


def epoch_from(raw: bytes | None, key: str) -> Epoch | None:
    """The marker stored at key (None: absent); StoreUnavailable when unreadable."""
    if raw is None:
        return None
    try:
        return Epoch.from_json(raw)
    except ValueError as exc:
        # Only tampering writes this key: stay closed and loud until someone deletes it.
        raise StoreUnavailable(f"unreadable revocation marker at {key}: {exc}; delete it "
                               "(the targets then treat the revocation state as lost)") from None
