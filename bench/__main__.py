"""python -m bench SCENARIO [--quick] [--json] [--write]

SCENARIO is one of fanout, latency, ingest, connections, history, login, signals,
reconnect_storm, per_message_cost, or all.
--quick: shorter runs (all scenarios in under 5 minutes); --write: also regenerate
bench/RESULTS.md and bench/results.png from this run.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from typing import Any

from bench.cost import per_message_cost, signals
from bench.scenarios import SCENARIOS, Context
from bench.servers import Database
from bench.storm import reconnect_storm

ALL = {
    **SCENARIOS,
    "signals": signals,
    "reconnect_storm": reconnect_storm,
    "per_message_cost": per_message_cost,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("scenario", choices=[*ALL, "all"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--tiny", action="store_true", help="the harness's own smoke test")
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--write", action="store_true", help="update RESULTS.md and the chart")
    args = parser.parse_args(argv)
    size = 2 if args.tiny else 1 if args.quick else 0
    names = list(ALL) if args.scenario == "all" else [args.scenario]
    db = Database().create()
    ctx = Context(db, size)
    results: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        for name in names:
            t0 = time.monotonic()
            outcome = ALL[name](ctx)
            outcome["seconds"] = round(time.monotonic() - t0, 1)
            results.append(outcome)
            if args.json:
                print(json.dumps(outcome), flush=True)
            else:
                print(_human(outcome), flush=True)
    finally:
        db.drop()
    if args.write:
        from bench.report import write

        write(
            results,
            {
                "mode": ["full", "quick", "tiny"][size],
                "seconds": round(time.monotonic() - started),
                **machine(),
            },
        )
    return 0


def machine() -> dict[str, Any]:
    import os

    import psutil

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "platform": platform.platform(),
    }


def _human(r: dict[str, Any]) -> str:
    peers = ", ".join(f"{k} {v} (x{r['ratios'].get(k)})" for k, v in r["peers"].items())
    return f"{r['scenario']:<12} switchboard {r['switchboard']} {r['unit']}" + (
        f" | {peers}" if peers else ""
    )


if __name__ == "__main__":
    sys.exit(main())
