"""`authbench verify URL --api FILE`: the conformance check through an adapter file,
against the aiohttp example started from that file's own [service]."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from adapters.loading import load_adapter
from authbench.infra.service import ServiceGroup
from authbench.run.apirig import service_spec

ROOT = Path(__file__).resolve().parents[3]
ADAPTER = ROOT / "examples" / "aiohttp" / "api.toml"


def _verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "authbench", "verify", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_verify_reports_what_logout_did_for_each_variant(tmp_path: Path) -> None:
    api = load_adapter(ADAPTER)
    for name, after_logout in (("session", "[ok] revoked after logout"),
                               ("jwt", "[ok] after logout (not declared to revoke): still "
                                       "accepted (HTTP 200)")):
        spec = service_spec(api.variant(name))
        assert spec is not None
        with ServiceGroup(spec, 1, tmp_path / name) as group:
            done = _verify(group.node_urls[0], "--api", str(ADAPTER), "--variant", name)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "PASSED" in done.stdout.splitlines()[0]
        assert after_logout in done.stdout


def test_verify_fails_a_variant_whose_declared_revocation_does_not_hold(tmp_path: Path) -> None:
    # The JWT variant's logout leaves the access token working: declared to revoke, it fails.
    text = ADAPTER.read_text().replace(
        "revokes = false }", "revokes = true }").replace('cwd = "."', f'cwd = "{ADAPTER.parent}"')
    lying = tmp_path / "api.toml"
    lying.write_text(text)
    spec = service_spec(load_adapter(lying).variant("jwt"))
    assert spec is not None
    with ServiceGroup(spec, 1, tmp_path / "jwt") as group:
        done = _verify(group.node_urls[0], "--api", str(lying), "--variant", "jwt")
    assert done.returncode == 1
    assert "[FAIL] revoked after logout: HTTP 200" in done.stdout


def test_an_unknown_variant_is_one_line_and_exit_2() -> None:
    done = _verify("http://127.0.0.1:9", "--api", str(ADAPTER), "--variant", "nope")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"authbench verify: {ADAPTER}: no variant 'nope'; variants: session, jwt"]
