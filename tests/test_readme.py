"""The README stays true: its configuration table is the one the code parses."""

from __future__ import annotations

from pathlib import Path

from targets.settings import env_table

ROOT = Path(__file__).resolve().parent.parent


def test_readme_configuration_table_matches_the_code() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [line for line in env_table() if line not in readme]
    assert missing == [], "README table out of date; paste targets.settings.env_table()"


def test_readme_quickstart_names_the_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "python3 tasks.py test" in readme
    assert "python3 tasks.py quick" in readme
    assert "python3 tasks.py test" in ci
