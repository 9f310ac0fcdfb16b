"""A local webhook receiver for tests: it verifies Standard Webhooks signatures (with the
`standardwebhooks` package, independently of the server's code) and can be told to fail,
hang, or answer."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from standardwebhooks.webhooks import Webhook

Mode = Literal["ok", "fail", "hang"]


class Receiver:
    def __init__(self, port: int = 0) -> None:
        self.mode: Mode = "ok"
        self.secret: str | None = None  # set once the endpoint is registered
        self.events: list[dict[str, Any]] = []  # verified deliveries, in arrival order
        self.bad_signatures = 0
        self.requests = 0
        self.release = threading.Event()  # ends every "hang"
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests += 1
                if receiver.mode == "hang":
                    receiver.release.wait(30)
                if receiver.mode == "fail":
                    return self._answer(503)
                try:
                    assert receiver.secret is not None
                    event = Webhook(receiver.secret).verify(body, dict(self.headers.items()))
                except Exception:
                    receiver.bad_signatures += 1
                    return self._answer(400)
                receiver.events.append(event)
                self._answer(204)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
