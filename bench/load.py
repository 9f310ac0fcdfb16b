"""Load-generator processes. Each runs outside the server's process, bounds its loops in
count and time, and reports through a queue."""

from __future__ import annotations

import gc
import json
import multiprocessing as mp
import time
from typing import Any

from bench.protocols import PROTOCOLS
from bench.servers import raise_fd_limit
from bench.wsload import RawSocket, encode_frame, pump

CTX = mp.get_context("fork")
BUCKET = 0.1  # seconds per count bucket
HARD_STOP = 600.0  # no load process outlives this, whatever happens


def _connect(proto_name: str, port: int, room: str, token: str) -> RawSocket:
    return connect_many(proto_name, port, room, [token])[0]


def connect_many(
    proto_name: str, port: int, room: str | None, tokens: list[str], wave: int = 200
) -> list[RawSocket]:
    """Open sockets a wave at a time: every handshake and open frame of a wave is sent
    before any answer is awaited, so connecting costs the server's time, not round trips."""
    proto = PROTOCOLS[proto_name]
    out: list[RawSocket] = []
    for start in range(0, len(tokens), wave):
        batch = [
            RawSocket("127.0.0.1", port, proto.path(room or "idle", token), wait=False)
            for token in tokens[start : start + wave]
        ]
        for ws in batch:
            ws.finish_handshake()
            for frame in proto.open_frames(room):
                ws.send_text(frame)
        for ws in batch:
            proto.wait_ready(ws, room)
        out += batch
    return out


def _body(size: int, stamp: float, tag: str = "") -> str:
    head = f"t={stamp:.6f};{tag};"
    return head + "x" * max(size - len(head), 0)


def _stamp(payload: bytes) -> float | None:
    i = payload.find(b"t=")
    if i < 0:
        return None
    j = payload.find(b";", i)
    try:
        return float(payload[i + 2 : j])
    except ValueError:
        return None


def answer_pings(sockets: list[RawSocket]) -> None:
    """One non-blocking pass over open sockets, answering any ping that is waiting."""
    for ws in sockets:
        if ws.closed:
            continue
        ws.sock.setblocking(False)
        if ws.read_some():
            for opcode, payload in ws.frames():
                if opcode == 9:
                    ws.sock.sendall(encode_frame(payload, opcode=10))


def subscribers(
    proto_name: str,
    port: int,
    room: str,
    tokens: list[str],
    latency: bool,
    ready: Any,
    results: Any,
    stop: Any,
) -> None:
    """Hold sockets in `room`; count message frames per time bucket (and latencies)."""
    raise_fd_limit()
    proto = PROTOCOLS[proto_name]
    sockets = connect_many(proto_name, port, room, tokens)
    ready.put(len(sockets))
    buckets: dict[int, int] = {}
    lat: list[tuple[float, float]] = []  # (received at, latency): the parent keeps its window
    closes = 0
    started = time.monotonic()

    def on_frame(ws: RawSocket, opcode: int, payload: bytes) -> None:
        nonlocal closes
        if opcode == 1:
            if proto.is_message(payload):
                now = time.monotonic()
                b = int(now / BUCKET)
                buckets[b] = buckets.get(b, 0) + 1
                if latency:
                    sent = _stamp(payload)
                    if sent is not None:
                        lat.append((now, now - sent))
            else:
                answer = proto.reply(payload)
                if answer is not None:
                    ws.send_text(answer)
        elif opcode == 8:
            closes += 1

    pump(sockets, on_frame, lambda: stop.is_set() or time.monotonic() - started > HARD_STOP)
    for ws in sockets:
        ws.close()
    results.put({"buckets": buckets, "latencies": lat, "closes": closes})


def publisher(
    proto_name: str,
    port: int,
    room: str,
    token: str,
    rate: float | None,
    window: int,
    body_size: int,
    results: Any,
    stop: Any,
) -> None:
    """Publish into `room`: paced at `rate` per second, or as fast as acks return with up
    to `window` unacknowledged."""
    proto = PROTOCOLS[proto_name]
    ws = _connect(proto_name, port, room, token)
    inflight = sent = acked = 0
    next_due = time.monotonic()
    started = next_due

    def on_frame(_ws: RawSocket, opcode: int, payload: bytes) -> None:
        nonlocal inflight, acked
        if opcode == 1 and proto.is_ack(payload):
            inflight = max(inflight - 1, 0)
            acked += 1
        elif opcode == 1 and (answer := proto.reply(payload)) is not None:
            ws.send_text(answer)

    def step() -> bool:
        nonlocal inflight, sent, next_due
        if stop.is_set() or time.monotonic() - started > HARD_STOP:
            return True
        now = time.monotonic()
        while inflight < window and (rate is None or now >= next_due):
            ws.send_text(proto.publish(room, _body(body_size, time.monotonic())))
            inflight += 1
            sent += 1
            if rate is not None:
                next_due += 1.0 / rate
                now = time.monotonic()
        return False

    pump([ws], on_frame, step)
    ws.close()
    results.put({"sent": sent, "acked": acked})


def counted_publisher(port: int, room: str, token: str, count: int, results: Any) -> None:
    """Exactly `count` messages, at most 8 unacknowledged; returns when all are acked."""
    proto = PROTOCOLS["switchboard"]
    ws = _connect("switchboard", port, room, token)
    sent = acked = 0
    started = time.monotonic()

    def on_frame(_ws: RawSocket, opcode: int, payload: bytes) -> None:
        nonlocal acked
        if opcode == 1 and proto.is_ack(payload):
            acked += 1

    def step() -> bool:
        nonlocal sent
        while sent < count and sent - acked < 8:
            ws.send_text(proto.publish(room, _body(100, time.monotonic())))
            sent += 1
        return acked >= count or time.monotonic() - started > HARD_STOP

    pump([ws], on_frame, step)
    ws.close()
    results.put({"sent": sent, "acked": acked})


def signaller(port: int, room: str, token: str, rate: float, results: Any, stop: Any) -> None:
    """Signals into `room` at `rate` per second (no ack: a signal is fire-and-forget)."""
    proto = PROTOCOLS["switchboard-signals"]
    ws = _connect("switchboard", port, room, token)
    sent = 0
    started = time.monotonic()
    frame = proto.publish(room, "typing")

    def step() -> bool:
        nonlocal sent
        now = time.monotonic()
        if stop.is_set() or now - started > HARD_STOP:
            return True
        while sent < (now - started) * rate:
            ws.send_text(frame)
            sent += 1
        return False

    pump([ws], lambda *_: None, step)
    ws.close()
    results.put({"sent": sent})


def senders(
    proto_name: str,
    port: int,
    assignments: list[tuple[str, str, str]],
    body_size: int,
    ready: Any,
    results: Any,
    stop: Any,
    go: Any,
) -> None:
    """Each (room, token, tag) socket sends one message at a time, the next when its own
    ack (or, for peers, its own echo) returns. Counts acks per time bucket."""
    raise_fd_limit()
    proto = PROTOCOLS[proto_name]
    sockets = []
    for room, token, tag in assignments:  # one room per socket: connect them room by room
        ws = connect_many(proto_name, port, room, [token])[0]
        ws.room, ws.tag = room, tag.encode()  # type: ignore[attr-defined]
        sockets.append(ws)
    ready.put(len(sockets))
    go.wait(60)
    buckets: dict[int, int] = {}

    def send(ws: RawSocket) -> None:
        body = _body(body_size, time.monotonic(), ws.tag.decode())  # type: ignore[attr-defined]
        ws.send_text(proto.publish(ws.room, body))  # type: ignore[attr-defined]

    def own_ack(ws: RawSocket, payload: bytes) -> bool:
        if proto_name == "switchboard":
            return proto.is_ack(payload)
        return ws.tag in payload[:80]  # type: ignore[attr-defined]

    def on_frame(ws: RawSocket, opcode: int, payload: bytes) -> None:
        if opcode == 1 and own_ack(ws, payload):
            b = int(time.monotonic() / BUCKET)
            buckets[b] = buckets.get(b, 0) + 1
            send(ws)

    for ws in sockets:
        send(ws)
    started = time.monotonic()
    pump(sockets, on_frame, lambda: stop.is_set() or time.monotonic() - started > HARD_STOP)
    for ws in sockets:
        ws.close()
    results.put({"buckets": buckets})


def idlers(
    proto_name: str, port: int, tokens: list[str], ready: Any, results: Any, stop: Any
) -> None:
    """Open authenticated sockets and keep them open (answering pings); report closes."""
    raise_fd_limit()
    sockets: list[RawSocket] = []
    failed = 0
    for start in range(0, len(tokens), 200):
        try:
            sockets += connect_many(proto_name, port, None, tokens[start : start + 200])
        except Exception:
            failed += len(tokens[start : start + 200])
        answer_pings(sockets)  # a real client keeps its open sockets alive meanwhile
    ready.put(len(sockets))
    closes = 0

    def on_frame(ws: RawSocket, opcode: int, payload: bytes) -> None:
        nonlocal closes
        if opcode == 8:
            closes += 1

    started = time.monotonic()
    pump(sockets, on_frame, lambda: stop.is_set() or time.monotonic() - started > HARD_STOP)
    open_at_end = sum(1 for ws in sockets if not ws.closed)
    for ws in sockets:
        ws.close()
    results.put(
        {"opened": len(sockets), "failed": failed, "closes": closes, "open_at_end": open_at_end}
    )


def pinger(port: int, token: str, interval: float, results: Any, stop: Any) -> None:
    """App-level ping/pong round trips on an authenticated socket: an upper bound on the
    server's event-loop lag."""
    ws = RawSocket("127.0.0.1", port, f"/ws?token={token}")
    ws.wait_for(lambda p: p.startswith(b'{"type":"ready"'))
    rtts: list[float] = []
    started = time.monotonic()
    while not stop.is_set() and time.monotonic() - started < HARD_STOP:
        t0 = time.monotonic()
        ws.send_text(json.dumps({"type": "ping"}))
        ws.wait_for(lambda p: p == b'{"type":"pong"}', timeout=30)
        rtts.append(time.monotonic() - t0)
        time.sleep(interval)
    ws.close()
    results.put({"rtts": rtts})


def login_loop(port: int, usernames: list[str], rate: float, results: Any, stop: Any) -> None:
    """`rate` logins per second, spread evenly, on a few threads with keep-alive clients so
    a slow answer does not slow the rate (a refused login is counted, not retried)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from bench.servers import PASSWORD

    local = threading.local()
    done: list[float] = []
    shed: list[float] = []  # 503 + Retry-After: admission control said no, quickly
    refused = 0  # anything else

    def login(name: str) -> None:
        nonlocal refused
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        t0 = time.monotonic()
        r = client.post(
            "/auth/login", json={"tenant": "bench-login", "username": name, "password": PASSWORD}
        )
        if r.status_code == 503:
            shed.append(time.monotonic() - t0)
            raise RuntimeError(r.status_code)
        if r.status_code != 200:
            refused += 1
            raise RuntimeError(r.status_code)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        i = 0
        while not stop.is_set() and time.monotonic() - started < HARD_STOP:
            due = started + i / rate
            time.sleep(max(due - time.monotonic(), 0))

            def one(name: str = usernames[i % len(usernames)]) -> None:
                t0 = time.monotonic()
                login(name)
                done.append(time.monotonic() - t0)

            pool.submit(one)
            i += 1
    results.put(
        {
            "logins": len(done),
            "durations": done,
            "shed": len(shed),
            "shed_durations": shed,
            "refused": refused,
            "offered": i,
        }
    )


def start(target: Any, *args: Any) -> Any:
    proc = CTX.Process(target=_reporting, args=(target, *args), daemon=True)
    proc.start()
    return proc


def _reporting(target: Any, *args: Any) -> None:
    """Run a load function; if it fails, say so on its queues instead of vanishing.

    What the process inherited from the harness by fork is frozen first: otherwise its first
    full collection scans (and copies, page by page) the parent's whole heap. In the latency
    scenario that pass stalled a subscriber process for 130-200 ms a few seconds into its
    first window, and the stall was counted as the server's latency (bench/ANALYSIS.md).
    """
    gc.freeze()
    try:
        target(*args)
    except BaseException as exc:
        import traceback

        message = {"error": f"{target.__name__}: {exc!r}", "trace": traceback.format_exc(limit=5)}
        for arg in args:
            if hasattr(arg, "put") and hasattr(arg, "get"):
                arg.put(message)
        raise


def ready_count(ready: Any, timeout: float) -> int:
    """A load process's ready report: its socket count, or its failure."""
    item = ready.get(timeout=timeout)
    if isinstance(item, dict) and "error" in item:
        raise RuntimeError(f"{item['error']}\n{item.get('trace', '')}")
    return int(item)


def window_rate(buckets: list[dict[int, int]], t0: float, t1: float) -> float:
    """Events per second between monotonic times t0 and t1, from bucketed counts."""
    lo, hi = int(t0 / BUCKET), int(t1 / BUCKET)
    total = sum(n for b in buckets for k, n in b.items() if lo <= k < hi)
    return total / ((hi - lo) * BUCKET)
