"""Target configuration, read once from environment variables at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

AuthMode = Literal["none", "session", "jwt", "hybrid"]
StoreKind = Literal["memory", "redis", "postgres"]
Revocation = Literal["none", "blocklist", "pubsub"]

AUTH_MODES: tuple[AuthMode, ...] = ("none", "session", "jwt", "hybrid")
STORE_KINDS: tuple[StoreKind, ...] = ("memory", "redis", "postgres")
REVOCATIONS: tuple[Revocation, ...] = ("none", "blocklist", "pubsub")
JWT_LIBRARIES: tuple[str, ...] = ("pyjwt", "joserfc")
JWT_ALGORITHMS: tuple[str, ...] = (
    "HS256", "HS384", "HS512", "RS256", "PS256", "ES256", "ES384", "EdDSA",
)

DEFAULT_STORE_URLS: dict[StoreKind, str] = {
    "memory": "",
    "redis": "redis://127.0.0.1:6379/0",
    "postgres": "postgresql://postgres@127.0.0.1:5432/test",
}


class ConfigError(ValueError):
    """A setting has a value the target cannot run with."""


def revocation_store(revocation: str) -> StoreKind | None:
    """The store a revocation strategy works through, if it needs one (pubsub: Redis)."""
    return "redis" if revocation == "pubsub" else None


@dataclass(frozen=True)
class EnvVar:
    """One documented environment variable: its name and meaning (the default is Settings')."""

    name: str
    help: str

    @property
    def default(self) -> str:
        """The default as the environment spells it: that of the Settings field."""
        return Settings().as_env()[self.name]


# With Settings' fields, the single source of truth for the README's table and for parsing.
ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("AUTH_MODE", "none | session | jwt | hybrid"),
    EnvVar("STORE", "memory (per process) | redis | postgres"),
    EnvVar("STORE_URL", "store URL; default "
           f"{DEFAULT_STORE_URLS['redis']} or {DEFAULT_STORE_URLS['postgres']}"),
    EnvVar("STORE_NAMESPACE", "Redis key prefix / PostgreSQL schema"),
    EnvVar("STORE_TIMEOUT", "seconds for one store call before it fails closed (503)"),
    EnvVar("STORE_POOL_SIZE", "connections per process to Redis or PostgreSQL"),
    EnvVar("STORE_ALLOW_EVICTION", "1: start even on a Redis whose maxmemory-policy "
           "may evict keys (anything but noeviction under a maxmemory); every eviction "
           "then counts as lost revocation state. 0: refuse to start"),
    EnvVar("JWT_ALG", "HS256 HS384 HS512 RS256 PS256 ES256 ES384 EdDSA"),
    EnvVar("JWT_LIB", "pyjwt | joserfc: the library that signs and verifies"),
    EnvVar("JWT_RSA_BITS", "RSA key size for generated RS256/PS256 keys"),
    EnvVar("JWT_KEYS_DIR", "load keys from <kid>.pem (asymmetric) or <kid>.key "
           "(HMAC, base64url) files instead of generating them at start"),
    EnvVar("JWT_ACTIVE_KID", "kid that signs new tokens (default: first file by name)"),
    EnvVar("JWT_ISSUER", "iss claim, checked exactly"),
    EnvVar("JWT_AUDIENCE", "aud claim, checked exactly"),
    EnvVar("JWT_LEEWAY", "clock skew allowed on exp/iat/nbf, seconds (max 5)"),
    EnvVar("JWT_REVOCATION", "none | blocklist (jti blocklist + per-user cutoff, "
           "read from STORE per request) | pubsub (the same, checked in this node's "
           "memory and propagated through Redis pub/sub; needs STORE=redis)"),
    EnvVar("VERIFY_CACHE", "keep up to N verified access tokens until their exp "
           "(0: verify every request)"),
    EnvVar("ACCESS_TTL", "access token lifetime, seconds (jwt and hybrid)"),
    EnvVar("REFRESH_TTL", "refresh token lifetime, seconds (hybrid)"),
    EnvVar("SESSION_IDLE_TTL", "session idle timeout, seconds"),
    EnvVar("SESSION_ABSOLUTE_TTL", "session absolute timeout, seconds"),
    EnvVar("SESSION_TOUCH_INTERVAL", "seconds between idle-timeout refreshes of a session"),
    EnvVar("SEED_USERS", "users user0..user<N-1> that can log in"),
    EnvVar("SEED_SESSIONS", "live sessions put in the store at start (bulk path)"),
    EnvVar("KDF_N", "scrypt cost N for passwords (OWASP: N=2^14, r=8, p=5)"),
    EnvVar("KDF_P", "scrypt parallelism p"),
    EnvVar("MAX_CREDENTIAL_BYTES", "larger tokens or cookies are rejected unread"),
    EnvVar("MAX_CONCURRENCY", "requests in flight (parsed, not yet answered) at "
           "which a new one is answered 503 with Retry-After: 1 at once, its connection "
           "kept; from 4x as many open connections uvicorn's limit_concurrency answers 503 "
           "and closes the connection (0: no bound)"),
    EnvVar("TLS_CERT_FILE", "serve HTTPS with this certificate (cookies become Secure)"),
    EnvVar("TLS_KEY_FILE", "private key for TLS_CERT_FILE"),
)

MAX_KDF_N = 2**19  # scrypt with r=8: 512 MiB per login
MAX_KDF_P = 64


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r}: expected one of {', '.join(allowed)}")
    return value


def _integer(name: str, value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a whole number") from None
    if number < minimum:
        raise ConfigError(f"{name}={number}: must be at least {minimum}")
    return number


def _flag(name: str, value: str) -> bool:
    if value not in ("0", "1"):
        raise ConfigError(f"{name}={value!r}: expected 0 or 1")
    return value == "1"


def _seconds(name: str, value: str, minimum: float, maximum: float) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r}: expected a number of seconds") from None
    if not minimum <= number <= maximum:
        raise ConfigError(f"{name}={number}: must be between {minimum} and {maximum}")
    return number


@dataclass(frozen=True)
class Settings:
    """Everything that configures one target process."""

    auth_mode: AuthMode = "jwt"
    store: StoreKind = "memory"
    store_url: str = ""
    store_namespace: str = "authbench"
    store_timeout: float = 0.5
    store_pool_size: int = 20
    store_allow_eviction: bool = False
    jwt_alg: str = "HS256"
    jwt_lib: str = "pyjwt"
    jwt_rsa_bits: int = 2048
    jwt_keys_dir: Path | None = None
    jwt_active_kid: str = ""
    jwt_issuer: str = "authbench"
    jwt_audience: str = "authbench-api"
    jwt_leeway: float = 2.0
    jwt_revocation: Revocation = "none"
    verify_cache: int = 0
    access_ttl: int = 900
    refresh_ttl: int = 1209600
    session_idle_ttl: int = 1800
    session_absolute_ttl: int = 43200
    session_touch_interval: int = 60
    seed_users: int = 1000
    seed_sessions: int = 0
    kdf_n: int = 16384
    kdf_p: int = 5
    max_credential_bytes: int = 4096
    max_concurrency: int = 256
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None

    @property
    def is_tls(self) -> bool:
        """True when the target serves HTTPS, so cookies get Secure and __Host-."""
        return self.tls_cert_file is not None

    @property
    def needs_store(self) -> bool:
        """True when the auth mode keeps any server-side state."""
        if self.auth_mode == "none":
            return False
        return self.auth_mode != "jwt" or self.jwt_revocation != "none"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Parse and check every variable; raise ConfigError naming the bad one."""
        source = os.environ if env is None else env
        raw = {name: source.get(name, default) for name, default in cls().as_env().items()}
        store: StoreKind = _choice("STORE", raw["STORE"], STORE_KINDS)  # type: ignore[assignment]
        keys_dir = Path(raw["JWT_KEYS_DIR"]) if raw["JWT_KEYS_DIR"] else None
        if keys_dir is not None and not keys_dir.is_dir():
            raise ConfigError(f"JWT_KEYS_DIR={keys_dir}: not a directory")
        cert = Path(raw["TLS_CERT_FILE"]) if raw["TLS_CERT_FILE"] else None
        key = Path(raw["TLS_KEY_FILE"]) if raw["TLS_KEY_FILE"] else None
        if (cert is None) != (key is None):
            raise ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together")
        settings = cls(
            auth_mode=_choice("AUTH_MODE", raw["AUTH_MODE"], AUTH_MODES),  # type: ignore[arg-type]
            store=store,
            store_url=raw["STORE_URL"] or DEFAULT_STORE_URLS[store],
            store_namespace=raw["STORE_NAMESPACE"],
            store_timeout=_seconds("STORE_TIMEOUT", raw["STORE_TIMEOUT"], 0.01, 30.0),
            store_pool_size=_integer("STORE_POOL_SIZE", raw["STORE_POOL_SIZE"], 1),
            store_allow_eviction=_flag("STORE_ALLOW_EVICTION", raw["STORE_ALLOW_EVICTION"]),
            jwt_alg=_choice("JWT_ALG", raw["JWT_ALG"], JWT_ALGORITHMS),
            jwt_lib=_choice("JWT_LIB", raw["JWT_LIB"], JWT_LIBRARIES),
            jwt_rsa_bits=_integer("JWT_RSA_BITS", raw["JWT_RSA_BITS"], 2048),
            jwt_keys_dir=keys_dir,
            jwt_active_kid=raw["JWT_ACTIVE_KID"],
            jwt_issuer=raw["JWT_ISSUER"],
            jwt_audience=raw["JWT_AUDIENCE"],
            jwt_leeway=_seconds("JWT_LEEWAY", raw["JWT_LEEWAY"], 0.0, 5.0),
            jwt_revocation=_choice(  # type: ignore[arg-type]
                "JWT_REVOCATION", raw["JWT_REVOCATION"], REVOCATIONS
            ),
            verify_cache=_integer("VERIFY_CACHE", raw["VERIFY_CACHE"], 0),
            access_ttl=_integer("ACCESS_TTL", raw["ACCESS_TTL"], 1),
            refresh_ttl=_integer("REFRESH_TTL", raw["REFRESH_TTL"], 1),
            session_idle_ttl=_integer("SESSION_IDLE_TTL", raw["SESSION_IDLE_TTL"], 1),
            session_absolute_ttl=_integer(
                "SESSION_ABSOLUTE_TTL", raw["SESSION_ABSOLUTE_TTL"], 1
            ),
            session_touch_interval=_integer(
                "SESSION_TOUCH_INTERVAL", raw["SESSION_TOUCH_INTERVAL"], 0
            ),
            seed_users=_integer("SEED_USERS", raw["SEED_USERS"], 1),
            seed_sessions=_integer("SEED_SESSIONS", raw["SEED_SESSIONS"], 0),
            kdf_n=_integer("KDF_N", raw["KDF_N"], 2),
            kdf_p=_integer("KDF_P", raw["KDF_P"], 1),
            max_credential_bytes=_integer(
                "MAX_CREDENTIAL_BYTES", raw["MAX_CREDENTIAL_BYTES"], 256
            ),
            max_concurrency=_integer("MAX_CONCURRENCY", raw["MAX_CONCURRENCY"], 0),
            tls_cert_file=cert,
            tls_key_file=key,
        )
        if settings.kdf_n & (settings.kdf_n - 1):
            raise ConfigError(f"KDF_N={settings.kdf_n}: must be a power of two")
        # A larger KDF_N makes hashlib.scrypt refuse the maxmem passwords.py asks for
        # (> 2**31 - 1 bytes), and a KDF_P in the thousands overruns that maxmem: every
        # login would then fail with a 500 instead of the target refusing to start.
        if settings.kdf_n > MAX_KDF_N:
            raise ConfigError(f"KDF_N={settings.kdf_n}: must be at most {MAX_KDF_N}")
        if settings.kdf_p > MAX_KDF_P:
            raise ConfigError(f"KDF_P={settings.kdf_p}: must be at most {MAX_KDF_P}")
        needed = revocation_store(settings.jwt_revocation)
        if needed is not None and settings.store != needed:
            raise ConfigError(f"JWT_REVOCATION={settings.jwt_revocation} propagates "
                              f"revocations through {needed}: set STORE={needed}")
        # uvicorn counts the request's own connection: a bound of 1 would refuse everything.
        if settings.max_concurrency == 1:
            raise ConfigError("MAX_CONCURRENCY=1: must be 0 (no bound) or at least 2")
        if settings.session_absolute_ttl < settings.session_idle_ttl:
            raise ConfigError("SESSION_ABSOLUTE_TTL must be at least SESSION_IDLE_TTL")
        return settings

    def as_env(self) -> dict[str, str]:
        """The environment that reproduces these settings in another process."""
        return {var.name: _spelled(getattr(self, var.name.lower())) for var in ENV_VARS}


def _spelled(value: object) -> str:
    """A setting's value as the environment writes it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JWT_LEEWAY=2, as people write it, not 2.0
    return str(value)


def env_table() -> list[str]:
    """The README's configuration table, as Markdown lines."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for var in ENV_VARS:
        default = f"`{var.default}`" if var.default else "(empty)"
        meaning = var.help.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
        lines.append(f"| `{var.name}` | {default} | {meaning} |")
    return lines
