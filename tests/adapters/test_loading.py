"""Adapter files read from disk: the shipped ones load, variants merge over the top
level, and every mistake is one line that names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.exchange import user_at
from adapters.loading import TWINS, AdapterError, adapter_from_json, load_adapter, twins_adapter

REPO = Path(__file__).resolve().parents[2]
FLASK = REPO / "examples" / "flask" / "api.toml"
AIOHTTP = REPO / "examples" / "aiohttp" / "api.toml"

# A small adapter file that loads; each mistake below is one edit of it.
TINY = """\
name = "tiny"
kind = "jwt"

[users]
pattern = "user{n}"
count = 10
password = "pw-{username}"

[login]
path = "/login"

[capture]
token = "json:/token"

[send]
headers = { Authorization = "Bearer {token}" }

[[hot]]
path = "/me"
"""


def edit(text: str, old: str, new: str) -> str:
    """text with old (which must be there) replaced by new."""
    assert old in text, f"{old!r} is not in the text"
    return text.replace(old, new)


def write(folder: Path, text: str, name: str = "api.toml") -> Path:
    path = folder / name
    path.write_text(text)
    return path


def load_error(path: Path) -> str:
    """The one line load_adapter refuses the file with."""
    with pytest.raises(AdapterError) as exc:
        load_adapter(path)
    message = str(exc.value)
    assert "\n" not in message, message
    assert str(path) in message, message
    return message


def test_the_twins_contract_loads_as_one_variant() -> None:
    api = load_adapter(TWINS)
    assert [(a.variant.name, a.variant.kind) for a in api.variants] == [("default", "jwt")]
    assert api.name == "twins"
    assert twins_adapter() == api.variants[0]
    assert api.variants[0].service is None and api.variants[0].floor is not None


@pytest.mark.parametrize(("path", "name", "variants"), [
    (FLASK, "notes-flask", [("session", "session"), ("jwt", "jwt")]),
    (AIOHTTP, "bookmarks-aiohttp", [("session", "session"), ("jwt", "hybrid")]),
])
def test_the_shipped_examples_load_with_their_variants(
        path: Path, name: str, variants: list[tuple[str, str]]) -> None:
    api = load_adapter(path)
    assert api.name == name
    assert [(a.variant.name, a.variant.kind) for a in api.variants] == variants
    assert all(a.service is not None for a in api.variants)
    assert api.variant("jwt").variant.name == "jwt"


def test_a_variant_by_an_unknown_name_is_refused_with_the_known_ones() -> None:
    with pytest.raises(AdapterError, match="no variant 'oauth'; variants: session, jwt"):
        load_adapter(FLASK).variant("oauth")


def test_a_variants_env_is_its_own() -> None:
    api = load_adapter(FLASK)
    assert api.variant("session").variant.env == {"NOTES_AUTH": "session"}
    assert api.variant("jwt").variant.env == {"NOTES_AUTH": "jwt"}
    # The service's own env is the file's, shared by every variant.
    assert api.variant("jwt").service is not None
    assert "NOTES_JWT_SECRET" in api.variant("jwt").service.env


def test_a_variant_section_merges_key_by_key_over_the_top_level() -> None:
    flask = load_adapter(FLASK)
    for variant in flask.variants:  # `logout = { revokes = true }` over [logout]
        assert variant.logout is not None
        assert (variant.logout.method, variant.logout.path, variant.logout.revokes) == \
            ("POST", "/logout", True)
    aiohttp = load_adapter(AIOHTTP)  # no [logout] at the top: each variant has its own
    session, jwt = aiohttp.variant("session"), aiohttp.variant("jwt")
    assert session.logout is not None and jwt.logout is not None
    assert (session.logout.path, session.logout.json_body, session.logout.revokes) == \
        ("/auth/logout", None, True)
    assert (jwt.logout.path, jwt.logout.json_body, jwt.logout.revokes) == \
        ("/auth/logout", {"refresh_token": "{refresh}"}, False)


def test_a_variant_overriding_the_login_path_keeps_the_top_levels_body(tmp_path: Path) -> None:
    text = edit(TINY, 'path = "/login"',
                'path = "/login"\nformat = "form"\nbody = { user = "{username}", '
                'secret = "{password}" }')
    text = edit(text, 'kind = "jwt"\n', "")
    text += ('\n[[variants]]\nname = "v1"\nkind = "session"\n'
             '\n[[variants]]\nname = "v2"\nkind = "jwt"\nlogin = { path = "/v2/login" }\n')
    api = load_adapter(write(tmp_path, text))
    v1, v2 = api.variant("v1").login, api.variant("v2").login
    assert (v1.path, v2.path) == ("/login", "/v2/login")
    assert v2.body == v1.body == {"user": "{username}", "secret": "{password}"}
    assert v2.format == "form"


def test_a_variant_list_replaces_the_top_levels_list(tmp_path: Path) -> None:
    text = TINY + ('\n[[variants]]\nname = "v1"\n'
                   '\n[[variants]]\nname = "v2"\nhot = [{ path = "/v2/me", weight = 3 }]\n')
    api = load_adapter(write(tmp_path, text))
    assert [h.path for h in api.variant("v1").hot] == ["/me"]
    assert [(h.path, h.weight) for h in api.variant("v2").hot] == [("/v2/me", 3)]
    # kind and store at the top level are every variant's unless it says otherwise
    assert api.variant("v2").variant.kind == "jwt"


def test_the_service_folder_is_relative_to_the_file(tmp_path: Path) -> None:
    assert load_adapter(FLASK).variants[0].service is not None
    assert load_adapter(FLASK).variants[0].service.cwd == str(FLASK.parent.resolve())
    text = TINY + ('\n[service]\ncommand = ["serve"]\ncwd = "app"\n'
                   '\n[[variants]]\nname = "v1"\n'
                   '\n[[variants]]\nname = "v2"\nservice = { cwd = "../other" }\n')
    folder = tmp_path / "adapters"
    folder.mkdir()
    api = load_adapter(write(folder, text))
    v1, v2 = api.variant("v1").service, api.variant("v2").service
    assert v1 is not None and v2 is not None
    assert v1.cwd == str(folder / "app")
    assert v2.cwd == str(tmp_path / "other")
    assert v2.command == ["serve"]  # merged: the variant changed the folder only


def test_a_file_without_a_service_folder_given_runs_beside_the_file(tmp_path: Path) -> None:
    api = load_adapter(write(tmp_path, TINY + '\n[service]\ncommand = ["serve"]\n'))
    assert api.variants[0].service is not None
    assert api.variants[0].service.cwd == str(tmp_path)


def test_a_users_file_is_read_into_accounts(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text('# who logs in\nalice,pw1\n\nbob,"p,w"\n')
    text = edit(TINY, 'pattern = "user{n}"\ncount = 10\npassword = "pw-{username}"',
                'file = "users.csv"')
    users = load_adapter(write(tmp_path, text)).variants[0].users
    assert [(u.username, u.password) for u in users.accounts] == [("alice", "pw1"), ("bob", "p,w")]
    assert users.file == ""  # read: a Locust worker needs no file


@pytest.mark.parametrize(("content", "why"), [
    ("alice,pw1\nbob\n", "line 2 is not `username,password`"),
    ("alice,pw1,extra\n", "line 1 is not `username,password`"),
    (",pw\n", "line 1 is not `username,password`"),
    ("# nobody\n", "no users in it"),
])
def test_a_users_file_that_is_not_username_password_lines_is_refused(
        tmp_path: Path, content: str, why: str) -> None:
    (tmp_path / "users.csv").write_text(content)
    text = edit(TINY, 'pattern = "user{n}"\ncount = 10\npassword = "pw-{username}"',
                'file = "users.csv"')
    message = load_error(write(tmp_path, text))
    assert "users.file = 'users.csv'" in message and why in message


def test_a_missing_users_file_is_refused(tmp_path: Path) -> None:
    text = edit(TINY, 'pattern = "user{n}"\ncount = 10\npassword = "pw-{username}"',
                'file = "nobody.csv"')
    message = load_error(write(tmp_path, text))
    assert "users.file = 'nobody.csv'" in message
    assert str(tmp_path / "nobody.csv") in message


# (what is wrong, the edit of TINY, what the message says of the key)
MISTAKES = [
    ("no [login]", ('[login]\npath = "/login"\n', ""), "login: missing"),
    ("no path in [login]", ('path = "/login"', 'method = "POST"'), "login.path: missing"),
    ("no [capture]", ('[capture]\ntoken = "json:/token"\n', ""), "capture: missing"),
    ("no users", ('[users]\npattern = "user{n}"\ncount = 10\npassword = "pw-{username}"\n', ""),
     "users: missing"),
    ("count as text", ("count = 10", 'count = "10"'), "users.count = '10'"),
    ("weight as text", ('path = "/me"', 'path = "/me"\nweight = "2"'), "hot.0.weight = '2'"),
    ("unknown top-level key", ('name = "tiny"', 'name = "tiny"\ncolour = "red"'),
     "unknown key 'colour'"),
    ("unknown nested key", ('path = "/login"', 'path = "/login"\nbodyy = {}'),
     "unknown key 'login.bodyy'"),
    ("capture from no known source", ('"json:/token"', '"body:/x"'), "capture.token = 'body:/x'"),
    ("path without a leading /", ('path = "/me"', 'path = "me"'), "hot.0.path = 'me'"),
    ("path to another host", ('path = "/me"', 'path = "//evil.example/me"'),
     "hot.0.path = '//evil.example/me'"),
    ("a rejected status that is not 4xx", ('name = "tiny"', 'name = "tiny"\nrejected = [401, 500]'),
     "rejected: 500 is not a 4xx status"),
    ("both [service] and urls",
     ('name = "tiny"', 'name = "tiny"\nurls = ["http://127.0.0.1:8000"]\n'
      'service = { command = ["serve"] }'), "give [service] (authbench starts it) or urls"),
    ("json and form in one request",
     ('path = "/me"', 'path = "/me"\njson = { a = 1 }\nform = { b = "2" }'),
     "hot.0: give json or form, not both"),
    ("two users sources",
     ('password = "pw-{username}"',
      'password = "pw-{username}"\nlist = [{ username = "a", password = "b" }]'),
     "users: give exactly one of"),
    ("a pattern without {n}", ('pattern = "user{n}"', 'pattern = "user"'), "users: a pattern"),
    ("a kind nobody knows", ('kind = "jwt"', 'kind = "oauth"'), "variant.kind = 'oauth'"),
    ("a capture name a template cannot use", ('token = "json:/token"', '"my-token" = "json:/x"'),
     "capture: 'my-token' is not a name"),
]


@pytest.mark.parametrize(("edit_", "says"), [(m[1], m[2]) for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_a_mistake_is_one_line_naming_the_file_and_the_key(
        tmp_path: Path, edit_: tuple[str, str], says: str) -> None:
    message = load_error(write(tmp_path, edit(TINY, *edit_)))
    assert says in message, message


def test_a_section_of_the_wrong_type_is_named(tmp_path: Path) -> None:
    text = edit(TINY, '[login]\npath = "/login"\n', "")
    text = edit(text, 'kind = "jwt"', 'kind = "jwt"\nlogin = "/login"')
    assert "login = '/login': expected a table" in load_error(write(tmp_path, text))


def test_duplicate_variant_names_are_refused(tmp_path: Path) -> None:
    text = TINY + '\n[[variants]]\nname = "a"\n\n[[variants]]\nname = "a"\nkind = "session"\n'
    assert "two variants named 'a'" in load_error(write(tmp_path, text))


def test_a_variant_without_a_kind_is_named(tmp_path: Path) -> None:
    text = edit(TINY, 'kind = "jwt"\n', "")
    text += '\n[[variants]]\nname = "good"\nkind = "jwt"\n\n[[variants]]\nname = "bad"\n'
    message = load_error(write(tmp_path, text))
    assert "[[variants]] 'bad'" in message and "variant.kind: missing" in message


def test_a_mistake_in_a_variants_override_names_the_variant(tmp_path: Path) -> None:
    text = TINY + '\n[[variants]]\nname = "v1"\nlogin = { pth = "/x" }\n'
    message = load_error(write(tmp_path, text))
    assert "[[variants]] 'v1'" in message and "unknown key 'login.pth'" in message


def test_variants_that_are_not_tables_are_refused(tmp_path: Path) -> None:
    text = edit(TINY, 'name = "tiny"', 'name = "tiny"\nvariants = ["a", "b"]')
    assert "variants must be [[variants]] tables" in load_error(write(tmp_path, text))


def test_invalid_toml_is_one_line_with_where(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, TINY + "\n[[hot]\n"))
    assert "not valid TOML" in message and "line 21" in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    message = load_error(tmp_path / "nothing.toml")
    assert "no such adapter file" in message
    assert "no such adapter file" in load_error(tmp_path)  # a folder is no file either


@pytest.mark.parametrize("path", [TWINS, FLASK, AIOHTTP])
def test_an_adapter_survives_the_trip_to_locust_as_json(path: Path) -> None:
    for variant in load_adapter(path).variants:
        assert adapter_from_json(variant.model_dump_json(by_alias=True)) == variant


def test_an_adapter_with_read_users_and_forms_survives_the_trip_as_json(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("alice,pw1\nbob,pw2\n")
    text = edit(TINY, 'pattern = "user{n}"\ncount = 10\npassword = "pw-{username}"',
                'file = "users.csv"')
    text = edit(text, 'path = "/me"', 'path = "/me"\nform = { q = "{token}" }\nweight = 7')
    variant = load_adapter(write(tmp_path, text)).variants[0]
    again = adapter_from_json(variant.model_dump_json(by_alias=True))
    assert again == variant
    assert [u.username for u in again.users.accounts] == ["alice", "bob"]


def test_a_variants_service_that_is_not_a_table_is_refused_in_one_line(tmp_path: Path) -> None:
    text = TINY + '\n[[variants]]\nname = "v1"\nservice = "serve"\n'
    message = load_error(write(tmp_path, text))
    assert "[[variants]] 'v1'" in message and "service = 'serve': expected a table" in message


def test_a_variants_own_users_file_is_read_too(tmp_path: Path) -> None:
    (tmp_path / "users.csv").write_text("alice,pw1\n")
    text = edit(TINY, '[users]\npattern = "user{n}"\ncount = 10\npassword = "pw-{username}"\n',
                "")
    text += '\n[[variants]]\nname = "v1"\nusers = { file = "users.csv" }\n'
    variant = load_adapter(write(tmp_path, text)).variants[0]
    assert user_at(variant, 0) == ("alice", "pw1")
