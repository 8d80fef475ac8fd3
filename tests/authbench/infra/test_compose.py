"""docker-compose.yml and the Dockerfile stay in step with the local runner.

Docker is not available on the project's CI machines, so nothing here starts a
container: the files are checked against the code they stand for (the serve and run
entry points, targets.settings, the rig's target_env, the Locust files), HAProxy
checks the generated config with `haproxy -c`, and `docker compose config` validates
the compose file where a Docker client with the compose plugin is installed.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from authbench.cli import build_parser
from authbench.commands.run import cmd_run
from authbench.commands.target import cmd_serve
from authbench.infra.compose import (
    HAPROXY_CFG,
    REPLICA_SLOTS,
    TARGET_PORT,
    balancer_ports,
    compose_haproxy_config,
    main,
    target_service,
)
from authbench.infra.haproxy import DnsBackend, haproxy_config, haproxy_dns_config
from authbench.run.cell import Cell
from authbench.run.rig import target_env
from authbench.run.suite import load_suite
from targets.keys import KeySet
from targets.settings import (
    AUTH_MODES,
    ENV_VARS,
    JWT_ALGORITHMS,
    REVOCATIONS,
    STORE_KINDS,
    Settings,
)
from tests.conftest import IS_CI

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
SERVE = ["authbench", "serve", "--host", "0.0.0.0", "--port", str(TARGET_PORT)]
KEYS_SERVICE = "jwt-keys"


def _services() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services: dict[str, dict[str, Any]] = compose["services"]
    return services


def _env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as strings, from either of compose's two forms."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def _depends_on(service: dict[str, Any]) -> dict[str, str]:
    """{service: condition}, from either of compose's two forms."""
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: "service_started" for name in raw}
    return {name: spec.get("condition", "service_started") for name, spec in raw.items()}


def _targets() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if name.startswith("target-")}


def _authbench_services() -> dict[str, dict[str, Any]]:
    """The services that run the project's own image."""
    return {name: s for name, s in _services().items() if s.get("build") is not None}


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    return instructions


def _instruction(name: str) -> list[str]:
    return [rest for word, rest in _dockerfile() if word == name]


def _key_dir(tmp_path: Path) -> Path:
    """Run the jwt-keys service's own command with its folder moved under tmp_path."""
    service = _services()[KEYS_SERVICE]
    env = _env(service)
    folder = tmp_path / PurePosixPath(env["JWT_KEYS_DIR"]).relative_to("/")
    command = service["command"]
    assert command[0] == "python", command
    subprocess.run([sys.executable, *command[1:]], env={**os.environ, **env,
                                                        "JWT_KEYS_DIR": str(folder)},
                   cwd=ROOT, check=True, capture_output=True, timeout=60)
    return folder


def _locust_options(command: list[str]) -> dict[str, Any]:
    """Parse a locust command line with Locust's own parser, in a process of its own
    (importing locust monkey-patches the interpreter with gevent)."""
    assert command[0] == "locust", command
    script = ("import json, sys\n"
              "from locust.argument_parser import get_parser\n"
              "options = get_parser(default_config_files=[]).parse_args(sys.argv[1:])\n"
              "print(json.dumps({key: getattr(options, key) for key in (\n"
              "    'locustfile', 'master', 'worker', 'host', 'master_host', 'master_port',\n"
              "    'master_bind_port')}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")}
    done = subprocess.run([sys.executable, "-c", script, *command[1:]], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"locust rejects {shlex.join(command)}: {done.stderr}"
    options: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return options


def _require_haproxy() -> str:
    binary = shutil.which("haproxy")
    if binary is None:
        message = "haproxy is not installed (apt-get install haproxy)"
        if IS_CI:
            pytest.fail(f"CI needs {message}")
        pytest.skip(message)
    return binary


def _haproxy_check(binary: str, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary, "-c", "-f", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)


# --- targets -------------------------------------------------------------------------


def test_one_target_service_per_auth_mode() -> None:
    targets = _targets()
    assert sorted(targets) == sorted(target_service(mode) for mode in AUTH_MODES)
    for mode in AUTH_MODES:
        assert _env(targets[target_service(mode)])["AUTH_MODE"] == mode


def test_target_services_run_authbench_serve_on_every_interface() -> None:
    for name, service in _targets().items():
        command = service["command"]
        assert command == SERVE, name
        args = build_parser().parse_args(command[1:])
        assert args.handler is cmd_serve, name
        assert (args.host, args.port) == ("0.0.0.0", TARGET_PORT), name
        # Configured by environment alone, as the runner configures its nodes.
        assert (args.mode, args.store, args.store_url, args.alg, args.revocation) == (
            None, None, None, None, None), name
        assert "replicas" not in service.get("deploy", {}), f"{name}: scale with --scale"
        assert "container_name" not in service, f"{name}: a fixed name cannot be scaled"
        assert "ports" not in service, f"{name}: published ports cannot be scaled"


def test_target_environment_keys_are_documented_variables() -> None:
    documented = {var.name for var in ENV_VARS}
    for name, service in _targets().items():
        unknown = set(_env(service)) - documented
        assert unknown == set(), f"{name}: not in targets.settings.ENV_VARS: {unknown}"


def test_target_environment_values_are_valid(tmp_path: Path) -> None:
    keys = _key_dir(tmp_path)
    for name, service in _targets().items():
        env = _env(service)
        assert env.get("STORE", "memory") in STORE_KINDS, name
        assert env.get("JWT_ALG", "HS256") in JWT_ALGORITHMS, name
        assert env.get("JWT_REVOCATION", "none") in REVOCATIONS, name
        if "JWT_KEYS_DIR" in env:
            env["JWT_KEYS_DIR"] = str(keys)
        settings = Settings.from_env(env)  # every value parses, as the target will parse it
        assert settings.auth_mode == env["AUTH_MODE"], name


def test_target_environment_is_what_the_local_runner_sets() -> None:
    """Each target service gets exactly target_env(...) of the equivalent suite cell."""
    for name, service in _targets().items():
        env = _env(service)
        cell = Cell(mode=env["AUTH_MODE"], store=env["STORE"], alg=env["JWT_ALG"],
                    revocation=env["JWT_REVOCATION"], verify_cache=int(env["VERIFY_CACHE"]))
        # The runner shares keys with the nodes of a jwt or hybrid cell (runner.run_cell).
        keys = Path(env["JWT_KEYS_DIR"]) if cell.mode in ("jwt", "hybrid") else None
        expected = target_env(cell, env["STORE_NAMESPACE"], env.get("STORE_URL", ""), keys)
        assert env == expected, f"{name}: differs from authbench.run.rig.target_env"


def test_targets_use_the_compose_stores_in_namespaces_of_their_own() -> None:
    services = _services()
    seen: dict[tuple[str, str], str] = {}
    for name, service in _targets().items():
        env = _env(service)
        if env["STORE"] == "memory":
            continue
        url = urlsplit(env["STORE_URL"])
        assert url.scheme.startswith(env["STORE"][:5]), name  # redis:// or postgresql://
        assert url.hostname in services, f"{name}: {url.hostname} is not a compose service"
        assert services[url.hostname]["image"].split(":")[0] == env["STORE"], name
        assert _depends_on(service).get(url.hostname) == "service_healthy", name
        key = (env["STORE_URL"], env["STORE_NAMESPACE"])
        assert key not in seen, f"{name} and {seen.get(key)} share a namespace"
        seen[key] = name


def test_replicas_of_a_signing_target_share_one_key(tmp_path: Path) -> None:
    """Scaled jwt/hybrid replicas must verify each other's tokens: one key, on a volume."""
    services = _services()
    keys_service = services[KEYS_SERVICE]
    keys_env = _env(keys_service)
    volume = next(v.split(":")[0] for v in keys_service["volumes"])
    assert volume in yaml.safe_load(COMPOSE_FILE.read_text())["volumes"]
    signing = {n: s for n, s in _targets().items() if _env(s)["AUTH_MODE"] in ("jwt", "hybrid")}
    assert signing
    for name, service in signing.items():
        env = _env(service)
        assert env["JWT_ALG"] == keys_env["JWT_ALG"], name
        assert env["JWT_KEYS_DIR"] == keys_env["JWT_KEYS_DIR"], name
        mounts = [m.split(":") for m in service["volumes"]]
        assert any(m[0] == volume and PurePosixPath(env["JWT_KEYS_DIR"]).is_relative_to(m[1])
                   for m in mounts), f"{name} does not mount the {volume} volume"
        assert _depends_on(service)[KEYS_SERVICE] == "service_completed_successfully", name
    # The service writes one key, and only once: a later `up` keeps the same key.
    folder = _key_dir(tmp_path)
    first = sorted(folder.iterdir())
    assert len(first) == 1
    assert sorted(_key_dir(tmp_path).iterdir()) == first
    keyset = KeySet.load(keys_env["JWT_ALG"], folder)
    assert keyset.is_single


# --- HAProxy -------------------------------------------------------------------------


def test_haproxy_cfg_is_the_generated_one() -> None:
    assert HAPROXY_CFG == ROOT / "docker" / "haproxy.cfg"
    assert HAPROXY_CFG.read_text() == compose_haproxy_config(), (
        "docker/haproxy.cfg is out of date: run python -m authbench.infra.compose")
    assert main(["--check"]) == 0


def test_haproxy_balances_each_mode_over_its_target_service() -> None:
    text = HAPROXY_CFG.read_text()
    templates = re.findall(r"^\s+server-template node (\d+) ([\w.-]+):(\d+) ", text, re.M)
    assert sorted(host for _, host, _ in templates) == sorted(_targets())
    assert {(int(slots), int(port)) for slots, _, port in templates} == {
        (REPLICA_SLOTS, TARGET_PORT)}
    binds = re.findall(r"^frontend (\S+)\n\s+bind \*:(\d+)$", text, re.M)
    assert {mode: int(port) for mode, port in binds} == balancer_ports()
    assert "init-addr none" in text  # starts before the names resolve


def test_haproxy_service_serves_the_file_on_the_mode_ports() -> None:
    service = _services()["haproxy"]
    assert service["image"].startswith("haproxy:2.8")
    assert "./docker/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro" in service["volumes"]
    published = set()
    for spec in service["ports"]:
        host_part, _, container = str(spec).rpartition(":")
        first, _, last = container.partition("-")
        published |= set(range(int(first), int(last or first) + 1))
        assert host_part.startswith("127.0.0.1:"), spec
    assert set(balancer_ports().values()) <= published
    maxconn = re.search(r"^\s+maxconn (\d+)$", HAPROXY_CFG.read_text(), re.M)
    assert maxconn is not None
    # HAProxy needs about two descriptors per connection, or it will not start.
    assert service["ulimits"]["nofile"]["soft"] >= 2 * int(maxconn.group(1)) + 1000


def test_dns_config_keeps_haproxy_config_sections() -> None:
    """The generator's existing output is untouched; the DNS variant shares its head."""
    plain = haproxy_config("127.0.0.1:1", [("node1", "127.0.0.1:2")])
    head = plain.split("\nfrontend ")[0]
    assert compose_haproxy_config().split("\n", 1)[1].startswith(head)


def test_haproxy_accepts_the_generated_config(tmp_path: Path) -> None:
    binary = _require_haproxy()
    check = _haproxy_check(binary, HAPROXY_CFG)
    output = check.stdout + check.stderr
    assert check.returncode == 0, output
    assert "WARNING" not in output and "ALERT" not in output, output
    # Sticky balancing through DNS (dynamic cookies) is valid too.
    sticky = tmp_path / "sticky.cfg"
    sticky.write_text(haproxy_dns_config([DnsBackend("jwt", "*:8002", "target-jwt", 8000)],
                                         "sticky"))
    check = _haproxy_check(binary, sticky)
    assert check.returncode == 0, check.stdout + check.stderr
    # And the check is not vacuous: a backend naming a resolvers section that does not
    # exist is rejected.
    broken = tmp_path / "broken.cfg"
    broken.write_text(HAPROXY_CFG.read_text().replace("resolvers docker\n", "resolvers dns\n"))
    assert _haproxy_check(binary, broken).returncode != 0


# --- Locust --------------------------------------------------------------------------


def _loadtest_variables() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "loadtests").glob("*.py"):
        names |= set(re.findall(r"\bAUTHBENCH_[A-Z_]+\b", path.read_text()))
    return names


def test_locust_services_run_the_loadtests_as_master_and_workers() -> None:
    services = _services()
    master = _locust_options(services["locust-master"]["command"])
    worker = _locust_options(services["locust-worker"]["command"])
    for options in (master, worker):
        for locustfile in str(options["locustfile"]).split(","):
            assert PurePosixPath(locustfile).parent == PurePosixPath("loadtests"), locustfile
            assert (ROOT / locustfile).is_file(), locustfile
    assert master["locustfile"] == worker["locustfile"]
    assert master["master"] and not master["worker"]
    assert worker["worker"] and not worker["master"]
    assert worker["master_host"] == "locust-master"
    assert worker["master_port"] == master["master_bind_port"]
    host = urlsplit(master["host"])
    assert host.hostname == "haproxy" and host.port in balancer_ports().values()
    assert _depends_on(services["locust-worker"]).keys() >= {"locust-master"}


def test_locust_services_set_only_variables_the_loadtests_read() -> None:
    known = _loadtest_variables()
    assert {"AUTHBENCH_SEED_USERS", "AUTHBENCH_HDR_DIR", "AUTHBENCH_WARMUP",
            "AUTHBENCH_NODES", "AUTHBENCH_CONTROL", "AUTHBENCH_STATUS"} <= known
    users = {_env(s)["SEED_USERS"] for s in _targets().values()}
    for name in ("locust-master", "locust-worker"):
        env = _env(_services()[name])
        assert set(env) <= known, f"{name}: {set(env) - known} is read by no loadtest"
        assert {env["AUTHBENCH_SEED_USERS"]} == users, f"{name}: users the targets lack"


# --- runner and image ----------------------------------------------------------------


def test_runner_service_runs_the_quick_suite_against_the_compose_stores() -> None:
    services = _services()
    runner = services["runner"]
    assert runner["profiles"] == ["runner"]
    command = runner["command"]
    assert command[0] == "authbench"
    args = build_parser().parse_args(command[1:])
    assert args.handler is cmd_run
    assert load_suite(args.suite, []).cells
    redis, postgres = urlsplit(args.redis_url), urlsplit(args.postgres_url)
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)
    assert services["redis"]["image"].startswith("redis:7")
    assert (postgres.scheme, postgres.hostname, postgres.port) == ("postgresql", "postgres", 5432)
    pg_env = _env(services["postgres"])
    assert services["postgres"]["image"].startswith("postgres:15")
    assert pg_env["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert postgres.username == pg_env.get("POSTGRES_USER", "postgres")
    assert postgres.path.lstrip("/") == pg_env["POSTGRES_DB"] == "test"
    for store in ("redis", "postgres"):
        assert _depends_on(runner)[store] == "service_healthy"
    workdir = _instruction("WORKDIR")[-1]
    assert f"./results:{PurePosixPath(workdir) / args.results}" in runner["volumes"]


def test_every_authbench_service_runs_the_one_image() -> None:
    services = _authbench_services()
    assert set(_targets()) | {"locust-master", "locust-worker", "runner", KEYS_SERVICE} <= set(
        services)
    assert {s["build"] for s in services.values()} == {"."}
    assert len({s["image"] for s in services.values()}) == 1
    for name, service in services.items():
        if name not in _targets():  # only targets answer the image's /health check
            assert service["healthcheck"] == {"disable": True}, name
        else:
            assert "healthcheck" not in service, name


def test_dockerfile_serves_a_target_as_a_non_root_user() -> None:
    assert _instruction("FROM") == ["python:3.11-slim"]
    cmd = json.loads(_instruction("CMD")[-1])
    assert cmd == SERVE
    args = build_parser().parse_args(cmd[1:])
    assert args.handler is cmd_serve and args.host == "0.0.0.0"
    assert _instruction("USER")[-1] not in ("root", "0", "0:0")
    health = _instruction("HEALTHCHECK")[-1]
    assert "curl" not in health
    probe = json.loads(health.split("CMD", 1)[1])
    assert probe[0] == "python"
    assert f"127.0.0.1:{args.port}/health" in probe[-1]
    assert any(re.search(r"\bpip install \.", run) for run in _instruction("RUN"))


def test_dockerfile_copies_every_package_and_dockerignore_keeps_them() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"][
        "include"]}
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    copied = set()
    for copy in _instruction("COPY"):
        *sources, _dest = copy.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, p.removeprefix("**/")) for p in ignored), (
                f".dockerignore drops {source}, which the Dockerfile copies")
            copied.add(source)
    assert packages <= copied, f"pip install . would miss {packages - copied}"
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied
    for kept_out in (".venv", "results", "__pycache__", ".mypy_cache", ".pytest_cache"):
        assert any(fnmatch.fnmatch(kept_out, p.removeprefix("**/")) for p in ignored), kept_out


def _compose_client() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return None
    version = subprocess.run([docker, "compose", "version"], capture_output=True,
                             timeout=30, check=False)
    return docker if version.returncode == 0 else None


def test_docker_compose_accepts_the_file() -> None:
    """Client-side validation only: `docker compose config` needs no engine."""
    docker = _compose_client()
    if docker is None:
        pytest.skip("no docker client with the compose plugin")
    done = subprocess.run([docker, "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
