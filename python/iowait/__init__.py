"""Platform-independent module for I/O readiness events, on the iowait C++ core.

This module provides objects that watch files (sockets, pipes, anything with a
fileno() method, or a file descriptor as an int) and wait until they are ready
to be read or written. They all have the same interface and behave the same
on every platform and with every kernel mechanism:

* IOWait -- the best mechanism of this system (or the one named by the
  environment variable IOWAIT_BACKEND, e.g. IOWAIT_BACKEND=poll);
* EPollIOWait, PollIOWait, SelectIOWait, KQueueIOWait, IOUringIOWait -- one
  mechanism each. The class attribute ``available`` says whether it can be
  used here; creating one that is not raises NotImplementedError.

Methods of every IOWait object:

* watch(fileobj, read=False, write=False) -- start watching fileobj, or
  replace the interest of a file already watched. Neither read nor write is a
  ValueError.
* modify(fileobj, read=False, write=False) -- change the interest of a
  watched file; KeyError if it is not watched.
* unwatch(fileobj) -- stop watching; KeyError if it is not watched. A closed
  socket that is still watched can be unwatched by passing the same object.
* wait(timeout=None) -- wait until a watched file is ready, notify() is
  called, or the timeout (seconds, int or float; 0 polls) passes. Returns a
  list of IOEvent(fileobj, read, write) named tuples carrying the very object
  that was watched. The GIL is released while waiting; a signal runs its
  Python handler and the wait goes on with the time left unless the handler
  raised (PEP 475), so Ctrl-C interrupts a wait.
* get_watched() -- a list of (fileobj, read, write), one per watched file.
* clear() -- unwatch everything.
* notify() -- wake a wait() running in another thread (it returns []); with no
  wait running, the next wait() returns [] at once.
* close() -- release the kernel's objects; idempotent; afterwards every other
  method raises ValueError. IOWait objects are context managers, and one
  collected without being closed emits a ResourceWarning.

iowait.Selector is a selectors.BaseSelector on the same engine, for asyncio:
``asyncio.SelectorEventLoop(iowait.Selector())``.
"""

import collections
import warnings

from . import _iowait
from ._iowait import available_backends
from .selector import Selector

__all__ = [
    'IOWait', 'SelectIOWait', 'PollIOWait', 'EPollIOWait', 'KQueueIOWait',
    'IOUringIOWait', 'IOEvent', 'Selector', 'available_backends']

IOEvent = collections.namedtuple('IOEvent', 'fileobj read write')
IOEvent.__doc__ = """One ready file: (fileobj, read, write), as wait() returns it."""
_iowait._set_event_type(IOEvent)

_available = frozenset(available_backends())


class IOWait(_iowait._Poller):
    """Waits for I/O readiness with the best mechanism of this system."""

    # None: the core's choice (the best here, or $IOWAIT_BACKEND).
    _backend = None
    available = bool(_available)

    def __init__(self):
        super().__init__(self._backend)
        self._opened = True  # __del__ must not touch a core that failed to open

    def __enter__(self):
        if self.closed:
            raise ValueError('I/O operation on closed IOWait object')
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if getattr(self, '_opened', False) and not self.closed:
            warnings.warn(f'unclosed {self!r}', ResourceWarning, source=self)
            self.close()

    def __repr__(self):
        state = 'closed' if self.closed else f'watched={len(self)}'
        return f'<{type(self).__name__} backend={self.backend} {state}>'


def _backend_class(name, backend, doc):
    return type(name, (IOWait,), {
        '__doc__': doc, '__module__': __name__, '_backend': backend,
        'available': backend in _available})


EPollIOWait = _backend_class('EPollIOWait', 'epoll', 'Based on epoll() (Linux).')
PollIOWait = _backend_class('PollIOWait', 'poll', 'Based on poll() (POSIX).')
SelectIOWait = _backend_class('SelectIOWait', 'select', 'Based on select(); fds below FD_SETSIZE only.')
KQueueIOWait = _backend_class('KQueueIOWait', 'kqueue', 'Based on kqueue() (macOS, BSDs).')
IOUringIOWait = _backend_class('IOUringIOWait', 'io_uring', 'Based on io_uring (Linux).')
