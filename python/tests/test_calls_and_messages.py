"""What a wrong call or a bad argument says, on every backend: the standard
library's exception and words, naming the public call and its parameters,
never the binding layer's ("incompatible function arguments", _Poller)."""

import errno
import os
import resource
import select
import selectors
import signal
import socket
import threading
import time

import pytest

import iowait
from conftest import BACKENDS

BINDING_WORDS = ('incompatible function arguments', '_iowait', '_Poller', '_register', '_select', 'arg0',
                 'Invoked with', '_CoreIOWait')


def no_binding_words(message):
    return not any(word in message for word in BINDING_WORDS)


@pytest.mark.parametrize('call, words', [
    (lambda w: w.wait(0, 1), '.wait(timeout=None) takes at most 1 argument (2 given)'),
    (lambda w: w.wait(tmo=1), ".wait(timeout=None) got an unexpected keyword argument 'tmo'"),
    (lambda w: w.notify(1), '.notify() takes no arguments (1 given)'),
    (lambda w: w.close(1), '.close() takes no arguments (1 given)'),
    (lambda w: w.get_watched(None), '.get_watched() takes no arguments (1 given)'),
    (lambda w: w.watch(), ".watch(fileobj, read=False, write=False) missing required argument 'fileobj' (pos 1)"),
    (lambda w: w.watch(0, 1, 0, 1), '.watch(fileobj, read=False, write=False) takes at most 3 arguments (4 given)'),
    (lambda w: w.modify(0, True, read=True), ".modify(fileobj, read=False, write=False) got multiple values for "
                                              "argument 'read'"),
    (lambda w: w.unwatch(), ".unwatch(fileobj) missing required argument 'fileobj' (pos 1)"),
    (lambda w: w.watch_timer(), "IOWait.watch_timer() missing 1 required positional argument: 'first'"),
    (lambda w: w.watch_signal(1, 2), 'IOWait.watch_signal() takes 2 positional arguments but 3 were given'),
    (lambda w: w.__len__(1), '.__len__() takes no arguments (1 given)'),
    (lambda w: type(w)(1), 'IOWait.__init__() takes 1 positional argument but 2 were given'),
])
def test_a_wrong_call_names_the_public_method_and_its_parameters(waiter, call, words):
    with pytest.raises(TypeError) as e:
        call(waiter)
    message = str(e.value)
    assert words in message and no_binding_words(message), message
    if words.startswith('.'):  # the methods of the core name the very class
        assert message.startswith(type(waiter).__name__ + '.'), message


@pytest.mark.parametrize('backend', BACKENDS)
def test_the_selectors_wrong_calls_and_bad_numbers_read_as_selectors(backend):
    with iowait.Selector(backend) as s:
        with pytest.raises(TypeError) as e:
            s.select(0, 1)
        assert str(e.value) == 'Selector.select(timeout=None) takes at most 1 argument (2 given)'
        for fd in (2**31, 2**63, 2**100):
            with pytest.raises(OverflowError) as e:  # as EpollSelector and PollSelector
                s.register(fd, selectors.EVENT_READ)
            assert no_binding_words(str(e.value)), str(e.value)
            with pytest.raises(OverflowError):
                selectors.PollSelector().register(fd, selectors.EVENT_READ)
        assert len(s.get_map()) == 0, 'a refused register leaves nothing behind'
    with pytest.raises(TypeError) as e:
        iowait.Selector(3)
    assert 'backend must be a str or None, not int' in str(e.value) and no_binding_words(str(e.value))


def test_a_closed_socket_unwatched_again_is_not_watched_also_after_its_number_is_reused(waiter):
    a, b = socket.socketpair()
    number = a.fileno()
    with b:
        waiter.watch(a, read=True)
        waiter.unwatch(a)
        a.close()
        with pytest.raises(iowait.NotWatchedError) as e:
            waiter.unwatch(a)
        assert isinstance(e.value, KeyError) and e.value.args == (a,)
        c, d = socket.socketpair()
        with c, d:
            assert number in (c.fileno(), d.fileno()), 'the number is reused'
            reused = c if c.fileno() == number else d
            waiter.watch(reused, read=True)
            with pytest.raises(iowait.NotWatchedError):
                waiter.unwatch(a)
            assert waiter.get_watched() == [iowait.IOEvent(reused, True, False)], 'the new file stays watched'
            waiter.unwatch(reused)
    with pytest.raises(ValueError) as e:  # a negative int is still bad input, as select.select() says
        waiter.unwatch(-1)
    assert 'negative' in str(e.value)


def test_a_wait_from_a_signal_handler_during_a_wait_in_the_same_thread_says_so(waiter):
    if not hasattr(signal, 'pthread_kill'):
        pytest.skip('needs signal.pthread_kill() to interrupt the waiting thread (POSIX)')
    if threading.current_thread() is not threading.main_thread():
        pytest.skip('Python runs signal handlers in the main thread only')
    idle, peer = socket.socketpair()
    seen = []

    def handler(signo, frame):
        try:
            waiter.wait(0)
            seen.append('no error')
        except RuntimeError as e:
            seen.append(str(e))

    def interrupt():
        # Once the wait is in progress (its count of kernel waits has moved),
        # until the handler has run: a signal that arrives just before the
        # kernel wait begins is run at the next interruption, still inside it.
        deadline = time.monotonic() + 5
        while waiter._core_waits == before and time.monotonic() < deadline:
            time.sleep(0.001)
        while not seen and time.monotonic() < deadline:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGUSR1)
            time.sleep(0.01)
        waiter.notify()

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        with idle, peer:
            waiter.watch(idle, read=True)
            before = waiter._core_waits
            t = threading.Thread(target=interrupt)
            t.start()
            assert waiter.wait(10) == []
            t.join()
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert seen, 'the handler ran'
    assert 'called again in the thread whose wait is in progress' in seen[0], seen
    assert 'another thread' not in seen[0], seen


def test_a_full_fd_table_below_fd_setsize_says_why_select_cannot_start():
    if 'select' not in BACKENDS:
        pytest.skip('select is not available here')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f'needs 1100 fds, the hard limit is {hard}')
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    opened = []
    try:
        while True:  # every number below FD_SETSIZE (1024) open
            fd = os.open(os.devnull, os.O_RDONLY)
            opened.append(fd)
            if fd >= 1023:
                break
        with pytest.raises(OSError) as e:
            iowait.SelectIOWait()
        message = str(e.value)
        assert e.value.errno == errno.EMFILE
        assert 'iowait: cannot set up select' in message and 'FD_SETSIZE' in message, message
        assert message.count(os.strerror(errno.EMFILE)) == 1, message
        assert 'IOWait(' not in message and 'Backend' not in message, message
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
