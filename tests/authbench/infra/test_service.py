"""Starting, watching and stopping a team's own service: real processes, no mocks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import psutil
import pytest

from authbench.infra.service import (
    ServiceFailed,
    ServiceGroup,
    ServiceNode,
    ServiceSpec,
    command_for,
)

REPO = Path(__file__).resolve().parents[3]
HTTP_SERVER = (sys.executable, "-m", "http.server", "{port}", "--bind", "127.0.0.1")

# A parent that serves nothing itself: its child python serves HTTP on argv[1].
PARENT_OF_SERVER = """
    import subprocess, sys
    subprocess.run([sys.executable, "-m", "http.server", sys.argv[1], "--bind", "127.0.0.1"])
"""
# Serves on the port its environment names, after noting which node it is.
SERVER_FROM_ENV = """
    import http.server, os, pathlib
    pathlib.Path("node.txt").write_text(os.environ["NODE_NAME"])
    address = ("127.0.0.1", int(os.environ["SERVICE_PORT"]))
    http.server.HTTPServer(address, http.server.SimpleHTTPRequestHandler).serve_forever()
"""
# Serves on argv[1]; a SIGINT makes it write argv[2] and exit 0.
SERVER_THAT_TRAPS_SIGINT = """
    import http.server, pathlib, signal, sys
    def bye(signum, frame):
        pathlib.Path(sys.argv[2]).write_text(signal.Signals(signum).name)
        sys.exit(0)
    signal.signal(signal.SIGINT, bye)
    address = ("127.0.0.1", int(sys.argv[1]))
    http.server.HTTPServer(address, http.server.SimpleHTTPRequestHandler).serve_forever()
"""
SERVER_THAT_IGNORES_SIGTERM = """
    import http.server, signal, sys
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    address = ("127.0.0.1", int(sys.argv[1]))
    http.server.HTTPServer(address, http.server.SimpleHTTPRequestHandler).serve_forever()
"""
# Node 1 serves; every other node fails at once.
ONLY_NODE_ONE_SERVES = """
    import runpy, sys
    if sys.argv[2] != "1":
        sys.exit("node " + sys.argv[2] + " refuses")
    sys.argv = ["http.server", sys.argv[1], "--bind", "127.0.0.1"]
    runpy.run_module("http.server", run_name="__main__")
"""
# A runner that starts a node, prints its pid, and waits to be killed.
RUNNER = """
    import sys, time
    from pathlib import Path
    from authbench.infra.service import ServiceNode, ServiceSpec
    spec = ServiceSpec(command=tuple(sys.argv[2:]), cwd=Path(sys.argv[1]), env={})
    node = ServiceNode(spec, 1, Path(sys.argv[1]) / "s.log")
    node.start()
    node.wait_ready()
    print(node.pid, flush=True)
    time.sleep(60)
"""

# A runner started as a background job (so ignoring SIGINT) stopping a SIGINT service.
RUNNER_IGNORING_SIGINT = """
    import signal, sys
    from pathlib import Path
    from authbench.infra.service import ServiceNode, ServiceSpec
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    spec = ServiceSpec(command=tuple(sys.argv[2:]), cwd=Path(sys.argv[1]), env={},
                       stop_signal="SIGINT", stop_timeout=5.0)
    node = ServiceNode(spec, 1, Path(sys.argv[1]) / "s.log")
    node.start()
    node.wait_ready()
    print(node.stop())
"""


def make_spec(tmp_path: Path, *command: str, **options: object) -> ServiceSpec:
    return ServiceSpec(command=command, cwd=tmp_path, env={}, **options)  # type: ignore[arg-type]


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / f"script-{abs(hash(text))}.py"
    path.write_text(textwrap.dedent(text))
    return str(path)


def is_gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Poll until pid has exited (reparented orphans may stay zombies if nobody reaps them)."""
    deadline = time.monotonic() + timeout
    while not is_gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_command_for_replaces_port_and_node_and_leaves_other_braces(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, "serve", "--port={port}", "n{node}-{port}", "{other}", '{"a": 1}')
    assert command_for(spec, 8123, 2) == ["serve", "--port=8123", "n2-8123", "{other}",
                                          '{"a": 1}']


def test_a_bad_spec_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SIGSTOPP"):
        make_spec(tmp_path, "serve", stop_signal="SIGSTOPP")
    with pytest.raises(ValueError, match="executable"):
        make_spec(tmp_path)


def test_node_starts_answers_and_stops(tmp_path: Path) -> None:
    # A 404 is an answer: the service is up even if ready_path is not one of its routes.
    spec = make_spec(tmp_path, *HTTP_SERVER, ready_path="no-such-page")
    node = ServiceNode(spec, 1, tmp_path / "s.log")
    try:
        node.start()
        node.wait_ready()
        assert node.is_alive()
        assert node.url == f"http://127.0.0.1:{node.port}"
        assert httpx.get(node.url).status_code == 200
        assert node.pids() == [node.pid]
    finally:
        code = node.stop()
    assert code == -signal.SIGTERM
    assert not node.is_alive()
    assert node.stop() == -signal.SIGTERM  # a second stop is harmless
    assert node.pids() == []


def test_stop_before_start_returns_none(tmp_path: Path) -> None:
    assert ServiceNode(make_spec(tmp_path, *HTTP_SERVER), 1, tmp_path / "s.log").stop() is None


def test_a_command_that_exits_at_once_fails_with_its_code_and_log(tmp_path: Path) -> None:
    command = (sys.executable, "-c", "import sys; print('no config'); sys.exit(3)")
    node = ServiceNode(make_spec(tmp_path, *command), 1, tmp_path / "s.log")
    node.start()
    with pytest.raises(ServiceFailed, match="exited with code 3") as failure:
        node.wait_ready()
    assert "no config" in str(failure.value)


def test_a_missing_executable_fails_in_one_line(tmp_path: Path) -> None:
    node = ServiceNode(make_spec(tmp_path, "authbench-no-such-server", "{port}"), 1,
                       tmp_path / "s.log")
    with pytest.raises(ServiceFailed) as failure:
        node.start()
    message = str(failure.value)
    assert "authbench-no-such-server" in message
    assert str(tmp_path) in message
    assert "\n" not in message
    assert failure.value.__cause__ is None and failure.value.__suppress_context__


def test_a_missing_cwd_fails_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    spec = ServiceSpec(command=HTTP_SERVER, cwd=missing, env={})
    with pytest.raises(ServiceFailed, match="no-such-folder"):
        ServiceNode(spec, 1, tmp_path / "s.log").start()


def test_a_service_that_never_answers_times_out_and_is_stopped(tmp_path: Path) -> None:
    command = (sys.executable, "-c", "import time; time.sleep(60)")
    node = ServiceNode(make_spec(tmp_path, *command, ready_timeout=1.0), 1, tmp_path / "s.log")
    node.start()
    started = time.monotonic()
    with pytest.raises(ServiceFailed, match=r"not ready .* after 1s \(last try: ConnectError"):
        node.wait_ready()
    assert time.monotonic() - started < 5
    assert not node.is_alive()
    assert is_gone(node.pid)


def test_a_process_tree_is_sampled_and_stopped_whole(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sys.executable, script(tmp_path, PARENT_OF_SERVER), "{port}")
    node = ServiceNode(spec, 1, tmp_path / "s.log")
    try:
        node.start()
        node.wait_ready()  # only the child serves, so it runs by now
        pids = node.pids()
        assert len(pids) == 2 and pids[0] == node.pid
    finally:
        node.stop()
    assert all(wait_gone(pid) for pid in pids)


def test_a_service_that_ignores_the_stop_signal_is_killed(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sys.executable, script(tmp_path, SERVER_THAT_IGNORES_SIGTERM),
                     "{port}", stop_timeout=0.5)
    node = ServiceNode(spec, 1, tmp_path / "s.log")
    node.start()
    try:
        node.wait_ready()
    finally:
        assert node.stop() == -signal.SIGKILL


def test_the_stop_signal_is_honoured(tmp_path: Path) -> None:
    marker = tmp_path / "stopped-by"
    spec = make_spec(tmp_path, sys.executable, script(tmp_path, SERVER_THAT_TRAPS_SIGINT),
                     "{port}", str(marker), stop_signal="SIGINT")
    node = ServiceNode(spec, 1, tmp_path / "s.log")
    node.start()
    try:
        node.wait_ready()
    finally:
        code = node.stop()
    assert code == 0
    assert marker.read_text() == "SIGINT"


def test_env_values_get_the_port_and_node(tmp_path: Path) -> None:
    spec = ServiceSpec(command=(sys.executable, script(tmp_path, SERVER_FROM_ENV)), cwd=tmp_path,
                       env={"SERVICE_PORT": "{port}", "NODE_NAME": "node-{node}"})
    node = ServiceNode(spec, 3, tmp_path / "s.log")
    node.start()
    try:
        node.wait_ready()  # it listens where SERVICE_PORT says, so this proves the port
    finally:
        node.stop()
    assert (tmp_path / "node.txt").read_text() == "node-3"


def test_a_group_runs_each_node_on_its_own_port(tmp_path: Path) -> None:
    with ServiceGroup(make_spec(tmp_path, *HTTP_SERVER), 2, tmp_path) as group:
        first, second = group.nodes
        assert first.port != second.port
        assert all(httpx.get(url).status_code == 200 for url in group.node_urls)
        assert sorted(group.pids()) == sorted([first.pid, second.pid])
        assert group.dead_nodes() == []
        described = group.describe()
        assert described["kind"] == "service" and described["nodes"] == 2
        assert described["node_urls"] == group.node_urls
        assert described["node_pids"] == [first.pid, second.pid]
        assert described["command"][3] == str(first.port)
        assert described["cwd"] == str(tmp_path)
    assert (tmp_path / "service-1.log").exists() and (tmp_path / "service-2.log").exists()
    assert not first.is_alive() and not second.is_alive()


def test_dead_nodes_names_the_node_that_exited(tmp_path: Path) -> None:
    with ServiceGroup(make_spec(tmp_path, *HTTP_SERVER), 2, tmp_path) as group:
        second = group.nodes[1]
        os.kill(second.pid, signal.SIGKILL)
        assert second.process is not None
        second.process.wait(10)
        [line] = group.dead_nodes()
        assert line.startswith(f"node 2 (pid {second.pid}) exited with code -9: ")
        assert group.nodes[0].is_alive()


def test_a_group_with_a_failing_node_stops_them_all(tmp_path: Path) -> None:
    spec = make_spec(tmp_path, sys.executable, script(tmp_path, ONLY_NODE_ONE_SERVES), "{port}",
                     "{node}")
    group = ServiceGroup(spec, 2, tmp_path)
    with pytest.raises(ServiceFailed, match=r"node 2 .* exited with code 1") as failure:
        group.start()
    assert "node 2 refuses" in str(failure.value)
    assert not any(node.is_alive() for node in group.nodes)


def test_the_service_dies_with_a_killed_runner(tmp_path: Path) -> None:
    with subprocess.Popen(
        [sys.executable, script(tmp_path, RUNNER), str(tmp_path), *HTTP_SERVER],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE,
    ) as runner:
        try:
            assert runner.stdout is not None
            service_pid = int(runner.stdout.readline())
        finally:
            runner.kill()
    is_stopped = wait_gone(service_pid)
    if not is_stopped:
        os.kill(service_pid, signal.SIGKILL)  # leave no orphan behind a failure
    assert is_stopped


def test_a_stop_signal_the_runner_ignores_still_reaches_the_service(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, script(tmp_path, RUNNER_IGNORING_SIGINT), str(tmp_path), *HTTP_SERVER],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=20, check=True)
    assert done.stdout.strip() == "0"  # http.server's own Ctrl-C exit, not -9 after 5 s
