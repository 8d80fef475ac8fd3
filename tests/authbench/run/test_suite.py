"""Suites as data: the shipped TOML files, bad files, --only, and the run plan."""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from authbench.run.rig import target_env
from authbench.run.runner import (
    RunOptions,
    cell_seconds,
    plan,
    recorded_options,
    restore_options,
)
from authbench.run.suite import (
    CELL_KEYS,
    SERVICES,
    Cell,
    Suite,
    SuiteError,
    apply_only,
    builtin_suites,
    load_suite,
    parse_suite,
)

JWT_ALGS = ["HS256", "RS256", "PS256", "ES256", "EdDSA"]


def keys(suite: Suite) -> list[str]:
    return [c.key for c in suite.cells]


def only_values(suite: Suite, name: str) -> set[object]:
    return {getattr(c, name) for c in suite.cells}


# --- the shipped suites ---------------------------------------------------------------

SHIPPED = ["article", "curve", "faults", "nodes", "offbox", "quick", "revocation", "scale",
           "standard"]


def test_the_shipped_suites_are_the_nine_documented_ones() -> None:
    assert builtin_suites() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_suite_parses_with_unique_keys(name: str) -> None:
    suite = load_suite(name, SERVICES)
    assert suite.name == name
    assert suite.description.strip()
    assert suite.skipped == ()
    assert len(set(keys(suite))) == len(suite.cells)
    assert len(set(suite.cells)) == len(suite.cells)
    # The same file by path gives the same cells.
    shipped = Path(__file__).resolve().parents[3] / "authbench" / "run" / "suites" / f"{name}.toml"
    assert load_suite(str(shipped), SERVICES).cells == suite.cells
    assert suite.source == shipped.read_text()


@pytest.mark.parametrize("name", ["curve", "nodes", "quick", "scale", "standard"])
def test_every_cell_takes_the_suites_defaults(name: str) -> None:
    suite = load_suite(name, SERVICES)
    defaults = tomllib.loads(suite.source)["defaults"]
    assert defaults
    for key, value in defaults.items():
        values = value if isinstance(value, list) else [value]
        assert only_values(suite, key) == set(values), key


def test_quick_is_every_mode_on_memory_plus_redis_cells() -> None:
    suite = load_suite("quick", SERVICES)
    assert suite.repeats == 4 and suite.interleave == "windows"
    configs = [
        "none-read-u20-n1",
        "session-memory-read-u20-n1",
        "jwt-memory-HS256-read-u20-n1",
        "hybrid-memory-HS256-read-u20-n1",
        "session-redis-read-u20-n1",
        "jwt-redis-HS256-blocklist-read-u20-n1",
    ]
    # Block by block: each configuration closed-loop, then each at the one fixed rate.
    open_rate = next(c.rate for c in suite.cells if c.rate)
    assert open_rate in ("50%", "40%dearest", "50%dearest")
    at = "-at" + open_rate.replace("%", "pct")
    memory, redis = configs[:4], configs[4:]
    assert keys(suite) == (memory + [f"{key}{at}" for key in memory]
                           + redis + [f"{key}{at}" for key in redis])
    for cell in suite.cells:
        assert (cell.scenario, cell.users, cell.alg, cell.nodes) == ("read", 20, "HS256", 1)
        assert isinstance(cell.users, int) and isinstance(cell.duration, float)
    # The block's revocation = "blocklist" means nothing for sessions: normalized away.
    session_redis = suite.cells[8]
    assert [c.rate for c in suite.cells] == ([""] * 4 + [open_rate] * 4 + [""] * 2
                                             + [open_rate] * 2)
    assert (session_redis.mode, session_redis.store, session_redis.revocation) == (
        "session", "redis", "none")


def test_quick_without_redis_has_four_configurations_and_says_why() -> None:
    suite = load_suite("quick", available=["postgres"])
    assert [c.mode for c in suite.cells] == ["none", "session", "jwt", "hybrid"] * 2
    assert only_values(suite, "store") == {"memory"}
    assert len(suite.skipped) == 1
    note = suite.skipped[0]
    assert "[[matrix]] #2" in note and "4 cell(s) left out" in note
    assert "redis not reachable" in note


@pytest.mark.parametrize("available", [(), SERVICES])
def test_quick_is_estimated_under_three_minutes(available: tuple[str, ...]) -> None:
    suite = load_suite("quick", available)
    assert suite.interleave == "windows" and suite.repeats >= 3
    estimate = suite.repeats * sum(cell_seconds(c, suite.interleave) for c in suite.cells)
    assert 0 < estimate < 180


def test_standard_is_every_mode_store_and_algorithm_at_two_user_counts() -> None:
    suite = load_suite("standard", SERVICES)
    assert suite.repeats == 3
    assert len(suite.cells) == 22
    assert only_values(suite, "users") == {10, 50}
    assert only_values(suite, "duration") == {20.0}
    assert only_values(suite, "warmup") == {5.0}
    per_users = {u: {c.key.replace(f"-u{u}-", "-u*-") for c in suite.cells if c.users == u}
                 for u in (10, 50)}
    assert per_users[10] == per_users[50] == {
        "none-read-u*-n1",
        "session-memory-read-u*-n1",
        "session-redis-read-u*-n1",
        "session-postgres-read-u*-n1",
        *(f"jwt-memory-{alg}-read-u*-n1" for alg in JWT_ALGS),
        "jwt-redis-HS256-blocklist-read-u*-n1",
        "hybrid-redis-HS256-blocklist-read-u*-n1",
    }
    without = load_suite("standard", available=())
    assert len(without.cells) == 14  # none, session-memory, 5 JWT algorithms; x2 users
    assert len(without.skipped) == 3


def test_scale_grows_seeded_sessions_in_every_store() -> None:
    suite = load_suite("scale", SERVICES)
    assert Counter((c.store, c.scale) for c in suite.cells) == Counter(
        {(store, scale): 1 for store in ("memory", "redis", "postgres")
         for scale in (1000, 10_000, 100_000, 1_000_000)})
    assert only_values(suite, "mode") == {"session"}
    assert "session-redis-read-u20-n1-s1000000" in keys(suite)
    assert len(load_suite("scale", available=["redis"]).cells) == 8


def test_nodes_runs_one_to_four_nodes_per_variant() -> None:
    suite = load_suite("nodes", SERVICES)
    assert Counter((c.mode, c.store) for c in suite.cells) == Counter(
        {("session", "memory"): 4, ("session", "redis"): 4, ("jwt", "memory"): 4})
    assert only_values(suite, "nodes") == {1, 2, 3, 4}
    assert only_values(suite, "users") == {40}
    assert "jwt-memory-HS256-read-u40-n4" in keys(suite)


def test_unknown_suite_name_lists_the_shipped_ones() -> None:
    with pytest.raises(SuiteError,
                       match=r"unknown suite 'quik'.*nodes, offbox, quick, revocation, scale"):
        load_suite("quik")


def test_missing_suite_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nothere.toml"
    with pytest.raises(SuiteError, match=r"nothere\.toml: no such suite file"):
        load_suite(str(missing))


# --- bad suite files -------------------------------------------------------------------

GOOD_HEAD = 'name = "t"\n'
BLOCK = '[[matrix]]\nmode = "jwt"\n'

BAD_SUITES = {
    "invalid TOML": (GOOD_HEAD + "[[matrix]\nmode = 'jwt'\n", ["not valid TOML"]),
    "unknown top-level key": (GOOD_HEAD + 'colour = "red"\n' + BLOCK,
                              ["unknown top-level key 'colour'", "known: api, defaults"]),
    "unknown cell key": (GOOD_HEAD + BLOCK + 'colour = "red"\n',
                         ["[[matrix]] #1", "unknown key 'colour'",
                          "known keys: " + ", ".join(CELL_KEYS)]),
    "unknown key in defaults": (GOOD_HEAD + "[defaults]\nuser = 5\n" + BLOCK,
                                ["[defaults]", "unknown key 'user'"]),
    "bad choice": (GOOD_HEAD + '[[matrix]]\nmode = "cookies"\n',
                   ["mode = 'cookies'", "expected one of none, session, jwt, hybrid"]),
    "bad choice in a list": (GOOD_HEAD + BLOCK + 'alg = ["HS256", "none"]\n',
                             ["alg = 'none'", "expected one of HS256"]),
    "not a number": (GOOD_HEAD + BLOCK + 'users = "ten"\n', ["users = 'ten'", "valid integer"]),
    "boolean is not a number": (GOOD_HEAD + BLOCK + "duration = true\n",
                                ["duration = True", "valid number"]),
    "out of range": (GOOD_HEAD + BLOCK + "users = 0\n",
                     ["users = 0", "greater than or equal to 1"]),
    "negative warmup": (GOOD_HEAD + BLOCK + "warmup = -1\n",
                        ["warmup = -1", "greater than or equal to 0"]),
    "not whole users": (GOOD_HEAD + BLOCK + "users = 2.5\n",
                        ["users = 2.5", "valid integer"]),
    "empty list": (GOOD_HEAD + BLOCK + "users = []\n", ["users is an empty list"]),
    "no matrix": (GOOD_HEAD + "[defaults]\nusers = 5\n", ["at least one [[matrix]] block"]),
    "empty matrix": (GOOD_HEAD + "matrix = []\n", ["at least one [[matrix]] block"]),
    "unknown service": (GOOD_HEAD + BLOCK + 'requires = ["mongodb"]\n',
                        ["[[matrix]] #1", "requires must list some of redis, postgres"]),
    "requires not a list": (GOOD_HEAD + BLOCK + 'requires = "redis"\n',
                            ["requires must list some of redis, postgres"]),
    "requires nested list": (GOOD_HEAD + BLOCK + 'requires = [["redis"]]\n',
                             ["requires must list some of redis, postgres"]),
    "nothing runnable": (GOOD_HEAD + '[[matrix]]\nmode = "session"\nstore = "redis"\n',
                         ["no cell can run here", "redis not reachable"]),
    "bad name": ('name = "My Suite"\n' + BLOCK, ["name = 'My Suite'", "must be a lower-case word"]),
    "no name": (BLOCK, ["name: missing"]),
    "repeats zero": (GOOD_HEAD + "repeats = 0\n" + BLOCK,
                     ["repeats = 0", "greater than or equal to 1"]),
    "repeats too many": (GOOD_HEAD + "repeats = 101\n" + BLOCK,
                         ["repeats = 101", "less than or equal to 100"]),
    "repeats fraction": (GOOD_HEAD + "repeats = 1.5\n" + BLOCK, ["repeats = 1.5", "valid integer"]),
    "rate not a rate": (GOOD_HEAD + BLOCK + 'rate = "fast"\n',
                        ["rate = 'fast'", "requests per second (a number) or a share"]),
    "rate zero": (GOOD_HEAD + BLOCK + "rate = 0\n", ["rate = 0", "above 0"]),
    "rate in a closed-loop scenario": (GOOD_HEAD + BLOCK + 'scenario = "login"\nrate = 100\n',
                                       ["rate = '100'", "scenario 'login' needs a closed loop"]),
    "same key, different cells": (GOOD_HEAD + BLOCK + "duration = [5, 10]\n",
                                  ["two cells named jwt-memory-HS256-read-u10-n1",
                                   "differ only in duration"]),
}


@pytest.mark.parametrize("problem", list(BAD_SUITES))
def test_a_bad_suite_file_names_the_file_and_the_problem(problem: str, tmp_path: Path) -> None:
    text, fragments = BAD_SUITES[problem]
    path = tmp_path / "bad-suite.toml"
    path.write_text(text)
    available = ["postgres"] if problem == "nothing runnable" else SERVICES
    with pytest.raises(SuiteError) as caught:
        load_suite(str(path), available)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "\n" not in message.split(": not valid TOML")[0]


def test_defaults_and_blocks_expand_to_their_product() -> None:
    suite = parse_suite(
        'name = "grid"\nrepeats = 2\n[defaults]\nusers = [2, 4]\nduration = 3\n'
        '[[matrix]]\nmode = ["session", "jwt"]\n'
        '[[matrix]]\nmode = "jwt"\nalg = ["HS256", "ES256"]\nusers = 2\n',
        "grid.toml")
    assert keys(suite) == [
        "session-memory-read-u2-n1", "jwt-memory-HS256-read-u2-n1",
        "session-memory-read-u4-n1", "jwt-memory-HS256-read-u4-n1",
        # block 2's jwt-HS256-u2 is the same cell as block 1's: kept once
        "jwt-memory-ES256-read-u2-n1",
    ]
    assert only_values(suite, "duration") == {3.0}
    assert suite.repeats == 2


def test_balance_only_splits_cells_with_several_nodes() -> None:
    suite = parse_suite('name = "lb"\n[[matrix]]\nmode = "jwt"\nnodes = [1, 2]\n'
                        'balance = ["roundrobin", "sticky"]\n', "lb.toml")
    assert keys(suite) == ["jwt-memory-HS256-read-u10-n1", "jwt-memory-HS256-read-u10-n2",
                           "jwt-memory-HS256-read-u10-n2-sticky"]


def test_mode_none_ignores_store_settings() -> None:
    suite = parse_suite('name = "floor"\n[[matrix]]\nmode = ["none", "jwt"]\n'
                        'store = ["memory", "postgres"]\n', "floor.toml", available=["postgres"])
    # mode none needs no store: its two cells are one, and it is never skipped
    assert keys(suite) == ["none-read-u10-n1", "jwt-memory-HS256-read-u10-n1",
                           "jwt-postgres-HS256-read-u10-n1"]
    alone = parse_suite('name = "floor"\n[[matrix]]\nmode = "none"\nstore = "redis"\n',
                        "floor.toml", available=())
    assert [c.store for c in alone.cells] == ["memory"]
    assert alone.skipped == ()


# --- --only ---------------------------------------------------------------------------

@pytest.fixture
def standard() -> Suite:
    return load_suite("standard", SERVICES)


def test_only_mode_keeps_the_jwt_cells(standard: Suite) -> None:
    jwt = apply_only(standard, ["mode=jwt"])
    assert len(jwt.cells) == 12  # 5 algorithms on memory + the Redis blocklist; x2 users
    assert only_values(jwt, "mode") == {"jwt"}
    assert jwt.repeats == standard.repeats and jwt.name == standard.name
    assert jwt.only == ("mode=jwt",) and standard.only == ()


def test_only_that_keeps_every_cell_leaves_the_suite_as_it_was(standard: Suite) -> None:
    assert apply_only(standard, ["users=10,50"]) is standard


def test_only_takes_alternatives_and_combines_filters(standard: Suite) -> None:
    ten = apply_only(standard, ["users=10"])
    assert len(ten.cells) == 11 and only_values(ten, "users") == {10}
    both = apply_only(standard, ["mode=jwt", "users=10", "alg=RS256,EdDSA"])
    assert keys(both) == ["jwt-memory-RS256-read-u10-n1", "jwt-memory-EdDSA-read-u10-n1"]
    assert len(apply_only(standard, ["duration=20"]).cells) == 22  # 20 matches 20.0


@pytest.mark.parametrize(("filters", "fragment"), [
    (["colour=red"], "expected key=value with a key among mode, store"),
    (["mode"], "expected key=value"),
    (["mode=cookies"], "mode = 'cookies': expected one of"),
    (["users=ten"], "users = 'ten': Input should be a valid integer"),
    (["users=0"], "users = 0: Input should be greater than or equal to 1"),
    (["mode=jwt", "store=postgres"], "no cell of suite standard matches"),
])
def test_only_errors(standard: Suite, filters: list[str], fragment: str) -> None:
    with pytest.raises(SuiteError, match="--only") as caught:
        apply_only(standard, filters)
    assert fragment in str(caught.value)


# --- the run plan ---------------------------------------------------------------------

def test_plan_interleaves_repeats_with_stable_unique_names() -> None:
    suite = parse_suite('name = "two"\nrepeats = 2\n[[matrix]]\nmode = ["session", "jwt"]\n',
                        "two.toml")
    a, b = suite.cells
    order = plan(suite)
    assert [cell for _, cell, _ in order] == [a, b, a, b]
    assert [repeat for _, _, repeat in order] == [1, 1, 2, 2]
    assert [name for name, _, _ in order] == [
        "001-session-memory-read-u10-n1-r1", "002-jwt-memory-HS256-read-u10-n1-r1",
        "003-session-memory-read-u10-n1-r2", "004-jwt-memory-HS256-read-u10-n1-r2"]
    assert plan(suite) == order
    assert plan(parse_suite(suite.source, "again.toml")) == order


def test_plan_of_standard_has_a_unique_folder_per_run_of_a_cell() -> None:
    order = plan(load_suite("standard", SERVICES))
    names = [name for name, _, _ in order]
    assert len(names) == 66 == len(set(names))
    assert all(name[:3].isdigit() for name in names)
    assert names[0].startswith("001-") and names[-1].startswith("066-")
    # every cell once per repeat, and each repeat finishes before the next begins
    repeats = [repeat for _, _, repeat in order]
    assert repeats == sorted(repeats)
    assert Counter(cell for _, cell, _ in order) == Counter({c: 3 for c in set(
        cell for _, cell, _ in order)})


def test_cell_default_is_a_valid_jwt_cell() -> None:
    assert Cell().key == "jwt-memory-HS256-read-u10-n1"
    assert Cell(spawn_rate=5).key == "jwt-memory-HS256-read-u10-n1-r5"


def test_the_jwt_library_is_a_cell_key() -> None:
    text = 'name = "libs"\n[[matrix]]\nmode = ["jwt", "session"]\nlib = ["pyjwt", "joserfc"]\n'
    suite = parse_suite(text, "libs.toml")
    keys = sorted(c.key for c in suite.cells)
    assert keys == ["jwt-memory-HS256-joserfc-read-u10-n1", "jwt-memory-HS256-read-u10-n1",
                    "session-memory-read-u10-n1"]  # the library means nothing to sessions
    joserfc = next(c for c in suite.cells if c.lib == "joserfc")
    assert target_env(joserfc, "ns", "", None)["JWT_LIB"] == "joserfc"
    with pytest.raises(SuiteError, match="lib = 'jose'"):
        parse_suite('name = "x"\n[[matrix]]\nlib = "jose"\n', "x.toml")


def test_a_resume_reuses_the_recorded_options() -> None:
    original = RunOptions(redis_url="redis://127.0.0.2:6390/0", use_haproxy=False,
                          external_workers=2)
    recorded = recorded_options(original)
    later = RunOptions()
    changed = restore_options(later, recorded)
    assert later.redis_url == "redis://127.0.0.2:6390/0"
    assert later.use_haproxy is False and later.external_workers == 2
    assert any(line.startswith("redis_url: using the run's") for line in changed)
    assert restore_options(later, recorded) == []  # nothing left to change


# --- the revocation suite and its keys ------------------------------------------------

def test_revocation_covers_every_strategy_and_the_check_on_and_off() -> None:
    suite = load_suite("revocation", SERVICES)
    probes = [c for c in suite.cells if c.scenario == "revocation"]
    strategies = {(c.mode, c.store, c.revocation, c.logout) for c in probes}
    assert {("session", "memory", "none", "one"), ("session", "redis", "none", "one"),
            ("session", "postgres", "none", "one"), ("jwt", "memory", "none", "one"),
            ("jwt", "memory", "blocklist", "one"), ("jwt", "redis", "blocklist", "one"),
            ("jwt", "postgres", "blocklist", "one"), ("jwt", "redis", "pubsub", "one"),
            ("jwt", "redis", "blocklist", "all"), ("jwt", "redis", "pubsub", "all"),
            ("hybrid", "redis", "none", "one")} <= strategies
    # Multi-node wherever the state can be shared; JWT without revocation seen to its exp.
    assert all(c.nodes == 2 for c in probes if c.store != "memory" or c.mode == "jwt")
    assert any(c.access_ttl == 5 and c.revocation == "none" for c in probes)
    overhead = [c for c in suite.cells if c.scenario == "read"]
    assert {c.revocation for c in overhead} == {"none", "blocklist", "pubsub"}
    assert {(c.users, c.nodes, c.duration) for c in overhead} == {(20, 1, 15)}
    assert suite.extras == ("revocation-storage",)


def test_revocation_without_shared_stores_keeps_the_memory_strategies() -> None:
    suite = load_suite("revocation", ())
    assert {c.store for c in suite.cells} == {"memory"}
    assert len(suite.skipped) == 7  # the blocks that need Redis or PostgreSQL


def test_logout_and_access_ttl_are_cell_keys() -> None:
    suite = parse_suite("""name = "t"
[defaults]
scenario = "revocation"
[[matrix]]
mode = ["session", "jwt"]
logout = ["one", "all"]
access_ttl = 5
[[matrix]]
scenario = "read"
mode = "jwt"
logout = "all"
""", "t.toml")
    assert keys(suite) == [
        "session-memory-revocation-u10-n1", "session-memory-revocation-logoutall-u10-n1",
        "jwt-memory-HS256-ttl5-revocation-u10-n1",
        "jwt-memory-HS256-ttl5-revocation-logoutall-u10-n1",
        "jwt-memory-HS256-read-u10-n1",  # logout means nothing outside the probe scenario
    ]
    jwt = suite.cells[2]
    assert target_env(jwt, "ns", "", None)["ACCESS_TTL"] == "5"
    assert "ACCESS_TTL" not in target_env(suite.cells[0], "ns", "", None)


@pytest.mark.parametrize("text, fragment", [
    ('mode = "jwt"\nrevocation = "pubsub"', 'needs store = "redis"'),
    ('mode = "jwt"\nlogout = "some"', "logout = 'some': expected one of one, all"),
    ('mode = "jwt"\naccess_ttl = -1',
     "access_ttl = -1: Input should be greater than or equal to 0"),
])
def test_bad_revocation_keys_are_named(text: str, fragment: str) -> None:
    with pytest.raises(SuiteError, match=fragment.replace("(", r"\(")):
        parse_suite(f'name = "t"\n[[matrix]]\n{text}\n', "t.toml")


def test_unknown_extras_are_refused() -> None:
    with pytest.raises(SuiteError, match=r"extras.0 = 'x': expected one of revocation-storage"):
        parse_suite('name = "t"\nextras = ["x"]\n[[matrix]]\nmode = "jwt"\n', "t.toml")


def test_windows_interleave_is_checked() -> None:
    text = """name = "w"
interleave = "windows"
[defaults]
scenario = "read"
[[matrix]]
mode = "jwt"
"""
    with pytest.raises(SuiteError, match=r"interleave = 'sideways'"):
        parse_suite(text.replace('"windows"', '"sideways"'), "w.toml")
    suite = parse_suite(text, "w.toml")
    assert suite.interleave == "windows"
    assert parse_suite(text.replace('interleave = "windows"\n', ""), "w.toml").interleave == \
        "cells"


def test_a_windows_suite_runs_its_probe_and_fault_cells_after_the_windows() -> None:
    text = """name = "w"
interleave = "windows"
repeats = 3
[[matrix]]
mode = "jwt"
[[matrix]]
scenario = "revocation"
mode = "session"
nodes = 2
[[matrix]]
scenario = "faults"
mode = "session"
store = "redis"
nodes = 2
fault = ["redis-restart", "node-kill"]
"""
    suite = parse_suite(text, "w.toml")
    order = [(cell.scenario, repeat) for _, cell, repeat in plan(suite)]
    # The read cell's three windows, then each probe and fault cell once, on a rig of its own.
    assert order == [("read", 1), ("read", 2), ("read", 3), ("revocation", 1), ("faults", 1),
                     ("faults", 1)]
    assert [c.fault for c in suite.cells if c.scenario == "faults"] == ["redis-restart",
                                                                       "node-kill"]


def test_a_windows_suite_refuses_a_fault_on_a_rig_its_windows_share() -> None:
    text = """name = "w"
interleave = "windows"
[[matrix]]
mode = "session"
store = "redis"
fault = "redis-slow"
"""
    with pytest.raises(SuiteError, match=r"fault 'redis-slow' of session-redis-read-u10-n1-"
                                         r"redis-slow needs scenario = \"faults\""):
        parse_suite(text, "w.toml")
    assert parse_suite(text.replace('"windows"', '"cells"'), "w.toml").cells[0].fault == \
        "redis-slow"


# --- open-model rates -----------------------------------------------------------------

def test_a_rate_is_requests_per_second_or_a_share_of_the_floor() -> None:
    suite = parse_suite('name = "t"\n[defaults]\nrate = ["", 250, 1.5e3, "50%", "12.5%"]\n'
                        '[[matrix]]\nmode = "jwt"\n', "t.toml")
    assert [c.rate for c in suite.cells] == ["", "250", "1500", "50%", "12.5%"]
    assert [c.key.rsplit("-", 1)[1] for c in suite.cells] == [
        "n1", "at250", "at1500", "at50pct", "at12.5pct"]
    closed, absolute, _, half, _ = suite.cells
    assert closed.offered_rate(None) == 0 and absolute.offered_rate(None) == 250
    assert half.rate_fraction == 0.5 and half.offered_rate(4000) == 2000
    with pytest.raises(ValueError, match="needs the floor's capacity"):
        half.offered_rate(None)
    assert {c.config for c in suite.cells} == {closed}  # one configuration, five loads


def test_only_selects_by_rate() -> None:
    suite = parse_suite('name = "t"\n[defaults]\nrate = ["", "50%", 300]\n'
                        '[[matrix]]\nmode = "jwt"\n', "t.toml")
    assert [c.rate for c in apply_only(suite, ["rate=50%,300"]).cells] == ["50%", "300"]
