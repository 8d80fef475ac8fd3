"""Seeded users: who can log in, bounded KDF cost, and scrypt off the event loop."""

from __future__ import annotations

import asyncio
import time

import pytest

from targets.passwords import MAX_PASSWORD_BYTES, UserDirectory, seed_password

FAST_N = 1024  # the same scrypt code, at a test-friendly cost
SLOW_N = 2**15  # 32 MiB and tens of milliseconds per KDF: long enough to watch the loop


@pytest.fixture
def users() -> UserDirectory:
    return UserDirectory(count=10, kdf_n=FAST_N, kdf_p=1)


def test_seed_password_is_documented_form() -> None:
    assert seed_password("user7") == "pw-user7"


@pytest.mark.parametrize("name", ["user0", "user1", "user9"])
async def test_seeded_user_verifies_with_its_password(users: UserDirectory, name: str) -> None:
    assert users.exists(name)
    assert await users.verify(name, f"pw-{name}") is True
    assert await users.verify(name, f"pw-{name}") is True  # and again, from the stored hash


@pytest.mark.parametrize(
    "password", ["", "pw-user", "pw-user10", "pw-user2 ", "PW-USER2", "pw-user3", "pw-user22"]
)
async def test_wrong_password_fails(users: UserDirectory, password: str) -> None:
    assert await users.verify("user2", password) is False
    assert await users.verify("user2", "pw-user2") is True  # the failure left nothing behind


@pytest.mark.parametrize("name", ["user10", "user11", "user100", "user999999999"])
async def test_users_beyond_seed_users_fail(users: UserDirectory, name: str) -> None:
    assert not users.exists(name)
    assert await users.verify(name, seed_password(name)) is False


@pytest.mark.parametrize(
    "name",
    ["user01", "user00", "user-1", "USER1", "User1", "user", "user 1", " user1", "user1 ",
     "user1\n", "user\u0661", "user\uff11", "user1.0", "user+1", "", "admin", "user1\x00"],
)
async def test_malformed_names_fail(users: UserDirectory, name: str) -> None:
    assert not users.exists(name)
    assert await users.verify(name, seed_password(name)) is False
    assert await users.verify(name, "pw-user1") is False


async def test_oversize_password_fails_without_running_the_kdf() -> None:
    slow = UserDirectory(count=10, kdf_n=SLOW_N, kdf_p=1)
    too_long = "pw-user1" + "x" * MAX_PASSWORD_BYTES
    started = time.perf_counter()
    assert await slow.verify("user1", too_long) is False
    assert await slow.verify("user1", "é" * (MAX_PASSWORD_BYTES // 2 + 1)) is False  # bytes count
    refused = time.perf_counter() - started
    # Had the check run, the first look at user1 would have stored its hash.
    assert "user1" not in slow._hashes
    started = time.perf_counter()
    assert await slow.verify("user1", "pw-user1") is True
    checked = time.perf_counter() - started
    assert "user1" in slow._hashes
    assert refused < checked / 5, (refused, checked)


async def test_password_of_exactly_the_limit_is_checked(users: UserDirectory) -> None:
    at_limit = "x" * MAX_PASSWORD_BYTES
    assert await users.verify("user4", at_limit) is False
    assert "user4" in users._hashes  # the KDF ran: the limit itself is allowed


async def test_concurrent_verifies_all_complete(users: UserDirectory) -> None:
    results = await asyncio.gather(
        users.verify("user1", "pw-user1"),
        users.verify("user2", "pw-user2"),
        users.verify("user1", "wrong"),
        users.verify("nobody", "pw-nobody"),
    )
    assert list(results) == [True, True, False, False]


async def test_event_loop_keeps_running_during_a_slow_kdf() -> None:
    slow = UserDirectory(count=10, kdf_n=SLOW_N, kdf_p=1)
    ticks: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.002)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)  # let the ticker start
    started = time.perf_counter()
    ok = await slow.verify("user5", "pw-user5")  # first login: two KDF runs
    spent = time.perf_counter() - started
    done.set()
    await task
    assert ok is True
    during = [t for t in ticks if started <= t <= started + spent]
    # Blocking the loop would allow at most one tick; off the loop it ticks throughout.
    assert len(during) >= 3, (len(during), spent)
    gaps = [b - a for a, b in zip([started, *during], [*during, started + spent], strict=True)]
    assert max(gaps) < spent * 0.75, (max(gaps), spent)


async def test_unknown_user_costs_a_kdf_too() -> None:
    """No cheap path that tells an attacker which usernames exist."""
    slow = UserDirectory(count=10, kdf_n=SLOW_N, kdf_p=1)
    assert await slow.verify("user6", "pw-user6") is True  # the stored hash now exists

    async def fastest(name: str) -> float:  # the least disturbed of a few runs
        spent = []
        for _ in range(3):
            started = time.perf_counter()
            assert await slow.verify(name, "wrong") is False  # one KDF each
            spent.append(time.perf_counter() - started)
        return min(spent)

    known, unknown = await fastest("user6"), await fastest("mallory")
    assert unknown > known * 0.5, (unknown, known)
