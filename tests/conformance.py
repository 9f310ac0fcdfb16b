"""RFC 6455 conformance: Autobahn|Testsuite's fuzzing client against the uvicorn WebSocket
implementation Switchboard serves with (and the alternatives), through an echo route that
exists only here. `python -m tests.conformance [--wstest PATH]` prints a summary and writes
docs/conformance.md.

wstest (PyPI `autobahntestsuite`) runs on Python 2.7 only: make a virtualenv from pyenv's
2.7 (`.ci/autobahn` does) and pass its `wstest`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from api.app import server_options
from api.settings import Settings
from tests.processes import free_port

ROOT = Path(__file__).resolve().parent.parent
# Performance (9.*) takes minutes; compression (12.*, 13.*) is off in Switchboard.
EXCLUDED = ["9.*", "12.*", "13.*"]
IMPLEMENTATIONS = {
    "switchboard (websockets-sansio + api.transport)": "api.transport:WebSocketProtocol",
    "websockets-sansio": "websockets-sansio",
    "websockets (legacy)": "websockets",
    "wsproto": "wsproto",
}
PASSING = {"OK", "NON-STRICT", "INFORMATIONAL"}


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message.get("bytes") or b"")
    except WebSocketDisconnect:
        return


def serve(ws: str, port: int) -> uvicorn.Server:
    options: dict[str, Any] = {**server_options(Settings()), "ws": ws, "access_log": False}
    options.pop("forwarded_allow_ips", None)
    app = Starlette(routes=[WebSocketRoute("/echo", echo)])
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", **options)
    server = uvicorn.Server(config)
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server


def fuzz(wstest: str, ws: str, work: Path) -> tuple[Counter[str], list[str]]:
    port = free_port()
    server = serve(ws, port)
    spec = {
        "outdir": str(work / "reports"),
        "servers": [{"agent": "echo", "url": f"ws://127.0.0.1:{port}/echo"}],
        "cases": ["*"],
        "exclude-cases": EXCLUDED,
        "exclude-agent-cases": {},
    }
    (work / "spec.json").write_text(json.dumps(spec))
    try:
        subprocess.run(
            [wstest, "-m", "fuzzingclient", "-s", str(work / "spec.json")],
            cwd=work,
            check=True,
            capture_output=True,
            timeout=900,
        )
    finally:
        server.should_exit = True
    index = json.loads((work / "reports" / "index.json").read_text())["echo"]
    failing = sorted(
        (case for case, result in index.items() if result["behavior"] not in PASSING),
        key=lambda c: [int(p) for p in c.split(".")],
    )
    return Counter(case["behavior"] for case in index.values()), failing


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.conformance")
    parser.add_argument("--wstest", default=str(ROOT / ".autobahn" / "bin" / "wstest"))
    parser.add_argument("--only", help="one implementation (a key of IMPLEMENTATIONS)")
    args = parser.parse_args()
    rows = []
    for name, ws in IMPLEMENTATIONS.items():
        if args.only and args.only != name:
            continue
        with tempfile.TemporaryDirectory() as work:
            counts, failing = fuzz(args.wstest, ws, Path(work))
        rows.append((name, ws, sum(counts.values()), dict(sorted(counts.items())), failing))
        print(f"{name}: {dict(counts)} not passing: {failing}", flush=True)
    lines = [
        "# RFC 6455 conformance (Autobahn|Testsuite)",
        "",
        "Written by `python -m tests.conformance` (the fuzzing client against an echo route",
        f"on each uvicorn WebSocket implementation; cases {', '.join(EXCLUDED)} excluded:",
        "performance and compression, which Switchboard turns off).",
        "",
        "| implementation | uvicorn `ws` | cases | results | not passing |",
        "| --- | --- | --- | --- | --- |",
    ]
    lines += [f"| {n} | `{w}` | {t} | {c} | {', '.join(f) or 'none'} |" for n, w, t, c, f in rows]
    if not args.only:
        (ROOT / "docs" / "conformance.md").write_text("\n".join(lines) + "\n")
    return 0 if rows and not rows[0][4] else 1


if __name__ == "__main__":
    sys.exit(main())
