"""A suite pointed at an API: the suite's load over the adapter's variants, what is left
out with a note, loopback only unless allowed, the floor as a variant of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from adapters.loading import AdapterError, AdapterFile, load_adapter
from authbench.run.apisuite import (
    FLOOR,
    api_metadata,
    api_suite,
    check_hosts,
    floor_adapter,
    variant_adapter,
)
from authbench.run.cell import Cell
from authbench.run.runner import plan
from authbench.run.suite import SuiteError, load_suite, parse_suite

REPO = Path(__file__).resolve().parents[3]
FLASK = REPO / "examples" / "flask" / "api.toml"
AIOHTTP = REPO / "examples" / "aiohttp" / "api.toml"

# Two variants, only the first with a logout; a floor; nodes already running.
TWO_VARIANTS = """\
name = "two"
urls = ["{url}"]

[users]
pattern = "user{{n}}"
count = 10
password = "pw"

[login]
path = "/login"

[capture]
token = "json:/token"

[send]
headers = {{ Authorization = "Bearer {{token}}" }}

[[hot]]
path = "/me"

[floor]
path = "/public"

[[variants]]
name = "with_logout"
kind = "session"
store = "redis"
logout = {{ path = "/logout", revokes = true }}

[[variants]]
name = "without"
kind = "jwt"
"""


def two_variants(folder: Path, url: str = "http://127.0.0.1:8000", floor: bool = True,
                 name: str = "api.toml") -> AdapterFile:
    text = TWO_VARIANTS.format(url=url)
    if not floor:
        text = text.replace('[floor]\npath = "/public"\n', "")
    path = folder / name
    path.write_text(text)
    return load_adapter(path)


# quick's shape, with the open rate a share of the floor's capacity (what needs a [floor]),
# whatever rate quick itself ships with.
QUICK_LIKE = """name = "quicklike"
repeats = 4
interleave = "windows"
[defaults]
scenario = "read"
users = 20
duration = 1.5
warmup = 0.3
rate = ["", "50%"]
[[matrix]]
mode = ["none", "session", "jwt", "hybrid"]
"""


def test_quick_over_the_flask_example_is_floor_session_and_jwt_at_both_rates() -> None:
    suite, _ = api_suite(parse_suite(QUICK_LIKE, "quicklike.toml"), load_adapter(FLASK))
    assert [c.key for c in suite.cells] == [
        "api-floor-read-u20-n1", "api-session-read-u20-n1", "api-jwt-read-u20-n1",
        "api-floor-read-u20-n1-at50pct", "api-session-read-u20-n1-at50pct",
        "api-jwt-read-u20-n1-at50pct",
        "api-session-revocation-u4-n1", "api-jwt-revocation-u4-n1",
    ]
    floor = suite.cells[0]
    assert (floor.mode, floor.api) == ("none", FLOOR)
    assert [(c.mode, c.store) for c in suite.cells[1:3]] == [("session", "memory"),
                                                             ("jwt", "memory")]
    assert (suite.repeats, suite.interleave) == (4, "windows")


def test_the_twins_own_configurations_do_not_multiply_the_api_cells() -> None:
    # quick with Redis has more twin cells (sessions and a blocklist in Redis), the same load
    with_redis, _ = api_suite(load_suite("quick", ("redis",)), load_adapter(FLASK))
    without, _ = api_suite(load_suite("quick", ()), load_adapter(FLASK))
    assert with_redis.cells == without.cells


def test_a_variant_says_what_it_is_in_its_cells(tmp_path: Path) -> None:
    suite, _ = api_suite(load_suite("quick", ()), two_variants(tmp_path))
    read = [c for c in suite.cells if c.scenario == "read" and not c.rate]
    assert [(c.api, c.mode, c.store) for c in read] == [
        (FLOOR, "none", "memory"), ("with_logout", "session", "redis"),
        ("without", "jwt", "memory")]


def test_one_revocation_probe_per_variant_with_a_logout(tmp_path: Path) -> None:
    suite, _ = api_suite(load_suite("quick", ()), two_variants(tmp_path))
    probes = [c for c in suite.cells if c.scenario == "revocation"]
    assert [(c.api, c.rate, c.users) for c in probes] == [("with_logout", "", 4)]
    both, _ = api_suite(load_suite("quick", ()), load_adapter(AIOHTTP))
    assert [c.api for c in both.cells if c.scenario == "revocation"] == ["session", "jwt"]


def test_extras_for_the_twins_stores_are_dropped_with_a_note() -> None:
    quick = load_suite("quick", ())
    assert quick.extras == ("store-ceiling",)
    suite, notes = api_suite(quick, load_adapter(FLASK))
    assert suite.extras == ()
    assert [n for n in notes if n.startswith("store-ceiling:")] != []


def test_without_a_floor_the_shares_of_its_capacity_are_left_out(tmp_path: Path) -> None:
    suite, notes = api_suite(parse_suite(QUICK_LIKE, "quicklike.toml"),
                             two_variants(tmp_path, floor=False))
    assert all(c.rate == "" for c in suite.cells)
    assert all(c.api != FLOOR for c in suite.cells)
    assert [(c.api, c.scenario) for c in suite.cells] == [
        ("with_logout", "read"), ("without", "read"), ("with_logout", "revocation")]
    assert any("rate 50% is a share of the floor's capacity" in n and "[floor]" in n
               for n in notes)


def test_what_only_the_twins_have_is_left_out_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "mixed.toml"
    path.write_text("""\
name = "mixed"
[defaults]
scenario = "read"
users = 5
duration = 2

[[matrix]]
mode = ["none", "jwt"]

[[matrix]]
mode = "session"
store = "redis"
store_rtt_ms = 1

[[matrix]]
mode = "session"
store = "redis"
scenario = "faults"
fault = "redis-restart"
""")
    suite, notes = api_suite(load_suite(str(path), ("redis",)), two_variants(tmp_path))
    assert any(n.startswith("store and node faults") for n in notes)
    assert any(n.startswith("store_rtt_ms") for n in notes)
    assert all(c.fault == "none" and c.store_rtt_ms == 0 for c in suite.cells)
    assert [(c.api, c.scenario, c.users) for c in suite.cells if c.scenario == "read"] == [
        (FLOOR, "read", 5), ("with_logout", "read", 5), ("without", "read", 5)]


def test_a_suite_of_faults_alone_has_nothing_to_run_against_an_api() -> None:
    with pytest.raises(SuiteError, match="nothing to run against an API"):
        api_suite(load_suite("faults", ("redis", "postgres")), load_adapter(FLASK))


def test_seeded_sessions_are_left_out_with_a_note() -> None:
    suite, notes = api_suite(load_suite("scale", ("redis", "postgres")), load_adapter(FLASK))
    assert any(n.startswith("seeded sessions (scale)") for n in notes)
    assert all(c.scale == 0 for c in suite.cells)


def test_every_variant_needs_the_same_number_of_nodes(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    text = TWO_VARIANTS.format(url="http://127.0.0.1:8000")
    path.write_text(text.replace(
        'name = "without"',
        'name = "without"\nurls = ["http://127.0.0.1:8001", "http://127.0.0.1:8002"]'))
    with pytest.raises(SuiteError, match="same number of nodes"):
        api_suite(load_suite("quick", ()), load_adapter(path))


def test_revocation_probes_run_once_after_every_windowed_repeat() -> None:
    suite, _ = api_suite(load_suite("quick", ()), load_adapter(FLASK))
    order = plan(suite)
    scenarios = [cell.scenario for _, cell, _ in order]
    assert len(order) == 6 * 4 + 2
    assert scenarios[:24] == ["read"] * 24
    assert [(cell.api, repeat) for _, cell, repeat in order[24:]] == [("session", 1), ("jwt", 1)]
    windows = [(cell.rate, repeat) for _, cell, repeat in order[:24]]
    assert sorted(r for _, r in windows) == [r for r in (1, 2, 3, 4) for _ in range(6)]
    # a share of the dearest runs a round late: its basis is the first two closed rounds
    first_open = next(i for i, (rate, _) in enumerate(windows) if rate)
    assert windows[:first_open] == [("", 1)] * 3 + [("", 2)] * 3


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://192.168.1.5",
                                 "https://api.example.com", "http://0.0.0.0:8000"])
def test_load_goes_to_this_machine_only_unless_allowed(tmp_path: Path, url: str) -> None:
    api = two_variants(tmp_path, url=url)
    with pytest.raises(SuiteError) as exc:
        check_hosts(api, allow_remote=False)
    message = str(exc.value)
    assert "--allow-remote" in message and url in message and str(api.path) in message
    check_hosts(api, allow_remote=True)  # yours to answer for: no error


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://127.0.0.2:8000",
                                 "http://localhost:8000", "http://[::1]:8000"])
def test_loopback_urls_are_allowed(tmp_path: Path, url: str) -> None:
    check_hosts(two_variants(tmp_path, url=url), allow_remote=False)


def test_a_service_is_checked_by_the_url_its_nodes_answer_on(tmp_path: Path) -> None:
    check_hosts(load_adapter(FLASK), allow_remote=False)
    text = TWO_VARIANTS.format(url="x").replace(
        'urls = ["x"]\n', '[service]\ncommand = ["serve"]\nurl = "http://192.168.1.5:{port}"\n\n')
    path = tmp_path / "api.toml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=re.escape("http://192.168.1.5:1 is not on this machine")):
        check_hosts(load_adapter(path), allow_remote=False)


def test_the_floor_is_the_floor_request_without_a_credential() -> None:
    api = load_adapter(FLASK)
    floor = floor_adapter(api)
    assert floor is not None and api.variants[0].floor is not None
    assert len(floor.hot) == 1
    hot = floor.hot[0]
    assert (hot.method, hot.path, hot.credential) == ("GET", "/public/me", False)
    assert hot.model_dump(exclude={"weight"}) == \
        api.variants[0].floor.model_copy(update={"credential": False}).model_dump()
    assert (floor.variant.name, floor.variant.kind) == (FLOOR, "none")
    assert floor.write is None and floor.refresh is None
    assert floor.service == api.variants[0].service  # the same app, started the same way
    aiohttp = floor_adapter(load_adapter(AIOHTTP))
    assert aiohttp is not None and aiohttp.refresh is None  # its users never log in


def test_without_a_floor_request_there_is_no_floor(tmp_path: Path) -> None:
    assert floor_adapter(two_variants(tmp_path, floor=False)) is None


def test_a_cell_drives_its_own_variant(tmp_path: Path) -> None:
    api = load_adapter(FLASK)
    assert variant_adapter(api, Cell(mode="jwt", api="jwt")) == api.variant("jwt")
    assert variant_adapter(api, Cell(mode="session", api="session")) == api.variant("session")
    assert variant_adapter(api, Cell(mode="none", api=FLOOR)) == floor_adapter(api)
    with pytest.raises(AdapterError, match="no variant 'oauth'"):
        variant_adapter(api, Cell(mode="jwt", api="oauth"))
    with pytest.raises(SuiteError, match="no \\[floor\\]"):
        variant_adapter(two_variants(tmp_path, floor=False), Cell(mode="none", api=FLOOR))


def test_api_metadata_names_the_file_the_variants_and_the_endpoints() -> None:
    flask = api_metadata(load_adapter(FLASK))
    assert flask["file"] == str(FLASK.resolve()) and flask["name"] == "notes-flask"
    assert flask["endpoints"] == {"hot": "GET /me", "floor": "GET /public/me",
                                  "login": "POST /login", "write": "POST /notes",
                                  "logout": "POST /logout"}
    assert [(v["name"], v["kind"], v["cpu_claimed"], v["logout_revokes"])
            for v in flask["variants"]] == [("session", "session", True, True),
                                            ("jwt", "jwt", True, True)]
    aiohttp = api_metadata(load_adapter(AIOHTTP))
    assert aiohttp["endpoints"]["refresh"] == "POST /auth/refresh"
    assert [v["logout_revokes"] for v in aiohttp["variants"]] == [True, False]
    assert aiohttp["variants"][1]["env"] == {"BOOKMARKS_AUTH": "jwt"}


def test_api_metadata_of_nodes_already_running(tmp_path: Path) -> None:
    meta = api_metadata(two_variants(tmp_path, floor=False))
    assert meta["endpoints"] == {"hot": "GET /me", "login": "POST /login",
                                 "logout": "POST /logout"}
    assert [(v["cpu_claimed"], v["logout_revokes"]) for v in meta["variants"]] == [
        (False, True), (False, None)]
