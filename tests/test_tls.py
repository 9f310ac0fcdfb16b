"""Transport security: HTTPS and wss:// served directly (certificates made by trustme,
checked by real clients), Secure cookies under TLS, and whose X-Forwarded-* is trusted."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.sync.client import connect

from tests.factories import Factory
from tests.support import recv


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> Iterator[dict[str, str]]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    yield {"ssl_certfile": str(certfile), "ssl_keyfile": str(keyfile)}


def test_https_and_wss_with_secure_cookies(
    make_server: Any, factory: Factory, ca: trustme.CA, tls_files: dict[str, str]
) -> None:
    live = make_server(server=tls_files)
    assert live.base_url.startswith("https://")
    client_ssl = ssl.create_default_context()
    ca.configure_trust(client_ssl)
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    with httpx.Client(base_url=live.base_url, verify=client_ssl) as http:
        r = http.post(
            "/auth/login", json={"tenant": tenant, "username": "alice", "password": password}
        )
        assert r.status_code == 200
        cookie = r.headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie
        token = r.json()["access_token"]
        ticket = http.post("/auth/ws-ticket", headers={"Authorization": f"Bearer {token}"}).json()[
            "ticket"
        ]
    with connect(f"{live.ws_url}/ws?ticket={ticket}", ssl=client_ssl, open_timeout=10) as ws:
        assert recv(ws)["type"] == "ready"
    with pytest.raises(httpx.ConnectError):  # an untrusted certificate is refused
        httpx.get(f"{live.base_url}/healthz")


def _failed_logins_from(live: Any, tenant: str, addresses: list[str]) -> list[int]:
    codes = []
    with live.http() as http:
        for i, address in enumerate(addresses):
            r = http.post(
                "/auth/login",
                json={"tenant": tenant, "username": f"nobody{i}", "password": "wrong password"},
                headers={"X-Forwarded-For": address, "X-Forwarded-Proto": "https"},
            )
            codes.append(r.status_code)
    return codes


def test_forwarded_address_only_from_trusted_proxies(make_server: Any, factory: Factory) -> None:
    """Login throttling per address: behind a trusted proxy each forwarded client has its
    own budget; from an untrusted peer the header is ignored (else anyone on the network
    could pick their throttling address and never be throttled)."""
    tenant = factory.tenant()
    addresses = [f"203.0.113.{i}" for i in range(4)]
    limits = {"login_failures_per_address": 2, "login_failures_per_user": 100}
    trusted = make_server(limits=limits, server={"forwarded_allow_ips": ["127.0.0.1"]})
    assert _failed_logins_from(trusted, tenant, addresses) == [401, 401, 401, 401]
    untrusted = make_server(limits=limits, server={"forwarded_allow_ips": ["192.0.2.1"]})
    assert _failed_logins_from(untrusted, tenant, addresses) == [401, 401, 429, 429]


def test_forwarded_proto_makes_cookies_secure_only_from_trusted_proxies(
    make_server: Any, factory: Factory
) -> None:
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    body = {"tenant": tenant, "username": "alice", "password": password}
    for allowed, secure in ((["127.0.0.0/8"], True), ([], False)):
        live = make_server(server={"forwarded_allow_ips": allowed})
        with live.http() as http:
            r = http.post("/auth/login", json=body, headers={"X-Forwarded-Proto": "https"})
        assert ("Secure" in r.headers["set-cookie"]) is secure, allowed


def test_forwarded_allow_ips_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from api.settings import Settings

    monkeypatch.setenv("SWITCHBOARD_SERVER__FORWARDED_ALLOW_IPS", "10.0.0.1, 10.1.0.0/16")
    assert Settings().server.forwarded_allow_ips == ["10.0.0.1", "10.1.0.0/16"]
    monkeypatch.setenv("SWITCHBOARD_SERVER__FORWARDED_ALLOW_IPS", '["10.0.0.2"]')
    assert Settings().server.forwarded_allow_ips == ["10.0.0.2"]
