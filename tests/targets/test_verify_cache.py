"""VERIFY_CACHE: verified tokens are kept until exp, bounded, and revocation still holds."""

from __future__ import annotations

import pytest

from targets.keys import KeySet
from targets.tokens import InvalidToken, TokenCodec
from tests.conftest import StartApp


def codec(cache_size: int, ttl: int = 900) -> TokenCodec:
    return TokenCodec(KeySet.generate("HS256"), "iss", "aud", ttl=ttl, leeway=0.0,
                      max_bytes=4096, cache_size=cache_size)


def test_a_cached_token_verifies_without_the_signature_check() -> None:
    cached = codec(cache_size=10)
    token, claims = cached.issue("user1")
    assert cached.verify(token) == claims
    # Prove the second answer comes from the cache: the key is gone, yet it verifies.
    cached.keys.active = cached.keys.active.__class__("other", b"x" * 32, b"x" * 32)
    cached.keys.by_kid = {"other": cached.keys.active}
    assert cached.verify(token) == claims
    uncached = codec(cache_size=0)
    token2, _ = uncached.issue("user1")
    uncached.keys.active = cached.keys.active
    uncached.keys.by_kid = cached.keys.by_kid
    with pytest.raises(InvalidToken):
        uncached.verify(token2)


def test_the_cache_is_bounded_oldest_out() -> None:
    cached = codec(cache_size=3)
    tokens = [cached.issue(f"user{i}")[0] for i in range(5)]
    for token in tokens:
        cached.verify(token)
    assert list(cached._verified) == tokens[2:]


def test_an_expired_cached_token_is_rejected() -> None:
    cached = codec(cache_size=10, ttl=2)
    token, claims = cached.issue("user1", now=1_700_000_000.5)  # exp = 1_700_000_002
    assert cached.verify(token, now=1_700_000_001) == claims
    assert cached.verify(token, now=1_700_000_001.9) == claims  # from the cache
    with pytest.raises(InvalidToken):
        cached.verify(token, now=1_700_000_002)
    assert token not in cached._verified


def test_bad_tokens_are_never_cached() -> None:
    cached = codec(cache_size=10)
    token, _ = cached.issue("user1")
    forged = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    for _ in range(2):
        with pytest.raises(InvalidToken):
            cached.verify(forged)
    assert forged not in cached._verified


def test_revocation_still_holds_with_the_cache(start_app: StartApp) -> None:
    target = start_app(AUTH_MODE="jwt", JWT_REVOCATION="blocklist", VERIFY_CACHE="100")
    with target.client() as client:
        login = client.post("/auth/login", json={"username": "user1", "password": "pw-user1"})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        assert client.get("/api/me", headers=auth).status_code == 200
        assert client.get("/api/me", headers=auth).status_code == 200  # from the cache
        assert client.post("/auth/logout", headers=auth).json()["revoked"] is True
        assert client.get("/api/me", headers=auth).status_code == 401
