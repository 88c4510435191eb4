"""asyncio on iowait.Selector: a TCP echo server on loopback (port 0) and
ten clients in the same event loop, each sending lines and checking the
echo. Nothing in the program but the loop's construction names iowait:
every asyncio program runs this way.

    python3 examples/asyncio_echo.py [backend]

backend: a name from iowait.available_backends() (default: the best here).
Typed, and checked with `mypy --strict` (python/scripts/test-wheel). Prints
OK, or exits non-zero on a mismatch."""

import asyncio
import sys

import iowait


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(port: int, n: int) -> None:
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    for i in range(20):
        message = f'client {n} line {i}\n'.encode()
        writer.write(message)
        await writer.drain()
        reply = await reader.readline()
        if reply != message:
            sys.exit(f'FAIL: client {n} sent {message!r}, got back {reply!r}')
    writer.close()
    await writer.wait_closed()


async def main() -> None:
    server = await asyncio.start_server(echo, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await asyncio.wait_for(asyncio.gather(*(client(port, n) for n in range(10))), timeout=30)


if __name__ == '__main__':
    selector = iowait.Selector(sys.argv[1] if len(sys.argv) > 1 else None)
    loop = asyncio.SelectorEventLoop(selector)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    print(f'asyncio on iowait.Selector ({selector.backend}): 10 clients x 20 lines echoed: OK')
