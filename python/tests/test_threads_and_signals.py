"""Python's own expectations of a blocking call: the GIL is released, a
signal runs its handler and the wait goes on unless the handler raised
(PEP 475), Ctrl-C interrupts, notify() and close() reach a wait in progress."""

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


_about_to_wait = {}  # the thread about to wait, and the core's waits before it


def wait_in_progress(waiter, limit=5):
    """True once another thread is inside waiter.wait(): its core wait has
    begun and the thread sleeps in it (Linux: its state in /proc, twice in a
    row; elsewhere 0.2 s more); False after `limit` s. (A probing wait(0) no
    longer tells: several threads may wait at once.)"""
    deadline = time.monotonic() + limit
    about = None
    while time.monotonic() < deadline:
        about = _about_to_wait.get(id(waiter))
        if about and waiter._core_waits > about[1]:
            break
        time.sleep(0.0002)
    else:
        return False
    asleep = 0
    while asleep < 2 and time.monotonic() < deadline:
        try:
            with open(f'/proc/self/task/{about[0]}/stat') as f:
                state = f.read().rsplit(')', 1)[1].split()[0]
        except OSError:
            time.sleep(0.2)
            return True
        asleep = asleep + 1 if state == 'S' else 0
        time.sleep(0.002)
    return asleep >= 2


def wait_retrying(waiter, timeout=None):
    """waiter.wait(timeout), announced for wait_in_progress()."""
    _about_to_wait[id(waiter)] = (threading.get_native_id(), waiter._core_waits)
    return waiter.wait(timeout)


def once_waiting(waiter, fn):
    """Runs fn in another thread as soon as waiter.wait() is in progress;
    the thread, and a list that holds whether it was seen in progress."""
    seen = []

    def run():
        seen.append(wait_in_progress(waiter))
        fn()
    t = threading.Thread(target=run)
    t.start()
    return t, seen


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
    t, seen = once_waiting(waiter, waiter.notify)
    start = time.monotonic()
    assert wait_retrying(waiter) == []
    assert time.monotonic() - start < 5
    t.join()
    assert seen == [True], 'the wait was never seen in progress'


def test_notify_before_wait_makes_the_next_wait_return_at_once(waiter):
    waiter.notify()
    waiter.notify()
    start = time.monotonic()
    assert waiter.wait(10) == []
    assert time.monotonic() - start < 5
    assert waiter.wait(0.01) == []  # merged: one wake only


def test_close_from_another_thread_ends_a_wait_in_progress(waiter):
    t, seen = once_waiting(waiter, waiter.close)
    start = time.monotonic()
    assert wait_retrying(waiter, 10) == []
    assert time.monotonic() - start < 5
    t.join()
    assert seen == [True], 'the wait was never seen in progress'
    assert waiter.closed
    with pytest.raises(ValueError):
        waiter.wait(0)


def test_watch_from_another_thread_reaches_a_wait_in_progress(waiter):
    a, b = socket.socketpair()
    with a, b:
        b.send(b'x')
        t, seen = once_waiting(waiter, lambda: waiter.watch(a, read=True))
        events = wait_retrying(waiter, 10)  # one wait: the one in progress
        t.join()
        assert seen == [True], 'the wait was never seen in progress'
        assert [e.fileobj for e in events] == [a]


class Interrupt(Exception):
    pass


def signalling_the_wait(waiter, signum, handler, fn):
    """Runs fn() (which waits on waiter) in this, the main thread, with
    `handler` for signum, while another thread sends signum to this thread
    once the wait is in progress, and again every 20 ms until fn returns: one
    signal could land between the module's check and the kernel wait, which
    would then not see it. The handler must tolerate the later ones."""
    done = threading.Event()
    seen = []

    def send():
        seen.append(wait_in_progress(waiter))
        while not done.is_set():
            signal.pthread_kill(threading.main_thread().ident, signum)
            done.wait(0.02)
    old = signal.signal(signum, handler)
    t = threading.Thread(target=send)
    t.start()
    try:
        return fn()
    finally:
        done.set()
        t.join()  # every signal it sent has reached this thread now
        signal.signal(signum, old)
        assert seen == [True], 'the wait was never seen in progress'


def test_a_signal_handler_that_raises_ends_the_wait(signal_waiter):
    waiter = signal_waiter
    ran = []

    def handler(signum, frame):
        ran.append(signum)
        if len(ran) == 1:
            raise Interrupt
    start = time.monotonic()
    with pytest.raises(Interrupt):
        signalling_the_wait(waiter, signal.SIGALRM, handler, lambda: wait_retrying(waiter, 10))
    assert time.monotonic() - start < 5
    assert waiter.wait(0) == []  # still usable


def test_a_signal_handler_that_returns_lets_the_wait_go_on_for_the_time_left(waiter):
    ran = []
    start = time.monotonic()
    assert signalling_the_wait(waiter, signal.SIGALRM, lambda s, f: ran.append(s),
                               lambda: wait_retrying(waiter, 0.3)) == []
    assert time.monotonic() - start >= 0.3
    assert ran and set(ran) == {signal.SIGALRM}


def test_ctrl_c_interrupts_a_blocking_wait(signal_waiter):
    waiter = signal_waiter
    ran = []

    def handler(signum, frame):  # Python's own Ctrl-C handler, once
        ran.append(signum)
        if len(ran) == 1:
            signal.default_int_handler(signum, frame)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        signalling_the_wait(waiter, signal.SIGINT, handler, lambda: wait_retrying(waiter))
    assert time.monotonic() - start < 5
