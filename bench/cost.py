"""Two scenarios about what a message costs: `signals` (ephemeral fan-out, and proof that no
database round trip is made per signal) and `per_message_cost` (server CPU instructions per
delivered and per ingested message, counted by valgrind's callgrind: this machine has no
hardware counters for `perf stat -e instructions`, and an instruction count does not move
with the noise of a shared machine the way seconds do)."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import asyncpg

from bench import load
from bench.scenarios import (
    Context,
    _collect,
    _finish,
    median_of,
    result,
    room_tokens,
    run_fanout,
    with_server,
)
from bench.servers import ROOT, Server, create_rooms, peer, switchboard


async def _transactions(db_url: str) -> int:
    """Commits so far in the benchmark's database (every worker, every background loop)."""
    conn = await asyncpg.connect(db_url)
    try:
        return int(
            await conn.fetchval(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    finally:
        await conn.close()


IDLE_WINDOW_S = 5.0
SETTLED_PER_S = 10  # commits per second of a server whose only work is its background loops


def _settle(dsn: str, limit_s: float = 30.0, quiet_s: int = 3) -> None:
    """Wait until the database sees no more than background commits for `quiet_s` seconds
    in a row."""
    deadline = time.monotonic() + limit_s
    last, quiet = asyncio.run(_transactions(dsn)), 0
    while time.monotonic() < deadline and quiet < quiet_s:
        time.sleep(1.0)
        now = asyncio.run(_transactions(dsn))
        quiet = quiet + 1 if now - last <= SETTLED_PER_S else 0
        last = now


def signals(ctx: Context) -> dict[str, Any]:
    """1000 members, one sender of signals; offered a bit more than naive fan-out's rate,
    so the number is what the server can deliver (signals to a socket that is behind are
    dropped, by design)."""
    n = ctx.p("subscribers")
    naive = ctx.shared.get("naive_fanout")
    if naive is None:
        naive = with_server(
            peer("naive"),
            lambda s: median_of(1, lambda: run_fanout(s, "naive", [""], n, None, ctx)),
        )["value"]
    rate = max(10.0, naive * 1.2 / n)

    def work(s: Server) -> dict[str, Any]:
        tokens = room_tokens(ctx, s, "switchboard")
        stop, out = load.CTX.Event(), load.CTX.Queue()
        extra: list[Any] = []
        window: dict[str, float] = {}  # where the signals' window starts, and the idle rate

        def start_signals() -> list[Any]:
            # The members are connected and joined. The server's background loops commit
            # on their own (a webhook poll twice a second): their rate is measured over an
            # idle window first, and subtracted from what the signals' window counts.
            _settle(ctx.db.dsn)  # the members' joins commit for a while after they connect
            idle_count, idle_at = asyncio.run(_transactions(ctx.db.dsn)), time.monotonic()
            time.sleep(IDLE_WINDOW_S)
            window["count"], window["at"] = asyncio.run(_transactions(ctx.db.dsn)), time.monotonic()
            window["idle_rate"] = (window["count"] - idle_count) / (window["at"] - idle_at)
            extra.append(load.start(load.signaller, s.port, "bench", tokens[0], rate, out, stop))
            return extra

        fan = run_fanout(s, "switchboard-signals", tokens, n, 1e-9, ctx, alongside=start_signals)
        stop.set()
        sent = _collect(out, 1)[0]["sent"]
        _finish(extra)
        counted = int(asyncio.run(_transactions(ctx.db.dsn)) - window["count"])
        background = window["idle_rate"] * (time.monotonic() - window["at"])
        fan["transactions"] = counted
        fan["idle_rate"] = window["idle_rate"]
        fan["excess"] = max(counted - background, 0.0)
        fan["signals_sent"] = sent
        return fan

    out = with_server(switchboard(ctx.db), work)
    return result(
        "signals",
        "signal deliveries/s",
        {"switchboard": out["value"], "naive fan-out": naive},
        {"members": n, "offered_signals_per_s": round(rate, 1), "duration_s": ctx.p("duration")},
        {"switchboard": out["resources"]},
        detail={
            "signals_sent": out["signals_sent"],
            "db_transactions_meanwhile": out["transactions"],
            "db_transactions_idle_per_s": round(out["idle_rate"], 2),
            "db_transactions_per_signal": round(out["excess"] / max(out["signals_sent"], 1), 4),
            "connected": out["connected"],
        },
    )


# per_message_cost -------------------------------------------------------------------
# Counted from the start (toggling instrumentation mid-run corrupts callgrind's totals); a
# dump before and after each round gives that round's count ("since the last dump").
CALLGRIND = ["valgrind", "--tool=callgrind"]


def _instructions(pid: int, out_dir: Path) -> int:
    """Dump callgrind's counters (collected since the last dump) and read the total."""
    before = set(out_dir.glob("callgrind.out.*"))
    subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        new = sorted(set(out_dir.glob("callgrind.out.*")) - before)
        for path in new:
            text = path.read_text(errors="replace")
            found = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
            if found:
                return int(found.group(1))
        time.sleep(0.5)
    raise RuntimeError("callgrind wrote no dump")


def per_message_cost(ctx: Context) -> dict[str, Any]:
    messages, subs = ctx.p("messages"), ctx.p("cost_subscribers")
    out_dir = ROOT / ".switchboard" / "callgrind"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("callgrind.out.*"):
        old.unlink()
    wrapper = [*CALLGRIND, f"--callgrind-out-file={out_dir}/callgrind.out.%p"]
    server = switchboard(ctx.db, wrapper)
    server.start_timeout = 900.0  # python under valgrind starts some 50x slower

    def measure(s: Server, tokens: list[str], fan_out: bool) -> dict[str, Any]:
        """Instructions per message (and per delivery) as a slope: a round of `messages`
        and a round of twice as many, each counted, so fixed costs (the publisher's
        connection, its join) cancel out. A first round, not counted, warms the paths."""
        assert s.proc is not None
        room = "bench" if fan_out else "quiet"
        ready, results, pub = load.CTX.Queue(), load.CTX.Queue(), load.CTX.Queue()
        stop = load.CTX.Event()
        procs = []
        if fan_out:
            procs.append(
                load.start(
                    load.subscribers,
                    "switchboard",
                    s.port,
                    room,
                    tokens[:1] * subs,
                    False,
                    ready,
                    results,
                    stop,
                )
            )
            load.ready_count(ready, 600)

        def round_of(count: int, counted: bool) -> tuple[int, float, float]:
            if counted:
                _instructions(s.proc.pid, out_dir)  # type: ignore[union-attr]  # a fresh start
            t0 = time.monotonic()
            procs.append(load.start(load.counted_publisher, s.port, room, tokens[0], count, pub))
            _collect(pub, 1, timeout=1800)
            time.sleep(1.0)  # the last deliveries leave the server
            t1 = time.monotonic()
            if not counted:
                return 0, t0, t1
            instructions = _instructions(s.proc.pid, out_dir)  # type: ignore[union-attr]
            return instructions, t0, t1

        round_of(messages, counted=False)
        small = round_of(messages, counted=True)
        large = round_of(2 * messages, counted=True)
        stop.set()
        delivered = [0, 0]
        if fan_out:
            buckets = _collect(results, 1)[0]["buckets"]
            for i, (_, t0, t1) in enumerate((small, large)):
                lo, hi = int(t0 / load.BUCKET), int(t1 / load.BUCKET) + 1
                delivered[i] = sum(n for b, n in buckets.items() if lo <= b < hi)
        _finish(procs)
        return {
            "instructions": [small[0], large[0]],
            "messages": [messages, 2 * messages],
            "delivered": delivered,
            "per_message": (large[0] - small[0]) / messages,
            "per_delivery_and_message": (large[0] - small[0]) / max(delivered[1] - delivered[0], 1),
        }

    def work(s: Server) -> dict[str, Any]:
        tokens = room_tokens(ctx, s, "switchboard")  # and room `bench`
        create_rooms(s.port, tokens[0], ["quiet"])
        quiet = measure(s, tokens, fan_out=False)
        loud = measure(s, tokens, fan_out=True)
        return {"quiet": quiet, "loud": loud}

    out = with_server(server, work)
    ingest = out["quiet"]["per_message"]
    loud = out["loud"]
    extra_deliveries = max(loud["delivered"][1] - loud["delivered"][0], 1)
    delivery = max(loud["per_message"] - ingest, 0) * messages / extra_deliveries
    return {
        "scenario": "per_message_cost",
        "unit": "instructions per delivered message",
        "switchboard": round(delivery),
        "peers": {},
        "ratios": {},
        "params": {"messages": messages, "members": subs, "tool": "valgrind callgrind"},
        "resources": {},
        "detail": {
            "instructions_per_ingested_message": round(ingest),
            "instructions_per_delivered_message": round(delivery),
            "ingest_rounds": out["quiet"],
            "fanout_rounds": out["loud"],
        },
    }
