"""Settings.from_env: defaults, a ConfigError naming each bad variable, as_env round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from targets.settings import (
    DEFAULT_STORE_URLS,
    ENV_VARS,
    JWT_ALGORITHMS,
    MAX_KDF_N,
    ConfigError,
    Settings,
    StoreKind,
)


def test_no_variables_give_the_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings == Settings()
    assert settings.auth_mode == "jwt"
    assert settings.store == "memory"
    assert settings.store_url == ""
    assert settings.jwt_alg == "HS256"
    assert settings.jwt_keys_dir is None
    assert settings.jwt_issuer == "authbench"
    assert settings.jwt_audience == "authbench-api"
    assert settings.jwt_leeway == 2.0
    assert settings.jwt_revocation == "none"
    assert settings.access_ttl == 900
    assert settings.refresh_ttl == 14 * 24 * 3600
    assert settings.session_idle_ttl == 1800
    assert settings.session_absolute_ttl == 12 * 3600
    assert settings.kdf_n == 2**14
    assert settings.kdf_p == 5
    assert settings.max_credential_bytes == 4096
    assert settings.tls_cert_file is None and settings.tls_key_file is None
    assert settings.is_tls is False


def test_every_documented_default_parses_to_the_field_default() -> None:
    defaults = Settings()
    for var in ENV_VARS:
        parsed = Settings.from_env({var.name: var.default})
        assert parsed == defaults, var.name
        assert var.help, f"{var.name} has no help text"
    fields = {field.name.upper() for field in dataclasses.fields(Settings)}
    assert fields == {var.name for var in ENV_VARS}


def test_reads_os_environ_when_no_mapping_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "session")
    monkeypatch.setenv("STORE", "redis")
    monkeypatch.delenv("STORE_URL", raising=False)
    settings = Settings.from_env()
    assert settings.auth_mode == "session"
    assert settings.store == "redis"
    assert settings.store_url == DEFAULT_STORE_URLS["redis"]


@pytest.mark.parametrize("store", ["memory", "redis", "postgres"])
def test_store_url_defaults_per_store_and_can_be_overridden(store: StoreKind) -> None:
    assert Settings.from_env({"STORE": store}).store_url == DEFAULT_STORE_URLS[store]
    custom = "redis://10.0.0.1:7000/3"
    assert Settings.from_env({"STORE": store, "STORE_URL": custom}).store_url == custom


@pytest.mark.parametrize("alg", JWT_ALGORITHMS)
def test_every_listed_algorithm_is_accepted(alg: str) -> None:
    assert Settings.from_env({"JWT_ALG": alg}).jwt_alg == alg


BAD_VALUES: list[tuple[dict[str, str], str]] = [
    ({"AUTH_MODE": "oauth"}, "AUTH_MODE"),
    ({"AUTH_MODE": "JWT"}, "AUTH_MODE"),  # case-sensitive
    ({"AUTH_MODE": ""}, "AUTH_MODE"),
    ({"STORE": "mysql"}, "STORE"),
    ({"STORE": "Redis"}, "STORE"),
    ({"JWT_ALG": "none"}, "JWT_ALG"),
    ({"JWT_ALG": "hs256"}, "JWT_ALG"),
    ({"JWT_ALG": "RS512"}, "JWT_ALG"),
    ({"JWT_ALG": "HS256,RS256"}, "JWT_ALG"),
    ({"JWT_REVOCATION": "yes"}, "JWT_REVOCATION"),
    ({"ACCESS_TTL": "15m"}, "ACCESS_TTL"),
    ({"ACCESS_TTL": "1.5"}, "ACCESS_TTL"),
    ({"ACCESS_TTL": "0"}, "ACCESS_TTL"),
    ({"REFRESH_TTL": ""}, "REFRESH_TTL"),
    ({"SESSION_IDLE_TTL": "half an hour"}, "SESSION_IDLE_TTL"),
    ({"SESSION_ABSOLUTE_TTL": "-1"}, "SESSION_ABSOLUTE_TTL"),
    ({"SESSION_IDLE_TTL": "600", "SESSION_ABSOLUTE_TTL": "300"}, "SESSION_ABSOLUTE_TTL"),
    ({"SESSION_TOUCH_INTERVAL": "x"}, "SESSION_TOUCH_INTERVAL"),
    ({"STORE_TIMEOUT": "fast"}, "STORE_TIMEOUT"),
    ({"STORE_TIMEOUT": "0"}, "STORE_TIMEOUT"),
    ({"STORE_TIMEOUT": "nan"}, "STORE_TIMEOUT"),
    ({"STORE_POOL_SIZE": "0"}, "STORE_POOL_SIZE"),
    ({"JWT_LEEWAY": "5.5"}, "JWT_LEEWAY"),
    ({"JWT_LEEWAY": "60"}, "JWT_LEEWAY"),
    ({"JWT_LEEWAY": "inf"}, "JWT_LEEWAY"),
    ({"JWT_LEEWAY": "-1"}, "JWT_LEEWAY"),
    ({"JWT_LEEWAY": "two"}, "JWT_LEEWAY"),
    ({"JWT_RSA_BITS": "1024"}, "JWT_RSA_BITS"),
    ({"SEED_USERS": "0"}, "SEED_USERS"),
    ({"SEED_SESSIONS": "-5"}, "SEED_SESSIONS"),
    ({"KDF_N": "1000"}, "KDF_N"),
    ({"KDF_N": "3"}, "KDF_N"),
    ({"KDF_N": "1"}, "KDF_N"),
    ({"KDF_N": "16k"}, "KDF_N"),
    ({"KDF_N": str(MAX_KDF_N * 2)}, "KDF_N"),  # scrypt would refuse it at every login
    ({"KDF_P": "0"}, "KDF_P"),
    ({"KDF_P": "100000"}, "KDF_P"),
    ({"MAX_CREDENTIAL_BYTES": "100"}, "MAX_CREDENTIAL_BYTES"),
    ({"TLS_CERT_FILE": "/etc/cert.pem"}, "TLS_KEY_FILE"),
    ({"TLS_KEY_FILE": "/etc/key.pem"}, "TLS_CERT_FILE"),
]


@pytest.mark.parametrize(
    ("env", "name"), BAD_VALUES, ids=[f"{n}={next(iter(e.values()))!r}" for e, n in BAD_VALUES]
)
def test_a_bad_value_is_a_config_error_naming_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert name in str(caught.value)


def test_keys_dir_that_does_not_exist_is_a_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(ConfigError, match="JWT_KEYS_DIR") as caught:
        Settings.from_env({"JWT_KEYS_DIR": str(missing)})
    assert str(missing) in str(caught.value)


def test_keys_dir_that_is_a_file_is_a_config_error(tmp_path: Path) -> None:
    a_file = tmp_path / "key.pem"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match="JWT_KEYS_DIR"):
        Settings.from_env({"JWT_KEYS_DIR": str(a_file)})


def test_keys_dir_and_tls_files_become_paths(tmp_path: Path) -> None:
    settings = Settings.from_env({
        "JWT_KEYS_DIR": str(tmp_path),
        "TLS_CERT_FILE": str(tmp_path / "c.pem"),
        "TLS_KEY_FILE": str(tmp_path / "k.pem"),
    })
    assert settings.jwt_keys_dir == tmp_path
    assert settings.tls_cert_file == tmp_path / "c.pem"
    assert settings.tls_key_file == tmp_path / "k.pem"
    assert settings.is_tls is True


def test_largest_allowed_kdf_cost_is_accepted() -> None:
    assert Settings.from_env({"KDF_N": str(MAX_KDF_N), "KDF_P": "64"}).kdf_n == MAX_KDF_N
    assert Settings.from_env({"KDF_N": "2"}).kdf_n == 2


def _round_trip_cases(tmp_path: Path) -> list[dict[str, str]]:
    return [
        {},
        {"AUTH_MODE": "session", "STORE": "redis", "SESSION_TOUCH_INTERVAL": "0"},
        {"AUTH_MODE": "hybrid", "STORE": "postgres", "STORE_URL": "postgresql://u@db:5433/x",
         "STORE_NAMESPACE": "t_abc", "STORE_TIMEOUT": "1.25", "STORE_POOL_SIZE": "7"},
        {"AUTH_MODE": "jwt", "JWT_ALG": "ES384", "JWT_KEYS_DIR": str(tmp_path),
         "JWT_ACTIVE_KID": "k2", "JWT_ISSUER": "https://issuer.example",
         "JWT_AUDIENCE": "api://x", "JWT_LEEWAY": "0.5", "JWT_REVOCATION": "blocklist",
         "ACCESS_TTL": "60", "JWT_RSA_BITS": "3072"},
        {"AUTH_MODE": "none", "SEED_USERS": "5", "SEED_SESSIONS": "100", "KDF_N": "1024",
         "KDF_P": "1", "MAX_CREDENTIAL_BYTES": "8192",
         "TLS_CERT_FILE": str(tmp_path / "cert.pem"), "TLS_KEY_FILE": str(tmp_path / "key.pem")},
    ]


def test_as_env_round_trips(tmp_path: Path) -> None:
    for env in _round_trip_cases(tmp_path):
        settings = Settings.from_env(env)
        exported = settings.as_env()
        assert set(exported) == {var.name for var in ENV_VARS}
        assert all(isinstance(value, str) for value in exported.values())
        assert Settings.from_env(exported) == settings, env
        for name, value in env.items():  # what was set is exported as set (floats aside)
            if name not in ("STORE_TIMEOUT", "JWT_LEEWAY"):
                assert exported[name] == value, name


def test_as_env_of_a_constructed_settings_round_trips(tmp_path: Path) -> None:
    settings = Settings(
        auth_mode="hybrid", store="redis", store_url="redis://127.0.0.1:6379/5",
        jwt_alg="EdDSA", jwt_keys_dir=tmp_path, jwt_leeway=1.5, refresh_ttl=3600,
        session_idle_ttl=10, session_absolute_ttl=20, kdf_n=2048, kdf_p=2,
    )
    assert Settings.from_env(settings.as_env()) == settings


@pytest.mark.parametrize(
    ("mode", "revocation", "expected"),
    [
        ("none", "none", False),
        ("none", "blocklist", False),
        ("jwt", "none", False),
        ("jwt", "blocklist", True),
        ("session", "none", True),
        ("session", "blocklist", True),
        ("hybrid", "none", True),
        ("hybrid", "blocklist", True),
    ],
)
def test_needs_store(mode: str, revocation: str, expected: bool) -> None:
    settings = Settings.from_env({"AUTH_MODE": mode, "JWT_REVOCATION": revocation})
    assert settings.needs_store is expected
