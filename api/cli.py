"""`switchboard serve | migrate | create-tenant | create-user | broadcast | send | tail`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api import cli_client
from api.errors import APIError
from api.repository import Role
from api.settings import ConfigError, Settings, get_settings, require_jwt_secret

if TYPE_CHECKING:
    from api.services import Services

DEMO_TENANT = "demo"
DEMO_USERS = (("alice", "admin"), ("bob", "member"))


class CliError(Exception):
    """A clear message for the operator, and exit status 1."""


def reload_settings() -> Settings:
    get_settings.cache_clear()
    return get_settings()


def ensure_database(settings: Settings) -> Settings:
    """With no DATABASE_URL, start the embedded PostgreSQL and point everything at it
    (including uvicorn's worker processes, through the environment)."""
    if settings.database.url:
        return settings
    from api.embedded import embedded_postgres_running, start_embedded_postgres, stop_on_sigterm

    stop_on_sigterm()
    data_dir = settings.server.data_dir
    if embedded_postgres_running(data_dir):
        print(
            f"No DATABASE_URL: using the embedded PostgreSQL running under {data_dir}",
            file=sys.stderr,
        )
    else:
        print(f"No DATABASE_URL: starting embedded PostgreSQL under {data_dir}", file=sys.stderr)
    os.environ["DATABASE_URL"] = start_embedded_postgres(data_dir)
    return reload_settings()


def migrations_dir() -> Path:
    """The revisions: inside the installed package (api.migrations), so no checkout is needed."""
    import api.migrations

    return Path(api.migrations.__file__).resolve().parent


def run_migrations(settings: Settings) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()  # no alembic.ini needed: that file is for `alembic` in a checkout
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = settings.database.url
    config.attributes["configure_logging"] = False
    command.upgrade(config, "head")


def with_services(
    settings: Settings, work: Callable[[Services], Awaitable[Any]], *, relay: bool = False
) -> Any:
    """Run `work(services)` against the configured database with a CLI-sized pool, the
    persister running (for room broadcasts), then stop everything. `relay`: publish to a
    running server through Postgres NOTIFY when there is no Redis."""
    from api.services import Services

    async def main() -> Any:
        services = Services.build(settings, relay_publisher=relay, pool_size=2, max_overflow=0)
        services.persister.start()
        try:
            return await work(services)
        finally:
            await services.stop()

    return asyncio.run(main())


# commands -------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> None:
    settings = ensure_database(get_settings())
    run_migrations(settings)
    print("migrations applied")


def cmd_create_tenant(args: argparse.Namespace) -> None:
    settings = ensure_database(get_settings())
    with_services(settings, lambda s: s.accounts.create_tenant(args.slug, args.name or args.slug))
    print(f"created tenant {args.slug} ({args.name or args.slug})", file=sys.stderr)
    print(args.slug)  # alone on stdout, for scripts


def read_new_password(from_stdin: bool) -> tuple[str, bool]:
    """(password, generated)."""
    if not from_stdin:
        return secrets.token_urlsafe(18), True
    return sys.stdin.readline().rstrip("\r\n"), False


def cmd_create_user(args: argparse.Namespace) -> None:
    password, generated = read_new_password(args.password_stdin)
    settings = ensure_database(get_settings())

    async def work(services: Services) -> None:
        tenant_id = await services.accounts.tenant_id(args.tenant)
        if tenant_id is None:
            raise CliError(f"unknown tenant {args.tenant!r}")
        role = Role.ADMIN if args.admin else Role.MEMBER
        await services.accounts.create_user(tenant_id, args.username, password, role)

    with_services(settings, work)
    print(
        f"created user {args.username} in {args.tenant}"
        + (f"\npassword: {password}" if generated else "")
    )


def ensure_demo(settings: Settings) -> dict[str, str]:
    """Tenant `demo` with alice (admin) and bob (member); passwords kept in data_dir so a
    restart can print them again."""
    creds_file = settings.server.data_dir / "demo-credentials.json"
    known: dict[str, str] = json.loads(creds_file.read_text()) if creds_file.exists() else {}

    async def work(services: Services) -> dict[str, str]:
        from api.errors import Conflict

        accounts = services.accounts
        tenant_id = await accounts.tenant_id(DEMO_TENANT)
        if tenant_id is None:
            tenant_id = await accounts.create_tenant(DEMO_TENANT, "Demo")
        out = {}
        for username, role in DEMO_USERS:
            password = known.get(username) or secrets.token_urlsafe(9)
            try:
                await accounts.create_user(tenant_id, username, password, role)
            except Conflict:
                if username not in known:
                    password = "(set before; see demo-credentials.json or reset it)"
            out[username] = password
        return out

    creds: dict[str, str] = with_services(settings, work)
    creds_file.parent.mkdir(parents=True, exist_ok=True)
    creds_file.write_text(json.dumps({k: v for k, v in creds.items() if " " not in v}))
    creds_file.chmod(0o600)
    return creds


def demo_secret(settings: Settings) -> str:
    path = settings.server.data_dir / "demo-jwt-secret"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    from api.app import server_options

    for option, env in (
        (args.ssl_certfile, "SWITCHBOARD_SERVER__SSL_CERTFILE"),
        (args.ssl_keyfile, "SWITCHBOARD_SERVER__SSL_KEYFILE"),
    ):
        if option:  # through the environment, so worker processes see it too
            os.environ[env] = str(Path(option).resolve())
    settings = reload_settings()
    if settings.server.tls and not settings.server.ssl_keyfile:
        raise CliError("--ssl-certfile needs --ssl-keyfile (or server.ssl_keyfile)")
    if args.demo and not settings.auth.jwt_secret.get_secret_value():
        os.environ["SWITCHBOARD_JWT_SECRET"] = demo_secret(settings)
        settings = reload_settings()
    require_jwt_secret(settings)
    workers = args.workers or 1
    if workers > 1 and not settings.broker.url:
        raise CliError(
            f"--workers {workers} needs a shared broker: set REDIS_URL "
            "(e.g. redis://127.0.0.1:6379/0). Without it, run one worker."
        )
    settings = ensure_database(settings)
    run_migrations(settings)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = (settings.server.data_dir / "metrics").resolve()
        shutil.rmtree(metrics_dir, ignore_errors=True)  # must be empty at each start
        metrics_dir.mkdir(parents=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    host = args.host or settings.server.host
    port = args.port or settings.server.port
    if args.demo:
        creds = ensure_demo(settings)
        scheme = "https" if settings.server.tls else "http"
        print(f"\nSwitchboard demo: {scheme}://{host}:{port}/  (tenant: {DEMO_TENANT})")
        for username, role in DEMO_USERS:
            print(f"  {username:<6} {role:<7} password: {creds[username]}")
        print(flush=True)
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        **server_options(settings),
    )


def cmd_broadcast(args: argparse.Namespace) -> None:
    """The same service as POST /admin/broadcast. With REDIS_URL it publishes on Redis; on
    the in-process broker it reaches the running server through Postgres NOTIFY."""
    settings = ensure_database(get_settings())

    async def work(services: Services) -> dict[str, Any]:
        tenant_id = await services.accounts.tenant_id(args.tenant)
        if tenant_id is None:
            raise CliError(f"unknown tenant {args.tenant!r}")
        return await services.broadcasts.broadcast(
            tenant_id, sender="system", sender_id=None, body=args.text, room_names=args.room or None
        )

    answer = with_services(settings, work, relay=True)
    if settings.broker.url:
        print(f"broadcast {answer['id']} sent to {answer['recipients']} open connections")
    else:  # the sockets live in the server process; it counts them as it delivers
        print(
            f"broadcast {answer['id']} stored and handed to the running server through "
            "PostgreSQL (without Redis, only the server sees its open connections)"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API (uvicorn)")
    serve.add_argument("--host", help="address to listen on (default: server.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: server.port, 8000)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes (default: 1; more than 1 needs REDIS_URL)",
    )
    serve.add_argument(
        "--demo", action="store_true", help="create tenant demo with alice (admin) and bob (member)"
    )
    serve.add_argument("--ssl-certfile", help="serve HTTPS/wss with this certificate (PEM)")
    serve.add_argument("--ssl-keyfile", help="the certificate's private key (PEM)")
    serve.set_defaults(func=cmd_serve)

    sub.add_parser("migrate", help="alembic upgrade head").set_defaults(func=cmd_migrate)

    tenant = sub.add_parser("create-tenant", help="create a tenant")
    tenant.add_argument("slug", help="lowercase letters, digits and '-'")
    tenant.add_argument("--name", help="a display name (default: the slug)")
    tenant.set_defaults(func=cmd_create_tenant)

    user = sub.add_parser("create-user", help="create a user")
    user.add_argument("--tenant", required=True, help="the tenant's slug")
    user.add_argument("username")
    user.add_argument("--admin", action="store_true", help="role admin (default: member)")
    user.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from stdin (default: generate one and print it)",
    )
    user.set_defaults(func=cmd_create_user)

    bcast = sub.add_parser("broadcast", help="the same as POST /admin/broadcast")
    bcast.add_argument("--tenant", required=True, help="the tenant's slug")
    bcast.add_argument("--room", action="append", help="a room (repeatable); none = everyone")
    bcast.add_argument("text", help="the announcement")
    bcast.set_defaults(func=cmd_broadcast)

    cli_client.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except APIError as exc:  # a rule of a service (name taken, weak password, ...)
        print(f"switchboard: error: {exc.detail}", file=sys.stderr)
        return 1
    except (CliError, ConfigError, cli_client.ClientCommandError) as exc:
        print(f"switchboard: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
