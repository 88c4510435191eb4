"""Python's own expectations of a blocking call: the GIL is released, a
signal runs its handler and the wait goes on unless the handler raised
(PEP 475), Ctrl-C interrupts, notify() and close() reach a wait in progress."""

import os
import signal
import socket
import threading
import time

import pytest

from conftest import BACKENDS, CLASSES
from conformance_skip import SIGNALS_DO_NOT_END_A_WAIT


@pytest.fixture(params=BACKENDS)
def waiter(request):
    # wait() with nothing watched is a ValueError (P2): each waiter watches a
    # socket that never becomes ready, so that its waits block.
    idle, peer = socket.socketpair()
    with idle, peer, CLASSES[request.param]() as w:
        w.watch(idle, read=True)
        yield w


@pytest.fixture
def signal_waiter(waiter):
    if waiter.backend in SIGNALS_DO_NOT_END_A_WAIT:
        pytest.skip(SIGNALS_DO_NOT_END_A_WAIT[waiter.backend])
    return waiter


def later(delay, fn):
    t = threading.Timer(delay, fn)
    t.start()
    return t


def test_the_gil_is_released_while_waiting(waiter):
    counted = 0
    stop = False

    def count():
        nonlocal counted
        while not stop:
            counted += 1
            time.sleep(0.001)
    t = threading.Thread(target=count)
    t.start()
    try:
        before = counted
        assert waiter.wait(0.3) == []
        during = counted - before
    finally:
        stop = True
        t.join()
    assert during > 20, 'another thread could not run while wait() blocked'


def test_notify_from_another_thread_wakes_a_blocking_wait(waiter):
    t = later(0.05, waiter.notify)
    start = time.monotonic()
    assert waiter.wait() == []
    assert time.monotonic() - start < 5
    t.join()


def test_notify_before_wait_makes_the_next_wait_return_at_once(waiter):
    waiter.notify()
    waiter.notify()
    start = time.monotonic()
    assert waiter.wait(10) == []
    assert time.monotonic() - start < 5
    assert waiter.wait(0.01) == []  # merged: one wake only


def test_close_from_another_thread_ends_a_wait_in_progress(waiter):
    t = later(0.05, waiter.close)
    start = time.monotonic()
    assert waiter.wait(10) == []
    assert time.monotonic() - start < 5
    t.join()
    assert waiter.closed
    with pytest.raises(ValueError):
        waiter.wait(0)


def test_watch_from_another_thread_reaches_a_wait_in_progress(waiter):
    a, b = socket.socketpair()
    with a, b:
        b.send(b'x')
        t = later(0.05, lambda: waiter.watch(a, read=True))
        events = waiter.wait(10)
        t.join()
        assert [e.fileobj for e in events] == [a]


class Interrupt(Exception):
    pass


def with_alarm(handler, delay, fn):
    old = signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def test_a_signal_handler_that_raises_ends_the_wait(signal_waiter):
    waiter = signal_waiter
    def handler(signum, frame):
        raise Interrupt
    start = time.monotonic()
    with pytest.raises(Interrupt):
        with_alarm(handler, 0.05, lambda: waiter.wait(10))
    assert time.monotonic() - start < 5
    assert waiter.wait(0) == []  # still usable


def test_a_signal_handler_that_returns_lets_the_wait_go_on_for_the_time_left(waiter):
    ran = []
    start = time.monotonic()
    assert with_alarm(lambda s, f: ran.append(s), 0.05, lambda: waiter.wait(0.3)) == []
    assert time.monotonic() - start >= 0.3
    assert ran == [signal.SIGALRM]


def test_ctrl_c_interrupts_a_blocking_wait(signal_waiter):
    waiter = signal_waiter
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        t = later(0.05, lambda: os.kill(os.getpid(), signal.SIGINT))
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            waiter.wait()
        assert time.monotonic() - start < 5
        t.join()
    finally:
        signal.signal(signal.SIGINT, old)
