"""The preflight before any load, on real processes: the Flask example passes; a service
that never starts, a login that is not there, a node nobody listens on each become one
line naming the variant."""

from __future__ import annotations

from pathlib import Path

from adapters.loading import AdapterFile, load_adapter
from authbench.run.preflight import preflight
from tests.support import closed_port

REPO = Path(__file__).resolve().parents[3]
FLASK_DIR = REPO / "examples" / "flask"
FLASK = FLASK_DIR / "api.toml"

# Nodes that are meant to be started by authbench, and exit at once.
EXITS_AT_ONCE = """\
name = "broken"

[service]
command = ["{python}", "-c", "import sys; sys.exit('no config, giving up')"]
ready_timeout = 10

[users]
pattern = "user{n}"
count = 2
password = "pw"

[login]
path = "/login"

[capture]
token = "json:/token"

[send]
headers = { Authorization = "Bearer {token}" }

[[hot]]
path = "/me"

[[variants]]
name = "quitter"
kind = "jwt"
"""


def flask_copy(folder: Path, old: str, new: str) -> AdapterFile:
    """The Flask example's adapter with one edit, written elsewhere, serving the real app."""
    text = FLASK.read_text()
    assert old in text and 'cwd = "."' in text
    text = text.replace(old, new).replace('cwd = "."', f'cwd = "{FLASK_DIR}"')
    path = folder / "api.toml"
    path.write_text(text)
    return load_adapter(path)


def assert_one_line(line: str | None, api: AdapterFile) -> str:
    assert line is not None
    assert "\n" not in line and line.startswith(f"{api.path}: variant ")
    return line


def test_the_flask_example_passes_with_its_floor() -> None:
    assert preflight(load_adapter(FLASK), with_floor=True) is None


def test_a_service_that_exits_at_once_did_not_start(tmp_path: Path) -> None:
    path = tmp_path / "api.toml"
    path.write_text(EXITS_AT_ONCE)
    api = load_adapter(path)
    line = assert_one_line(preflight(api, with_floor=False), api)
    assert "variant 'quitter': the service did not start" in line
    assert "no config, giving up" in line  # the log's last line says why


def test_a_login_that_is_not_there_is_named(tmp_path: Path) -> None:
    api = flask_copy(tmp_path, 'path = "/login"', 'path = "/nope"')
    line = assert_one_line(preflight(api, with_floor=False), api)
    assert "variant 'session': http://127.0.0.1:" in line
    assert "login: HTTP 404, none of sid, csrf, token in the answer" in line


def test_a_node_nobody_listens_on_is_unreachable(tmp_path: Path) -> None:
    text = EXITS_AT_ONCE.replace(
        '[service]\ncommand = ["{python}", "-c", "import sys; sys.exit(\'no config, giving '
        'up\')"]\nready_timeout = 10\n', f'urls = ["http://127.0.0.1:{closed_port()}"]\n')
    assert "[service]" not in text
    path = tmp_path / "api.toml"
    path.write_text(text)
    api = load_adapter(path)
    line = assert_one_line(preflight(api, with_floor=False), api)
    assert f"variant 'quitter': {api.variants[0].urls[0]}: reachable: ConnectError" in line


def test_the_floor_is_checked_as_a_variant_of_its_own(tmp_path: Path) -> None:
    api = flask_copy(tmp_path, 'path = "/public/me"', 'path = "/public/nope"')
    line = assert_one_line(preflight(api, with_floor=True), api)
    assert "variant 'floor': http://127.0.0.1:" in line
    assert "without credential: HTTP 404" in line
