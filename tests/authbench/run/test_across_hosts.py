"""A run whose targets and store are on other hosts: network namespaces stand in for the
machines (authbench.infra.netns). Twins started with `authbench serve` on two target
hosts, sessions in a private Redis on a store host, driven by `authbench run --api
--allow-remote` from the master's host through the twins' own adapter file with one base
URL per node; its run folder holds what a single-host run's does, and says where each
target ran and that its CPU was not measured there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

import pytest

from adapters.loading import TWINS, load_adapter
from authbench.infra.netns import Host, Topology, remove_stale
from authbench.run.apisuite import node_places
from tests.support import FAST_KDF, read_json, require_netns

ROOT = Path(__file__).resolve().parents[3]
RUN_TIMEOUT_S = 300
READY_TIMEOUT_S = 30
REDIS_PORT = 6390  # inside the store host's own namespace: never the machine's Redis
SESSION_PORT, JWT_PORT = 8001, 8002
TINY_SUITE = """name = "tiny"
repeats = 1
interleave = "windows"
[defaults]
users = 4
duration = 1
warmup = 0.2
rate = ["", "50%"]
[[matrix]]
mode = ["none", "session"]
"""
# Polls until every host:port given accepts a connection (bounded), run inside a host.
WAIT_READY = """import socket, sys, time
deadline = time.monotonic() + float(sys.argv[1])
for where in sys.argv[2:]:
    host, port = where.rsplit(":", 1)
    while True:
        try:
            socket.create_connection((host, int(port)), 0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{where} did not answer")
            time.sleep(0.05)
"""


def _adapter(path: Path, session_urls: list[str], jwt_urls: list[str]) -> None:
    """The twins' adapter file, with a variant per mode and one base URL per node."""
    def urls(values: list[str]) -> str:
        return "[" + ", ".join(f'"{url}"' for url in values) + "]"

    path.write_text(TWINS.read_text() + f"""
[[variants]]
name = "session"
kind = "session"
store = "redis"
urls = {urls(session_urls)}
logout = {{ revokes = true }}

[[variants]]
name = "jwt"
kind = "jwt"
urls = {urls(jwt_urls)}
""")


# --- where each node runs, and whose CPU counts: no namespaces needed -------------------


def test_a_node_on_another_host_is_marked_cpu_not_measured(tmp_path: Path) -> None:
    _adapter(tmp_path / "api.toml", ["http://127.0.0.1:8001", "http://[::1]:8001"],
             ["http://198.51.100.7:8002", "http://203.0.113.9:8002"])
    api = load_adapter(tmp_path / "api.toml")
    local = node_places(api.variant("session"))
    assert [p["is_local"] for p in local] == [True, True]
    assert {p["cpu"] for p in local} == {"not measured: no process named"}
    remote = node_places(api.variant("jwt"))
    assert [p["host"] for p in remote] == ["198.51.100.7", "203.0.113.9"]
    assert not any(p["is_local"] or p["is_cpu_measured"] for p in remote)
    assert {p["cpu"] for p in remote} == {"not measured: on another host"}


def test_named_pids_are_measured_and_started_nodes_are_here(tmp_path: Path) -> None:
    _adapter(tmp_path / "api.toml", ["http://127.0.0.1:8001"], ["http://127.0.0.1:8002"])
    session = load_adapter(tmp_path / "api.toml").variant("session")
    named = node_places(session.model_copy(update={"pids": [os.getpid()]}))
    assert named[0]["is_cpu_measured"] and named[0]["cpu"].startswith("measured")
    flask = load_adapter(ROOT / "examples/flask/api.toml").variants[0]
    assert node_places(flask) == [{"url": "http://127.0.0.1:{port}", "host": "this machine",
                                   "is_local": True, "is_cpu_measured": True,
                                   "cpu": "measured: authbench started it here"}]


# --- the run across namespaces ------------------------------------------------------------


class Hosts:
    """Processes started in the topology's hosts, each with a log under `logs`."""

    def __init__(self, net: Topology, logs: Path, stack: ExitStack) -> None:
        self.net = net
        self.logs = logs
        self.stack = stack
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, host: Host, name: str, argv: list[str], env: dict[str, str]) -> None:
        log: IO[bytes] = self.stack.enter_context((self.logs / f"{name}.log").open("wb"))
        self.started.append(host.popen(argv, cwd=ROOT, env={**os.environ, **env},
                                       stdout=log, stderr=subprocess.STDOUT))

    def store(self, host: Host, address: str) -> str:
        """A private redis-server bound to `address` in `host`; its URL."""
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is not installed"
        # protected-mode off: it answers only on its host's private address.
        self.start(host, f"redis-{host.role}", [
            binary, "--bind", address, "--port", str(REDIS_PORT), "--save", "",
            "--appendonly", "no", "--protected-mode", "no", "--dir", str(self.logs)], {})
        return f"redis://{address}:{REDIS_PORT}/0"

    def twins(self, host: Host, address: str, redis_url: str, node: int = 0) -> list[str]:
        """Sessions in Redis and a JWT twin, `authbench serve` each, in `host` (node: a
        second pair on the same host takes the next ports)."""
        serve = [sys.executable, "-m", "authbench", "serve", "--host", address]
        session, jwt = SESSION_PORT + 10 * node, JWT_PORT + 10 * node
        self.start(host, f"session-{host.role}-{node}", [
            *serve, "--port", str(session), "--mode", "session", "--store", "redis",
            "--store-url", redis_url], FAST_KDF)
        self.start(host, f"jwt-{host.role}-{node}",
                   [*serve, "--port", str(jwt), "--mode", "jwt"], FAST_KDF)
        return [f"{address}:{session}", f"{address}:{jwt}"]

    def wait_ready(self, host: Host, addresses: list[str]) -> None:
        done = host.run([sys.executable, "-c", WAIT_READY, str(READY_TIMEOUT_S), *addresses],
                        capture_output=True, text=True, timeout=READY_TIMEOUT_S + 10,
                        check=False)
        logs = "\n".join(f"{p.name}: {p.read_text()[-800:]}" for p in self.logs.glob("*.log"))
        assert done.returncode == 0, f"{done.stderr}\n{logs}"

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.terminate()
        for process in self.started:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


@pytest.fixture
def hosts(tmp_path: Path) -> Iterator[Hosts]:
    """A store host, two target hosts, two load hosts and the master's host, for one test."""
    require_netns()
    remove_stale()  # what a killed run of this test left behind
    (tmp_path / "logs").mkdir()
    with ExitStack() as stack:
        net = stack.enter_context(Topology(["store", "target1", "target2", "load1", "load2",
                                            "master"]))
        started = Hosts(net, tmp_path / "logs", stack)
        try:
            yield started
        finally:
            started.stop()


def _run(host: Host, tmp_path: Path, name: str, adapter: Path, *extra: str,
         suite: str = TINY_SUITE) -> tuple[subprocess.CompletedProcess[str], Path, list[Path]]:
    """`authbench run` of the tiny suite in `host`, from an empty folder with a TMPDIR of
    its own; the run folder, and any file it wrote outside it."""
    cwd, scratch, results = (tmp_path / name / part for part in ("cwd", "tmp", "results"))
    for folder in (cwd, scratch):
        folder.mkdir(parents=True)
    (tmp_path / f"{name}-suite.toml").write_text(suite)
    done = host.run([sys.executable, "-m", "authbench", "run", str(tmp_path / f"{name}-suite.toml"),
                     "--api", str(adapter), "--results", str(results), *extra],
                    cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
                    env={**os.environ, "TMPDIR": str(scratch), "PYTHONUNBUFFERED": "1"})
    runs = sorted(results.iterdir()) if results.is_dir() else []
    assert done.returncode == 0 and len(runs) == 1, \
        f"{done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    outside = [*cwd.rglob("*"), *scratch.rglob("*")]
    return done, runs[0], outside


def _layout(run: Path) -> list[str]:
    """The run folder's files, a process's host and pid in a name as `H-P`."""
    names = [str(path.relative_to(run)) for path in run.rglob("*") if path.is_file()]
    return sorted(re.sub(r"-[^-/]+-\d+\.json$", "-H-P.json", name).replace(run.name, "RUN")
                  for name in names)


def _headings(run: Path) -> list[str]:
    return [line for line in (run / "report.md").read_text().splitlines()
            if line.startswith("#") and not line.startswith("# authbench report")]


def _cells(run: Path) -> list[dict[str, Any]]:
    return [read_json(path) for path in sorted((run / "cells").glob("*/cell.json"))]


def _store_and_twins(hosts: Hosts, across: Path) -> None:
    """The store on its own host, session and JWT twins on two target hosts, all answering
    the master, and the adapter file (across) naming their nodes."""
    net = hosts.net
    store, master = net["store"], net["master"]
    redis_url = hosts.store(store, store.address)
    hosts.wait_ready(master, [f"{store.address}:{REDIS_PORT}"])
    nodes = [hosts.twins(net[role], net[role].address, redis_url)
             for role in ("target1", "target2")]
    hosts.wait_ready(master, [address for pair in nodes for address in pair])
    _adapter(across, [f"http://{session}" for session, _ in nodes],
             [f"http://{jwt}" for _, jwt in nodes])


@pytest.mark.slow
def test_twins_on_other_hosts_run_as_on_one_host(hosts: Hosts, tmp_path: Path) -> None:
    net = hosts.net
    store, master = net["store"], net["master"]
    # Across hosts: the store on its own host, two target hosts, the master on a fourth.
    across = tmp_path / "across.toml"
    _store_and_twins(hosts, across)
    refused = master.run([sys.executable, "-m", "authbench", "run", "quick", "--api",
                          str(across), "--results", str(tmp_path / "refused")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2 and "--allow-remote" in refused.stderr
    assert not (tmp_path / "refused").exists()
    done, run, outside = _run(master, tmp_path, "across", across, "--allow-remote")
    assert outside == []

    # The same suite with everything on the master's host: its own Redis, twins on loopback.
    local_redis = hosts.store(master, "127.0.0.1")
    hosts.wait_ready(master, [f"127.0.0.1:{REDIS_PORT}"])
    here = [hosts.twins(master, "127.0.0.1", local_redis, node) for node in (0, 1)]
    hosts.wait_ready(master, [address for pair in here for address in pair])
    one_host = tmp_path / "one-host.toml"
    _adapter(one_host, [f"http://{session}" for session, _ in here],
             [f"http://{jwt}" for _, jwt in here])
    _, single, outside = _run(master, tmp_path, "single", one_host)
    assert outside == []

    # The same files, every cell's histograms among them, and the same report.
    assert _layout(run) == _layout(single)
    planned = read_json(run / "metadata.json")["suite"]["cells"]
    cells = _cells(run)
    assert len(cells) == len(planned) == 8 and all(c["status"] == "ok" for c in cells)
    for folder in (run / "cells").iterdir():
        assert list(folder.glob("hdr-*.json")), folder.name
    assert _headings(run) == _headings(single)
    assert (run / "report.html").is_file() and "## The answer" in (run / "report.md").read_text()

    # Where each target ran, and that its CPU was not measured there.
    metadata = read_json(run / "metadata.json")
    assert metadata["topology"]["load_balancer"] == "client-side"
    targets = {net["target1"].address, net["target2"].address}
    for variant in metadata["api"]["variants"]:
        places = variant["node_places"]
        assert {p["host"] for p in places} == targets
        assert {p["cpu"] for p in places} == {"not measured: on another host"}
        assert not any(p["is_local"] or p["is_cpu_measured"] for p in places)
    for cell in cells:
        assert {p["host"] for p in cell["topology"]["node_places"]} == targets
        assert cell["nodes"] == []  # no process sampled as a target's
        assert not cell["api"]["cpu_claimed"]
    assert all(not p["is_cpu_measured"] and p["is_local"]
               for v in read_json(single / "metadata.json")["api"]["variants"]
               for p in v["node_places"])
    # The sessions were read from the store host's Redis, which both target hosts shared.
    stats = store.run(["redis-cli", "-h", store.address, "-p", str(REDIS_PORT), "info",
                       "stats"], capture_output=True, text=True, timeout=10, check=True)
    hits = re.search(r"^keyspace_hits:(\d+)", stats.stdout, re.MULTILINE)
    assert hits is not None and int(hits.group(1)) > 100, stats.stdout
    assert "no cost for" in done.stdout


# --- the load from two other hosts: one `authbench worker` on each ------------------------

# A configuration per cell, each with a master of its own: a worker host runs its worker
# again for the next one, a bounded number of times.
WORKER_LOOP = ('i=0; while [ "$i" -lt "$2" ] && "$0" -m authbench worker --master "$1" '
               '--wait 60; do i=$((i + 1)); done')
WORKERS_SUITE = """name = "workers"
repeats = 1
interleave = "cells"
[defaults]
users = 4
duration = 1
warmup = 0.2
rate = ["", "20%"]
[[matrix]]
mode = ["none", "session"]
"""
RATE_TOLERANCE = 0.05


@pytest.mark.slow
def test_two_workers_on_two_load_hosts_drive_targets_on_two_more(hosts: Hosts,
                                                                   tmp_path: Path) -> None:
    net = hosts.net
    master = net["master"]
    across = tmp_path / "across.toml"
    _store_and_twins(hosts, across)
    rigs = 12  # the calibration's, 6 cells' and 2 probes' masters, with room to spare
    for role in ("load1", "load2"):
        (tmp_path / role).mkdir()
        hosts.start(net[role], f"worker-{role}", [
            "timeout", str(RUN_TIMEOUT_S), "sh", "-c", WORKER_LOOP, sys.executable,
            f"{master.address}:5557", str(rigs)], {"TMPDIR": str(tmp_path / role)})
    done, run, outside = _run(master, tmp_path, "workers", across, "--allow-remote",
                              "--external-workers", "2", "--master-bind-host",
                              master.address, suite=WORKERS_SUITE)
    assert outside == []
    metadata = read_json(run / "metadata.json")
    assert metadata["options"]["external_workers"] == 2
    cells = _cells(run)
    assert len(cells) == len(metadata["suite"]["cells"]) and \
        all(c["status"] == "ok" for c in cells), [(c["name"], c["reason"]) for c in cells]
    assert (run / "report.md").is_file()
    for cell in cells:
        if cell["cell"]["scenario"] != "read":
            continue
        folder = run / "cells" / cell["name"]
        histograms = [read_json(path) for path in folder.glob("hdr-*.json")]
        assert len(histograms) == 2, cell["name"]  # one per worker, none from the master
        # Each worker's generator CPU, reported over the wire (another host's processes).
        reported = [g for g in cell["generator"] if g.get("is_reported")]
        assert len(reported) == 2 and len({g["pid"] for g in reported}) == 2, cell["generator"]
        assert all(g["cpu_seconds"] > 0 for g in reported)
        if cell.get("rate"):
            # An open-model window at low load: the two workers together keep the rate.
            sent = sum(h["open"]["sent"] for h in histograms)
            achieved = sent / cell["window"]["planned_seconds"]
            offered = cell["rate"]["offered"]
            assert abs(achieved / offered - 1) <= RATE_TOLERANCE, (cell["name"], achieved,
                                                                    offered)
    assert "no cost for" in done.stdout
