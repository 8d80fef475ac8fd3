"""`authbench run --api FILE` with a file or an API it cannot use: exit 2 and one line,
before anything is measured (the real command line, in its own process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import closed_port

REPO = Path(__file__).resolve().parents[3]
FLASK_DIR = REPO / "examples" / "flask"
TIMEOUT_S = 30

TINY = """\
name = "tiny"
kind = "jwt"
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
"""


def run_api(tmp_path: Path, adapter_text: str, *extra: str) -> tuple[Path, str]:
    """Run quick against the adapter; its exit code must be 2. The adapter's path and the
    one error line."""
    adapter = tmp_path / "bad-api.toml"
    adapter.write_text(adapter_text)
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, "-m", "authbench", "run", "quick", "--api", str(adapter),
         "--results", str(results), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    errors = [line for line in lines if line.startswith("authbench run:")]
    assert len(errors) == 1 and lines[-1] == errors[0], done.stderr
    assert all(line.startswith(("note: ", "checking ")) for line in lines[:-1]), done.stderr
    assert not results.exists() or not any(results.iterdir()), "a run folder was created"
    return adapter, errors[0]


def flask_text(**captures: str) -> str:
    """The Flask example's adapter, its folder absolute, its capture rules replaced."""
    text = (FLASK_DIR / "api.toml").read_text()
    head, _, rest = text.partition("[capture]\n")
    _, _, tail = rest.partition("\n\n")
    rules = "".join(f'{name} = "{rule}"\n' for name, rule in captures.items())
    assert 'cwd = "."' in head
    return head.replace('cwd = "."', f'cwd = "{FLASK_DIR}"') + "[capture]\n" + rules + "\n" + tail


def test_a_missing_key_is_one_line(tmp_path: Path) -> None:
    text = TINY.format(url="http://127.0.0.1:8000").replace('[login]\npath = "/login"\n', "")
    adapter, error = run_api(tmp_path, text)
    assert error == f"authbench run: {adapter}: login: missing"


def test_a_wrong_type_is_one_line(tmp_path: Path) -> None:
    text = TINY.format(url="http://127.0.0.1:8000").replace("count = 10", 'count = "10"')
    adapter, error = run_api(tmp_path, text)
    assert str(adapter) in error and "users.count = '10'" in error


def test_an_unreachable_service_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    adapter, error = run_api(tmp_path, TINY.format(url=url))
    assert error.startswith(f"authbench run: {adapter}: variant 'default': {url}: reachable:")


def test_a_login_that_gives_no_credential_is_one_line(tmp_path: Path) -> None:
    text = flask_text(sid="cookie:nothing", csrf="json:/nothing", token="json:/nothing_either")
    adapter, error = run_api(tmp_path, text)
    assert error.startswith(f"authbench run: {adapter}: variant 'session': http://127.0.0.1:")
    assert error.endswith("login: HTTP 200, none of sid, csrf, token in the answer")


@pytest.mark.parametrize("url", ["http://10.1.2.3:8000", "http://192.168.1.5:8000"])
def test_another_host_needs_allow_remote(tmp_path: Path, url: str) -> None:
    adapter, error = run_api(tmp_path, TINY.format(url=url))
    assert str(adapter) in error and url in error and "--allow-remote" in error
