"""`reconnect_storm`: every socket of a busy server reconnects at once.

Sockets in many rooms; a publisher keeps posting (over HTTP, retrying with the same
client_msg_id); the server is stopped with SIGTERM (its sockets get 1012) and started again.
Each client reconnects with full-jitter backoff and rejoins with `since`, exactly as the
official clients do. Measured: the time from SIGTERM until every socket is live again, and
whether every client then holds every seq of its room exactly once. Sockets the server sheds
(1013 `overloaded`) retry like any other close.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import time
from typing import Any

import asyncpg
import httpx

from bench import load
from bench.scenarios import Context, _collect, _finish, room_tokens
from bench.servers import create_rooms, raise_fd_limit, switchboard
from bench.wsload import RawSocket, encode_frame

SEQ = re.compile(rb'"seq":(\d+)')
BACKOFF_BASE, BACKOFF_CAP = 0.5, 10.0


class Client:
    """One socket's state: where it is in its room, and what it has seen."""

    def __init__(self, room: str, token: str) -> None:
        self.room, self.token = room, token
        self.ws: RawSocket | None = None
        self.state = "down"  # down -> handshake -> joining -> live
        self.last = -1  # the last seq seen (-1: never joined)
        self.dups = self.gaps = self.reconnects = self.shed = 0
        self.attempt = 0
        self.retry_at = 0.0
        self.live_at = 0.0

    def open(self, port: int) -> None:
        try:
            self.ws = RawSocket("127.0.0.1", port, f"/ws?token={self.token}", timeout=5, wait=False)
            self.ws.sock.setblocking(False)
            self.state = "handshake"
        except OSError:
            self.fail()

    def fail(self) -> None:
        """Closed or refused: try again after a full-jitter backoff."""
        if self.ws is not None:
            self.ws.close()
        self.ws, self.state = None, "down"
        self.retry_at = time.monotonic() + random.uniform(
            0, min(BACKOFF_CAP, BACKOFF_BASE * 2**self.attempt)
        )
        self.attempt += 1

    def on_data(self) -> None:
        ws = self.ws
        assert ws is not None
        if not ws.read_some():
            return self.fail()
        if self.state == "handshake":
            if b"\r\n\r\n" not in ws.buffer:
                return None
            head, _, ws.buffer = ws.buffer.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101"):
                return self.fail()
            join: dict[str, Any] = {"type": "join", "room": self.room}
            if self.last >= 0:
                join["since"] = self.last
            ws.send_text(json.dumps(join))
            self.state = "joining"
        for opcode, payload in ws.frames():
            if opcode == 8:
                if payload[:2] == (1013).to_bytes(2, "big"):
                    self.shed += 1
                return self.fail()
            if opcode == 9:  # ping -> pong, as every real client does (else 1011 at 40 s)
                with contextlib.suppress(OSError):
                    ws.sock.sendall(encode_frame(payload, opcode=10))
                continue
            if opcode != 1:
                continue
            if payload.startswith(b'{"type":"joined"'):
                if self.last < 0:
                    self.last = int(SEQ.search(payload).group(1))  # type: ignore[union-attr]
                self.state, self.attempt, self.live_at = "live", 0, time.monotonic()
            elif self.state == "joining" and payload.startswith(b'{"type":"error"'):
                # the join was refused (an `error` frame; under a storm, likely `unavailable`
                # from an exhausted pool): back off and join again, as the clients do
                return self.fail()
            elif payload.startswith(b'{"type":"message"'):
                seq = int(SEQ.search(payload).group(1))  # type: ignore[union-attr]
                if seq <= self.last:
                    self.dups += 1
                else:
                    self.gaps += seq - self.last - 1
                    self.last = seq
        return None


def storm_clients(
    port: int, pairs: list[tuple[str, str]], ready: Any, results: Any, stop: Any
) -> None:
    """Hold these sockets through whatever the server does; report each one's state."""
    import selectors

    raise_fd_limit()
    clients = [Client(room, token) for room, token in pairs]
    sel = selectors.DefaultSelector()
    phase = 0  # 0 connecting, 1 all live (reported), 2 some down, 3 all live again (reported)
    started = time.monotonic()
    while not stop.is_set() and time.monotonic() - started < load.HARD_STOP:
        now = time.monotonic()
        for c in clients:
            if c.state == "down" and now >= c.retry_at:
                if c.last >= 0:
                    c.reconnects += 1
                c.open(port)
                if c.ws is not None:
                    sel.register(c.ws.sock, selectors.EVENT_READ, c)
        for key, _ in sel.select(0.05):
            client: Client = key.data
            sock = client.ws.sock if client.ws else None
            client.on_data()
            if client.ws is None and sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    sel.unregister(sock)
        if phase in (0, 2) and all(c.state == "live" for c in clients):
            ready.put(len(clients))
            phase += 1
        elif phase == 1 and any(c.state != "live" for c in clients):
            phase = 2
    results.put(
        {
            "clients": [
                (c.room, c.last, c.dups, c.gaps, c.reconnects, c.shed, c.live_at, c.state)
                for c in clients
            ]
        }
    )
    for c in clients:
        if c.ws is not None:
            c.ws.close()


def http_publisher(port: int, token: str, rooms: list[str], rate: float, stop: Any) -> None:
    """Post round-robin at `rate`, each message retried (same client_msg_id) until stored."""
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        i = 0
        started = time.monotonic()
        while not stop.is_set():
            time.sleep(max(started + i / rate - time.monotonic(), 0))
            body = {"body": f"m{i}", "client_msg_id": f"storm-{i}"}
            while not stop.is_set():
                try:
                    r = http.post(
                        f"/rooms/{rooms[i % len(rooms)]}/messages",
                        json=body,
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if r.status_code in (200, 201):
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            i += 1


async def _last_seqs(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            r["name"]: r["last_seq"] for r in await conn.fetch("SELECT name, last_seq FROM room")
        }
    finally:
        await conn.close()


def reconnect_storm(ctx: Context) -> dict[str, Any]:
    import asyncio

    n, nrooms = ctx.p("storm_sockets"), ctx.p("storm_rooms")
    procs_n, rate = ctx.p("storm_procs"), ctx.p("storm_rate")
    server = switchboard(ctx.db)
    server.start()
    extra: list[Any] = []
    stop, pub_stop = load.CTX.Event(), load.CTX.Event()
    try:
        tokens = room_tokens(ctx, server, "switchboard")
        rooms = [f"storm-{i}" for i in range(nrooms)]
        create_rooms(server.port, tokens[0], rooms)
        pairs = [(rooms[i % nrooms], tokens[i % len(tokens)]) for i in range(n)]
        ready, results = load.CTX.Queue(), load.CTX.Queue()
        per = (n + procs_n - 1) // procs_n
        for k in range(procs_n):
            extra.append(
                load.start(
                    storm_clients, server.port, pairs[k * per : (k + 1) * per], ready, results, stop
                )
            )
        for _ in range(procs_n):
            load.ready_count(ready, 600)
        extra.append(load.start(http_publisher, server.port, tokens[0], rooms, rate, pub_stop))
        time.sleep(ctx.p("warmup"))
        rss_before = server.rss()
        killed_at = time.monotonic()
        server.stop()  # SIGTERM: sockets get 1012
        down_for = time.monotonic() - killed_at
        # 10,000 sockets knock as soon as it listens: its health probe waits its turn
        server.probe_timeout, server.start_timeout = 20.0, 120.0
        server.start()
        restarted_at = time.monotonic()
        for _ in range(procs_n):  # each process reports again once all its sockets are live
            load.ready_count(ready, 300)
        all_live = time.monotonic()
        time.sleep(ctx.p("warmup"))
        pub_stop.set()
        time.sleep(2.0)  # the last messages reach every socket
        rss_after = server.rss()
        alive = server.proc is not None and server.proc.poll() is None
    except BaseException:
        server.stop()  # nothing left running on a database about to be dropped
        raise
    finally:
        stop.set()
        pub_stop.set()
    reports = _collect(results, procs_n, timeout=300)
    failed = [r["error"] for r in reports if "error" in r]
    if failed:
        raise RuntimeError(failed[0])
    clients = [c for r in reports for c in r["clients"]]
    _finish(extra)
    last = asyncio.run(_last_seqs(ctx.db.dsn))
    server.stop()
    complete = sum(1 for c in clients if c[1] == last.get(c[0]) and c[2] == 0 and c[3] == 0)
    back = max(c[6] for c in clients) - killed_at
    return {
        "scenario": "reconnect_storm",
        "unit": "s from SIGTERM until every socket is live again",
        "switchboard": round(back, 2),
        "peers": {},
        "ratios": {},
        "params": {"sockets": n, "rooms": nrooms, "publish_rate": rate},
        "resources": {
            "switchboard": {
                "rss_mib_before": round(rss_before / 2**20, 1),
                "rss_mib_after": round(rss_after / 2**20, 1),
            }
        },
        "detail": {
            "stopped_in_s": round(down_for, 2),
            "restart_to_all_live_s": round(all_live - restarted_at, 2),
            "clients_complete": complete,
            "duplicates": sum(c[2] for c in clients),
            "gaps": sum(c[3] for c in clients),
            "reconnects": sum(c[4] for c in clients),
            "shed_1013": sum(c[5] for c in clients),
            "messages_published": sum(last.get(r, 0) for r in rooms),
            "server_alive_at_end": alive,
        },
    }
