"""The `switchboard` command as an operator runs it: real processes, real exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.sync.client import connect

from tests.factories import Factory
from tests.processes import free_port, wait_ready
from tests.support import TEST_SECRET, LiveServer, eventually

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def run(
    database_url: str | None,
    *args: str,
    stdin: str = "",
    env: dict[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    full_env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SWITCHBOARD_JWT_SECRET")
    }
    if database_url:
        full_env["DATABASE_URL"] = database_url
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        input=stdin,
        text=True,
        capture_output=True,
        env=full_env,
        cwd=ROOT,
        timeout=timeout,
    )


def test_create_tenant_and_users(database_url: str) -> None:
    r = run(database_url, "create-tenant", "acme", "--name", "Acme Inc")
    assert r.returncode == 0 and r.stdout.strip() == "acme"  # the slug alone, for scripts
    assert "created tenant acme (Acme Inc)" in r.stderr  # and what happened, for people
    r = run(database_url, "create-tenant", "acme")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run(database_url, "create-tenant", "Not A Slug")
    assert r.returncode == 1 and "invalid tenant slug" in r.stderr

    r = run(
        database_url,
        "create-user",
        "--tenant",
        "acme",
        "alice",
        "--admin",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert r.returncode == 0 and "password" not in r.stdout
    r = run(database_url, "create-user", "--tenant", "acme", "bob")
    assert r.returncode == 0
    generated = r.stdout.split("password: ")[1].strip()
    assert len(generated) >= 16
    r = run(database_url, "create-user", "--tenant", "acme", "bob")
    assert r.returncode == 1 and "already exists" in r.stderr
    r = run(database_url, "create-user", "--tenant", "nope", "carol")
    assert r.returncode == 1 and "unknown tenant" in r.stderr
    for weak in ("\n", "short\n", "with\x00nul-inside\n"):
        r = run(
            database_url, "create-user", "--tenant", "acme", "dave", "--password-stdin", stdin=weak
        )
        assert r.returncode == 1 and "password" in r.stderr, weak

    # The users can log in (through a server on the same database).
    from tests.support import LiveServer, settings_for

    live = LiveServer(settings_for(database_url)).start()
    try:
        with live.http() as client:
            for username, password, role in (
                ("alice", "a long enough password", "admin"),
                ("bob", generated, "member"),
            ):
                login = client.post(
                    "/auth/login",
                    json={"tenant": "acme", "username": username, "password": password},
                )
                assert login.status_code == 200
                token = login.json()["access_token"]
                me = client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
                assert me.json()["role"] == role
    finally:
        live.stop()


def test_migrate_is_idempotent(database_url: str) -> None:
    r = run(database_url, "migrate")
    assert r.returncode == 0 and "migrations applied" in r.stdout


def test_serve_refusals(database_url: str) -> None:
    r = run(database_url, "serve")
    assert r.returncode == 1 and "SWITCHBOARD_JWT_SECRET" in r.stderr
    r = run(database_url, "serve", "--workers", "2", env={"SWITCHBOARD_JWT_SECRET": TEST_SECRET})
    assert r.returncode == 1 and "REDIS_URL" in r.stderr


def test_serve_demo_prints_logins_and_never_logs_tokens(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "SWITCHBOARD_JWT_SECRET")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SWITCHBOARD_SERVER__DATA_DIR": str(tmp_path),
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log)
        text = log.read_text()
        password = text.split("alice")[1].split("password:")[1].split()[0]
        r = httpx.post(
            f"{base}/auth/login", json={"tenant": "demo", "username": "alice", "password": password}
        )
        assert r.status_code == 200
        token = r.json()["access_token"]
        ticket = httpx.post(
            f"{base}/auth/ws-ticket", headers={"Authorization": f"Bearer {token}"}
        ).json()["ticket"]
        for query in (f"token={token}", f"ticket={ticket}"):
            with connect(f"ws://127.0.0.1:{port}/ws?{query}") as ws:
                assert '"ready"' in str(ws.recv(timeout=5))
        assert httpx.get(f"{base}/").status_code == 200
    finally:
        proc.terminate()
        proc.wait(20)
    text = log.read_text()
    assert "WebSocket /ws?token=[redacted]" in text
    assert token not in text and ticket not in text
    assert token.split(".")[2] not in text


def test_embedded_postgres_from_nothing_and_restart(tmp_path: Path) -> None:
    """`serve` with no DATABASE_URL: the embedded server initialises under data_dir, keeps
    its data, and finds it again on the next start."""
    script = (
        "import asyncio, asyncpg, sys\n"
        "from pathlib import Path\n"
        "from api.embedded import start_embedded_postgres\n"
        "url = start_embedded_postgres(Path(sys.argv[1]))\n"
        "async def main():\n"
        "    c = await asyncpg.connect(url)\n"
        "    await c.execute('CREATE TABLE IF NOT EXISTS kept (v text)')\n"
        "    if sys.argv[2] == 'write':\n"
        "        await c.execute(\"INSERT INTO kept VALUES ('survives')\")\n"
        "    print(await c.fetchval('SELECT string_agg(v, \\',\\') FROM kept'))\n"
        "    await c.close()\n"
        "asyncio.run(main())\n"
    )
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    for mode in ("write", "read"):
        r = subprocess.run(
            [sys.executable, "-c", script, str(data_dir), mode],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == "survives"
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    # The server was stopped when its process exited: nothing listens on its socket.
    assert not list((data_dir / "pgdata").glob("postmaster.pid"))


def test_send_and_tail_through_the_python_client(
    server: LiveServer, factory: Factory, tmp_path: Path
) -> None:
    """`switchboard send` and `switchboard tail` talk to a running server like any app."""
    acct = factory.account()
    factory.room(acct, "ops")
    who = ["--url", server.base_url, "--tenant", acct.tenant, "--user", acct.username]
    password = {"SWITCHBOARD_PASSWORD": acct.password}
    tail = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "tail", *who, "ops", "--since", "0", "--count", "2"],
        env={**os.environ, **password},
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    first = run(None, "send", *who, "ops", "deploy started", env=password)
    assert first.returncode == 0 and "seq 1" in first.stdout, first.stderr
    second = run(None, "send", *who, "--password-stdin", "ops", "deploy done", stdin=acct.password)
    assert second.returncode == 0 and "seq 2" in second.stdout, second.stderr
    out, _ = tail.communicate(timeout=30)
    assert tail.returncode == 0
    assert out.splitlines() == [
        f"#1 {acct.username}: deploy started",
        f"#2 {acct.username}: deploy done",
    ]
    refused = run(None, "send", *who, "ops", "x", env={"SWITCHBOARD_PASSWORD": "wrong password"})
    assert refused.returncode == 1 and "login refused" in refused.stderr
    missing = run(None, "send", *who, "nowhere", "x", env=password)
    assert missing.returncode == 1 and "room_not_found" in missing.stderr


def _postgres_of(pgdata: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline and cmdline[0].endswith("postgres") and str(pgdata) in " ".join(cmdline):
            found.append(proc)
    return found


def test_embedded_postgres_never_outlives_serve(tmp_path: Path) -> None:
    """SIGINT and SIGTERM stop the embedded PostgreSQL; after a SIGKILL (which cannot be
    caught) the next start takes the leftover over, and its clean stop stops it."""
    data_dir = tmp_path / "data"
    pgdata = (data_dir / "pgdata").resolve()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SWITCHBOARD_JWT_SECRET")
    }
    env.update({"SWITCHBOARD_SERVER__DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"})
    log = tmp_path / "serve.log"

    def serve() -> subprocess.Popen[bytes]:
        port = free_port()
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "api.cli", "serve", "--demo", "--port", str(port)],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_ready(f"http://127.0.0.1:{port}", proc, log, seconds=120)
        assert _postgres_of(pgdata), "the embedded server runs"
        return proc

    try:
        for how in (signal.SIGTERM, signal.SIGINT):
            proc = serve()
            proc.send_signal(how)
            proc.wait(30)
            eventually(lambda: not _postgres_of(pgdata), timeout=20)
        proc = serve()
        proc.kill()  # SIGKILL: the server is left behind, with a dead pid in its handle list
        proc.wait(10)
        assert _postgres_of(pgdata)
        proc = serve()  # attaches to the leftover...
        assert "using the embedded PostgreSQL running under" in log.read_text()
        proc.send_signal(signal.SIGINT)  # ...and a clean stop stops it
        proc.wait(30)
        eventually(lambda: not _postgres_of(pgdata), timeout=20)
    finally:  # whatever happened, leave no server behind
        for leftover in _postgres_of(pgdata):
            leftover.kill()


def test_help_explains_every_option() -> None:
    """Subcommand options used to have no help text and no defaults shown."""
    for command, expected in (
        ("serve", ["address to listen on", "default: 1", "--ssl-certfile"]),
        ("create-user", ["the tenant's slug", "generate one and print it"]),
        ("create-tenant", ["lowercase letters", "default: the slug"]),
        ("broadcast", ["the tenant's slug", "none = everyone"]),
        ("send", ["SWITCHBOARD_PASSWORD"]),
    ):
        r = run(None, command, "--help")
        assert r.returncode == 0
        for text in expected:
            assert text in " ".join(r.stdout.split()), (command, text)
