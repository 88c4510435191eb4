"""Real asyncio programs on asyncio.SelectorEventLoop(iowait.Selector())."""

import asyncio
import socket
import sys

import pytest

import iowait
from conftest import BACKENDS


@pytest.fixture(params=BACKENDS)
def loop(request):
    loop = asyncio.SelectorEventLoop(iowait.Selector(request.param))
    yield loop
    loop.close()


async def echo_server_and_clients(clients, rounds):
    async def handle(reader, writer):
        while data := await reader.readline():
            writer.write(data)
            await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(handle, '127.0.0.1', 0)
    port = server.sockets[0].getsockname()[1]

    async def client(n):
        reader, writer = await asyncio.open_connection('127.0.0.1', port)
        for i in range(rounds):
            line = f'client {n} round {i}\n'.encode()
            writer.write(line)
            await writer.drain()
            assert await reader.readline() == line
        writer.close()
        await writer.wait_closed()
        return n

    async with server:
        done = await asyncio.wait_for(asyncio.gather(*(client(n) for n in range(clients))), 30)
    return done


def test_tcp_echo_with_many_clients(loop):
    assert loop.run_until_complete(echo_server_and_clients(20, 50)) == list(range(20))


def test_timers_executor_and_call_soon_threadsafe(loop):
    async def main():
        start = loop.time()
        await asyncio.sleep(0.05)
        assert loop.time() - start >= 0.05
        # run_in_executor wakes the loop from another thread (its self-pipe).
        assert await loop.run_in_executor(None, sum, [1, 2, 3]) == 6
        fut = loop.create_future()
        import threading
        threading.Timer(0.02, loop.call_soon_threadsafe, (fut.set_result, 'woken')).start()
        return await asyncio.wait_for(fut, 10)
    assert loop.run_until_complete(main()) == 'woken'


def test_large_transfer_through_a_socket_pair(loop):
    a, b = socket.socketpair()
    payload = bytes(range(256)) * 8192  # 2 MiB: many partial writes and reads

    async def main():
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)
        wa.write(payload)
        wa.write_eof()
        got = await rb.read()
        wa.close()
        wb.close()
        return got
    assert loop.run_until_complete(main()) == payload


@pytest.mark.skipif(sys.platform == 'win32', reason='subprocess pipes via the selector loop are POSIX only')
def test_subprocess_pipes(loop):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, '-c', 'import sys; sys.stdout.write(sys.stdin.read().upper())',
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate(b'hello from iowait')
        return out, proc.returncode
    asyncio.set_event_loop(loop)
    try:
        assert loop.run_until_complete(main()) == (b'HELLO FROM IOWAIT', 0)
    finally:
        asyncio.set_event_loop(None)
