"""iowait.Selector: a selectors.BaseSelector on the iowait engine."""

import collections.abc
import selectors
import socket
import sys

from . import _iowait

if sys.platform == 'win32':
    import msvcrt

    def _handle_of(fileobj, fd):
        # A file's or a pipe's fileno() is a C runtime fd: its handle is what
        # iowait watches on Windows (a socket's fileno() is one already).
        if isinstance(fileobj, socket.socket):
            return fd
        try:
            return msvcrt.get_osfhandle(fd)
        except OSError:
            raise ValueError(f'Invalid file object: {fileobj!r}') from None
else:

    def _handle_of(fileobj, fd):
        return fd


__all__ = ['Selector']


def _fd_of(fileobj):
    # The rules and messages of selectors, so that code written against the
    # standard library sees the same exceptions.
    if isinstance(fileobj, int):
        fd = fileobj
    else:
        try:
            fd = int(fileobj.fileno())
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f'Invalid file object: {fileobj!r}') from None
        fd = _handle_of(fileobj, fd)
    if fd < 0:
        raise ValueError(f'Invalid file descriptor: {fd}')
    return fd


class _Map(collections.abc.Mapping):
    """The read-only fileobj -> SelectorKey view that get_map() returns."""

    __slots__ = ('_selector',)

    def __init__(self, selector):
        self._selector = selector

    def __len__(self):
        return len(self._selector._keys)

    def __getitem__(self, fileobj):
        fd = self._selector._lookup(fileobj)
        return self._selector._keys[fd]

    def __iter__(self):
        return iter(self._selector._keys)


class Selector(selectors.BaseSelector):
    """A selector on the iowait engine: the best mechanism of this system.

    Behaves as selectors.DefaultSelector, with these differences: select()
    runs in C++ with the GIL released; regular files are always ready (as
    with select() and poll()) where EpollSelector refuses them.
    backend: None (the best, or $IOWAIT_BACKEND) or a name from
    iowait.available_backends().
    """

    def __init__(self, backend=None):
        self._poller = _iowait._Poller(backend)
        self._keys = {}  # fd -> SelectorKey
        self._map = _Map(self)
        if type(self).select is Selector.select:
            # select() is the hot path: an instance attribute calls the C++
            # method directly, without a Python frame.
            self.select = self._poller._select

    @property
    def backend(self):
        """The name of the kernel mechanism in use, e.g. 'epoll'."""
        return self._poller.backend

    def _lookup(self, fileobj):
        try:
            return _fd_of(fileobj)
        except ValueError:
            # A closed socket cannot say its fd any more: find the object.
            for key in self._keys.values():
                if key.fileobj is fileobj:
                    return key.fd
            raise

    def register(self, fileobj, events, data=None):
        """Watch fileobj (a file object or an fd) for events (EVENT_READ,
        EVENT_WRITE or both), and return its SelectorKey with data.

        ValueError for bad events or a negative fd, KeyError if it is already
        registered, OSError (EBADF) if it is not open; nothing changes then.
        """
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f'Invalid events: {events!r}')
        fd = self._lookup(fileobj)
        if fd in self._keys:
            raise KeyError(f'{fileobj!r} (FD {fd}) is already registered')
        key = selectors.SelectorKey(fileobj, fd, events, data)
        self._poller._register(fd, events, key)
        self._keys[fd] = key
        return key

    def unregister(self, fileobj):
        """Stop watching fileobj, also after it was closed, and return its key.

        KeyError if it is not registered.
        """
        fd = self._lookup(fileobj)
        try:
            key = self._keys.pop(fd)
        except KeyError:
            raise KeyError(f'{fileobj!r} is not registered') from None
        self._poller._unregister(fd)
        return key

    def modify(self, fileobj, events, data=None):
        """Change the events and data of a registered fileobj; return the new key.

        KeyError if it is not registered, ValueError for bad events; if the
        kernel refuses the change, the file is left unregistered (as the
        standard library's selectors do) and the error raised.
        """
        fd = self._lookup(fileobj)
        try:
            key = self._keys[fd]
        except KeyError:
            raise KeyError(f'{fileobj!r} is not registered') from None
        if events == key.events and data is key.data:
            return key
        if not events or events & ~(selectors.EVENT_READ | selectors.EVENT_WRITE):
            raise ValueError(f'Invalid events: {events!r}')
        new = key._replace(events=events, data=data)
        try:
            self._poller._modify(fd, events, new)
        except BaseException:
            # As selectors does (bpo-30014): a failed modify leaves the file
            # unregistered rather than half-changed.
            del self._keys[fd]
            try:
                self._poller._unregister(fd)
            except (KeyError, ValueError):  # not there, or the selector is closed
                pass
            raise
        self._keys[fd] = new
        return new

    def select(self, timeout=None):
        """Wait until a registered file is ready, and return [(key, events)].

        timeout in seconds: None blocks, 0 or less polls. Every ready file is
        in one call's result; the GIL is released while waiting, and a signal
        runs its Python handler (PEP 475).
        """
        return self._poller._select(timeout)

    def get_map(self):
        """Return a read-only mapping of file objects to their SelectorKeys."""
        return self._map

    def close(self):
        """Unregister everything and release the kernel's objects."""
        self._keys.clear()
        self._map = None
        self._poller.close()
