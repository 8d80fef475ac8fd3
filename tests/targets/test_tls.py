"""Targets over HTTPS: cookies get Secure and their __Host- / __Secure- prefixes."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from authbench.infra.launcher import TargetProcess
from authbench.infra.ports import LOOPBACK
from tests.conftest import StartTarget

pytestmark = pytest.mark.slow  # real uvicorn over TLS: a target start per test


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (IP SAN) and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authbench test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(LOOPBACK))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed(tmp_path)


def https_target(start_target: StartTarget, tls: tuple[Path, Path], mode: str) -> TargetProcess:
    cert, key = tls
    target = start_target(
        AUTH_MODE=mode, SEED_USERS="10", TLS_CERT_FILE=str(cert), TLS_KEY_FILE=str(key)
    )
    assert target.url.startswith("https://")
    return target


def attributes(set_cookie: str) -> tuple[str, str, dict[str, str]]:
    """(name, value, {lower-case attribute: value}) of one Set-Cookie header."""
    pair, *rest = (part.strip() for part in set_cookie.split(";"))
    name, _, value = pair.partition("=")
    attrs = {}
    for part in rest:
        key, _, val = part.partition("=")
        attrs[key.lower()] = val
    return name, value, attrs


def test_session_cookie_over_tls_is_host_prefixed_and_secure(
    start_target: StartTarget, tls_files: tuple[Path, Path]
) -> None:
    target = https_target(start_target, tls_files, "session")
    with httpx.Client(base_url=target.url, verify=False, timeout=5.0) as client:  # noqa: S501
        login = client.post("/auth/login", json={"username": "user2", "password": "pw-user2"})
        assert login.status_code == 200, login.text
        (set_cookie,) = login.headers.get_list("set-cookie")
        name, sid, attrs = attributes(set_cookie)
        assert name == "__Host-sid"
        assert len(sid) == 43
        assert "secure" in attrs and "httponly" in attrs
        assert attrs.get("samesite", "").lower() in ("lax", "strict")
        assert attrs.get("path") == "/"
        assert "domain" not in attrs
        client.cookies.clear()

        me = client.get("/api/me", headers={"Cookie": f"__Host-sid={sid}"})
        assert me.status_code == 200, me.text
        assert me.json()["user"] == "user2"
        # Over TLS the only session cookie is the prefixed one.
        assert client.get("/api/me", headers={"Cookie": f"sid={sid}"}).status_code == 401

        logout = client.post("/auth/logout", headers={
            "Cookie": f"__Host-sid={sid}", "X-CSRF-Token": login.json()["csrf_token"]})
        assert logout.status_code == 200
        name, value, attrs = attributes(logout.headers["set-cookie"])
        # A browser ignores a __Host- cookie without Secure: the expiry must carry it too.
        assert name == "__Host-sid" and value in ("", '""')
        assert attrs.get("max-age") == "0" and "secure" in attrs and attrs.get("path") == "/"
        assert client.get("/api/me", headers={"Cookie": f"__Host-sid={sid}"}).status_code == 401


def test_certificate_is_the_one_configured(
    start_target: StartTarget, tls_files: tuple[Path, Path]
) -> None:
    target = https_target(start_target, tls_files, "session")
    context = ssl.create_default_context(cafile=str(tls_files[0]))
    with httpx.Client(base_url=target.url, verify=context, timeout=5.0) as client:
        assert client.get("/health").json()["status"] == "ok"


def test_hybrid_refresh_cookie_over_tls_is_secure_prefixed(
    start_target: StartTarget, tls_files: tuple[Path, Path]
) -> None:
    target = https_target(start_target, tls_files, "hybrid")
    with httpx.Client(base_url=target.url, verify=False, timeout=5.0) as client:  # noqa: S501
        login = client.post("/auth/login", json={"username": "user3", "password": "pw-user3"})
        assert login.status_code == 200, login.text
        (set_cookie,) = login.headers.get_list("set-cookie")
        name, refresh, attrs = attributes(set_cookie)
        assert name == "__Secure-rt"
        assert "secure" in attrs and "httponly" in attrs
        assert attrs.get("samesite", "").lower() == "strict"
        assert attrs.get("path") == "/auth"
        assert "domain" not in attrs
        client.cookies.clear()

        csrf = login.json()["csrf_token"]
        rotated = client.post(
            "/auth/refresh", headers={"Cookie": f"__Secure-rt={refresh}", "X-CSRF-Token": csrf}
        )
        assert rotated.status_code == 200, rotated.text
        name, new_refresh, attrs = attributes(rotated.headers["set-cookie"])
        assert name == "__Secure-rt" and "secure" in attrs
        assert new_refresh != refresh
        # The unprefixed name is not the refresh cookie over TLS.
        client.cookies.clear()
        plain = client.post(
            "/auth/refresh", headers={"Cookie": f"rt={new_refresh}", "X-CSRF-Token": csrf}
        )
        assert plain.status_code == 401
