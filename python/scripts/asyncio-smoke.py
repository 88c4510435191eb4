"""asyncio.SelectorEventLoop(iowait.Selector()) with more sockets than
select() takes on Windows (512): 300 socket pairs, each read end watched by
loop.add_reader, one byte sent on each, every reader must fire; then a
stream echo through asyncio's own socket code. The GitHub workflow runs it
on Windows (afd) and macOS (kqueue); python/scripts/test-wheel runs it here.

    python asyncio-smoke.py [EXPECTED_BACKEND]

Exits non-zero, saying what went wrong, on any difference."""

from __future__ import annotations  # list[...] in signatures on Python 3.8

import asyncio
import socket
import sys

import iowait

PAIRS = 300


def raise_fd_limit(needed: int) -> None:
    # macOS starts programs with 256 open files; Windows has no such limit
    # on sockets (and no resource module).
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


async def readers_fire(loop: asyncio.AbstractEventLoop, pairs: list[tuple[socket.socket, socket.socket]]) -> int:
    fired: set[int] = set()
    done = loop.create_future()

    def on_read(i: int, sock: socket.socket) -> None:
        sock.recv(1)
        loop.remove_reader(sock)
        fired.add(i)
        if len(fired) == len(pairs) and not done.done():
            done.set_result(None)

    for i, (a, _) in enumerate(pairs):
        loop.add_reader(a, on_read, i, a)
    for _, b in pairs:
        b.send(b'x')
    await asyncio.wait_for(done, 10)
    return len(fired)


async def stream_echo() -> bytes:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'hello\n')
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    server.close()
    await server.wait_closed()
    return line


def main() -> None:
    expected = sys.argv[1] if len(sys.argv) > 1 else None
    raise_fd_limit(2 * PAIRS + 64)
    selector = iowait.Selector()
    if expected and selector.backend != expected:
        sys.exit(f'asyncio-smoke: iowait.Selector() chose {selector.backend}, expected {expected}')
    loop = asyncio.SelectorEventLoop(selector)
    pairs = [socket.socketpair() for _ in range(PAIRS)]
    try:
        for a, b in pairs:
            a.setblocking(False)
            b.setblocking(False)
        fired = loop.run_until_complete(readers_fire(loop, pairs))
        line = loop.run_until_complete(stream_echo())
    finally:
        loop.close()
        for a, b in pairs:
            a.close()
            b.close()
    if fired != PAIRS or line != b'hello\n':
        sys.exit(f'asyncio-smoke: {fired} of {PAIRS} readers fired, echo {line!r}')
    print(f'asyncio on iowait.Selector ({selector.backend}, {sys.platform}): '
          f'{fired} readers over {2 * PAIRS} sockets fired, stream echo {line!r}')


if __name__ == '__main__':
    main()
