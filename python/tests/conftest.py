"""Shared fixtures: every backend of this build, socket objects or raw fds."""

import os
import socket

import pytest

import iowait

BACKENDS = iowait.available_backends()
CLASSES = {'epoll': iowait.EPollIOWait, 'poll': iowait.PollIOWait, 'select': iowait.SelectIOWait,
           'kqueue': iowait.KQueueIOWait, 'io_uring': iowait.IOUringIOWait, 'afd': iowait.AFDIOWait,
           'wsapoll': iowait.WSAPollIOWait}


def pytest_report_header(config):
    return f'iowait from {iowait.__file__}; backends here: {", ".join(BACKENDS)}'


@pytest.fixture(params=BACKENDS)
def waiter(request):
    with CLASSES[request.param]() as w:
        yield w


class Pair:
    """A connected socket pair; `a`/`b` are what is handed to IOWait:
    the socket objects themselves, or their raw fds (ints)."""

    def __init__(self, raw):
        self.sa, self.sb = socket.socketpair()
        self.sa.setblocking(False)
        self.sb.setblocking(False)
        self.a = self.sa.fileno() if raw else self.sa
        self.b = self.sb.fileno() if raw else self.sb

    def close(self):
        self.sa.close()
        self.sb.close()


@pytest.fixture(params=['socket', 'fd'])
def pairs(request):
    made = []

    def make():
        p = Pair(request.param == 'fd')
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


@pytest.fixture
def pair(pairs):
    return pairs()


def fill(sock):
    """Writes until the send buffer is full."""
    try:
        while True:
            sock.send(b'x' * 65536)
    except BlockingIOError:
        pass


def drain(sock):
    try:
        while sock.recv(65536):
            pass
    except BlockingIOError:
        pass


def fds(events):
    return sorted((e.fileobj if isinstance(e.fileobj, int) else e.fileobj.fileno(), e.read, e.write)
                  for e in events)


def no_fd_leak():
    return len(os.listdir('/proc/self/fd'))
