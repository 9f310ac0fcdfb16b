"""bench/RESULTS.md and bench/results.png from one run: `python -m bench all --write`."""

from __future__ import annotations

import json
import math
import time
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# (scenario, what is compared, predicate on the result, the goal in words)
GOALS: list[tuple[str, str, Any, str]] = [
    (
        "fanout",
        "websockets",
        lambda r: r["ratios"]["websockets"] >= 1.0,
        ">= 1.0 x websockets (the practical ceiling)",
    ),
    ("latency", "naive", lambda r: r["ratios"]["naive"] <= 1.0, "p99 <= 1.0 x naive"),
    (
        "ingest",
        "naive-persist",
        lambda r: r["ratios"]["naive-persist"] >= 10,
        ">= 10 x naive-persist",
    ),
    (
        "ingest",
        "executemany-1000",
        lambda r: r["ratios"]["executemany-1000"] >= 0.25,
        ">= 0.25 x executemany ceiling",
    ),
    (
        "connections",
        "switchboard",
        lambda r: (
            r["switchboard"] <= 30
            and r["detail"]["switchboard"]["open_at_end"] == r["params"]["sockets"]
        ),
        "<= 30 KiB per idle socket, all stay connected",
    ),
    (
        "history",
        "1k page",
        lambda r: next(iter(r["ratios"].values())) <= 1.3,
        "1M page <= 1.3 x 1k page",
    ),
    (
        "login",
        "ping RTT",
        lambda r: r["switchboard"] < 50,
        "ping RTT p99 < 50 ms with 50 logins/s offered (the rest shed fast)",
    ),
    (
        "signals",
        "naive fan-out",
        lambda r: (
            r["ratios"]["naive fan-out"] >= 1.0 and r["detail"]["db_transactions_per_signal"] < 0.01
        ),
        ">= 1.0 x naive fan-out, no database round trip per signal",
    ),
    (
        "reconnect_storm",
        "switchboard",
        lambda r: (
            r["switchboard"] <= 30
            and r["detail"]["clients_complete"] == r["params"]["sockets"]
            and r["detail"]["server_alive_at_end"]
        ),
        "all back within 30 s, every seq exactly once, no crash",
    ),
    ("per_message_cost", "-", lambda r: r["switchboard"] > 0, "reported: a figure to track"),
]


def versions() -> dict[str, str]:
    out = {}
    for name in (
        "fastapi",
        "uvicorn",
        "websockets",
        "python-socketio",
        "sqlalchemy",
        "asyncpg",
        "redis",
        "uvloop",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "-"
    return out


def write(results: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    by_name = {r["scenario"]: r for r in results}
    (HERE / "results.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    lines = [
        "# Benchmark results",
        "",
        f"Last run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`python -m bench all{' --quick' if meta['mode'] == 'quick' else ''} --write` "
        f"({meta['mode']} mode, {meta['seconds']} s). Machine: {meta['cpus']} cores, "
        f"{meta['memory_gib']} GiB, {meta['platform']}, Python {meta['python']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions().items()) + ".",
        "Every server ran on 127.0.0.1 in its own process, driven by load generators in "
        "other processes on the same 2 cores; Switchboard ran as `switchboard serve` on "
        "PostgreSQL with only its rate limits raised. Medians of the runs listed.",
        "",
        "| scenario | unit | switchboard | peers | switchboard / peer | goal | met |",
        "| --- | --- | ---: | --- | --- | --- | --- |",
    ]
    for scenario, _, check, words in GOALS:
        r = by_name.get(scenario)
        if r is None:
            continue
        peers = ", ".join(f"{k}: {_fmt(v)}" for k, v in r["peers"].items()) or "-"
        ratios = ", ".join(f"{k}: {v}" for k, v in r["ratios"].items()) or "-"
        try:
            met = "yes" if check(r) else "**no**"
        except (KeyError, TypeError, StopIteration):
            met = "?"
        lines.append(
            f"| {scenario} | {r['unit']} | {_fmt(r['switchboard'])} | {peers} | "
            f"{ratios} | {words} | {met} |"
        )
    lines += ["", "Parameters and resource use (CPU % of one core, RSS) per scenario:", ""]
    for r in results:
        lines.append(
            f"- **{r['scenario']}**: params {json.dumps(r['params'])}; resources "
            f"{json.dumps(r.get('resources', {}))}"
            + (f"; detail {json.dumps(r['detail'])}" if "detail" in r else "")
        )
    lines += ["", "![deliveries/s and p99 latency per server](results.png)", ""]
    analysis = HERE / "ANALYSIS.md"  # written by hand: why each miss happens (profiles)
    if analysis.exists():
        lines += [analysis.read_text()]
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    chart(by_name)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if isinstance(v, int | float) and not math.isnan(v) and v >= 100 else str(v)


def chart(by_name: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, name, title in (
        (left, "fanout", "fan-out: deliveries/s (higher is better)"),
        (right, "latency", "p99 publish-to-receive ms (lower is better)"),
    ):
        r = by_name.get(name)
        if r is None:
            axis.set_visible(False)
            continue
        labels = ["switchboard", *r["peers"]]
        values = [r["switchboard"], *r["peers"].values()]
        bars = axis.bar(labels, values, color=["#2563eb"] + ["#9ca3af"] * (len(labels) - 1))
        axis.bar_label(bars, labels=[f"{v:,.0f}" if v >= 100 else f"{v:.1f}" for v in values])
        axis.set_title(title, fontsize=10)
        axis.spines[["top", "right"]].set_visible(False)
    subscribers = by_name.get("fanout", {}).get("params", {}).get("subscribers", "?")
    fig.suptitle(
        f"Switchboard vs what a Python team would otherwise run "
        f"({subscribers} subscribers, one room)",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(HERE / "results.png", dpi=110)
