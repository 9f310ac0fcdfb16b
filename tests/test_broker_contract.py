"""One contract, both brokers: the in-process memory broker and Redis (a redis-server this
test starts, so the machine's own is never touched)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.broker import Broker, create_broker
from tests.processes import RedisProcess


@pytest.fixture(params=["memory", "redis"])
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "memory":
        yield "memory://"
        return
    redis = RedisProcess(tmp_path).start()
    try:
        yield redis.url
    finally:
        redis.stop()


async def _until(check: object, seconds: float = 5) -> None:
    assert callable(check)
    for _ in range(int(seconds / 0.01)):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("not delivered in time")


def test_publish_subscribe_in_order(broker_url: str) -> None:
    async def main() -> list[tuple[str, str]]:
        broker: Broker = create_broker(broker_url)
        got: list[tuple[str, str]] = []
        await broker.start(lambda channel, payload: got.append((channel, payload)))
        try:
            await broker.subscribe("t:1:room:1")
            await broker.publish("t:1:room:2", "not subscribed")
            await broker.publish("t:1:room:1", "one")
            await broker.publish_many([("t:1:room:1", "two"), ("t:1:room:1", "three")])
            await _until(lambda: len(got) >= 3)
            await broker.unsubscribe("t:1:room:1")
            await broker.publish("t:1:room:1", "after unsubscribe")
            await asyncio.sleep(0.1)  # give a wrongly delivered message the chance to arrive
            assert await broker.ping()
            return got
        finally:
            await broker.stop()

    assert asyncio.run(main()) == [("t:1:room:1", p) for p in ("one", "two", "three")]


def test_presence_counts_users_and_connections(broker_url: str) -> None:
    async def main() -> None:
        broker = create_broker(broker_url)
        await broker.start(lambda channel, payload: None)
        try:
            key = "t:1:room:1"
            assert await broker.presence_change(key, "alice", +1) == (1, 1)
            assert await broker.presence_change(key, "alice", +1) == (2, 1)
            assert await broker.presence_change(key, "bob", +1) == (1, 2)
            assert await broker.presence(key) == {"alice": 2, "bob": 1}
            assert await broker.presence_change(key, "alice", -2) == (0, 1)
            assert await broker.presence(key) == {"bob": 1}
            assert await broker.presence("t:1:room:2") == {}
        finally:
            await broker.stop()

    asyncio.run(main())


def test_redis_commands_give_up_on_a_silent_network(tmp_path: Path) -> None:
    """A partition: Redis stops answering on a connection that worked. A publish must fail
    by itself (redis-py's timeout), never wait for TCP to give up: the persister, so every
    acknowledgement on that worker, waits behind it."""
    from redis.exceptions import TimeoutError as RedisTimeout

    from api.broker.redis import RedisBroker

    redis = RedisProcess(tmp_path).start()
    silent = False

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            if not silent:  # partitioned: swallow everything, close nothing
                writer.write(data)
                await writer.drain()

    async def main() -> None:
        nonlocal silent

        async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", redis.port)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

        server = await asyncio.start_server(relay, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        broker = RedisBroker(f"redis://127.0.0.1:{port}/0")
        try:
            await broker.publish("t:1:room:1", "before")  # the connection works
            silent = True
            with pytest.raises(RedisTimeout):  # redis-py's own timeout, not wait_for's
                await asyncio.wait_for(broker.publish("t:1:room:1", "during"), 30)
            assert not await broker.ping()
        finally:
            silent = False
            with contextlib.suppress(Exception):
                await asyncio.wait_for(broker.stop(), 10)
            server.close()

    try:
        asyncio.run(main())
    finally:
        redis.stop()
