"""The seed's API on every backend x {socket objects, raw fds} x
{wait, watch, close, random stress}: the pattern of the original's own tests."""

import gc
import os
import random
import socket
import tempfile
import time
import warnings
from decimal import Decimal
from fractions import Fraction

import pytest

import iowait
from conftest import AVAILABLE, BACKENDS, CLASSES, drain, fds, fill, no_fd_leak


# --- wait -------------------------------------------------------------------

def test_readable_after_peer_writes_and_the_event_carries_the_watched_object(waiter, pair):
    waiter.watch(pair.a, read=True)
    assert waiter.wait(0) == []
    pair.sb.send(b'this is a test')
    events = waiter.wait(5)
    assert len(events) == 1
    assert events[0].fileobj is pair.a
    assert (events[0].read, events[0].write) == (True, False)
    assert events[0] == (pair.a, True, False) and isinstance(events[0], iowait.IOEvent)
    assert pair.sa.recv(100) == b'this is a test'
    assert waiter.wait(0) == []


def test_writable_until_the_send_buffer_is_full(waiter, pair):
    waiter.watch(pair.a, write=True)
    assert fds(waiter.wait(0)) == [(pair.sa.fileno(), False, True)]
    fill(pair.sa)
    assert waiter.wait(0) == []
    drain(pair.sb)
    assert fds(waiter.wait(5)) == [(pair.sa.fileno(), False, True)]


def test_one_event_with_read_and_write_merged(waiter, pair):
    waiter.watch(pair.a, read=True, write=True)
    pair.sb.send(b'x')
    assert fds(waiter.wait(5)) == [(pair.sa.fileno(), True, True)]


def test_peer_close_is_readable(waiter, pair):
    waiter.watch(pair.a, read=True)
    pair.sb.close()
    events = waiter.wait(5)
    assert [(e.fileobj, e.read) for e in events] == [(pair.a, True)]
    assert pair.sa.recv(10) == b''


def test_timeouts_are_honoured_and_accept_int_and_float(waiter, pair):
    waiter.watch(pair.a, read=True)
    for timeout in (0.05, 0.001):
        start = time.monotonic()
        assert waiter.wait(timeout) == []
        assert time.monotonic() - start >= timeout
    pair.sb.send(b'x')
    start = time.monotonic()
    assert len(waiter.wait(30)) == 1  # an int; returns at once since a file is ready
    assert time.monotonic() - start < 5


@pytest.mark.parametrize('timeout, error', [
    (-1, ValueError), (-0.5, ValueError), (float('nan'), ValueError),
    (1e300, OverflowError), (float('inf'), OverflowError), (2**100, OverflowError),
    ('1', TypeError), (b'1', TypeError), ([], TypeError)])
def test_bad_timeouts_raise_what_select_raises_and_leave_the_object_usable(waiter, pair, timeout, error):
    import select
    with pytest.raises(error):
        select.select([], [], [], timeout)  # the standard library's answer, checked here too
    with pytest.raises(error):
        waiter.wait(timeout)
    waiter.watch(pair.a, read=True)
    pair.sb.send(b'x')
    assert len(waiter.wait(5)) == 1


@pytest.mark.parametrize('timeout', [float('-inf'), -1e300, -10**30, -2**63 - 1])
def test_every_negative_timeout_is_a_value_error_however_large(waiter, pair, timeout):
    # help(wait) promises ValueError for a negative timeout; select.select()
    # says OverflowError for these, as it checks the range before the sign.
    waiter.watch(pair.a, read=True)
    with pytest.raises(ValueError, match=r'wait\(\): timeout must be non-negative'):
        waiter.wait(timeout)
    assert waiter.wait(0) == [], 'still usable'


@pytest.mark.parametrize('timeout', [Fraction(1, 100), Decimal('0.01'), True, 0.0])
def test_any_real_number_is_a_timeout(waiter, pair, timeout):
    # As EpollSelector.select() accepts any real number.
    waiter.watch(pair.a, read=True)
    assert waiter.wait(timeout) == []
    with iowait.Selector() as s:
        s.register(pair.a, 1)
        assert s.select(timeout) == []
        assert s.select(-Fraction(1, 3)) == [], 'negative: poll, as selectors'
        pair.sb.send(b'x')
        assert [k.fileobj for k, _ in s.select(Fraction(1, 10))] == [pair.a]


@pytest.mark.parametrize('call', ['wait', 'watch_timer'])
@pytest.mark.parametrize('value, error, words', [
    ('1', TypeError, 'must be a real number of seconds'), (None, TypeError, 'must be a real number of seconds'),
    (float('inf'), OverflowError, 'is too large'), (2**100, OverflowError, 'is too large'),
    (-1, ValueError, 'must be non-negative'), (float('nan'), ValueError, 'is NaN')])
def test_bad_durations_name_the_call_and_the_parameter(waiter, pair, call, value, error, words):
    waiter.watch(pair.a, read=True)
    if call == 'wait' and value is None:
        return  # blocks: not an error
    name = 'first' if call == 'watch_timer' else 'timeout'
    with pytest.raises(error) as e:
        getattr(waiter, call)(value)
    assert str(e.value).startswith(f'iowait: {call}(): {name} {words}'), str(e.value)
    if call == 'watch_timer':
        with pytest.raises(error) as e:
            waiter.watch_timer(1, value)
        assert str(e.value).startswith(f'iowait: watch_timer(): period {words}'), str(e.value)
    assert len(waiter) == 1 and waiter.wait(0) == [], 'nothing changed'


def test_regular_files_are_always_ready(waiter):
    with tempfile.TemporaryFile() as f:
        waiter.watch(f, read=True, write=True)
        assert [(e.fileobj, e.read, e.write) for e in waiter.wait(5)] == [(f, True, True)]
        waiter.unwatch(f)


# --- watch ------------------------------------------------------------------

def test_watching_again_replaces_the_interest(waiter, pair):
    waiter.watch(pair.a, read=True)
    waiter.watch(pair.a, write=True)
    assert fds(waiter.wait(0)) == [(pair.sa.fileno(), False, True)]
    assert len(waiter) == 1
    waiter.modify(pair.a, read=True)
    assert waiter.wait(0) == []
    assert waiter.get_watched() == [(pair.a, True, False)]


def test_neither_read_nor_write_is_a_value_error(waiter, pair):
    with pytest.raises(ValueError):
        waiter.watch(pair.a)
    with pytest.raises(ValueError):
        waiter.watch(pair.a, read=False, write=0)
    assert waiter.get_watched() == []


def test_unwatch_and_modify_of_an_unwatched_file_are_key_errors_and_value_errors(waiter, pairs):
    p, other = pairs(), pairs()
    waiter.watch(other.a, read=True)  # so that wait() has a file to wait for
    for call in (lambda: waiter.unwatch(p.a), lambda: waiter.modify(p.a, read=True)):
        with pytest.raises(iowait.NotWatchedError) as e:
            call()
        # KeyError as the original's code (and selectors) raised, ValueError as its documentation said.
        assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
        assert e.value.args == (p.a,)
    waiter.watch(p.a, read=True)
    waiter.unwatch(p.a)
    with pytest.raises(KeyError):
        waiter.unwatch(p.a)
    p.sb.send(b'x')
    assert waiter.wait(0) == []


class FilenoRaises:
    def fileno(self):
        raise ZeroDivisionError('no fd here')


class FilenoNotInt:
    def fileno(self):
        return '3'


@pytest.mark.parametrize('bad, error', [
    (-1, ValueError), (FilenoRaises(), ZeroDivisionError), (FilenoNotInt(), TypeError),
    (object(), TypeError), ('3', TypeError), (3.0, TypeError), (2**70, OverflowError)])
def test_bad_files_raise_what_select_raises_and_leave_the_object_usable(waiter, pair, bad, error):
    import select
    with pytest.raises(error):
        select.select([bad], [], [], 0)
    with pytest.raises(error):
        waiter.watch(bad, read=True)
    with pytest.raises(error):
        waiter.unwatch(bad)
    assert waiter.get_watched() == []
    waiter.watch(pair.a, read=True)
    pair.sb.send(b'x')
    assert len(waiter.wait(5)) == 1


def test_a_fd_that_is_not_open_is_oserror_ebadf(waiter):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as e:
        waiter.watch(r, read=True)
    assert e.value.errno == 9
    assert waiter.get_watched() == []


def test_a_closed_socket_is_a_value_error_to_watch_but_can_be_unwatched(waiter, pair):
    waiter.watch(pair.a, read=True)
    pair.sa.close()
    if not isinstance(pair.a, int):
        with pytest.raises(ValueError):
            waiter.watch(pair.a, read=True)
    assert waiter.wait(0) == []  # closed: never reported
    waiter.unwatch(pair.a)
    assert waiter.get_watched() == []


def test_get_watched_and_clear(waiter, pairs):
    ps = [pairs() for _ in range(3)]
    for p in ps:
        waiter.watch(p.a, read=True)
    waiter.watch(ps[0].b, write=True)
    watched = waiter.get_watched()
    assert all(type(e) is iowait.IOEvent for e in watched)
    assert sorted(repr(tuple(e)) for e in watched) == sorted(
        [repr((p.a, True, False)) for p in ps] + [repr((ps[0].b, False, True))])
    waiter.clear()
    assert waiter.get_watched() == [] and len(waiter) == 0
    ps[1].sb.send(b'x')
    with pytest.raises(ValueError):
        waiter.wait(0)  # nothing watched
    waiter.watch(ps[1].a, read=True)
    assert len(waiter.wait(5)) == 1


def test_select_backend_refuses_fds_at_or_above_fd_setsize_with_selects_error():
    if 'select' not in AVAILABLE:
        pytest.skip('no select backend in this build')
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1100:
        pytest.skip(f'RLIMIT_NOFILE hard limit {hard} leaves no fd above 1024')
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    try:
        r, w = os.pipe()
        high = os.dup2(r, 1050)
        with iowait.SelectIOWait() as s:
            with pytest.raises(ValueError, match='out of range'):
                s.watch(high, read=True)
            s.watch(r, read=True)
            os.write(w, b'x')
            assert len(s.wait(5)) == 1
        with iowait.PollIOWait() as p:
            p.watch(high, read=True)
            assert len(p.wait(5)) == 1
    finally:
        for fd in (r, w, high):
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- close ------------------------------------------------------------------

@pytest.mark.parametrize('backend', BACKENDS)
def test_close_is_idempotent_and_every_call_afterwards_is_a_value_error(backend, pair):
    w = CLASSES[backend]()
    w.watch(pair.a, read=True)
    w.close()
    w.close()
    assert w.closed
    for call in (lambda: w.watch(pair.a, read=True), lambda: w.modify(pair.a, read=True),
                 lambda: w.unwatch(pair.a), lambda: w.wait(0), lambda: w.wait(),
                 w.get_watched, w.clear, w.notify, lambda: w.__enter__()):
        with pytest.raises(ValueError):
            call()


@pytest.mark.parametrize('backend', BACKENDS)
def test_context_manager_closes(backend, pair):
    with CLASSES[backend]() as w:
        w.watch(pair.a, read=True)
        assert w.backend == backend
    assert w.closed
    with pytest.raises(ValueError):
        w.wait(0)


@pytest.mark.parametrize('backend', BACKENDS)
def test_an_unclosed_iowait_collected_is_a_resource_warning(backend):
    w = CLASSES[backend]()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        del w
        gc.collect()
    assert [c.category for c in caught] == [ResourceWarning]
    assert 'unclosed' in str(caught[0].message)
    closed = CLASSES[backend]()
    closed.close()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        del closed
        gc.collect()
    assert caught == []


@pytest.mark.parametrize('backend', BACKENDS)
def test_closing_releases_every_fd(backend):
    before = no_fd_leak()
    for _ in range(50):
        with CLASSES[backend]() as w:
            w.watch(0, read=True)
    assert no_fd_leak() == before


def test_a_watched_fd_closed_without_unwatch_is_never_reported_and_does_not_spin(waiter, pair):
    waiter.watch(pair.a, read=True)
    pair.sb.send(b'x')
    pair.sa.close()
    start = time.monotonic()
    assert waiter.wait(0.1) == []
    assert time.monotonic() - start >= 0.1
    waiter.unwatch(pair.a)


@pytest.mark.parametrize('name', ['IOWait', 'EPollIOWait', 'PollIOWait', 'SelectIOWait', 'KQueueIOWait',
                                  'IOUringIOWait'])
def test_available_follows_the_core(name):
    cls = getattr(iowait, name)
    assert issubclass(cls, iowait.AbstractIOWait)
    assert cls.available == (cls._backend in iowait.available_backends())
    if cls.available:
        cls().close()
    else:
        with pytest.raises(NotImplementedError) as e:
            cls()
        # Python's words: the mechanism, not the C++ call (IOWait(Backend)).
        assert str(e.value).startswith(f'iowait: {cls._backend} is not available here'), str(e.value)
        assert 'IOWait(' not in str(e.value) and 'Backend' not in str(e.value)


# --- random stress ------------------------------------------------------------

def test_random_operations_match_a_model(waiter, pairs):
    """Random watch/modify/unwatch/send/recv/fill/drain; after each step,
    wait(0) must report exactly what the model says is ready."""
    rng = random.Random(0x10_3A17)
    ps = [pairs() for _ in range(12)]
    interest = {}   # pair index -> (read, write)
    pending = [0] * len(ps)   # bytes waiting in a's receive buffer
    full = [False] * len(ps)  # a's send buffer is full
    for step in range(600):
        i = rng.randrange(len(ps))
        p = ps[i]
        op = rng.choice(['watch', 'watch', 'modify', 'unwatch', 'send', 'recv', 'fill', 'drain'])
        if op in ('watch', 'modify'):
            r, w = rng.choice([(True, False), (False, True), (True, True)])
            if op == 'modify' and i not in interest:
                with pytest.raises(KeyError):
                    waiter.modify(p.a, read=r, write=w)
                continue
            getattr(waiter, op)(p.a, read=r, write=w)
            interest[i] = (r, w)
        elif op == 'unwatch':
            if i in interest:
                waiter.unwatch(p.a)
                del interest[i]
            else:
                with pytest.raises(KeyError):
                    waiter.unwatch(p.a)
        elif op == 'send':
            pending[i] += p.sb.send(b'y' * rng.randint(1, 100))
        elif op == 'recv' and pending[i]:
            pending[i] -= len(p.sa.recv(pending[i]))
        elif op == 'fill':
            fill(p.sa)
            full[i] = True
        elif op == 'drain':
            drain(p.sb)
            full[i] = False
        expected = sorted((ps[j].sa.fileno(), r and pending[j] > 0, w and not full[j])
                          for j, (r, w) in interest.items() if (r and pending[j] > 0) or (w and not full[j]))
        assert fds(waiter.wait(0)) == expected, f'step {step}: {op} on pair {i}'
        for e in waiter.wait(0):
            assert any(e.fileobj is ps[j].a for j in interest)


@pytest.mark.parametrize('backend', BACKENDS)
def test_a_cycle_through_the_watched_objects_is_collected(backend):
    import weakref

    class Holder:
        def __init__(self, w):
            self.w = w  # the watched object refers back to its IOWait

        def fileno(self):
            return 0

    w = CLASSES[backend]()
    h = Holder(w)
    w.watch(h, read=True)
    dead_w, dead_h = weakref.ref(w), weakref.ref(h)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', ResourceWarning)  # unclosed on purpose
        del w, h
        gc.collect()
    assert dead_w() is None and dead_h() is None


def test_a_selector_in_a_cycle_with_its_keys_is_collected():
    import weakref
    s = iowait.Selector()
    s.register(0, 1, s)  # data refers back to the selector, as asyncio's do through the loop
    dead = weakref.ref(s)
    del s
    gc.collect()
    assert dead() is None
