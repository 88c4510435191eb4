"""A kernel's refusal is the OSError subclass Python itself raises for its
errno (PyErr_SetFromErrno), on every backend, for IOWait and Selector alike
(a regression: it was a RuntimeError from pybind11); and a watched
number closed and taken by a new file (rules C2, C3 and P6)."""

import errno
import os
import selectors
import socket

import pytest

import iowait
from iowait import _iowait
from conftest import BACKENDS, CLASSES


@pytest.mark.parametrize('err', sorted(errno.errorcode))
def test_every_errno_is_the_oserror_subclass_python_raises_for_it(err):
    expected = type(OSError(err, os.strerror(err)))  # what PyErr_SetFromErrno makes of it
    with pytest.raises(OSError) as e:
        _iowait._raise_os_error(err, 'iowait: modify(fd=7)')
    assert type(e.value) is expected
    assert e.value.errno == err
    assert e.value.strerror.startswith('iowait: modify(fd=7): ')  # the call and the fd, then the kernel's words
    assert os.strerror(err) in str(e.value)


def test_the_subclasses_are_the_ones_users_catch():
    cases = {errno.ENOENT: FileNotFoundError, errno.EAGAIN: BlockingIOError, errno.EINTR: InterruptedError,
             errno.EPERM: PermissionError, errno.EEXIST: FileExistsError, errno.EBADF: OSError,
             errno.ECONNRESET: ConnectionResetError}
    for err, cls in cases.items():
        with pytest.raises(cls) as e:
            _iowait._raise_os_error(err, 'iowait: watch(fd=3)')
        assert type(e.value) is cls


def reuse_number(closed_fd):
    """A new socket at the number of a socket just closed; returns it and its peer."""
    new, peer = socket.socketpair()
    if new.fileno() != closed_fd:
        os.dup2(new.fileno(), closed_fd)
        new.close()
        new = socket.socket(fileno=closed_fd)
    return new, peer


@pytest.mark.parametrize('backend', BACKENDS)
def test_modify_of_a_closed_and_reused_number_is_filenotfounderror_for_iowait(backend):
    a, b = socket.socketpair()
    fd = a.fileno()
    with CLASSES[backend]() as w:
        w.watch(fd, read=True)
        a.close()
        with pytest.raises(OSError) as e:  # closed, not reused: EBADF (C2)
            w.modify(fd, write=True)
        assert e.value.errno == errno.EBADF and f'fd={fd}' in str(e.value)
        new, peer = reuse_number(fd)
        with new, peer, b:
            with pytest.raises(FileNotFoundError) as e:  # the new file was never watched (C3)
                w.modify(fd, write=True)
            assert e.value.errno == errno.ENOENT and f'modify(fd={fd})' in str(e.value)
            peer.send(b'x')
            assert w.wait(0) == []  # nothing of the new file under the old watch
            w.unwatch(fd)
            assert w.get_watched() == []


@pytest.mark.parametrize('backend', BACKENDS)
def test_modify_of_a_closed_and_reused_number_is_filenotfounderror_for_the_selector_as_for_selectors(backend):
    for make in (selectors.DefaultSelector, lambda: iowait.Selector(backend)):
        a, b = socket.socketpair()
        fd = a.fileno()
        with make() as s:
            s.register(fd, selectors.EVENT_READ)
            a.close()
            new, peer = reuse_number(fd)
            with new, peer, b:
                with pytest.raises(FileNotFoundError) as e:
                    s.modify(fd, selectors.EVENT_WRITE)
                assert e.value.errno == errno.ENOENT
                assert fd not in s.get_map()  # a failed modify unregisters, as selectors does (bpo-30014)


@pytest.mark.parametrize('backend', BACKENDS)
def test_watch_of_a_closed_and_reused_number_watches_the_new_file(backend):
    # P6: the original's watch() did so on each of its classes (epoll and
    # poll: modify, then register; select: by number), and programs that
    # close without unwatching rely on it.
    a, b = socket.socketpair()
    fd = a.fileno()
    with CLASSES[backend]() as w:
        w.watch(a, read=True)
        a.close()
        new, peer = reuse_number(fd)
        with new, peer, b:
            w.watch(new, read=True)
            assert [e.fileobj for e in w.get_watched()] == [new]
            assert w.wait(0) == []
            peer.send(b'x')
            events = w.wait(5)
            assert [(e.fileobj, e.read) for e in events] == [(new, True)]
            w.unwatch(new)


@pytest.mark.parametrize('backend', BACKENDS)
def test_watch_of_a_closed_number_not_reused_is_still_ebadf(backend):
    a, b = socket.socketpair()
    fd = a.fileno()
    with b, CLASSES[backend]() as w:
        w.watch(fd, read=True)
        a.close()
        with pytest.raises(OSError) as e:
            w.watch(fd, write=True)
        assert e.value.errno == errno.EBADF
        assert [e.fileobj for e in w.get_watched()] == [fd]  # the old watch stays until unwatch() (C2)
        w.unwatch(fd)
