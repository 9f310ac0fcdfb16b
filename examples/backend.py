"""An app's backend next to Switchboard: it has its own users (no Switchboard passwords),
mints their tokens, publishes with an API key, and receives signed webhooks, forwarding
`message.unseen` as a push notification.

    switchboard create-tenant acme
    # an admin of acme: POST /admin/api-keys
    #   {"name": "backend", "scopes": ["tokens", "publish", "admin"]}
    python examples/backend.py --url http://127.0.0.1:8000 --api-key sbk_... \\
        --listen 127.0.0.1:8088

The webhook URL must be reachable by the server; a loopback one (as here) needs the server's
`webhooks.allow_private_addresses = true`. Prints what happens and exits 0 when every
expected webhook arrived, verified.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from switchboard_client import Client

Event = dict[str, Any]


class WebhookInbox:
    """The backend's webhook endpoint: verifies each delivery, then queues it."""

    def __init__(self, host: str, port: int) -> None:
        self.secret = ""
        self.events: queue.Queue[Event] = queue.Queue()
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    event = Webhook(inbox.secret).verify(body, dict(self.headers.items()))
                except WebhookVerificationError:
                    self.send_response(400)  # not from our Switchboard: refuse
                else:
                    inbox.events.put(event)
                    self.send_response(204)  # 2xx: delivered (anything else is retried)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}/switchboard-webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def send_push(user: str, message: Event) -> None:
    """Where a real backend calls FCM or APNs for the user's devices."""
    print(f"push -> {user}: {message['sender']}: {message['body']}")


class Backend:
    def __init__(self, url: str, api_key: str) -> None:
        self.http = httpx.AsyncClient(
            base_url=url, timeout=10, headers={"Authorization": f"Bearer {api_key}"}
        )

    async def call(self, method: str, path: str, **kw: Any) -> Any:
        r = await self.http.request(method, path, **kw)
        if r.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {r.status_code} {r.text}")
        return r.json() if r.content else None

    async def token_for(self, username: str) -> str:
        """The app's users never see a Switchboard password: the backend vouches for them."""
        minted = await self.call("POST", "/tokens", json={"username": username, "create": True})
        return str(minted["access_token"])


async def as_user(url: str, token: str, method: str, path: str, **kw: Any) -> Any:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        r = await http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kw)
        return r.json() if r.content else None


async def main(url: str, api_key: str, listen: str, wait: float) -> int:
    host, _, port = listen.partition(":")
    inbox = WebhookInbox(host, int(port or 0))
    backend = Backend(url, api_key)
    hook = await backend.call(
        "POST",
        "/admin/webhooks",
        json={"url": inbox.url, "events": ["message.created", "message.unseen"]},
    )
    inbox.secret = hook["secret"]
    print(f"webhook {hook['id']} -> {inbox.url}")
    try:
        carol = await backend.token_for("carol")
        await backend.token_for("dave")  # dave exists now, with no socket open
        await as_user(url, carol, "POST", "/rooms", json={"name": "support"})
        client = Client(url, get_token=lambda: backend.token_for("carol"))
        async with client:
            room = await client.join("support", since=0)
            ack = await room.send("hello from carol's app")
            print(f"carol sent seq {ack['seq']}")
            published = await backend.call(
                "POST",
                "/publish",
                json={
                    "messages": [
                        {"room": "support", "body": "order #42 shipped", "client_msg_id": "o42"}
                    ]
                },
            )
            print(f"backend published {published['results']}")
            dm = await client.open_dm("dave")
            await (await client.join(dm["name"])).send("dave, are you around?")
        expected = {("message.created", 3), ("message.unseen", 1)}
        seen: dict[str, int] = {}
        deadline = asyncio.get_running_loop().time() + wait
        while {(t, seen.get(t, 0)) for t, _ in expected} != expected:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                print(f"missing webhooks: saw {seen}")
                return 1
            try:
                event = await asyncio.to_thread(inbox.events.get, True, min(left, 1.0))
            except queue.Empty:
                continue
            seen[event["type"]] = seen.get(event["type"], 0) + 1
            if event["type"] == "message.unseen":
                send_push(event["data"]["user"], event["data"]["message"])
            else:
                data = event["data"]
                print(f"webhook {event['type']}: {data['room']} #{data['seq']} {data['body']}")
        print("RESULT ok")
        return 0
    finally:
        await backend.call("DELETE", f"/admin/webhooks/{hook['id']}")
        await backend.http.aclose()
        inbox.server.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="Switchboard's base URL")
    parser.add_argument("--api-key", required=True, help="scopes: tokens, publish, admin")
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port for webhooks")
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for webhooks")
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.url, args.api_key, args.listen, args.wait)))
