"""Tokens from the app's own identity provider: a local JWKS server with key rotation, and
every forged-token case against an RS256 (JWKS), an ES256 (PEM) and an HS256 issuer, over
HTTP bearer, `?token=`, the first-frame `auth` and an in-band re-auth."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.factories import Factory
from tests.support import LiveServer, close_of, eventually, recv, send

AUD = "chat-app"
HS_SECRET = "an-hmac-secret-the-app-shares-with-us-" + "z" * 30


class Jwks:
    """A JWKS endpoint whose keys the test rotates; it counts the fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, Any] = {}  # kid -> private key
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": [jwks.public(kid) for kid in jwks.keys]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def add(self, kid: str) -> Any:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self.keys[kid]

    def public(self, kid: str) -> dict[str, Any]:
        jwk: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.keys[kid].public_key())
        )
        return {**jwk, "kid": kid, "alg": "RS256", "use": "sig"}


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    server.add("k1")
    yield server
    server.server.shutdown()


def claims(tenant: str, sub: str = "carol", **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {
        "iss": "https://id.example",
        "aud": AUD,
        "sub": sub,
        "org": tenant,
        "iat": now,
        "exp": now + 300,
        **extra,
    }


@pytest.fixture
def issuers(make_server: Any, jwks: Jwks) -> tuple[LiveServer, Any]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_pem = (
        ec_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    live = make_server(
        auth={
            "jwks_min_refresh_seconds": 2,
            "issuers": [
                {
                    "issuer": "https://id.example",
                    "audience": AUD,
                    "algorithms": ["RS256"],
                    "jwks_url": jwks.url,
                    "tenant_claim": "org",
                    "role_claim": "role",
                },
                {
                    "issuer": "mobile-idp",
                    "audience": AUD,
                    "algorithms": ["ES256"],
                    "public_key": ec_pem,
                    "tenant_claim": "org",
                },
                {
                    "issuer": "legacy",
                    "audience": AUD,
                    "algorithms": ["HS256"],
                    "secret": HS_SECRET,
                    "tenant": "fixed-tenant",
                    "username_claim": "email_user",
                },
            ],
        }
    )
    return live, ec_key


def me(live: LiveServer, token: str) -> tuple[int, dict[str, Any]]:
    with live.http() as client:
        r = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    return r.status_code, r.json()


def test_rs256_with_jwks_rotation_and_forgeries(
    issuers: tuple[LiveServer, Any], jwks: Jwks, factory: Factory
) -> None:
    live, _ = issuers
    tenant = factory.tenant()
    good = jwt.encode(claims(tenant), jwks.keys["k1"], "RS256", headers={"kid": "k1"})
    assert me(live, good) == (200, {"username": "carol", "tenant": tenant, "role": "member"})
    assert me(live, good)[0] == 200 and jwks.fetches == 1  # cached: no fetch per token
    admin = jwt.encode(
        claims(tenant, "dana", role="admin"), jwks.keys["k1"], "RS256", headers={"kid": "k1"}
    )
    assert me(live, admin)[1]["role"] == "admin"

    # Rotation: a new key, published; a token naming it causes a refetch, at most one per
    # jwks_min_refresh_seconds (2 s here), so it is accepted once that has passed.
    jwks.add("k2")
    rotated = jwt.encode(claims(tenant), jwks.keys["k2"], "RS256", headers={"kid": "k2"})
    eventually(lambda: me(live, rotated)[0] == 200, timeout=10, every=0.2)
    assert jwks.fetches == 2
    # An unknown kid right after: refused without another fetch (rate-limited refetch).
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown = jwt.encode(claims(tenant), stranger, "RS256", headers={"kid": "k9"})
    assert me(live, unknown)[0] == 401 and jwks.fetches == 2

    public_pem = (
        jwks.keys["k1"]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    forged = {
        "signed by another key": jwt.encode(
            claims(tenant), stranger, "RS256", headers={"kid": "k1"}
        ),
        "alg none": jwt.encode(claims(tenant), "", "none", headers={"kid": "k1"}),
        "HS256 keyed with the public key": _hs_with(public_pem, claims(tenant)),
        "expired": jwt.encode(
            claims(tenant, exp=int(time.time()) - 60),
            jwks.keys["k1"],
            "RS256",
            headers={"kid": "k1"},
        ),
        "no exp": jwt.encode(
            {k: v for k, v in claims(tenant).items() if k != "exp"},
            jwks.keys["k1"],
            "RS256",
            headers={"kid": "k1"},
        ),
        "wrong audience": jwt.encode(
            claims(tenant, aud="other"), jwks.keys["k1"], "RS256", headers={"kid": "k1"}
        ),
        "unknown tenant": jwt.encode(
            claims("no-such-tenant"), jwks.keys["k1"], "RS256", headers={"kid": "k1"}
        ),
        "bad username": jwt.encode(
            claims(tenant, sub="@svc"), jwks.keys["k1"], "RS256", headers={"kid": "k1"}
        ),
        "unknown issuer": jwt.encode(
            claims(tenant, iss="https://evil.example"),
            jwks.keys["k1"],
            "RS256",
            headers={"kid": "k1"},
        ),
    }
    for case, token in forged.items():
        status, body = me(live, token)
        assert status == 401, case
        assert body["error"] in ("invalid_token", "expired_token"), case


def _hs_with(key: bytes, payload: dict[str, Any]) -> str:
    """An HS256 token keyed by an RSA public key (PyJWT itself refuses to make one)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "k1"}).encode())
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def test_es256_and_hs256_issuers_users_and_sockets(
    issuers: tuple[LiveServer, Any], factory: Factory
) -> None:
    live, ec_key = issuers
    tenant = factory.tenant()
    fixed = factory.tenant("fixed-tenant")
    mobile = jwt.encode(claims(tenant, "erin", iss="mobile-idp"), ec_key, "ES256")
    assert me(live, mobile)[1]["username"] == "erin"
    wrong_curve_key = ec.generate_private_key(ec.SECP256R1())
    assert (
        me(live, jwt.encode(claims(tenant, "erin", iss="mobile-idp"), wrong_curve_key, "ES256"))[0]
        == 401
    )
    legacy = jwt.encode(claims("ignored", iss="legacy", email_user="frank"), HS_SECRET, "HS256")
    assert me(live, legacy)[1] == {"username": "frank", "tenant": fixed, "role": "member"}
    assert (
        me(live, jwt.encode(claims("x", iss="legacy", email_user="frank"), "not-it" * 8, "HS256"))[
            0
        ]
        == 401
    )
    # A user made on first sight has no password: the login refuses it like any other.
    with live.http() as client:
        r = client.post("/auth/login", json={"tenant": tenant, "username": "erin", "password": "!"})
        assert r.status_code in (401, 422)
    # Sockets: ?token=, the first `auth` frame, and an in-band re-auth with a fresh token.
    with live.ws(f"/ws?token={mobile}") as ws:
        assert recv(ws)["user"] == "erin"
        fresh = jwt.encode(claims(tenant, "erin", iss="mobile-idp", jti="second"), ec_key, "ES256")
        send(ws, type="auth", token=fresh)
        assert recv(ws)["type"] == "ready"
    with live.ws("/ws") as ws:
        send(ws, type="auth", token=legacy)
        assert recv(ws)["user"] == "frank"
    # Disabled: refused over HTTP and over the socket.
    admin = factory.account(tenant, "boss", role="admin", server=live)
    with live.http() as client:
        assert client.delete("/admin/users/erin", headers=admin.headers).status_code == 204
    assert (
        me(live, mobile) == (401, me(live, mobile)[1]) and me(live, mobile)[1]["error"] == "revoked"
    )
    later = jwt.encode(claims(tenant, "erin", iss="mobile-idp", jti="third"), ec_key, "ES256")
    assert me(live, later)[1]["error"] == "revoked"
    with live.ws(f"/ws?token={later}") as ws:
        assert close_of(ws) == (1008, "revoked")
