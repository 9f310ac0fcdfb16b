"""The six scenarios. Each starts its servers, drives them from separate processes, and
returns {"scenario","unit","switchboard","peers","ratios","params", ...}."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx

from bench import load
from bench.servers import (
    Database,
    Server,
    create_rooms,
    login,
    make_accounts,
    peer,
    switchboard,
)

SIZES = {  # full, quick, tiny (the harness's own test)
    "subscribers": (1000, 1000, 20),
    "duration": (10.0, 3.0, 1.0),
    "warmup": (2.0, 1.0, 0.5),
    "senders": (200, 200, 10),
    "rooms": (100, 100, 5),
    "connections": (10_000, 10_000, 50),
    "hold": (20.0, 5.0, 1.0),
    "history_big": (1_000_000, 200_000, 2_000),
    "history_small": (1_000, 1_000, 200),
    "history_requests": (300, 100, 20),
    "login_rate": (50.0, 50.0, 5.0),
    "runs": (3, 1, 1),
    "messages": (400, 200, 30),  # per_message_cost: a round (and one twice as long)
    "cost_subscribers": (20, 20, 4),
    "storm_sockets": (10_000, 10_000, 100),
    "storm_rooms": (100, 100, 5),
    "storm_rate": (200.0, 200.0, 20.0),
    "storm_procs": (4, 4, 1),
}


@dataclass
class Context:
    db: Database
    size: int  # 0 full, 1 quick, 2 tiny
    shared: dict[str, Any] = field(default_factory=dict)

    def p(self, name: str) -> Any:
        return SIZES[name][self.size]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(int(q * len(ordered)), len(ordered) - 1)]


def result(
    name: str,
    unit: str,
    values: dict[str, float],
    params: dict[str, Any],
    resources: dict[str, Any],
    **extra: Any,
) -> dict[str, Any]:
    ours = values.pop("switchboard")
    return {
        "scenario": name,
        "unit": unit,
        "switchboard": round(ours, 3),
        "peers": {k: round(v, 3) for k, v in values.items()},
        "ratios": {k: round(ours / v, 3) if v else None for k, v in values.items()},
        "params": params,
        "resources": resources,
        **extra,
    }


def loop_lag(port: int) -> dict[float, float]:
    """Switchboard's own event-loop lag histogram: cumulative count per bucket bound."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    out = {}
    for line in text.splitlines():
        if line.startswith("switchboard_event_loop_lag_seconds_bucket"):
            bound = line.split('le="')[1].split('"')[0]
            out[float("inf") if bound == "+Inf" else float(bound)] = float(line.split()[-1])
    return out


def lag_p(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The bucket bound (ms) under which a fraction q of the window's wake-ups fell."""
    delta = {b: after[b] - before.get(b, 0.0) for b in sorted(after)}
    total = delta[float("inf")]
    for bound, count in delta.items():
        if total and count >= q * total:
            return bound * 1000
    return float("inf")


def median_of(runs: int, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `measure` several times; keep the run with the median headline `value`. `runs`
    lists every run's value in the order they ran (a first run that differs shows)."""
    outcomes = [measure() for _ in range(runs)]
    chosen = sorted(outcomes, key=lambda o: o["value"])[len(outcomes) // 2]
    chosen["runs"] = [round(o["value"], 3) for o in outcomes]
    return chosen


def with_server(server: Server, work: Callable[[Server], dict[str, Any]]) -> dict[str, Any]:
    server.start()
    try:
        return work(server)
    finally:
        server.stop()


def switchboard_tokens(ctx: Context, server: Server, users: int) -> list[str]:
    _, names = make_accounts(ctx.db, users)
    return [login(server.port, n) for n in names]


def room_tokens(ctx: Context, server: Server, name: str) -> list[str]:
    """Credentials for a fan-out into room `bench`: ten users' tokens and the room for
    Switchboard; peers need neither."""
    if name != "switchboard":
        return [""]
    tokens = switchboard_tokens(ctx, server, 10)
    create_rooms(server.port, tokens[0], ["bench"])
    return tokens


def _collect(q: Any, n: int, timeout: float = 120) -> list[dict[str, Any]]:
    return [q.get(timeout=timeout) for _ in range(n)]


def _finish(procs: list[Any]) -> None:
    for proc in procs:
        proc.join(15)
        if proc.is_alive():
            proc.terminate()
            proc.join(5)


def measure_window(server: Server, ctx: Context) -> tuple[float, float, dict[str, float]]:
    """Let the load settle, then measure: the window's monotonic bounds and the server's
    CPU and RSS over it."""
    time.sleep(ctx.p("warmup"))
    t0 = time.monotonic()
    with server.usage() as use:
        time.sleep(ctx.p("duration"))
    return t0, time.monotonic(), use


def run_fanout(
    server: Server,
    proto: str,
    tokens: list[str],
    subscribers: int,
    rate: float | None,
    ctx: Context,
    latency: bool = False,
    alongside: Callable[[], list[Any]] | None = None,
) -> dict[str, Any]:
    """Subscribers connect first; then the publisher (and `alongside`'s processes) start."""
    ready, results, pub_results, stop = (
        load.CTX.Queue(),
        load.CTX.Queue(),
        load.CTX.Queue(),
        load.CTX.Event(),
    )
    room = "bench"
    per_proc = max(1, subscribers // 2)
    chunks = [
        [tokens[i % len(tokens)] for i in range(s, min(s + per_proc, subscribers))]
        for s in range(0, subscribers, per_proc)
    ]
    procs = [
        load.start(load.subscribers, proto, server.port, room, chunk, latency, ready, results, stop)
        for chunk in chunks
    ]
    try:
        connected = sum(load.ready_count(ready, 180) for _ in procs)
        procs.append(
            load.start(
                load.publisher,
                proto,
                server.port,
                room,
                tokens[0],
                rate,
                32,
                100,
                pub_results,
                stop,
            )
        )
        if alongside is not None:
            alongside()
        t0, t1, use = measure_window(server, ctx)
    finally:
        stop.set()
    subs = _collect(results, len(chunks))
    _collect(pub_results, 1)
    _finish(procs)
    rate_out = load.window_rate([s["buckets"] for s in subs], t0, t1)
    lat = [latency for s in subs for at, latency in s["latencies"] if t0 <= at < t1]
    return {
        "value": rate_out,
        "connected": connected,
        "resources": dict(use),
        "closes": sum(s["closes"] for s in subs),
        "p50_ms": pct(lat, 0.5) * 1000,
        "p99_ms": pct(lat, 0.99) * 1000,
    }


# scenarios -------------------------------------------------------------------------
def fanout(ctx: Context) -> dict[str, Any]:
    n = ctx.p("subscribers")
    values, resources, detail = {}, {}, {}
    for name in ("switchboard", "naive", "websockets", "socketio"):
        server = switchboard(ctx.db) if name == "switchboard" else peer(name)

        def work(s: Server, name: str = name) -> dict[str, Any]:
            tokens = room_tokens(ctx, s, name)
            return median_of(ctx.p("runs"), lambda: run_fanout(s, name, tokens, n, None, ctx))

        out = with_server(server, work)
        values[name], resources[name] = out["value"], out["resources"]
        detail[name] = {
            "connected": out["connected"],
            "closed_1013": out["closes"],
            "runs": out["runs"],
        }
    ctx.shared["naive_fanout"] = values["naive"]
    return result(
        "fanout",
        "deliveries/s",
        values,
        {
            "subscribers": n,
            "body_bytes": 100,
            "publish_window": 32,
            "duration_s": ctx.p("duration"),
        },
        resources,
        detail=detail,
    )


def latency(ctx: Context) -> dict[str, Any]:
    n, rate = ctx.p("subscribers"), 20.0
    values, resources, detail = {}, {}, {}
    for name in ("switchboard", "naive"):
        server = switchboard(ctx.db) if name == "switchboard" else peer(name)

        def work(s: Server, name: str = name) -> dict[str, Any]:
            tokens = room_tokens(ctx, s, name)

            def once() -> dict[str, Any]:
                out = run_fanout(s, name, tokens, n, rate, ctx, latency=True)
                out["value"] = out["p99_ms"]
                return out

            return median_of(ctx.p("runs"), once)

        out = with_server(server, work)
        values[name], resources[name] = out["p99_ms"], out["resources"]
        detail[name] = {
            "p50_ms": round(out["p50_ms"], 2),
            "p99_ms": round(out["p99_ms"], 2),
            "runs_p99_ms": out["runs"],
        }
    return result(
        "latency",
        "ms (p99 publish-to-receive)",
        values,
        {"subscribers": n, "publish_rate": rate},
        resources,
        detail=detail,
    )


def _ingest_run(
    server: Server, proto: str, assignments: list[tuple[str, str, str]], ctx: Context
) -> dict[str, Any]:
    ready, results, stop, go = (
        load.CTX.Queue(),
        load.CTX.Queue(),
        load.CTX.Event(),
        load.CTX.Event(),
    )
    half = max(1, len(assignments) // 2)
    chunks = [assignments[i : i + half] for i in range(0, len(assignments), half)]
    procs = [
        load.start(load.senders, proto, server.port, chunk, 100, ready, results, stop, go)
        for chunk in chunks
    ]
    try:
        for _ in procs:
            load.ready_count(ready, 180)
        go.set()
        t0, t1, use = measure_window(server, ctx)
    finally:
        stop.set()
        go.set()
    outs = _collect(results, len(chunks))
    _finish(procs)
    return {"value": load.window_rate([o["buckets"] for o in outs], t0, t1), "resources": dict(use)}


def ingest(ctx: Context) -> dict[str, Any]:
    senders, rooms = ctx.p("senders"), ctx.p("rooms")
    room_names = [f"r{i}" for i in range(rooms)]
    values, resources, detail = {}, {}, {}

    def ours(s: Server) -> dict[str, Any]:
        tokens = switchboard_tokens(ctx, s, senders)
        create_rooms(s.port, tokens[0], room_names)
        plan = [(room_names[i % rooms], tokens[i], f"s{i}") for i in range(senders)]
        return median_of(ctx.p("runs"), lambda: _ingest_run(s, "switchboard", plan, ctx))

    def theirs(s: Server) -> dict[str, Any]:
        plan = [(room_names[i % rooms], "", f"s{i}") for i in range(senders)]
        return median_of(ctx.p("runs"), lambda: _ingest_run(s, "naive-persist", plan, ctx))

    for name, server, work in (
        ("switchboard", switchboard(ctx.db), ours),
        ("naive-persist", peer("naive-persist", ctx.db), theirs),
    ):
        out = with_server(server, work)
        values[name], resources[name] = out["value"], out["resources"]
        detail[name] = {"runs": out["runs"]}
    # the ceiling moves with this shared machine as much as the servers do: a median too
    ceiling = median_of(ctx.p("runs"), lambda: {"value": asyncio.run(_executemany_ceiling(ctx))})
    values["executemany-1000"] = ceiling["value"]
    detail["executemany-1000"] = {"runs": ceiling["runs"]}
    return result(
        "ingest",
        "stored-and-acked messages/s",
        values,
        {"senders": senders, "rooms": rooms, "body_bytes": 100, "duration_s": ctx.p("duration")},
        resources,
        detail=detail,
    )


async def _executemany_ceiling(ctx: Context) -> float:
    """Plain asyncpg executemany, 1000 rows a transaction, into the same message table."""
    conn = await asyncpg.connect(ctx.db.dsn)
    try:
        tenant = await conn.fetchval(  # one tenant for every run, a fresh room for each
            "INSERT INTO tenant (slug, name) VALUES ('ceiling', 'ceiling') "
            "ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name RETURNING id"
        )
        room = await conn.fetchval(
            "INSERT INTO room (tenant_id, name) VALUES ($1, $2) RETURNING id",
            tenant,
            f"ceiling-{secrets.token_hex(4)}",
        )
        body, now, seq, rows = "x" * 100, datetime.now(UTC), 0, 0
        sql = (
            "INSERT INTO message (tenant_id, room_id, seq, sender, body, kind, created_at) "
            "VALUES ($1, $2, $3, 'bench', $4, 'user', $5)"
        )
        deadline = time.monotonic() + ctx.p("duration")
        started = time.monotonic()
        while time.monotonic() < deadline:
            batch = [(tenant, room, seq + i + 1, body, now) for i in range(1000)]
            seq += 1000
            async with conn.transaction():
                await conn.executemany(sql, batch)
            rows += 1000
        return rows / (time.monotonic() - started)
    finally:
        await conn.close()


def connections(ctx: Context) -> dict[str, Any]:
    n, hold = ctx.p("connections"), ctx.p("hold")
    values, resources, detail = {}, {}, {}
    for name in ("switchboard", "naive", "websockets"):
        server = switchboard(ctx.db) if name == "switchboard" else peer(name)

        def work(s: Server, name: str = name) -> dict[str, Any]:
            token = switchboard_tokens(ctx, s, 1)[0] if name == "switchboard" else ""
            ready, results, stop = load.CTX.Queue(), load.CTX.Queue(), load.CTX.Event()
            before = s.rss()
            half = max(1, n // 2)
            procs = [
                load.start(
                    load.idlers, name, s.port, [token] * min(half, n - i), ready, results, stop
                )
                for i in range(0, n, half)
            ]
            try:
                opened = sum(load.ready_count(ready, 600) for _ in procs)
                with s.usage() as use:
                    time.sleep(hold)
                after = s.rss()
            finally:
                stop.set()
            outs = _collect(results, len(procs))
            _finish(procs)
            return {
                "value": (after - before) / 1024 / max(opened, 1),
                "opened": opened,
                "open_at_end": sum(o["open_at_end"] for o in outs),
                "failed": sum(o["failed"] for o in outs),
                "resources": dict(use),
            }

        out = with_server(server, work)
        values[name], resources[name] = out["value"], out["resources"]
        detail[name] = {
            "opened": out["opened"],
            "open_at_end": out["open_at_end"],
            "failed": out["failed"],
        }
    return result(
        "connections",
        "KiB RSS per idle socket",
        values,
        {"sockets": n, "hold_s": hold},
        resources,
        detail=detail,
    )


def history(ctx: Context) -> dict[str, Any]:
    small, big, requests = ctx.p("history_small"), ctx.p("history_big"), ctx.p("history_requests")

    def work(s: Server) -> dict[str, Any]:
        token = switchboard_tokens(ctx, s, 1)[0]
        create_rooms(s.port, token, ["small", "big"])
        asyncio.run(_fill_rooms(ctx, {"small": small, "big": big}))
        timings: dict[str, float] = {}
        with (
            s.usage() as use,
            httpx.Client(
                base_url=f"http://127.0.0.1:{s.port}",
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            ) as client,
        ):
            for room, size in (("small", small), ("big", big)):
                samples = []
                rng = random.Random(7)
                for _ in range(requests):
                    before = rng.randint(101, size)
                    t0 = time.perf_counter()
                    r = client.get(
                        f"/rooms/{room}/messages", params={"before": before, "limit": 100}
                    )
                    samples.append(time.perf_counter() - t0)
                    assert r.status_code == 200 and len(r.json()["messages"]) == 100
                timings[room] = statistics.median(samples) * 1000
        return {"timings": timings, "resources": dict(use)}

    out = with_server(switchboard(ctx.db), work)
    timings = out["timings"]
    return {
        "scenario": "history",
        "unit": "ms (p50 page of 100)",
        "switchboard": round(timings["big"], 3),
        "peers": {f"switchboard@{small}": round(timings["small"], 3)},
        "ratios": {f"switchboard@{small}": round(timings["big"] / timings["small"], 3)},
        "params": {"small_room": small, "big_room": big, "requests": requests, "limit": 100},
        "resources": {"switchboard": out["resources"]},
    }


async def _fill_rooms(ctx: Context, sizes: dict[str, int]) -> None:
    conn = await asyncpg.connect(ctx.db.dsn)
    try:
        now = datetime.now(UTC)
        for name, size in sizes.items():
            tenant, room = await conn.fetchrow(
                "SELECT tenant_id, id FROM room WHERE name = $1", name
            )
            for start in range(0, size, 100_000):
                rows = [
                    (tenant, room, seq, "u0", f"message {seq} " + "x" * 80, "user", now)
                    for seq in range(start + 1, min(start + 100_000, size) + 1)
                ]
                await conn.copy_records_to_table(
                    "message",
                    records=rows,
                    columns=["tenant_id", "room_id", "seq", "sender", "body", "kind", "created_at"],
                )
            await conn.execute("UPDATE room SET last_seq = $1 WHERE id = $2", size, room)
        # as after any bulk load: else autovacuum works through the million rows during
        # the scenarios that follow, on the same two cores
        await conn.execute("VACUUM (ANALYZE) message")
    finally:
        await conn.close()


LOGIN_FANOUT_RATE = 25.0  # messages/s to every subscriber during the login scenario


def login_under_load(ctx: Context) -> dict[str, Any]:
    """Logins with the real argon2 cost while a fan-out of 25 messages/s to 1000 sockets
    runs (25k deliveries/s: a fixed load, not a share of the fan-out's peak, which the load
    generators themselves cannot sustain beside everything else on two cores)."""
    n = ctx.p("subscribers")
    login_rate = float(os.environ.get("BENCH_LOGIN_RATE") or ctx.p("login_rate"))
    publish_rate = LOGIN_FANOUT_RATE

    def work(s: Server) -> dict[str, Any]:
        tokens = room_tokens(ctx, s, "switchboard")
        _, names = make_accounts(ctx.db, 20, tenant="bench-login", real_hash_cost=True)
        stop = load.CTX.Event()
        lag_q, login_q = load.CTX.Queue(), load.CTX.Queue()
        extra: list[Any] = []

        def start_logins() -> list[Any]:
            extra.extend(
                [
                    load.start(load.pinger, s.port, tokens[1], 0.01, lag_q, stop),
                    load.start(load.login_loop, s.port, names, login_rate, login_q, stop),
                ]
            )
            return extra

        before = loop_lag(s.port)
        try:
            fan = run_fanout(
                s, "switchboard", tokens, n, publish_rate, ctx, latency=True, alongside=start_logins
            )
        finally:
            stop.set()
        after = loop_lag(s.port)
        rtt = _collect(lag_q, 1)[0]["rtts"]
        logins = _collect(login_q, 1)[0]
        _finish(extra)
        return {
            "lag_p99_ms": lag_p(before, after, 0.99),
            "lag_p50_ms": lag_p(before, after, 0.5),
            "ping_p99_ms": pct(rtt, 0.99) * 1000,
            "fanout": fan,
            "logins": logins,
        }

    out = with_server(switchboard(ctx.db), work)
    fan, logins = out["fanout"], out["logins"]
    duration = ctx.p("warmup") + ctx.p("duration")
    return {
        "scenario": "login",
        "unit": "ms (socket ping RTT p99 while logins are offered)",
        "switchboard": round(out["ping_p99_ms"], 3),
        "peers": {},
        "ratios": {},
        "params": {
            "login_rate": login_rate,
            "subscribers": n,
            "publish_rate": round(publish_rate, 2),
            "argon2": "19 MiB, t=2, p=1",
        },
        "resources": {"switchboard": fan["resources"]},
        "detail": {
            "lag_p50_ms": round(out["lag_p50_ms"], 2),
            "lag_p99_ms": round(out["lag_p99_ms"], 2),
            "ping_rtt_p99_ms": round(out["ping_p99_ms"], 2),
            "fanout_p99_ms": round(fan["p99_ms"], 2),
            "fanout_deliveries_per_s": round(fan["value"], 1),
            "logins_per_s": round(logins["logins"] / duration, 1),
            "shed_per_s": round(logins["shed"] / duration, 1),
            "shed_rate": round(logins["shed"] / max(logins["offered"], 1), 3),
            "login_p50_ms": round(pct(logins["durations"], 0.5) * 1000, 1),
            "shed_answer_p50_ms": round(pct(logins["shed_durations"], 0.5) * 1000, 1),
        },
    }


SCENARIOS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "fanout": fanout,
    "latency": latency,
    "ingest": ingest,
    "connections": connections,
    "history": history,
    "login": login_under_load,
}
