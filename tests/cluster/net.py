"""Hosts: network namespaces on one bridge, each with an address and its own processes."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

SUBNET = "10.77.0"
BRIDGE_ADDRESS = f"{SUBNET}.1"


def run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def namespaces_available() -> str | None:
    """None when this machine can build the bed, else why not."""
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = f"sbprobe{secrets.token_hex(2)}"
    try:
        run("ip", "netns", "add", probe)
        run("ip", "netns", "del", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"cannot create network namespaces: {exc}"
    return None


class Host:
    def __init__(self, network: Network, name: str, index: int) -> None:
        self.network = network
        self.name = name
        self.ns = f"{network.prefix}{name}"
        self.address = f"{SUBNET}.{index}"
        self.processes: list[subprocess.Popen[bytes]] = []

    def create(self) -> None:
        host_side = f"{self.ns}h"[:15]
        run("ip", "netns", "add", self.ns)
        run(
            "ip", "link", "add", host_side, "type", "veth", "peer", "name", "eth0", "netns", self.ns
        )
        run("ip", "link", "set", host_side, "master", self.network.bridge, "up")
        self.exec("ip", "addr", "add", f"{self.address}/24", "dev", "eth0")
        self.exec("ip", "link", "set", "eth0", "up")
        self.exec("ip", "link", "set", "lo", "up")
        self.exec("ip", "route", "add", "default", "via", BRIDGE_ADDRESS)

    def exec(self, *command: str) -> None:
        run("ip", "netns", "exec", self.ns, *command)

    def popen(
        self, command: Sequence[str], *, log: Path, env: dict[str, str] | None = None, **kw: Any
    ) -> subprocess.Popen[bytes]:
        out: IO[bytes] = log.open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *command],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # one process group: kill -9 takes the workers too
            **kw,
        )
        self.processes.append(proc)
        return proc

    def block(self, other: Host) -> None:
        """A partition: drop everything between this host and `other`."""
        self.exec("iptables", "-A", "OUTPUT", "-d", other.address, "-j", "DROP")
        self.exec("iptables", "-A", "INPUT", "-s", other.address, "-j", "DROP")

    def unblock(self, other: Host) -> None:
        self.exec("iptables", "-D", "OUTPUT", "-d", other.address, "-j", "DROP")
        self.exec("iptables", "-D", "INPUT", "-s", other.address, "-j", "DROP")

    def lose(self, port: int, probability: float, *, on: bool) -> None:
        """Drop this fraction of the packets to and from a local port."""
        action = "-A" if on else "-D"
        for chain, match in (("INPUT", "--dport"), ("OUTPUT", "--sport")):
            self.exec(
                "iptables",
                action,
                chain,
                "-p",
                "tcp",
                match,
                str(port),
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                str(probability),
                "-j",
                "DROP",
            )

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        for proc in self.processes:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.processes.clear()


class Network:
    def __init__(self) -> None:
        self.prefix = f"sb{secrets.token_hex(2)}"
        self.bridge = f"{self.prefix}br"
        self.hosts: dict[str, Host] = {}

    def create(self, names: Sequence[str]) -> Network:
        run("ip", "link", "add", self.bridge, "type", "bridge")
        run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", self.bridge)
        run("ip", "link", "set", self.bridge, "up")
        for index, name in enumerate(names, start=10):
            host = Host(self, name, index)
            host.create()
            self.hosts[name] = host
        return self

    def __getitem__(self, name: str) -> Host:
        return self.hosts[name]

    def destroy(self) -> None:
        for host in self.hosts.values():
            host.kill_all()
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
