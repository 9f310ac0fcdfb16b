"""The benchmark harness itself, on a tiny configuration: every scenario runs against real
servers, prints valid JSON, and leaves nothing behind. Timings are not asserted here."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from typing import Any

import asyncpg
import psutil
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

KEYS = {"scenario", "unit", "switchboard", "peers", "ratios", "params"}


def test_all_scenarios_tiny(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env["DATABASE_URL"] = (
        make_url(database_url).set(database="postgres").render_as_string(hide_password=False)
    )
    r = subprocess.run(
        [sys.executable, "-m", "bench", "all", "--tiny", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    results = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]
    assert [x["scenario"] for x in results] == [
        "fanout",
        "latency",
        "ingest",
        "connections",
        "history",
        "login",
        "signals",
        "reconnect_storm",
        "per_message_cost",
    ]
    for result in results:
        assert result.keys() >= KEYS, result
        assert isinstance(result["switchboard"], float | int)
        # per_message_cost's headline is a slope between two tiny rounds: on a busy machine
        # it can come out at 0 (clamped); its ingest figure is checked below instead.
        assert result["switchboard"] > 0 or result["scenario"] == "per_message_cost"
        for peer, value in result["peers"].items():
            assert value > 0, (result["scenario"], peer)
            assert result["ratios"][peer] == pytest.approx(
                result["switchboard"] / value, rel=0.01, abs=0.002
            )
    fanout = results[0]
    assert set(fanout["peers"]) == {"naive", "websockets", "socketio"}
    assert all(d["connected"] == fanout["params"]["subscribers"] for d in fanout["detail"].values())
    signals, storm, cost = results[6:9]
    assert signals["detail"]["db_transactions_per_signal"] < 0.05  # no round trip per signal
    assert storm["detail"]["clients_complete"] == storm["params"]["sockets"]
    assert storm["detail"]["duplicates"] == storm["detail"]["gaps"] == 0
    assert cost["detail"]["instructions_per_ingested_message"] > 0
    connections = results[3]
    assert all(
        d["open_at_end"] == connections["params"]["sockets"] for d in connections["detail"].values()
    )
    # Nothing left behind: no server or load process, no benchmark database.
    leftovers = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and any("bench.peers" in a or "bench-" in a for a in p.info["cmdline"])
    ]
    assert leftovers == []

    async def bench_databases() -> list[str]:
        conn = await asyncpg.connect(env["DATABASE_URL"])
        try:
            rows = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE 'switchboard_bench_%'"
            )
            return [row["datname"] for row in rows]
        finally:
            await conn.close()

    import asyncio

    assert asyncio.run(bench_databases()) == []


def _report_freeze_count(out: Any) -> None:
    out.put(gc.get_freeze_count())


def test_a_load_process_does_not_collect_the_heap_it_inherited() -> None:
    """A load process's first full collection would walk the harness's whole inherited heap
    (130-200 ms, measured as server latency): it starts with that heap frozen."""
    from bench import load

    gc.unfreeze()  # whatever this test process froze itself is not what is checked
    out = load.CTX.Queue()
    proc = load.start(_report_freeze_count, out)
    try:
        assert out.get(timeout=30) > 1000
    finally:
        proc.join(10)
