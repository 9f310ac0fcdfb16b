"""The fault schedule and the checker (in the spirit of Jepsen's): faults are injected one
after another while the workload runs; then the clients' records and the database are
checked against the guarantees, and a table of faults and outcomes is printed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import psutil

from tests.cluster.net import Network
from tests.cluster.services import App, Balancer, Postgres, Redis, build, migrate_and_seed
from tests.cluster.workload import PASSWORD, Workload, users

PRESENCE_BOUND_SECONDS = 20.0  # a killed worker's presence expires after 10 s
FD_SLACK, RSS_SLACK_MIB = 64, 96


@dataclass
class Fault:
    name: str
    apply: Callable[[], None]
    heal: Callable[[], None]


@dataclass
class Outcome:
    fault: str
    held: float
    acks_during: int
    recovered_in: float | None  # seconds from heal until every stream acked again


@dataclass
class Report:
    outcomes: list[Outcome] = field(default_factory=list)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(ok for _, ok, _ in self.checks) and all(
            o.recovered_in is not None for o in self.outcomes
        )

    def table(self) -> str:
        lines = [
            f"{'fault':<34} {'held s':>7} {'acks during':>12} {'recovered in s':>15}",
            "-" * 71,
        ]
        for o in self.outcomes:
            recovered = f"{o.recovered_in:.1f}" if o.recovered_in is not None else "NEVER"
            lines.append(f"{o.fault:<34} {o.held:>7.1f} {o.acks_during:>12} {recovered:>15}")
        lines += ["", f"{'check':<44} {'result':<6} detail", "-" * 71]
        lines += [f"{n:<44} {'ok' if ok else 'FAILED':<6} {d}" for n, ok, d in self.checks]
        return "\n".join(lines)


def faults(pg: Postgres, redis: Redis, apps: list[App]) -> list[Fault]:
    app1 = apps[0]  # the faults hit app1; app2 carries the load (and is leak-checked)
    nothing: Callable[[], None] = lambda: None  # noqa: E731
    return [
        Fault(
            "partition app1 from Redis",
            lambda: app1.host.block(redis.host),
            lambda: app1.host.unblock(redis.host),
        ),
        Fault(
            "partition app1 from PostgreSQL",
            lambda: app1.host.block(pg.host),
            lambda: app1.host.unblock(pg.host),
        ),
        Fault(
            "Redis: +200 ms each way, 5 % loss", lambda: redis.slow(True), lambda: redis.slow(False)
        ),
        Fault("kill -9 every process of app1", app1.kill9, app1.start),
        Fault("restart Redis", redis.restart, nothing),
        Fault("restart PostgreSQL", pg.restart, nothing),
    ]


def _recovery(workload: Workload, healed: float, timeout: float = 60) -> float | None:
    deadline = healed + timeout
    while time.monotonic() < deadline:
        if all(n > 0 for n in workload.acked_since(healed).values()):
            return time.monotonic() - healed
        time.sleep(0.1)
    return None


def _resources(app: App) -> tuple[int, int]:
    fds = rss = 0
    for pid in app.processes():
        try:
            proc = psutil.Process(pid)
            fds += proc.num_fds()
            rss += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return fds, rss // 2**20


def run(work: Path, *, hold: float, settle: float, log: Callable[[str], None] = print) -> Report:
    report = Report()
    network: Network | None = None
    pg: Postgres | None = None
    try:
        network, pg, redis, apps, balancer = build(work)
        pg.init()
        pg.start()
        redis.start()
        migrate_and_seed(pg, users(), PASSWORD)
        for app in apps:
            app.start()
        balancer.start()
        workload = Workload(balancer.base_url)
        workload.start()
        time.sleep(settle)
        log(f"workload running: {workload.acked()} acks")

        started, before = time.monotonic(), workload.acked()
        for app in apps:  # a rolling deploy: SIGTERM each app host in turn, restart it
            app.rolling_restart()
            time.sleep(settle / 2)
        report.outcomes.append(
            Outcome(
                "rolling deploy (SIGTERM, restart)",
                time.monotonic() - started,
                workload.acked() - before,
                _recovery(workload, time.monotonic()),
            )
        )
        time.sleep(settle)
        fds_before, rss_before = _resources(apps[1])

        for fault in faults(pg, redis, apps):
            log(f"fault: {fault.name}")
            before = workload.acked()
            applied = time.monotonic()
            fault.apply()
            time.sleep(hold)
            during = workload.acked() - before
            fault.heal()
            healed = time.monotonic()
            report.outcomes.append(
                Outcome(fault.name, healed - applied, during, _recovery(workload, healed))
            )
            time.sleep(settle)

        fds_after, rss_after = _resources(apps[1])

        async def last_seqs() -> dict[str, int]:
            return await _last_seqs(pg)

        workload.stop(last_seqs)
        _check(report, workload, pg, balancer)
        report.checks.append(
            (
                "app2: no descriptor or memory leak",
                fds_after <= fds_before + FD_SLACK and rss_after <= rss_before + RSS_SLACK_MIB,
                f"fds {fds_before}->{fds_after}, RSS {rss_before}->{rss_after} MiB",
            )
        )
    finally:
        if network is not None:
            network.destroy()
        if pg is not None:
            pg.remove()
    return report


async def _last_seqs(pg: Postgres) -> dict[str, int]:
    conn = await asyncpg.connect(pg.url)
    try:
        rows = await conn.fetch(
            "SELECT t.slug, r.name, r.last_seq FROM room r JOIN tenant t ON t.id = r.tenant_id"
        )
    finally:
        await conn.close()
    return {f"{r['slug']}/{r['name']}": r["last_seq"] for r in rows}


def _check(report: Report, workload: Workload, pg: Postgres, balancer: Balancer) -> None:
    async def stored() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(pg.url)
        try:
            found: list[asyncpg.Record] = await conn.fetch(
                "SELECT t.slug, r.name AS room, m.client_msg_id, m.seq FROM message m "
                "JOIN tenant t ON t.id = m.tenant_id "
                "JOIN room r ON r.tenant_id = m.tenant_id AND r.id = m.room_id"
            )
            return found
        finally:
            await conn.close()

    rows = asyncio.run(stored())
    by_key: dict[tuple[str, str, str], list[int]] = {}
    for r in rows:
        by_key.setdefault((r["slug"], r["room"], r["client_msg_id"]), []).append(r["seq"])
    duplicates = [k for k, seqs in by_key.items() if len(seqs) > 1]
    acked = {
        (s.tenant, s.room, cmid): seq for s in workload.streams for cmid, seq in s.acks.items()
    }
    lost = [k for k in acked if k not in by_key]
    moved = [k for k, seq in acked.items() if k in by_key and by_key[k] != [seq]]
    report.checks.append(
        (
            "every acknowledged message stored once",
            not duplicates and not lost and not moved,
            f"{len(acked)} acked, {len(rows)} stored, {len(lost)} lost, "
            f"{len(duplicates)} duplicated, {len(moved)} at another seq",
        )
    )
    ends = asyncio.run(_last_seqs(pg))
    gaps = []
    for s in workload.streams:
        expected = list(range(1, ends[s.name] + 1))
        if s.seen != expected:
            gaps.append(f"{s.name}: {len(s.seen)} seen of {len(expected)}")
    report.checks.append(
        (
            "receivers saw 1..last, no gap, no duplicate",
            not gaps,
            "; ".join(gaps) or f"{sum(len(s.seen) for s in workload.streams)} deliveries in order",
        )
    )
    foreign = [b for s in workload.streams for b in s.foreign]
    report.checks.append(
        ("no frame crossed tenants (or rooms)", not foreign, f"{len(foreign)} foreign")
    )
    report.checks.append(_presence_converges(balancer))


def _presence_converges(balancer: Balancer) -> tuple[str, bool, str]:
    """After the workload closed its sockets, every room's presence must empty out within
    the bound (dead workers' entries expire; live ones are removed at once)."""
    from tests.cluster.workload import PASSWORD, ROOMS, TENANTS

    deadline = time.monotonic() + PRESENCE_BOUND_SECONDS
    left: dict[str, list[str]] = {}
    with httpx.Client(base_url=balancer.base_url, timeout=5) as http:
        headers = {}
        for tenant in TENANTS:
            login = http.post(
                "/auth/login", json={"tenant": tenant, "username": "s-ops", "password": PASSWORD}
            )
            headers[tenant] = {"Authorization": f"Bearer {login.json()['access_token']}"}
        while True:
            left = {}
            for tenant in TENANTS:
                for room in ROOMS:
                    r = http.get(f"/rooms/{room}/presence", headers=headers[tenant])
                    users = [u["username"] for u in r.json()["users"]]
                    if users:
                        left[f"{tenant}/{room}"] = users
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    return (
        "presence converged (empty after disconnects)",
        not left,
        f"within {PRESENCE_BOUND_SECONDS:.0f} s" if not left else str(left),
    )
