"""The proxy configurations in docs/deploy, run for real in front of a Switchboard server:
TLS ends at the proxy, a WebSocket passes through, and the forwarded scheme reaches the
server (the session cookie is Secure). The configs are used as written, with only their
example addresses, paths and certificate swapped for the test's."""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from tests.conftest import ROOT
from tests.factories import Factory
from tests.processes import free_port

pytestmark = pytest.mark.slow
DEPLOY = ROOT / "docs" / "deploy"


def _haproxy(tmp: Path, port: int, app: int, cert: Path, key: Path) -> list[str]:
    pem = tmp / "combined.pem"
    pem.write_text(key.read_text() + cert.read_text())
    config = (DEPLOY / "haproxy.cfg").read_text()
    config = config.replace("bind :443", f"bind 127.0.0.1:{port}")
    config = config.replace("/etc/haproxy/switchboard.pem", str(pem))
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{app}")
    path = tmp / "haproxy.cfg"
    path.write_text(config)
    return ["haproxy", "-db", "-f", str(path)]


def _nginx(tmp: Path, port: int, app: int, cert: Path, key: Path) -> list[str]:
    config = (DEPLOY / "nginx.conf").read_text()
    config = config.replace("listen 443 ssl;", f"listen 127.0.0.1:{port} ssl;")
    config = config.replace("/etc/ssl/switchboard/cert.pem", str(cert))
    config = config.replace("/etc/ssl/switchboard/key.pem", str(key))
    config = config.replace("/run/nginx-switchboard.pid", str(tmp / "nginx.pid"))
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{app}")
    config = config.replace(
        "http {",
        f"error_log {tmp}/error.log;\nhttp {{\n    access_log off;\n"
        f"    client_body_temp_path {tmp}/body;\n    proxy_temp_path {tmp}/proxy;",
        1,
    )
    path = tmp / "nginx.conf"
    path.write_text(config)
    return ["nginx", "-c", str(path), "-p", str(tmp), "-g", "daemon off;"]


def _caddy(tmp: Path, port: int, app: int, cert: Path, key: Path) -> list[str]:
    config = (DEPLOY / "Caddyfile").read_text()
    config = config.replace("chat.example.com {", f"https://127.0.0.1:{port} {{")
    config = config.replace("/etc/ssl/switchboard/cert.pem", str(cert))
    config = config.replace("/etc/ssl/switchboard/key.pem", str(key))
    config = config.replace("127.0.0.1:8000", f"127.0.0.1:{app}")
    path = tmp / "Caddyfile"
    path.write_text(config)
    return ["caddy", "run", "--config", str(path), "--adapter", "caddyfile"]


PROXIES: dict[str, Callable[[Path, int, int, Path, Path], list[str]]] = {
    "haproxy": _haproxy,
    "nginx": _nginx,
    "caddy": _caddy,
}


@pytest.mark.parametrize("name", sorted(PROXIES))
def test_proxy_config_carries_https_and_wss(
    name: str, make_server: Any, factory: Factory, tmp_path: Path
) -> None:
    binary = shutil.which(name)
    assert binary, f"{name} is needed (.ci/run installs it from Debian)"
    live = make_server()  # trusts X-Forwarded-* from 127.0.0.1 (the default)
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    port = free_port()
    command = PROXIES[name](tmp_path, port, live.port, cert, key)
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    log = (tmp_path / f"{name}.log").open("wb")
    proxy = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert proxy.poll() is None, (tmp_path / f"{name}.log").read_text()
            assert time.monotonic() < deadline, f"{name} did not listen"
            time.sleep(0.1)
        trust = ssl.create_default_context()
        ca.configure_trust(trust)
        tenant = factory.tenant()
        password = factory.user(tenant, "alice")
        base = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=base, verify=trust, timeout=10) as http:
            for _ in range(50):  # HAProxy admits the app once its health check passed
                if http.get("/readyz").status_code == 200:
                    break
                time.sleep(0.2)
            login = http.post(
                "/auth/login", json={"tenant": tenant, "username": "alice", "password": password}
            )
            assert login.status_code == 200, login.text
            assert "Secure" in login.headers["set-cookie"]  # X-Forwarded-Proto reached us
            token = login.json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            assert http.post("/rooms", json={"name": "general"}, headers=auth).status_code == 201
            ticket = http.post("/auth/ws-ticket", headers=auth).json()["ticket"]
        with connect(f"wss://127.0.0.1:{port}/ws?ticket={ticket}", ssl=trust) as ws:
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
            ws.send(json.dumps({"type": "join", "room": "general"}))
            ws.send(json.dumps({"type": "send", "room": "general", "body": "via " + name}))
            seen: dict[str, dict[str, Any]] = {}
            while not {"joined", "ack", "message"} <= set(seen):
                frame = json.loads(ws.recv(timeout=10))
                seen.setdefault(frame["type"], frame)
            assert seen["message"]["body"] == f"via {name}" and seen["ack"]["seq"] == 1
    finally:
        proxy.terminate()
        proxy.wait(10)
