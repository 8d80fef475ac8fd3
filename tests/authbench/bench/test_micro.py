"""authbench micro with fast settings: the measurement code and the crypto floor."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature

from analysis.cost.micro import jwt_table, load_micro
from authbench.bench.micro import ALGORITHMS, Result, worker, write_micro_json
from authbench.bench.microcrypto import raw_verifier
from authbench.cli import main
from targets.keys import KeySet, SigningKey, generate_key
from targets.tokens import TokenCodec

FAST = {"min_time": 0.001, "samples": 2, "processes": 1, "redis_url": None,
        "postgres_url": None, "redis_socket": None}


def token_and_key(alg: str, bits: int) -> tuple[str, object]:
    key = generate_key(alg, bits or 2048)
    public = key if isinstance(key, bytes) else key.public_key()
    codec = TokenCodec(KeySet(alg, [SigningKey("k", key, public)], "k"), "i", "a", 60, 0, 8192)
    return codec.issue("user1")[0], key


@pytest.mark.parametrize(("shown", "alg", "bits"),
                         [a for a in ALGORITHMS if a[0] not in ("RS256-3072", "RS256-4096")])
def test_raw_verifier_accepts_the_token_and_refuses_a_forgery(
    shown: str, alg: str, bits: int
) -> None:
    token, key = token_and_key(alg, bits)
    assert raw_verifier(alg, key, token)() in (True, None)
    header, payload, signature = token.split(".")
    forged = f"{header}.{payload}x.{signature}"
    outcome: object
    try:
        outcome = raw_verifier(alg, key, forged)()
    except InvalidSignature:
        outcome = "refused"
    assert outcome in (False, "refused")


def test_worker_measures_floor_library_and_cache() -> None:
    found = worker({**FAST, "groups": ["jwt", "cache"], "algorithms": ["HS256", "ES256"]})
    names = set(found)
    for alg in ("HS256", "ES256"):
        for op in ("pyjwt sign", "pyjwt verify", "joserfc sign", "joserfc verify", "raw verify"):
            assert f"{alg} {op}" in names
    assert "RS256-2048 pyjwt verify" not in names  # only the algorithms asked for

    def median(name: str) -> float:
        samples = sorted(found[name]["samples"])
        return samples[len(samples) // 2]

    # The floor lies under the library: PyJWT does the HMAC plus parsing and checks.
    assert median("HS256 raw verify") < median("HS256 pyjwt verify")
    assert median("HS256 verify, cache hit") < median("HS256 pyjwt verify")
    assert found["HS256 pyjwt verify"]["extra"]["token_bytes"] > 200
    assert all(len(v["samples"]) == 2 and v["loops"] >= 1 for v in found.values())


def test_claim_sweep_grows_with_the_payload() -> None:
    found = worker({**FAST, "groups": ["claims"], "algorithms": []})
    small = found["HS256 verify, 200 B payload"]
    large = found["HS256 verify, 8000 B payload"]
    assert small["extra"]["payload_bytes"] == pytest.approx(200, abs=20)
    assert large["extra"]["payload_bytes"] == pytest.approx(8000, abs=20)
    assert min(large["samples"]) > max(small["samples"])


@pytest.mark.slow  # spawned workers against real stores
def test_store_operations_against_real_stores(redis_url: str, postgres_url: str) -> None:
    found = worker({**FAST, "groups": ["store"], "algorithms": [],
                    "redis_url": redis_url, "postgres_url": postgres_url})
    assert {"memory get", "memory set+delete", "redis tcp get", "redis tcp set+delete",
            "postgres get", "postgres set+delete", "redis tcp bulk seed, per session",
            "postgres bulk seed, per session"} <= set(found)
    assert found["redis tcp bulk seed, per session"]["loops"] == 20_000
    assert max(found["memory get"]["samples"]) < min(found["redis tcp get"]["samples"])


@pytest.mark.slow  # the whole command and its report
def test_micro_command_writes_json_and_report(tmp_path: Path) -> None:
    code = main(["micro", "--groups", "jwt", "cache", "--algorithms", "HS256", "EdDSA",
                 "--processes", "2", "--samples", "2", "--min-time", "0.001",
                 "--results", str(tmp_path)])
    assert code == 0
    (folder,) = tmp_path.iterdir()
    data = json.loads((folder / "micro.json").read_text())
    assert data["format"] == "authbench-micro/2"
    assert data["config"]["processes"] == 2
    by_name = {r["name"]: r for r in data["results"]}
    assert by_name["HS256 pyjwt verify"]["samples"] == 4  # 2 processes x 2 samples
    assert data["machine"]["packages"]["PyJWT"]
    _, frame = load_micro(folder / "micro.json")
    table = jwt_table(frame)
    assert list(table.index) == ["EdDSA", "HS256"]
    assert table.loc["HS256", "reference pyjwt verify"] == 24
    assert (folder / "report.html").exists() and (folder / "charts" / "crypto-floor.png").exists()


def test_micro_json_says_its_format_and_reads_back(tmp_path: Path) -> None:
    result = Result("jwt", "HS256 pyjwt verify", 20.0, 1.0, 4, 100, {"token_bytes": 150})
    path = write_micro_json(tmp_path, {}, datetime.now(UTC), [result])
    header, frame = load_micro(path)
    assert header["format"] == "authbench-micro/2" and "schema_version" not in header
    assert frame["name"].tolist() == ["HS256 pyjwt verify"]
