"""Shared fixtures: every backend of this build, socket objects or raw fds."""

import os
import socket

import pytest

import iowait

# The backends this machine can use, best first: for loops over them.
AVAILABLE = iowait.available_backends()
CLASSES = {'epoll': iowait.EPollIOWait, 'poll': iowait.PollIOWait, 'select': iowait.SelectIOWait,
           'kqueue': iowait.KQueueIOWait, 'io_uring': iowait.IOUringIOWait, 'afd': iowait.AFDIOWait,
           'wsapoll': iowait.WSAPollIOWait}


def _refusal(backend):
    try:
        CLASSES[backend]().close()
    except Exception as e:  # noqa: BLE001 (the reason is all that is wanted)
        return f'{type(e).__name__}: {e}'
    return 'refused when the tests started'


# Every backend this build has that this machine refuses, with the reason.
REFUSED = {b: _refusal(b) for b in iowait._iowait._compiled_backends.split(',') if b and b not in AVAILABLE}

# For parametrize: every backend of this build; one this machine refuses is
# a skip that names it and says why, never a test left out in silence.
BACKENDS = AVAILABLE + [pytest.param(b, marks=pytest.mark.skip(reason=f'{b} is not available here: {why}'))
                        for b, why in REFUSED.items()]


def pytest_report_header(config):
    refused = ''.join(f'; refused here (not tested): {b} ({why})' for b, why in REFUSED.items())
    return f'iowait from {iowait.__file__}; backends here: {", ".join(AVAILABLE)}{refused}'


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
