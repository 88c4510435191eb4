"""Platform-independent module for I/O readiness events, on the iowait C++ core.

This module provides objects that watch files (sockets, pipes, anything with a
fileno() method, or a file descriptor as an int) and wait until they are ready
to be read or written. They all have the same interface, and behave the same
on every platform and with every kernel mechanism. It keeps the API of the
original iowait module (0.1 of 2011, 0.2 of 2013), whose own tests pass
against it, and adds what is marked "added" below. Python 3 only.

Classes, one per kernel mechanism:

* SelectIOWait -- based on select(); file descriptors below FD_SETSIZE only;
* PollIOWait -- based on poll();
* EPollIOWait -- based on epoll() (Linux);
* KQueueIOWait -- based on kqueue() (macOS, the BSDs);
* IOUringIOWait -- based on io_uring (Linux 5.13 and later; added);
* AFDIOWait -- based on the AFD driver's polls (Windows; added);
* WSAPollIOWait -- based on WSAPoll() (Windows; added).

On Windows a file is a socket, a pipe, console input or a waitable object
(an event, a process, ...): a socket or a file object (its fileno() is a C
runtime fd, turned into its handle by msvcrt.get_osfhandle), or a handle as
an int.

IOWait is the best of them for this system: the class itself (on Linux,
iowait.IOWait is iowait.EPollIOWait), or the one named by the environment
variable IOWAIT_BACKEND (e.g. IOWAIT_BACKEND=poll, for debugging a program
without changing it). Use IOWait rather than the others: not every mechanism
exists everywhere. The class attribute `available` says whether a class can
be used here; creating one that is not available raises NotImplementedError.
available_backends() lists the mechanisms usable here, best first (added).

Every class is a subclass of AbstractIOWait, and its objects have these
methods:

* watch(file[, read[, write]])
  watch(event)

  Start watching the file for reading, writing or both (read and write are
  False by default). An IOEvent may be given instead of the three arguments.
  If the file is already watched, its interest is replaced. If neither read
  nor write is true, ValueError is raised.

* unwatch(file)

  Stop watching the file. If it is not watched, NotWatchedError is raised: a
  KeyError, as the original's code raised, and a ValueError, as its
  documentation said.

* wait([timeout])

  Wait until watched files are ready, and return a list of IOEvent objects,
  one for each ready file: every file that is ready, in one call. The
  timeout is in seconds (any real number); None or no argument blocks until
  a file is ready, 0 only polls; a negative or NaN one is ValueError. If
  nothing is watched (no file and no source), ValueError is raised. One
  wait() at a time on an object: a second one, from another thread or from
  a signal handler during the first, raises RuntimeError.

* get_watched()

  Return a list of IOEvent(file, read, write), one for each watched file,
  with the interest it is watched for (then the sources, below).

* clear()

  Stop watching every file.

* close()

  Release the kernel's objects; closing twice does nothing. The attribute
  `closed` says whether it was called; afterwards every other method raises
  ValueError. The objects are context managers (`with IOWait() as w:`), and
  one that is collected without having been closed emits a ResourceWarning.

Added by this module:

* modify(file[, read[, write]]) -- change the interest of a watched file;
  NotWatchedError if it is not watched.
* notify() -- wake every wait() running in other threads: each returns [].
  With no wait running, the next one returns [] at once.
* len(w) -- the number of watched files and sources; w.backend -- the
  mechanism's name.
* Several threads may wait() on one object at once: each ready file goes to
  one thread, and to no other until that thread calls wait() again (or the
  file is modified or unwatched), so a pool of threads can share one IOWait.
  close() from another thread ends every wait in progress.
* wait() releases the GIL. A signal during it runs its Python handler; if
  the handler raises (Ctrl-C: KeyboardInterrupt), so does wait(), else the
  wait goes on with the time that is left (PEP 475).
* Errors are the standard library's: a file descriptor is resolved as
  select.select() resolves it (TypeError, ValueError); a file that is not
  open is OSError (EBADF); a kernel error is the OSError subclass Python
  itself raises for that errno (FileNotFoundError for ENOENT, ...).
* watch_signal(signo), watch_process(pid), watch_timer(first, period=0) --
  sources beside the files: a signal (reported when delivered; while
  watched, its default action and any Python handler do not run), a child
  process (reported once when it has exited; reap it yourself, e.g. with
  Popen.wait()), a timer (due `first` seconds from now, then every `period`
  seconds; 0: once). Each returns a Source; wait() reports it as
  IOEvent(source, True, False) (tell it from a file by identity:
  `event.fileobj is timer`), and unwatch(source) stops it. A source stays
  watched until unwatch(), a once timer that fired and a process reported
  as exited included (neither is reported again): len(w) counts it, and
  get_watched() lists it as IOEvent(source, True, False) after the files.
  A signal or process already watched by the object is KeyError (the first
  Source stays the one reported; unwatch it to watch it again). clear()
  and close() stop every source.
  Windows: SIGINT and SIGBREAK only (console control events; other signals
  NotImplementedError), and any process by pid, not only a child.
* Selector -- a selectors.BaseSelector on the same engine, for asyncio:
  asyncio.SelectorEventLoop(iowait.Selector()).

The IOEvent object is a named tuple of three fields: fileobj, read and
write. fileobj is the very object that was watched (a file object or a file
descriptor); read and write are booleans that say whether the file can be
read or written without blocking. IOEvent(fileobj, read=False, write=False)
stores read and write as booleans.

A file closed while it is watched is never reported again; unwatch it (by
the same object) before or after closing it. How the rules of this module
differ from the original's, and why, is written in docs/behaviour.md ("In
Python") of the iowait project.
"""

import abc
import collections
import os
import warnings

from . import _iowait
from ._iowait import available_backends
from .selector import Selector

__version__ = _iowait.__version__  # project(iowait VERSION ...) in CMakeLists.txt
__all__ = [
    'IOWait', 'IOEvent', 'SelectIOWait', 'PollIOWait', 'EPollIOWait', 'KQueueIOWait',
    'IOUringIOWait', 'AFDIOWait', 'WSAPollIOWait', 'AbstractIOWait', 'NotWatchedError', 'Selector', 'Source',
    'available_backends']


class IOEvent(collections.namedtuple('IOEvent', 'fileobj read write')):
    """A file and its readiness: IOEvent(fileobj, read=False, write=False).

    What wait() returns for each ready file, and get_watched() for each
    watched one; watch(event) takes one. read and write are stored as bools.
    """

    __slots__ = ()

    def __new__(_cls, fileobj, read=False, write=False):  # _cls: namedtuple's own name, as in the stubs
        return super().__new__(_cls, fileobj, bool(read), bool(write))

    @classmethod
    def _make(cls, iterable):
        """An IOEvent from a sequence of three, with read and write as bools
        (namedtuple's own _make, which _replace() calls, would keep ints)."""
        fields = tuple(iterable)
        if len(fields) != 3:
            raise TypeError(f'Expected 3 arguments, got {len(fields)}')
        return tuple.__new__(cls, (fields[0], bool(fields[1]), bool(fields[2])))


class NotWatchedError(KeyError, ValueError):
    """unwatch() or modify() of a file that is not watched."""


class Source:
    """A signal, child process or timer that an IOWait watches.

    What watch_signal(), watch_process() and watch_timer() return, and what
    wait() reports as IOEvent(source, True, False); unwatch(source) stops it.
    kind is 'signal', 'process' or 'timer'; arg the signal number, the pid,
    or (first, period) in seconds. Equal only to itself.
    """

    __slots__ = {
        'kind': "'signal', 'process' or 'timer'.",
        'arg': 'The signal number, the pid, or (first, period) in seconds.',
    }

    def __init__(self, kind, arg):
        self.kind = kind
        self.arg = arg

    def __repr__(self):
        return f'<iowait.Source {self.kind} {self.arg!r}>'


_iowait._setup(IOEvent, NotWatchedError, Source)


class AbstractIOWait(abc.ABC):
    """The interface of every IOWait class.

    A class of one's own may derive from it: it implements watch(), unwatch(),
    wait(), get_watched(), clear() and close(), and may call these through
    super(), which raise ValueError once the object is closed. It gets the
    context manager and the ResourceWarning of an unclosed object.
    """

    closed = False

    def _ensure_open(self):
        if self.closed:
            raise ValueError('I/O operation on closed IOWait object')

    @abc.abstractmethod
    def watch(self, fileobj, read=False, write=False):
        """Start watching fileobj, or replace its interest (see the module's help)."""
        self._ensure_open()

    @abc.abstractmethod
    def unwatch(self, fileobj):
        """Stop watching fileobj."""
        self._ensure_open()

    @abc.abstractmethod
    def wait(self, timeout=None):
        """Wait for the watched files; a list of IOEvent."""
        self._ensure_open()

    @abc.abstractmethod
    def get_watched(self):
        """A list of IOEvent, one for each watched file."""
        self._ensure_open()

    @abc.abstractmethod
    def clear(self):
        """Stop watching every file."""
        self._ensure_open()

    @abc.abstractmethod
    def close(self):
        """Release the object's resources; idempotent."""
        self.closed = True

    def __enter__(self):
        self._ensure_open()
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __del__(self):
        if not self.closed:
            warnings.warn(f'unclosed {self!r}', ResourceWarning, source=self)
            self.close()


# The C++ class has pybind11's metaclass, AbstractIOWait has ABCMeta: a class
# deriving from both needs a metaclass deriving from both.
class _Meta(type(_iowait._Poller), abc.ABCMeta):
    pass


class _CoreIOWait(_iowait._Poller, AbstractIOWait, metaclass=_Meta):
    # The methods are the C++ ones (_iowait._Poller), which come first in the
    # MRO; this class adds the Python protocol around them.

    _backend = None  # the core's name of the mechanism; None: its own choice
    available = False

    def __init__(self):
        super().__init__(self._backend)
        self._opened = True  # __del__ must not touch a core that failed to open

    def __del__(self):
        if getattr(self, '_opened', False) and not self.closed:
            warnings.warn(f'unclosed {self!r}', ResourceWarning, source=self)
            self.close()

    def watch_signal(self, signo):
        """Watch a signal; a Source, reported when the signal is delivered.

        While watched, the signal's handler is iowait's (in every thread):
        neither its default action nor a Python handler runs; unwatch()
        puts the earlier handler back. SIGKILL, SIGSTOP and the signals of
        faults (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP): OSError (EINVAL).
        """
        source = Source('signal', signo)
        self._watch_source('signal', signo, None, source)
        return source

    def watch_process(self, pid):
        """Watch a child process; a Source, reported once when it has exited.

        iowait does not reap it: the caller does (os.waitpid, Popen.wait).
        A pid that is not a child of this process: ChildProcessError.
        Windows: any process this one may open (ProcessLookupError if none).
        """
        source = Source('process', pid)
        self._watch_source('process', pid, None, source)
        return source

    def watch_timer(self, first, period=0):
        """Watch a timer; a Source, due `first` seconds from now, then every
        `period` seconds (0: once), on the monotonic clock. Periods that a
        late wait() missed are reported once. Negative: ValueError.
        """
        source = Source('timer', (first, period))
        self._watch_source('timer', first, period, source)
        return source

    def __repr__(self):
        state = 'closed' if self.closed else f'watched={len(self)}'
        return f'<{type(self).__name__} backend={self.backend} {state}>'


# What a wrong call's TypeError names: the public class, not this one.
for _name in ('__init__', 'watch_signal', 'watch_process', 'watch_timer'):
    getattr(_CoreIOWait, _name).__qualname__ = f'IOWait.{_name}'
del _name

_available = frozenset(available_backends())


def _backend_class(name, backend, doc):
    return _Meta(name, (_CoreIOWait,), {
        '__doc__': doc, '__module__': __name__, '_backend': backend, 'available': backend in _available})


SelectIOWait = _backend_class('SelectIOWait', 'select', 'Based on select(); file descriptors below FD_SETSIZE only.')
PollIOWait = _backend_class('PollIOWait', 'poll', 'Based on poll().')
EPollIOWait = _backend_class('EPollIOWait', 'epoll', 'Based on epoll() (Linux).')
KQueueIOWait = _backend_class('KQueueIOWait', 'kqueue', 'Based on kqueue() (macOS, the BSDs).')
IOUringIOWait = _backend_class('IOUringIOWait', 'io_uring', 'Based on io_uring (Linux 5.13 and later).')
AFDIOWait = _backend_class('AFDIOWait', 'afd', "Based on the AFD driver's polls (Windows).")
WSAPollIOWait = _backend_class('WSAPollIOWait', 'wsapoll', 'Based on WSAPoll() (Windows).')

_by_backend = {cls._backend: cls for cls in (
    SelectIOWait, PollIOWait, EPollIOWait, KQueueIOWait, IOUringIOWait, AFDIOWait, WSAPollIOWait)}


def _best():
    named = os.environ.get('IOWAIT_BACKEND')
    if not named:
        return next(_by_backend[b] for b in available_backends() if b in _by_backend)
    if named in _available:
        return _by_backend[named]
    # A name that is not available here is an error, never a silent
    # fallback (as in the core): creating an IOWait raises ValueError with
    # the core's message; importing the module still works.
    return _Meta('IOWait', (_CoreIOWait,), {
        '__doc__': f'IOWAIT_BACKEND={named!r} names no mechanism available here: creating one raises ValueError.',
        '__module__': __name__, '_backend': None, 'available': False})


IOWait = _best()
