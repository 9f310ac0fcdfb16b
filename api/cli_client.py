"""`switchboard send ROOM TEXT` and `switchboard tail ROOM`: the Python client from a shell,
against any running Switchboard (not this machine's database)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

PASSWORD_ENV = "SWITCHBOARD_PASSWORD"


class ClientCommandError(Exception):
    """Shown to the operator; exit status 1."""


def add_commands(sub: Any) -> None:
    send = sub.add_parser("send", help="send a message to a room (exactly once, retried)")
    _connection_options(send)
    send.add_argument("room")
    send.add_argument("text")
    send.set_defaults(func=cmd_send)

    tail = sub.add_parser("tail", help="print a room's messages as they arrive")
    _connection_options(tail)
    tail.add_argument("room")
    tail.add_argument("--since", type=int, help="replay messages after this seq first")
    tail.add_argument("--count", type=int, help="stop after this many messages")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.set_defaults(func=cmd_tail)


def _connection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the server's base URL")
    parser.add_argument("--tenant", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument(
        "--password-stdin",
        action="store_true",
        help=f"read the password from stdin (else from ${PASSWORD_ENV})",
    )


def _login(args: argparse.Namespace) -> Any:
    from switchboard_client import PasswordLogin

    password = (
        sys.stdin.readline().rstrip("\r\n")
        if args.password_stdin
        else os.environ.get(PASSWORD_ENV, "")
    )
    if not password:
        raise ClientCommandError(f"no password: set {PASSWORD_ENV} or use --password-stdin")
    return PasswordLogin(args.url, args.tenant, args.user, password)


def _run(args: argparse.Namespace, work: Any) -> Any:
    from switchboard_client import AuthFailed, Client, Closed, SwitchboardError

    async def main() -> Any:
        async with Client(args.url, get_token=_login(args)) as sb:
            return await work(sb)

    try:
        return asyncio.run(main())
    except AuthFailed as exc:
        raise ClientCommandError("login refused: check the tenant, user and password") from exc
    except (Closed, SwitchboardError) as exc:
        raise ClientCommandError(str(exc)) from exc


def cmd_send(args: argparse.Namespace) -> None:
    async def work(sb: Any) -> dict[str, Any]:
        room = await sb.join(args.room)
        ack: dict[str, Any] = await room.send(args.text)
        return ack

    ack = _run(args, work)
    print(f"sent to {args.room}: seq {ack['seq']}")


def cmd_tail(args: argparse.Namespace) -> None:
    async def work(sb: Any) -> None:
        room = await sb.join(args.room, since=args.since)
        seen = 0
        async for message in room.messages():
            if args.json:
                print(json.dumps(message, ensure_ascii=False), flush=True)
            else:
                print(f"#{message['seq']} {message['sender']}: {message['body']}", flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                return

    _run(args, work)
