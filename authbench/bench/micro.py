"""`authbench micro`: in-process cost of every algorithm, library and store operation.

Method in the way of pyperf: each benchmark's loop count is calibrated so one sample
takes at least --min-time; a warm-up sample is discarded; samples are taken in
several fresh worker processes (spawned, so no state leaks between them); the
result is the median over every sample, with the spread. The raw primitive of
`cryptography` on the same signing input is the floor under each JWT library.
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import jwt
from joserfc import jwt as jose_jwt
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

from analysis.data.formats import MICRO
from authbench.bench.microcrypto import raw_verifier
from authbench.run.rundir import collect_metadata, write_json
from targets.keys import KeySet, SigningKey, generate_key
from targets.seeding import generate_sessions
from targets.stores import MemoryStore, PostgresStore, RedisStore, Store
from targets.tokens import TokenCodec

ALGORITHMS: tuple[tuple[str, str, int], ...] = (
    # (name shown, JWT alg, RSA bits)
    ("HS256", "HS256", 0), ("HS384", "HS384", 0), ("HS512", "HS512", 0),
    ("RS256-2048", "RS256", 2048), ("RS256-3072", "RS256", 3072), ("RS256-4096", "RS256", 4096),
    ("PS256", "PS256", 2048), ("ES256", "ES256", 0), ("ES384", "ES384", 0), ("EdDSA", "EdDSA", 0),
)
RESULT_FILE = "micro.json"
GROUPS = ("jwt", "claims", "cache", "store")
CLAIM_SIZES = (200, 1000, 2000, 4000, 8000)
SEED_BATCH = 20_000
Bench = Callable[[int], float]  # run `loops` operations, return elapsed seconds
_CLEANUPS: list[Callable[[], None]] = []  # run by the worker once it has measured


@dataclass(frozen=True)
class Result:
    """One benchmark: median and spread of the per-operation time over all samples."""

    group: str  # "jwt", "claims", "cache", "store", "seed"
    name: str  # e.g. "HS256 pyjwt verify"
    median_us: float
    stdev_us: float
    samples: int
    loops: int
    extra: dict[str, Any]


# --- benchmarks, built inside a worker ---------------------------------------------------

def _timed(op: Callable[[], object]) -> Bench:
    def run(loops: int) -> float:
        started = time.perf_counter()
        for _ in range(loops):
            op()
        return time.perf_counter() - started
    return run


def jwt_benches(include: set[str]) -> dict[str, tuple[Bench, dict[str, Any]]]:
    """Sign and verify with PyJWT (the targets' path), joserfc, and the raw primitive."""
    benches: dict[str, tuple[Bench, dict[str, Any]]] = {}
    for shown, alg, bits in ALGORITHMS:
        if include and shown not in include:
            continue
        key: Any = generate_key(alg, bits or 2048)
        public = key if isinstance(key, bytes) else key.public_key()
        keys = KeySet(alg, [SigningKey("k1", key, public)], "k1")
        codec = TokenCodec(keys, "authbench", "authbench-api", 900, 2.0, 1 << 20)
        token, _ = codec.issue("user1")
        extra = {"alg": alg, "token_bytes": len(token)}
        benches[f"{shown} pyjwt sign"] = (_timed(partial(codec.issue, "user1")), extra)
        benches[f"{shown} pyjwt verify"] = (_timed(partial(codec.verify, token)), extra)
        jose_key: Any
        if isinstance(key, bytes):
            jose_key = OctKey.import_key(key)
        elif alg in ("RS256", "PS256"):
            jose_key = RSAKey.import_key(key)
        elif alg == "EdDSA":
            jose_key = OKPKey.import_key(key)
        else:
            jose_key = ECKey.import_key(key)
        claims = {"iss": "authbench", "aud": "authbench-api", "sub": "user1", "jti": "j",
                  "iat": int(time.time()), "exp": int(time.time()) + 900}
        header = {"alg": alg, "kid": "k1", "typ": "at+jwt"}
        jose_token = jose_jwt.encode(header, claims, jose_key, algorithms=[alg])
        registry = jose_jwt.JWTClaimsRegistry(
            leeway=2, iss={"essential": True, "value": "authbench"},
            aud={"essential": True, "value": "authbench-api"}, sub={"essential": True},
            jti={"essential": True}, exp={"essential": True}, iat={"essential": True})

        def jose_verify(t: str = jose_token, k: Any = jose_key, a: str = alg,
                        r: Any = registry) -> None:
            r.validate(jose_jwt.decode(t, k, algorithms=[a]).claims)

        benches[f"{shown} joserfc sign"] = (_timed(
            partial(jose_jwt.encode, header, claims, jose_key, algorithms=[alg])), extra)
        benches[f"{shown} joserfc verify"] = (_timed(jose_verify), extra)
        benches[f"{shown} raw verify"] = (_timed(raw_verifier(alg, key, token)), extra)
    return benches


def claim_benches() -> dict[str, tuple[Bench, dict[str, Any]]]:
    """HS256 verify (PyJWT, full checks) as the payload grows from ~200 B to 8 KB."""
    keys = KeySet.generate("HS256")
    codec = TokenCodec(keys, "authbench", "authbench-api", 900, 2.0, 1 << 20)
    base, _ = codec.issue("user1")
    benches = {}
    for size in CLAIM_SIZES:
        payload = jwt.decode(base, keys.active.verifying, algorithms=["HS256"],
                             audience="authbench-api")
        padding = max(0, size - len(json.dumps(payload)) - 10)
        payload["pad"] = "x" * padding
        token = jwt.encode(payload, keys.active.signing, algorithm="HS256",
                           headers={"kid": keys.active.kid, "typ": "at+jwt"})
        extra = {"payload_bytes": len(json.dumps(payload)), "token_bytes": len(token)}
        benches[f"HS256 verify, {size} B payload"] = (_timed(partial(codec.verify, token)),
                                                      extra)
    return benches


def cache_benches() -> dict[str, tuple[Bench, dict[str, Any]]]:
    """VERIFY_CACHE: a hit against a full verify, same token."""
    cached = TokenCodec(KeySet.generate("HS256"), "i", "a", 900, 2.0, 4096, cache_size=10_000)
    token, _ = cached.issue("user1")
    cached.verify(token)
    return {"HS256 verify, cache hit": (_timed(partial(cached.verify, token)), {})}


def store_benches(redis_url: str | None, postgres_url: str | None,
                  redis_socket: str | None) -> dict[str, tuple[Bench, dict[str, Any]]]:
    """get / set / delete of a session through each reachable store, on its own loop."""
    import uvloop  # here, not above: uvloop is not installed on Windows

    loop = uvloop.new_event_loop()  # the targets' event loop
    stores: dict[str, Store] = {"memory": MemoryStore()}
    if redis_url:
        stores["redis tcp"] = RedisStore(redis_url, "ab_micro", 2.0, 4)
    if redis_socket:
        stores["redis unix"] = RedisStore(f"unix://{redis_socket}", "ab_micro_unix", 2.0, 4)
    if postgres_url:
        stores["postgres"] = PostgresStore(postgres_url, "ab_micro", 2.0, 4)
    benches: dict[str, tuple[Bench, dict[str, Any]]] = {}
    for name, store in stores.items():
        loop.run_until_complete(store.open())
        key, record = next(generate_sessions(1, 1, 1800, 43200))
        loop.run_until_complete(store.create_session(key, record))
        now = time.time()

        def get(loops: int, s: Store = store, k: str = key, now: float = now) -> float:
            async def many() -> float:
                started = time.perf_counter()
                for _ in range(loops):
                    await s.get_session(k, now)
                return time.perf_counter() - started
            return loop.run_until_complete(many())

        def put_delete(loops: int, s: Store = store) -> float:
            sessions = list(generate_sessions(loops, 10, 1800, 43200))

            async def many() -> float:
                started = time.perf_counter()
                for k, r in sessions:
                    await s.create_session(k, r)
                    await s.delete_session(k)
                return time.perf_counter() - started
            return loop.run_until_complete(many())

        def seed(loops: int, s: Store = store) -> float:
            sessions = list(generate_sessions(loops, 1000, 1800, 43200))
            started = time.perf_counter()
            loop.run_until_complete(s.seed_sessions(iter(sessions)))
            elapsed = time.perf_counter() - started
            loop.run_until_complete(s.clear())
            return elapsed

        benches[f"{name} get"] = (get, {"store": name})
        benches[f"{name} set+delete"] = (put_delete, {"store": name})
        # Bulk seeding is measured on a fixed batch: small calibrated ones would not be bulk.
        benches[f"{name} bulk seed, per session"] = (seed, {"store": name,
                                                            "fixed_loops": SEED_BATCH})

    def clean_up() -> None:
        for store in stores.values():
            loop.run_until_complete(store.discard())
            loop.run_until_complete(store.close())
        loop.close()

    _CLEANUPS.append(clean_up)
    return benches


# --- the worker: calibrate, warm up, sample ------------------------------------------------

def _calibrate(bench: Bench, min_time: float) -> int:
    loops = 1
    while True:
        if bench(loops) >= min_time or loops >= 1 << 22:
            return loops
        loops *= 2


def worker(config: dict[str, Any]) -> dict[str, Any]:
    """Run every benchmark of the config in this (fresh) process; per-op seconds."""
    # joserfc flags "EdDSA" (renamed by RFC 9864) on every call; the name is deliberate here.
    warnings.filterwarnings("ignore", message="EdDSA is deprecated", category=SecurityWarning)
    benches: dict[str, tuple[Bench, dict[str, Any]]] = {}
    groups: dict[str, str] = {}
    include = set(config["algorithms"])
    makers: dict[str, Callable[[], dict[str, tuple[Bench, dict[str, Any]]]]] = {
        "jwt": partial(jwt_benches, include),
        "claims": claim_benches,
        "cache": cache_benches,
        "store": partial(store_benches, config["redis_url"], config["postgres_url"],
                         config["redis_socket"]),
    }
    for group, make in makers.items():
        if group in config["groups"]:
            made = make()
            benches.update(made)
            groups.update({name: group for name in made})
    out: dict[str, Any] = {}
    for name, (bench, extra) in benches.items():
        loops = extra.get("fixed_loops") or _calibrate(bench, config["min_time"])
        bench(loops)  # warm-up, discarded
        samples = [bench(loops) / loops for _ in range(config["samples"])]
        out[name] = {"group": groups[name], "samples": samples, "loops": loops, "extra": extra}
    while _CLEANUPS:
        _CLEANUPS.pop()()
    return out


def run_micro(config: dict[str, Any]) -> list[Result]:
    """Several spawned worker processes; merge their samples per benchmark."""
    context = multiprocessing.get_context("spawn")
    merged: dict[str, dict[str, Any]] = {}
    for index in range(config["processes"]):
        with context.Pool(1) as pool:
            found = pool.apply(worker, (config,))
        print(f"  process {index + 1}/{config['processes']}: {len(found)} benchmarks",
              file=sys.stderr, flush=True)
        for name, data in found.items():
            entry = merged.setdefault(name, {**data, "samples": []})
            entry["samples"] += data["samples"]
    results = []
    for name, data in merged.items():
        micro = [s * 1e6 for s in data["samples"]]
        results.append(Result(data["group"], name, statistics.median(micro),
                              statistics.stdev(micro) if len(micro) > 1 else 0.0,
                              len(micro), data["loops"], data["extra"]))
    return results


def format_results(results: list[Result]) -> list[str]:
    """A table as lines."""
    lines = [f"{'benchmark':<36}{'median µs':>11}{'± stdev':>10}{'samples':>9}  notes"]
    for r in results:
        notes = ", ".join(f"{k} {v}" for k, v in r.extra.items())
        lines.append(f"{r.name:<36}{r.median_us:>11.2f}{r.stdev_us:>10.2f}{r.samples:>9}  {notes}")
    return lines


def write_micro_json(folder: Path, config: dict[str, Any], started: datetime,
                     results: list[Result]) -> Path:
    """Write micro.json (the config, the machine and every result) into folder."""
    path = folder / RESULT_FILE
    write_json(path, {
        "format": MICRO.current, "started": started.isoformat(timespec="seconds"),
        "ended": datetime.now(UTC).isoformat(timespec="seconds"), "config": config,
        "machine": collect_metadata(), "results": [asdict(r) for r in results],
    })
    return path
