"""Hosts as network namespaces: they reach each other over the bridge and nothing else,
and everything made is gone afterwards, however the block ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from authbench.infra import netns
from authbench.infra.netns import NetnsUnavailable, Topology, remove_stale, subnet_in_use
from tests.support import require_netns, wait_for

CONNECT = ("import socket, sys\n"
           "socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()")
LISTEN = ("import socket, sys\n"
          "s = socket.create_server((sys.argv[1], int(sys.argv[2])))\n"
          "print('listening', flush=True)\n"
          "s.accept()[0].close()")


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.split()}


def _connects(host: netns.Host, address: str, port: int) -> bool:
    done = host.run([sys.executable, "-c", CONNECT, address, str(port)],
                    capture_output=True, timeout=10, check=False)
    return done.returncode == 0


def _listen(host: netns.Host, address: str, port: int) -> subprocess.Popen[str]:
    server = host.popen([sys.executable, "-c", LISTEN, address, str(port)],
                        stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None and server.stdout.readline() == "listening\n"
    return server


def _ended(server: subprocess.Popen[str]) -> int:
    """The listener's exit code once it has ended (its pipe closed)."""
    server.communicate(timeout=10)
    return server.returncode


@pytest.fixture(autouse=True)
def _netns() -> None:
    require_netns()


def test_hosts_reach_each_other_over_the_bridge_and_their_own_loopback() -> None:
    with Topology(["alpha", "beta"]) as net:
        alpha, beta = net["alpha"], net["beta"]
        assert alpha.address != beta.address
        server = _listen(beta, beta.address, 8080)
        assert _connects(alpha, beta.address, 8080)
        assert _ended(server) == 0
        local = _listen(alpha, "127.0.0.1", 8081)  # loopback is up in each host
        assert _connects(alpha, "127.0.0.1", 8081)
        assert _ended(local) == 0
        assert not _connects(beta, "127.0.0.1", 8081)  # and is each host's own


def test_names_are_unique_per_process_and_topology_and_the_host_is_untouched() -> None:
    before = _namespaces()
    with Topology(["one"]) as first, Topology(["one"]) as second:
        names = set(first.namespaces) | set(second.namespaces)
        assert len(names) == 4
        assert all(name.startswith(f"ab{os.getpid()}-") for name in names)
        assert names <= _namespaces()
        # The same subnet twice, on separate bridges: nothing is routed between them.
        server = _listen(second["one"], second["one"].address, 8080)
        assert first["one"].address == second["one"].address
        server.kill()
        _ended(server)
        # The machine's own namespace has no address or route on the subnet.
        assert subnet_in_use(str(first.subnet)) is None
    assert _namespaces() == before


def test_everything_is_removed_on_an_exception_and_processes_are_stopped() -> None:
    before = _namespaces()
    with pytest.raises(RuntimeError, match="boom"), Topology(["busy"]) as net:
        sleeper = net["busy"].popen(["sleep", "300"])
        process = psutil.Process(sleeper.pid)
        raise RuntimeError("boom")
    wait_for(lambda: not process.is_running() or process.status() == psutil.STATUS_ZOMBIE,
             10, "the host's process to be stopped")
    sleeper.wait(10)
    assert _namespaces() == before


def test_a_failed_create_removes_what_it_made(monkeypatch: pytest.MonkeyPatch) -> None:
    before = _namespaces()
    real = netns._ip

    def failing(*args: str) -> str:
        if "addr" in args and "add" in args:  # the first host is made by then
            raise NetnsUnavailable("`ip addr add` failed: made up")
        return real(*args)

    monkeypatch.setattr(netns, "_ip", failing)
    with pytest.raises(NetnsUnavailable, match="made up"):
        Topology(["first", "second"]).create()
    assert _namespaces() == before


def test_a_subnet_in_use_here_is_refused() -> None:
    assert "127.0.0.1/8" in (subnet_in_use("127.0.0.0/24") or "")
    with pytest.raises(NetnsUnavailable, match="in use on this machine"):
        Topology(["x"], subnet="127.0.0.0/24").create()


def test_roles_are_checked() -> None:
    with pytest.raises(ValueError, match="distinct"):
        Topology(["a", "a"])
    with pytest.raises(ValueError, match="role 'Bad-name'"):
        Topology(["Bad-name"])
    with pytest.raises(ValueError, match="no room"):
        Topology(["a", "b"], subnet="10.231.0.0/30")


def test_namespaces_of_a_dead_run_are_removed_and_a_live_ones_kept() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    stale, live = f"ab{gone.pid}-0-left", f"ab{os.getpid()}-999-mine"
    for name in (stale, live):
        subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        assert stale in remove_stale()
        assert live in _namespaces() and stale not in _namespaces()
    finally:
        for name in (stale, live):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def test_why_namespaces_cannot_be_made(monkeypatch: pytest.MonkeyPatch) -> None:
    assert netns.netns_unavailable() is None
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert netns.netns_unavailable() == "no `ip` command: install iproute2"
    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert (netns.netns_unavailable() or "").startswith("not root")


HOLD = ("import signal, time\n"
        "from authbench.infra.netns import Topology\n"
        # Ctrl-C raises KeyboardInterrupt even where the shell started this ignoring it.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "with Topology(['held']) as net:\n"
        "    print(' '.join(net.namespaces), flush=True)\n"
        "    time.sleep(60)\n")


def test_ctrl_c_removes_everything() -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[3])
    try:
        assert holder.stdout is not None
        names = holder.stdout.readline().split()
        assert len(names) == 2 and set(names) <= _namespaces()
        holder.send_signal(signal.SIGINT)
        _, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate(timeout=30)
    assert "KeyboardInterrupt" in err
    assert not set(names) & _namespaces()
