"""Hosts on one machine: Linux network namespaces joined by a bridge, standing in for the
machines of a distributed run (targets, their store, Locust workers, the master).

Nothing touches the machine's own interfaces: the bridge lives in a "switch" namespace
of its own, and each host namespace holds one end of a veth pair (`eth0`, an address on
a private subnet) whose other end is a port of that bridge. Names carry a prefix, this
process's id and a serial, so parallel runs never clash; leaving the context manager
(normally, by an exception or Ctrl-C) stops every process left in the namespaces and
deletes them, and with them their veth pairs and the bridge.

    with Topology(["store", "target1", "master"]) as net:
        net["store"].popen(["redis-server", "--bind", net["store"].address, ...])
        net["master"].run(["curl", f"http://{net['target1'].address}:8000/healthz"])
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import psutil

IP = "ip"
IP_PACKAGE = "iproute2"  # the Debian/Ubuntu package that installs `ip`
SUBNET = "10.231.0.0/24"  # private (RFC 1918) and unlikely to be a real network's
PREFIX = "ab"
ROLE = re.compile(r"^[a-z][a-z0-9]{0,11}$")
MAX_HOSTS = 200
COMMAND_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
_serials = itertools.count()


class NetnsUnavailable(RuntimeError):
    """Namespaces cannot be made here; the message says why."""


def _ip(*args: str) -> str:
    """Run `ip ARGS`; its stdout, or NetnsUnavailable naming the command and its error."""
    try:
        done = subprocess.run([IP, *args], capture_output=True, text=True, check=False,
                              timeout=COMMAND_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetnsUnavailable(f"`ip {' '.join(args)}`: {exc}") from None
    if done.returncode != 0:
        raise NetnsUnavailable(f"`ip {' '.join(args)}` failed: "
                               f"{done.stderr.strip() or f'exit {done.returncode}'}")
    return done.stdout


def subnet_in_use(subnet: str) -> str | None:
    """What on this machine's own namespace overlaps `subnet` (an address or a route), or None."""
    network = ipaddress.ip_network(subnet)
    addresses: list[dict[str, Any]] = json.loads(_ip("-j", "-4", "addr") or "[]")
    for link in addresses:
        for info in link.get("addr_info", []):
            own = ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
            if own.overlaps(network):
                return f"{link['ifname']} has {info['local']}/{info['prefixlen']}"
    routes: list[dict[str, Any]] = json.loads(_ip("-j", "-4", "route") or "[]")
    for route in routes:
        if route.get("dst", "default") != "default" and \
                ipaddress.ip_network(route["dst"], strict=False).overlaps(network):
            return f"a route to {route['dst']} via {route.get('dev', '?')}"
    return None


def netns_unavailable() -> str | None:
    """Why network namespaces cannot be made here (one line), or None when they can."""
    if sys.platform != "linux":
        return f"network namespaces are Linux's; this is {sys.platform}"
    if os.geteuid() != 0:
        return "not root: creating network namespaces needs root (or CAP_SYS_ADMIN)"
    if shutil.which(IP) is None:
        return f"no `{IP}` command: install {IP_PACKAGE}"
    try:
        with Topology(["probe"], prefix=f"{PREFIX}probe"):
            pass
    except NetnsUnavailable as exc:
        return str(exc)
    return None


def remove_stale(prefix: str = PREFIX) -> list[str]:
    """Delete namespaces a killed run of this module left (its pid is gone); their names."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)-\d+-[a-z0-9]+$")
    removed = []
    for line in _ip("netns", "list").splitlines():
        name = line.split()[0] if line.split() else ""
        found = pattern.match(name)
        if found and not psutil.pid_exists(int(found.group(1))):
            _stop_processes(name)
            _ip("netns", "del", name)
            removed.append(name)
    return removed


def _netns_pids(netns: str) -> list[int]:
    try:
        return [int(pid) for pid in _ip("netns", "pids", netns).split()]
    except NetnsUnavailable:
        return []  # already gone


def _stop_processes(netns: str) -> None:
    """SIGTERM to every process in the namespace, SIGKILL to those still there after a while."""
    processes = []
    for pid in _netns_pids(netns):
        try:
            process = psutil.Process(pid)
            process.terminate()
            processes.append(process)
        except psutil.Error:
            continue
    _, alive = psutil.wait_procs(processes, timeout=STOP_TIMEOUT_S)
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    psutil.wait_procs(alive, timeout=STOP_TIMEOUT_S)


@dataclass(frozen=True)
class Host:
    """One stand-in machine: a namespace with loopback and `eth0` at `address`."""

    role: str
    netns: str
    address: str
    # What popen started: stopped with the topology even if it had not yet entered the
    # namespace when the namespace's processes were listed (`ip netns exec` races it).
    started: list[subprocess.Popen[Any]] = field(default_factory=list, compare=False)

    def command(self, argv: Sequence[str]) -> list[str]:
        """argv run inside this host (`ip netns exec` sets the namespace, then execs argv)."""
        return [IP, "netns", "exec", self.netns, *argv]

    def popen(self, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[Any]:
        """Start argv inside this host (subprocess.Popen's keywords)."""
        process = subprocess.Popen(self.command(argv), **kwargs)
        self.started.append(process)
        return process

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[Any]:
        """Run argv inside this host to its end (subprocess.run's keywords)."""
        return subprocess.run(self.command(argv), **kwargs)


class Topology:
    """A switch namespace with a bridge, and one host namespace per role plugged into it."""

    def __init__(self, roles: Sequence[str], subnet: str = SUBNET, prefix: str = PREFIX) -> None:
        network = ipaddress.ip_network(subnet)
        if len(roles) != len(set(roles)) or not 1 <= len(roles) <= MAX_HOSTS:
            raise ValueError(f"roles must be 1 to {MAX_HOSTS} distinct names")
        if bad := [role for role in roles if not ROLE.match(role)]:
            raise ValueError(f"role {bad[0]!r}: lowercase letters and digits, at most 12")
        if network.num_addresses < len(roles) + 3:
            raise ValueError(f"{subnet} has no room for {len(roles)} hosts")
        base = f"{prefix}{os.getpid()}-{next(_serials)}"
        self.subnet = network
        self.switch = f"{base}-switch"
        addresses = itertools.islice(network.hosts(), 1, None)  # .1 left for a gateway
        self.hosts = {role: Host(role, f"{base}-{role}", str(next(addresses)))
                      for role in roles}
        self._made: list[str] = []

    def __getitem__(self, role: str) -> Host:
        return self.hosts[role]

    @property
    def namespaces(self) -> list[str]:
        """Every namespace this topology makes, the switch first."""
        return [self.switch, *(host.netns for host in self.hosts.values())]

    def create(self) -> None:
        """Make the switch and every host; on any failure (or Ctrl-C) remove what was made."""
        try:
            clash = subnet_in_use(str(self.subnet))
            if clash is not None:
                raise NetnsUnavailable(f"{self.subnet} is in use on this machine ({clash}): "
                                       "give the topology another subnet")
            self._add_netns(self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for port, host in enumerate(self.hosts.values()):
                self._add_netns(host.netns)
                _ip("-n", host.netns, "link", "set", "lo", "up")
                _ip("-n", self.switch, "link", "add", f"p{port}", "type", "veth", "peer",
                    "name", "eth0", "netns", host.netns)
                _ip("-n", self.switch, "link", "set", f"p{port}", "master", "br0", "up")
                _ip("-n", host.netns, "addr", "add",
                    f"{host.address}/{self.subnet.prefixlen}", "dev", "eth0")
                _ip("-n", host.netns, "link", "set", "eth0", "up")
        except BaseException:
            self.remove()
            raise

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._made.append(name)

    def remove(self) -> None:
        """Stop every process left in the hosts and delete every namespace made (idempotent)."""
        started = [p for host in self.hosts.values() for p in host.started if p.poll() is None]
        for process in started:
            process.terminate()
        for process in started:
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        for name in reversed(self._made):
            _stop_processes(name)
            try:
                _ip("netns", "del", name)
            except NetnsUnavailable:
                continue  # already gone
        self._made = []

    def __enter__(self) -> Topology:
        self.create()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.remove()
