"""A TCP relay that can add latency: `python -m tests.cluster.relay LISTEN_HOST PORT
TARGET_PORT`. After SIGUSR1 every chunk waits 200 ms each way, after SIGUSR2 none (this
kernel has no netem). It runs on the Redis host, in front of redis-server."""

from __future__ import annotations

import asyncio
import signal
import sys

DELAY_SECONDS = 0.2
delay = 0.0


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            if delay:
                await asyncio.sleep(delay)
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def set_delay(seconds: float) -> None:
    global delay
    delay = seconds


async def main(host: str, port: int, target: int) -> None:
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, set_delay, DELAY_SECONDS)
    loop.add_signal_handler(signal.SIGUSR2, set_delay, 0.0)

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(relay, host, port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
