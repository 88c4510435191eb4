"""The session from the original Python module's page (iowait 0.2), as a
program: a socket pair, a read watch, "this is a test" sent, the read event,
recv, and wait(0) empty; then the same through asyncio on iowait.Selector.
Typed, and checked with `mypy --strict` (python/scripts/test-wheel), which
sees every call through the package's stubs. Exits non-zero on a mismatch.
Runs wherever the module does: socket.socketpair() is a loopback TCP pair on
Windows, where the best backend is afd."""

import asyncio
import socket
import sys

import iowait


def seed_session() -> None:
    a, b = socket.socketpair()
    with a, b, iowait.IOWait() as waitobj:
        print(f'backend: {waitobj.backend}')
        waitobj.watch(a, read=True)
        b.sendall(b'this is a test')
        events: list[iowait.IOEvent] = waitobj.wait()
        print(events)
        if len(events) != 1 or events[0].fileobj is not a or not events[0].read:
            sys.exit(f'FAIL: expected a read event on {a!r}, got {events!r}')
        data = a.recv(14)
        print(data)
        if data != b'this is a test':
            sys.exit(f'FAIL: recv returned {data!r}')
        if waitobj.wait(0):
            sys.exit('FAIL: wait(0) should be empty')
        print('wait(0): []')


async def echo_once(loop: asyncio.AbstractEventLoop) -> bytes:
    a, b = socket.socketpair()
    with a, b:
        a.setblocking(False)
        b.setblocking(False)
        await loop.sock_sendall(b, b'ping')
        return await loop.sock_recv(a, 4)


def asyncio_session() -> None:
    selector = iowait.Selector()
    loop = asyncio.SelectorEventLoop(selector)
    try:
        reply = loop.run_until_complete(echo_once(loop))
    finally:
        loop.close()
    print(f'asyncio on iowait.Selector ({selector.backend}): {reply!r}')
    if reply != b'ping':
        sys.exit(f'FAIL: asyncio received {reply!r}')


if __name__ == '__main__':
    seed_session()
    asyncio_session()
