"""Rule R11: urgent (out-of-band) TCP data alone does not make a socket
readable, on every backend, for IOWait and Selector; with SO_OOBINLINE it is
data like any other. (The original's poll and epoll classes asked for
POLLPRI, and so reported such a socket readable while recv() would block.)"""

import socket
import time

import pytest

import iowait
from conftest import BACKENDS, CLASSES


@pytest.fixture
def tcp():
    with socket.create_server(('127.0.0.1', 0)) as server:
        a = socket.create_connection(server.getsockname())
        b, _ = server.accept()
    b.setblocking(False)
    with a, b:
        yield a, b


def send_urgent(a, b):
    a.send(b'!', socket.MSG_OOB)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # until b has it: out of band or inline
        for flags in (socket.MSG_OOB | socket.MSG_PEEK, socket.MSG_PEEK):
            try:
                if b.recv(1, flags):
                    return
            except (BlockingIOError, OSError):
                pass
        time.sleep(0.01)
    pytest.fail('the urgent byte did not arrive within 2 s')


@pytest.mark.parametrize('backend', BACKENDS)
def test_urgent_data_alone_is_not_readable_and_the_wait_sleeps(backend, tcp):
    a, b = tcp
    with CLASSES[backend]() as w, iowait.Selector(backend) as s:
        w.watch(b, read=True)
        s.register(b, 1)
        send_urgent(a, b)
        start = time.monotonic()
        assert w.wait(0.1) == []
        assert s.select(0.1) == []
        assert time.monotonic() - start >= 0.2  # slept: nothing reported, no spin
        with pytest.raises(BlockingIOError):
            b.recv(1)  # what "readable" would have promised
        a.send(b'x')
        assert [(e.fileobj, e.read) for e in w.wait(5)] == [(b, True)]
        assert [(k.fileobj, ev) for k, ev in s.select(5)] == [(b, 1)]


@pytest.mark.parametrize('backend', BACKENDS)
def test_inline_urgent_data_is_readable_like_any_data(backend, tcp):
    a, b = tcp
    b.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
    with CLASSES[backend]() as w, iowait.Selector(backend) as s:
        w.watch(b, read=True)
        s.register(b, 1)
        send_urgent(a, b)
        assert [(e.fileobj, e.read) for e in w.wait(5)] == [(b, True)]
        assert [(k.fileobj, ev) for k, ev in s.select(5)] == [(b, 1)]
        assert b.recv(1) == b'!'
        assert w.wait(0) == [] and s.select(0) == []
