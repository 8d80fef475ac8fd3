"""What bench-revocation measures (its config) and what revocation.json holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analysis.data.formats import REVOCATION_STORAGE
from authbench.run.rundir import write_json
from targets.settings import DEFAULT_STORE_URLS, STORE_KINDS

FILE_FORMAT = REVOCATION_STORAGE.current  # revocation.json's "format"
RESULT_FILE = "revocation.json"
STORES = STORE_KINDS
BACKGROUND_SESSIONS = 10_000  # other users' sessions, so logout-all is not on an empty store
BACKGROUND_USERS = 1_000
BYTES_METHOD = {
    "memory": "tracemalloc in a separate pass: Python heap blocks the store still holds "
              "(jti strings, tuples, dict and heap), net of the baseline before the first insert",
    "redis": "INFO memory used_memory minus its value right before the first insert "
             "(the whole server: other clients' keys add noise)",
    "postgres": "pg_total_relation_size of <ns>.blocklist: table plus primary-key index",
}
NOTES = [
    "Redis memory is per server: used_memory counts every database and client, so other "
    "keys written to the same Redis during the run add noise; the baseline is measured "
    "right before the first insert.",
    "The memory store's bytes come from a separate pass under tracemalloc (it slows "
    "allocation), so its insert seconds and check latencies are measured without it.",
    "Steady state: each logout blocklists its token until exp, a uniform random "
    "remaining life in (0, T], so on average T/2; Little's law gives R*T/2 entries.",
    "Entries are jtis as the targets issue them (22 characters); in Redis each is a key "
    "'<ns>:bl:<jti>' (42 bytes with this run's ab_rb_<hex> namespace) with value '1' and "
    "a TTL, in PostgreSQL a row (jti, expires) with its primary-key index entry.",
    "Hybrid mode uses the same two operations: its refresh families are sessions "
    "(delete_user_sessions) and its access tokens are cut off by set_user_cutoff.",
    f"Logout-all runs with {BACKGROUND_SESSIONS:,} sessions of {BACKGROUND_USERS:,} other "
    "users in the store, so the deletion is not on an empty table.",
]


@dataclass(frozen=True)
class RevocationBenchConfig:
    """What `bench-revocation` measures; the defaults are the CLI's."""

    stores: tuple[str, ...] = STORES
    redis_url: str = DEFAULT_STORE_URLS["redis"]
    postgres_url: str = DEFAULT_STORE_URLS["postgres"]
    max_entries: int = 1_000_000
    checkpoints: tuple[int, ...] = (1_000, 10_000, 100_000, 1_000_000)
    logout_rate: float = 2000.0
    token_ttl: float = 6.0
    steady_seconds: float | None = None  # None: 3 x token_ttl
    k: tuple[int, ...] = (1, 10, 100, 1000)
    reps: int | None = None  # None: 20 for k <= 100, 5 above
    checks: int = 200

    def growth_checkpoints(self) -> list[int]:
        """The checkpoints capped at max_entries, ascending, without repeats."""
        return sorted({min(c, self.max_entries) for c in self.checkpoints if c > 0})

    def steady_duration(self) -> float:
        return 3 * self.token_ttl if self.steady_seconds is None else self.steady_seconds

    def reps_for(self, k: int) -> int:
        if self.reps is not None:
            return self.reps
        return 20 if k <= 100 else 5



def write_revocation_json(folder: Path, result: dict[str, Any]) -> Path:
    """Write revocation.json into folder (atomically); return its path."""
    path = folder / RESULT_FILE
    write_json(path, result)
    return path
