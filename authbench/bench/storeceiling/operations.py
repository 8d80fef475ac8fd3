"""What each mode's hot path (GET /api/me) asks of a shared store, as benchmark commands.

Read from the targets' own code (targets/stores/redis_store.py, postgres.py,
targets/modes/*.py, targets/revocations.py):

- session, Redis: `GET <ns>:s:<sha256 hex of the sid>` (get_session); every
  SESSION_TOUCH_INTERVAL a request of a session also sends `SET ... PX <idle> XX`
  (touch_session);
- jwt or hybrid with JWT_REVOCATION=blocklist, Redis: one `MGET <ns>:bl:<jti>
  <ns>:cut:<user> <ns>:epoch` (revocation_state; the epoch guard adds the marker key);
  for a live token the first two miss and the marker hits;
- the same in PostgreSQL: one SELECT on the sessions table, or one SELECT of
  EXISTS(blocklist) and the user's cutoff; the touch is an UPDATE;
- JWT_REVOCATION=pubsub, or none: no store call on the hot path.

Keys are made of a fixed filler and the 12 digits redis-benchmark writes for
`__rand_int__` (and pgbench's lpad of a random integer), so a benchmarked key is as long
as a real one: 64 hex characters for a session key, 22 for a jti.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from targets.settings import Settings

DEFAULTS = Settings()
NAMESPACE = DEFAULTS.store_namespace  # the targets' own: real key lengths
RAND = "__rand_int__"  # redis-benchmark's placeholder: 12 digits, each occurrence its own
DIGITS = 12
SESSION_FILLER = "5e" * 26  # + 12 digits: 64 characters, a sha256 hex digest's length
LOADED_JTI_FILLER = "Blocked-_0"  # + 12 digits: 22 characters, a token_urlsafe(16) jti
LIVE_JTI_FILLER = "Live-tok_0"  # a live token's jti: never in the blocklist
TOUCH_TTL_MS = DEFAULTS.session_idle_ttl * 1000


def session_key(index: int) -> str:
    """The hashed session ID of loaded session `index` (what the store keys it by)."""
    return f"{SESSION_FILLER}{index:0{DIGITS}d}"


def blocked_jti(index: int) -> str:
    """The jti of loaded blocklist entry `index` (never one the benchmark asks about)."""
    return f"{LOADED_JTI_FILLER}{index:0{DIGITS}d}"


@dataclass(frozen=True)
class RedisOperation:
    """One hot-path Redis command, as redis-benchmark sends it."""

    name: str
    description: str
    args: tuple[str, ...]  # `__rand_int__` becomes 12 random digits per command
    replies: str  # what the command finds, in words

    def shown(self) -> str:
        """The command as a line, long values shortened."""
        return " ".join(a if len(a) <= 80 else f"<{len(a)} bytes>" for a in self.args)


@dataclass(frozen=True)
class SqlOperation:
    """One hot-path SQL statement, as a pgbench script runs it (-M prepared)."""

    name: str
    description: str
    # {ns}: the schema, {session_key} and {jti}: SQL making a loaded key from :n; :n and :u
    # are random integers, :now the time, :idle now + SESSION_IDLE_TTL (pgbench variables).
    statement: str
    replies: str

    def script(self, namespace: str, keys: int, users: int) -> str:
        """The pgbench script: random key and user, then the statement."""
        statement = self.statement.format(
            ns=namespace, session_key=f"'{SESSION_FILLER}' || lpad(:n::text, {DIGITS}, '0')",
            jti=f"'{LIVE_JTI_FILLER}' || lpad(:n::text, {DIGITS}, '0')")
        return (f"\\set n random(0, {keys - 1})\n\\set u random(0, {users - 1})\n"
                f"{statement};\n")


def redis_operations(session_value: bytes) -> dict[str, RedisOperation]:
    """The Redis operations; session_value: a stored session as the targets wrote it."""
    session = f"{NAMESPACE}:s:{SESSION_FILLER}{RAND}"
    return {
        "session-get": RedisOperation(
            "session-get", "session mode: get_session", ("GET", session),
            "a live session (every key loaded)"),
        "session-touch": RedisOperation(
            "session-touch", "session mode: touch_session, once per session per "
            f"SESSION_TOUCH_INTERVAL ({DEFAULTS.session_touch_interval} s)",
            ("SET", session, session_value.decode(), "PX", str(TOUCH_TTL_MS), "XX"),
            "overwrites a live session"),
        "revocation-check": RedisOperation(
            "revocation-check", "jwt/hybrid + blocklist: revocation_state with the epoch "
            "marker", ("MGET", f"{NAMESPACE}:bl:{LIVE_JTI_FILLER}{RAND}",
                       f"{NAMESPACE}:cut:user{RAND}", f"{NAMESPACE}:epoch"),
            "jti not blocked, no user cutoff, the marker present"),
    }


SQL_OPERATIONS: dict[str, SqlOperation] = {
    "session-get": SqlOperation(
        "session-get", "session mode: get_session",
        "SELECT user_id, csrf, created, idle_expires, absolute_expires FROM {ns}.sessions"
        " WHERE key = {session_key}", "a live session (every key loaded)"),
    "session-touch": SqlOperation(
        "session-touch", "session mode: touch_session, once per session per "
        f"SESSION_TOUCH_INTERVAL ({DEFAULTS.session_touch_interval} s)",
        "UPDATE {ns}.sessions SET idle_expires = :idle::float8 WHERE key = {session_key}",
        "updates a live session (one row, committed)"),
    "revocation-check": SqlOperation(
        "revocation-check", "jwt/hybrid + blocklist: revocation_state",
        "SELECT EXISTS (SELECT 1 FROM {ns}.blocklist WHERE jti = {jti} AND expires > :now),"
        " (SELECT cutoff FROM {ns}.cutoffs WHERE user_id = 'user' || :u AND expires > :now)",
        "jti not blocked, no user cutoff"),
}


def _per_request(store: str, operation: str) -> dict[str, Any]:
    return {"store": store, "operation": operation, "per_request": 1}


def _touch(store: str) -> dict[str, Any]:
    return {"store": store, "operation": "session-touch",
            "every_s": DEFAULTS.session_touch_interval, "per": "active session"}


def mode_operations() -> dict[str, dict[str, Any]]:
    """Per mode key (<mode>-<store>[-<revocation>]): the store operations of one request."""
    modes: dict[str, dict[str, Any]] = {}
    for store in ("redis", "postgres"):
        modes[f"session-{store}"] = {
            "per_request": [_per_request(store, "session-get")],
            "periodic": [_touch(store)],
            "hot_path": "get_session; touch_session once per interval per active session"}
        for mode in ("jwt", "hybrid"):
            modes[f"{mode}-{store}-blocklist"] = {
                "per_request": [_per_request(store, "revocation-check")], "periodic": [],
                "hot_path": "verify the token, then revocation_state in the store"}
            modes[f"{mode}-{store}"] = {
                "per_request": [], "periodic": [],
                "hot_path": "verify the token only (JWT_REVOCATION=none)"}
    for mode in ("jwt", "hybrid"):
        modes[f"{mode}-redis-pubsub"] = {
            "per_request": [], "periodic": [],
            "hot_path": "verify the token, then a lookup in the node's own memory"}
    return modes


NOTES = [
    "Each store measured alone: Redis is a private redis-server (no persistence) pinned "
    "to one CPU with redis-benchmark on the others; PostgreSQL is the given server, its "
    "benchmark backends pinned to one CPU when allowed, in a private schema dropped after.",
    "No pipelining (-P 1): each client waits for its reply. The targets share up to 4 "
    "connections per process among concurrent requests, so under load Redis may read "
    "several commands at once: the figures are the per-command (conservative) ceiling.",
    "The cutoff key in the benchmark is 'user' + 12 digits (real: 'user' + up to 4), so "
    "the MGET's second key is 8 bytes longer than a real one.",
    "Not counted per request: each node's epoch guard reads the marker once a second "
    "(Redis: GET + INFO; PostgreSQL: one SELECT), and hybrid's /auth/refresh, off the "
    "hot path.",
    "ops_per_s: what redis-benchmark or pgbench counted; cpu_us_per_op: the store's CPU "
    "over the commands it ran (Redis: INFO cpu and commandstats; PostgreSQL: the "
    "benchmark backends' CPU share over the transactions per second). PostgreSQL's own "
    "background processes (WAL writer, checkpointer) are not counted: the touch's commits "
    "cost more than its figure says.",
    "limited_by 'client': the benchmark client's CPU ran out before the store's, so "
    "ops_per_s is a lower bound of the ceiling; ops_per_s_at_full_cpu is what the store's "
    "CPU per op allows at 100 %.",
]
