"""What programs written for the original iowait (0.1, 0.2) rely on,
checked with our own tests; the original's own test files run through
python/scripts/run-original-tests (see docs/python.md)."""

import os
import pydoc
import re
import socket
import subprocess
import sys
import time
import warnings

import pytest

import iowait
from iowait import IOEvent
from conftest import AVAILABLE, BACKENDS, CLASSES

# --- IOEvent ------------------------------------------------------------------


def test_ioevent_read_and_write_default_to_false_and_are_stored_as_bools():
    assert IOEvent(7) == (7, False, False)
    e = IOEvent('f', read=[1], write='')
    assert e == ('f', True, False) and type(e.read) is bool and type(e.write) is bool
    assert IOEvent(7, 2, 0.0) == (7, True, False)
    assert e._fields == ('fileobj', 'read', 'write') and isinstance(e, tuple)


@pytest.mark.parametrize('kwargs', [{}, {'read': True}, {'write': True}, {'read': True, 'write': True}])
def test_ioevent_without_a_file_is_a_type_error(kwargs):
    with pytest.raises(TypeError):
        IOEvent(**kwargs)


# --- watch(event), get_watched() -------------------------------------------------


def test_watch_takes_an_ioevent_in_place_of_its_three_arguments(waiter, pair):
    waiter.watch(IOEvent(pair.a, write=True))
    assert waiter.get_watched() == [(pair.a, False, True)]
    assert waiter.get_watched()[0].fileobj is pair.a
    waiter.watch(IOEvent(pair.a, read=True))  # watched: the interest is replaced
    pair.sb.send(b'x')
    assert waiter.wait(5) == [IOEvent(pair.a, True, False)]
    waiter.modify(IOEvent(pair.a, write=True))
    assert waiter.wait(5) == [IOEvent(pair.a, False, True)]


@pytest.mark.parametrize('extra', [(True,), (False,), (None, True)])
def test_an_ioevent_with_more_arguments_is_a_type_error_and_changes_nothing(waiter, pair, extra):
    for call in (waiter.watch, waiter.modify):
        with pytest.raises(TypeError):
            call(IOEvent(pair.a, read=True), *extra)
    with pytest.raises(TypeError):
        waiter.watch(IOEvent(pair.a, read=True), write=True)
    assert waiter.get_watched() == []


def test_an_ioevent_with_neither_read_nor_write_is_a_value_error(waiter, pair):
    with pytest.raises(ValueError):
        waiter.watch(IOEvent(pair.a))
    assert waiter.get_watched() == []


def test_ioevents_made_by_the_namedtuple_helpers_hold_bools_too():
    made = IOEvent._make([3, 1, 0])
    assert made == (3, True, False) and type(made) is IOEvent
    assert type(made.read) is bool and type(made.write) is bool
    replaced = IOEvent(3, True)._replace(read=0)
    assert replaced == (3, False, False) and type(replaced.read) is bool and type(replaced.write) is bool
    assert type(IOEvent(3, True)._replace(write='yes').write) is bool
    with pytest.raises(TypeError):
        IOEvent._make([3, True])


def test_get_watched_returns_ioevents_with_the_very_objects_watched(waiter, pair):
    waiter.watch(pair.a, read=True)
    waiter.watch(pair.b, read=1, write='yes')
    watched = waiter.get_watched()
    assert all(type(e) is IOEvent for e in watched)
    assert {(id(e.fileobj), e.read, e.write) for e in watched} == {(id(pair.a), True, False), (id(pair.b), True, True)}


# --- wait() with nothing watched ------------------------------------------------


@pytest.mark.parametrize('timeout', [None, 0, 1.5])
def test_wait_with_nothing_watched_is_a_value_error_at_once(waiter, pair, timeout):
    start = time.monotonic()
    with pytest.raises(ValueError, match='no file is watched'):
        waiter.wait(timeout)
    waiter.watch(pair.a, read=True)
    waiter.unwatch(pair.a)
    waiter.notify()  # a notify does not make it a valid wait
    with pytest.raises(ValueError):
        waiter.wait(timeout)
    waiter.watch(pair.a, read=True)
    waiter.clear()
    with pytest.raises(ValueError):
        waiter.wait(timeout)
    assert time.monotonic() - start < 1
    waiter.watch(pair.a, read=True)
    assert waiter.wait(0) == []  # the pending notify() was spent on nothing, or merged: either way no event


def test_the_selector_still_waits_with_nothing_registered_as_selectors_do():
    # asyncio's loop selects with no fd while only timers are pending.
    for backend in AVAILABLE:
        with iowait.Selector(backend) as s:
            start = time.monotonic()
            assert s.select(0.05) == []
            assert time.monotonic() - start >= 0.05


# --- classes ------------------------------------------------------------------


def test_every_class_derives_from_abstractiowait_and_says_whether_it_is_available():
    for name in ('IOWait', 'SelectIOWait', 'PollIOWait', 'EPollIOWait', 'KQueueIOWait', 'IOUringIOWait'):
        cls = getattr(iowait, name)
        assert issubclass(cls, iowait.AbstractIOWait), name
        assert isinstance(cls.available, bool), name
    for backend in AVAILABLE:
        with CLASSES[backend]() as w:
            assert isinstance(w, iowait.AbstractIOWait)
    with pytest.raises(TypeError):
        iowait.AbstractIOWait()


def _iowait_in_a_child(code, backend):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE='1')
    env.pop('IOWAIT_BACKEND', None)
    if backend is not None:
        env['IOWAIT_BACKEND'] = backend
    return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, timeout=60)


def test_iowait_is_the_best_class_itself_or_the_one_iowait_backend_names():
    code = 'import iowait; print(iowait.IOWait.__name__, iowait.IOWait().backend)'
    best = iowait.available_backends()[0]
    names = {'epoll': 'EPollIOWait', 'poll': 'PollIOWait', 'select': 'SelectIOWait', 'kqueue': 'KQueueIOWait',
             'io_uring': 'IOUringIOWait'}
    for backend, expected in [(None, best)] + [(b, b) for b in AVAILABLE]:
        child = _iowait_in_a_child(code + f'; assert iowait.IOWait is iowait.{names[expected]}', backend)
        assert child.returncode == 0, child.stderr
        assert child.stdout.split() == [names[expected], expected]
    if sys.platform.startswith('linux'):
        assert iowait.IOWait is iowait.EPollIOWait or os.environ.get('IOWAIT_BACKEND')


def test_an_iowait_backend_that_names_nothing_available_fails_at_creation_not_at_import():
    child = _iowait_in_a_child(
        'import iowait\nassert not iowait.IOWait.available\nassert issubclass(iowait.IOWait, iowait.AbstractIOWait)\n'
        'try:\n    iowait.IOWait()\nexcept ValueError as e:\n    print(e)\n', 'no-such-backend')
    assert child.returncode == 0, child.stderr
    assert 'no-such-backend' in child.stdout or 'IOWAIT_BACKEND' in child.stdout, child.stdout


def test_a_class_of_ones_own_derives_from_abstractiowait():
    class ListIOWait(iowait.AbstractIOWait):
        def __init__(self):
            self.files = {}

        def watch(self, fileobj, read=False, write=False):
            super().watch(fileobj, read, write)
            self.files[fileobj] = IOEvent(fileobj, read, write)

        def unwatch(self, fileobj):
            super().unwatch(fileobj)
            del self.files[fileobj]

        def wait(self, timeout=None):
            super().wait(timeout)
            return []

        def get_watched(self):
            super().get_watched()
            return list(self.files.values())

        def clear(self):
            super().clear()
            self.files.clear()

        def close(self):
            super().close()

    with ListIOWait() as w:
        w.watch(3, read=True)
        assert w.get_watched() == [(3, True, False)]
    assert w.closed
    with pytest.raises(ValueError):
        w.watch(3, read=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        unclosed = ListIOWait()
        del unclosed
    assert [c.category for c in caught] == [ResourceWarning]


def test_closed_is_false_then_true_and_the_context_manager_emits_no_warning():
    for backend in AVAILABLE:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter('always')
            with CLASSES[backend]() as w:
                assert w.closed is False
            assert w.closed is True
            del w
        assert caught == []


def test_version():
    assert re.fullmatch(r'\d+\.\d+\.\d+', iowait.__version__)
    from importlib.metadata import PackageNotFoundError, distribution
    try:
        dist = distribution('iowait')
    except PackageNotFoundError:
        pytest.skip('iowait is not installed (the build tree\'s copy): no package metadata to compare the '
                    'version with; python/scripts/test-wheel runs this installed')
    # Installed by pip, pyproject.toml takes the version from here. (Debian's
    # python3-iowait, the original 0.1, has metadata of its own: not ours.)
    if os.path.realpath(dist.locate_file('iowait/__init__.py')) != os.path.realpath(iowait.__file__):
        pytest.skip(f'the installed iowait {dist.version} is another copy than the one tested: nothing to compare')
    assert dist.version == iowait.__version__


# --- help(iowait) -------------------------------------------------------------


def test_help_documents_the_originals_api_and_what_this_module_adds():
    text = pydoc.render_doc(iowait, renderer=pydoc.plaintext)
    for word in ('watch(file[, read[, write]])', 'watch(event)', 'unwatch(file)', 'wait([timeout])',
                 'get_watched()', 'clear()', 'close()', 'available', 'AbstractIOWait', 'IOEvent',
                 'SelectIOWait', 'PollIOWait', 'EPollIOWait', 'KQueueIOWait', 'IOUringIOWait', 'IOWAIT_BACKEND',
                 'modify(', 'notify()', 'NotWatchedError', 'Selector', 'ResourceWarning', 'ValueError'):
        assert word in text, word
    for method in ('watch', 'modify', 'unwatch', 'wait', 'get_watched', 'clear', 'notify', 'close'):
        # help() shows each with its parameters, as the standard library's methods.
        assert f'{method}(self, /' in pydoc.render_doc(getattr(iowait.IOWait, method), renderer=pydoc.plaintext)
        assert getattr(iowait.IOWait, method).__doc__, method
    assert 'RuntimeError' in iowait.IOWait.wait.__doc__, 'help(wait) says what a second wait() raises'


# --- every ready file in one wait -----------------------------------------------


@pytest.mark.parametrize('backend', BACKENDS)
def test_one_wait_returns_every_ready_file_with_a_second_kernel_wait_only_when_the_batch_was_full(backend):
    pairs = [socket.socketpair() for _ in range(400)]  # 800 fds: below select's FD_SETSIZE
    try:
        with CLASSES[backend]() as w:
            for a, _ in pairs:
                w.watch(a, read=True)
            for _, b in pairs[:300]:
                b.send(b'x')
            before = w._core_waits
            events = w.wait(0)
            assert sorted(e.fileobj.fileno() for e in events) == sorted(a.fileno() for a, _ in pairs[:300])
            assert all(e.read and not e.write for e in events)
            first = w._core_waits - before
            # The first batch of epoll, io_uring (an epoll set) and kqueue
            # (256, 256 and 64 entries) is smaller than 300: full, so asked
            # again as the batch grows; the others see every fd in one wait.
            if backend in ('epoll', 'io_uring', 'kqueue'):
                assert first >= 2
            else:
                assert first == 1
            # The same 300 again, now that the batch has grown, and then 10:
            # one kernel wait each, since the batch was not full.
            before = w._core_waits
            assert len(w.wait(0)) == 300
            assert w._core_waits - before == 1
            for a, _ in pairs[:290]:
                a.recv(1)
            before = w._core_waits
            assert len(w.wait(0)) == 10
            assert w._core_waits - before == 1, 'a batch that was not full was asked again'
    finally:
        for a, b in pairs:
            a.close()
            b.close()
