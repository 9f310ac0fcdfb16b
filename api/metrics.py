"""Prometheus collectors, module-level so every part of the process counts into one registry.
With `serve --workers N`, PROMETHEUS_MULTIPROC_DIR is set and /metrics sums every worker."""

from __future__ import annotations

import asyncio
import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

CONNECTIONS = Gauge(
    "switchboard_connections",
    "Open authenticated WebSocket connections",
    multiprocess_mode="livesum",
)
ASYNCIO_TASKS = Gauge(
    "switchboard_asyncio_tasks",
    "asyncio tasks alive in this process when scraped (a debug figure: the soak test checks "
    "that it returns to its baseline, so no task leaks)",
    multiprocess_mode="livesum",
)
MESSAGES_IN = Counter("switchboard_messages_in_total", "Messages accepted and stored")
MESSAGES_OUT = Counter("switchboard_messages_out_total", "Frames queued to subscribers")
PERSIST_LATENCY = Histogram(
    "switchboard_persist_seconds",
    "Time to commit one persister batch",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
PERSIST_BATCH = Histogram(
    "switchboard_persist_batch_size",
    "Messages per committed batch",
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
)
INVALID_UTF8_FRAMES = Counter(
    "switchboard_invalid_utf8_frames_total",
    "Text frames that were not UTF-8 (closed 1007; counted here instead of logged)",
)
SLOW_CONSUMERS = Counter(
    "switchboard_slow_consumers_total",
    "Connections closed with 1013 because their send queue overflowed",
)
LOGINS_SHED = Counter(
    "switchboard_logins_shed_total", "Logins refused (503) because the hashing budget was spent"
)
SOCKETS_SHED = Counter(
    "switchboard_sockets_shed_total", "Sockets closed 1013 overloaded while opening (too many)"
)
SIGNALS_DROPPED = Counter(
    "switchboard_signals_dropped_total", "Signals not sent to a socket that was behind"
)
GAP_FILLS = Counter("switchboard_gap_fills_total", "Out-of-order seqs repaired from Postgres")
BROKER_RECONNECTS = Counter("switchboard_broker_reconnects_total", "Broker reconnections")
LOOP_LAG = Histogram(
    "switchboard_event_loop_lag_seconds",
    "How late the event loop runs a 10 ms timer",
    buckets=(
        0.001,
        0.002,
        0.005,
        0.01,
        0.015,
        0.02,
        0.03,
        0.05,
        0.075,
        0.1,
        0.15,
        0.25,
        0.5,
        1,
        2.5,
    ),
)


async def watch_loop_lag(interval: float = 0.01) -> None:
    """Sleep `interval` forever and record how late each wake-up is: anything that holds
    the event loop (a blocking call, too much CPU) shows here before users feel it."""
    import asyncio

    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        LOOP_LAG.observe(max(loop.time() - due, 0.0))


def count_tasks() -> None:
    """Refresh ASYNCIO_TASKS (called by /metrics on the event loop)."""
    ASYNCIO_TASKS.set(len(asyncio.all_tasks()))


def exposition() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest()
