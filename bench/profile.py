"""python -m bench.profile SCENARIO: where Switchboard's time goes during a scenario's load,
sampled by py-spy from outside the server (`fanout`, `latency`, `ingest`, `signals`,
`login`).

Prints the functions with the most samples on top of the stack (self time) and the most
samples anywhere in the stack (inclusive), as shares of all samples: the profile that
explains a result in bench/RESULTS.md.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench import load
from bench.scenarios import Context, _collect, _finish, room_tokens, run_fanout
from bench.servers import ROOT, Database, Server, create_rooms, make_accounts, switchboard

TOP = 15


def _py_spy() -> str:
    """py-spy is installed with the bench extra, next to this interpreter."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else "py-spy"


def _spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            _py_spy(),
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(int(seconds)),
            "--rate",
            "250",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _summary(out: Path) -> str:
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [
            f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0].rsplit("/", 1)[-1] + ")"
            for f in stack.split(";")
            if f
        ]
        if not frames:
            continue
        total += n
        self_time[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    lines = [f"{total} samples", "", "self (top of stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in self_time.most_common(TOP)]
    lines += ["", "inclusive (anywhere in the stack):"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(TOP + 10)]
    return "\n".join(lines)


def profile(scenario: str, seconds: float = 8.0) -> str:
    db = Database().create()
    ctx = Context(db, 1)
    server: Server = switchboard(db)
    out = ROOT / ".switchboard" / f"profile-{scenario}.txt"
    server.start()
    try:
        assert server.proc is not None
        tokens = room_tokens(ctx, server, "switchboard")
        if scenario in ("fanout", "latency", "signals", "login"):
            proto = "switchboard-signals" if scenario == "signals" else "switchboard"
            rate = {"fanout": None, "latency": 20.0, "signals": 1e-9, "login": 25.0}[scenario]
            spy: list[Any] = []
            names: list[str] = []
            if scenario == "login":
                _, names = make_accounts(ctx.db, 20, tenant="bench-login", real_hash_cost=True)

            def alongside() -> list[Any]:
                spy.append(_spy(server.proc.pid, seconds, out))  # type: ignore[union-attr]
                stop, q = load.CTX.Event(), load.CTX.Queue()
                if scenario == "signals":
                    proc = load.start(
                        load.signaller, server.port, "bench", tokens[0], 120.0, q, stop
                    )
                elif scenario == "login":
                    proc = load.start(load.login_loop, server.port, names, 50.0, q, stop)
                else:
                    return []
                spy.extend([proc, stop])
                return []

            run_fanout(server, proto, tokens, 1000, rate, ctx, latency=True, alongside=alongside)
            for item in spy[1:]:
                if hasattr(item, "set"):
                    item.set()
            spy[0].wait(60)
            _finish([p for p in spy[1:] if hasattr(p, "join")])
        elif scenario == "ingest":
            rooms = [f"r{i}" for i in range(100)]
            create_rooms(server.port, tokens[0], rooms)
            ready, results, stop, go = (
                load.CTX.Queue(),
                load.CTX.Queue(),
                load.CTX.Event(),
                load.CTX.Event(),
            )
            pairs = [(rooms[i % 100], tokens[i % len(tokens)], f"s{i}") for i in range(200)]
            procs = [
                load.start(
                    load.senders,
                    "switchboard",
                    server.port,
                    pairs[k::2],
                    100,
                    ready,
                    results,
                    stop,
                    go,
                )
                for k in range(2)
            ]
            for _ in procs:
                load.ready_count(ready, 120)
            go.set()
            time.sleep(1.0)
            _spy(server.proc.pid, seconds, out).wait(60)
            stop.set()
            _collect(results, len(procs))
            _finish(procs)
        else:
            raise SystemExit(f"no profile for {scenario!r}")
    finally:
        server.stop()
        db.drop()
    return _summary(out)


if __name__ == "__main__":
    print(profile(sys.argv[1] if len(sys.argv) > 1 else "fanout"))
