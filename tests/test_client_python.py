"""The Python client against a real `switchboard serve` that is killed with SIGKILL and
restarted twice mid-stream: every send is stored exactly once and the receiving app sees
seqs 1..N exactly once, in order."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from switchboard_client import Client, PasswordLogin

from tests.factories import Factory
from tests.processes import Worker

pytestmark = pytest.mark.slow
TOTAL = 300


def test_python_client_exactly_once_across_two_kill_9(
    database_url: str, tmp_path: Path, factory: Factory
) -> None:
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    factory.user(tenant, "bob")
    worker = Worker(database_url, None, tmp_path).start()
    try:
        token = PasswordLogin(worker.base_url, tenant, "alice", password)

        async def create_room() -> None:
            async with httpx.AsyncClient(base_url=worker.base_url) as http:
                r = await http.post(
                    "/rooms",
                    json={"name": "general"},
                    headers={"authorization": f"Bearer {await token()}"},
                )
                assert r.status_code == 201

        async def scenario() -> tuple[list[int], list[dict[str, object]]]:
            await create_room()
            options = dict(backoff_base=0.1, backoff_cap=1.0, ping_interval=2, ping_timeout=2)
            sender = Client(worker.base_url, get_token=token, **options)
            receiver = Client(
                worker.base_url,
                get_token=PasswordLogin(worker.base_url, tenant, "bob", password),
                **options,
            )
            await receiver.connect()
            await sender.connect()
            inbox = await receiver.join("general", since=0)
            outbox = await sender.join("general", since=0)
            seen: list[int] = []

            async def collect() -> None:
                async for message in inbox.messages():
                    seen.append(int(message["seq"]))
                    if len(seen) >= TOTAL:
                        return

            collector = asyncio.ensure_future(collect())
            window = asyncio.Semaphore(20)
            acks: list[dict[str, object]] = []
            progress = asyncio.Condition()

            async def send(i: int) -> None:
                async with window:
                    acks.append(await outbox.send(f"m{i}", client_msg_id=f"c{i}"))
                async with progress:
                    progress.notify_all()

            sends = [asyncio.ensure_future(send(i)) for i in range(TOTAL)]
            for threshold in (TOTAL // 3, 2 * TOTAL // 3):
                async with progress:
                    await progress.wait_for(lambda t=threshold: len(acks) >= t)  # type: ignore[misc]
                await asyncio.to_thread(worker.kill)
                await asyncio.to_thread(worker.start)
            await asyncio.wait_for(asyncio.gather(*sends), 120)
            await asyncio.wait_for(collector, 60)
            await sender.close()
            await receiver.close()
            return seen, acks

        seen, acks = asyncio.run(scenario())
        assert seen == list(range(1, TOTAL + 1))
        assert sorted(int(a["seq"]) for a in acks) == list(range(1, TOTAL + 1))  # type: ignore[call-overload]
        with httpx.Client(base_url=worker.base_url) as http:
            headers = {"authorization": f"Bearer {asyncio.run(token())}"}
            page = http.get("/rooms/general/messages?after=0&limit=500", headers=headers).json()
        bodies = [m["body"] for m in page["messages"]]
        assert sorted(bodies) == sorted(f"m{i}" for i in range(TOTAL))  # each exactly once
        assert [m["seq"] for m in page["messages"]] == list(range(1, TOTAL + 1))
    finally:
        worker.kill()


def test_python_client_refreshes_its_token_in_band(make_server: Any, factory: Factory) -> None:
    """With 3-second access tokens the socket outlives several of them: the client sends
    `auth` before each expiry and never reconnects."""
    live = make_server(auth={"access_ttl_seconds": 3})
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    factory.login(tenant, "alice", password, server=live)

    async def scenario() -> tuple[list[str], int]:
        # The token source renews earlier than the socket asks (as by default: 60 s vs 30 s).
        login = PasswordLogin(live.base_url, tenant, "alice", password, refresh_margin=2)
        states: list[str] = []
        client = Client(live.base_url, get_token=login, refresh_margin=1.5, ping_interval=60)
        await client.connect()
        states.append(client.state)
        first_expiry, socket = client._expires_at, client._ws
        await asyncio.sleep(7)  # more than two token lifetimes
        states.append(client.state if client._ws is socket else "reconnected")
        moved = int(client._expires_at - first_expiry)
        await client.close()
        return states, moved

    states, moved = asyncio.run(scenario())
    assert states == ["live", "live"]  # never dropped to reconnecting
    assert moved >= 3  # new `ready` frames extended the socket's credential


def test_python_client_conversations(server: Any, factory: Factory) -> None:
    """A direct room from the client: typing signals, unread counts that clear on the
    other device, an edit and a delete acknowledged and applied."""
    tenant = factory.tenant()
    password = factory.user(tenant, "alice")
    factory.user(tenant, "bob")

    def login(user: str) -> PasswordLogin:
        return PasswordLogin(server.base_url, tenant, user, password)

    async def scenario() -> dict[str, Any]:
        alice, bob, bob_phone = (
            Client(server.base_url, get_token=login(u)) for u in ("alice", "bob", "bob")
        )
        for client in (alice, bob, bob_phone):
            await client.connect()
        dm = await alice.open_dm("bob")
        assert dm["dm"] == {"with": "bob"}
        assert [d["name"] for d in await bob.dms()] == [dm["name"]]
        a = await alice.join(dm["name"], since=0)
        b = await bob.join(dm["name"], since=0)
        phone = await bob_phone.join(dm["name"], since=0)
        got: dict[str, list[Any]] = {"signal": [], "unread": [], "edit": [], "delete": []}
        changed = asyncio.Event()
        for event in got:
            phone.on(event, got[event].append)
            phone.on(event, lambda _: changed.set())

        async def until(check: Any) -> None:
            async with asyncio.timeout(5):
                while not check():
                    changed.clear()
                    await changed.wait()

        signals: list[Any] = []
        b.on("signal", signals.append)
        await a.signal({"typing": True})
        ack = await a.send("hello bob")
        await a.send("second")
        await until(lambda: phone.unread == 2)
        unread_before = phone.unread
        await b.read()  # on bob's laptop: the phone's badge clears
        await until(lambda: phone.unread == 0)
        edited = await a.edit(ack["seq"], "hello, bob")
        deleted = await a.delete(ack["seq"] + 1)
        try:
            await b.edit(ack["seq"], "not mine")
            refused = ""
        except Exception as exc:  # SwitchboardError
            refused = getattr(exc, "code", "")
        await until(lambda: got["delete"])
        for client in (alice, bob, bob_phone):
            await client.close()
        return {
            "signals": signals,
            "phone_signals": got["signal"],
            "unread_before": unread_before,
            "unread_after": phone.unread,
            "edit": (edited["seq"], [e["target"] for e in got["edit"]]),
            "delete": (deleted["seq"], [d["target"] for d in got["delete"]]),
            "refused": refused,
        }

    result = asyncio.run(scenario())
    assert [s["data"] for s in result["signals"]] == [{"typing": True}]
    assert [s["data"] for s in result["phone_signals"]] == [{"typing": True}]
    assert (result["unread_before"], result["unread_after"]) == (2, 0)
    assert result["edit"] == (3, [1]) and result["delete"] == (4, [2])
    assert result["refused"] == "forbidden"
