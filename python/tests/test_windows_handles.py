"""Windows: pipes and raw handles beside sockets (docs/behaviour.md, W11-W14).

A file object's fileno() is a C runtime fd there, turned into its handle by
msvcrt.get_osfhandle; an int is taken as a handle (a SOCKET or another).
Run on Windows only (the wheels workflow); elsewhere each test is skipped.
"""

import asyncio
import os
import selectors
import subprocess
import sys

import pytest

import iowait
from conftest import BACKENDS, CLASSES

pytestmark = pytest.mark.skipif(sys.platform != 'win32', reason='Windows handles: Windows only')

# A child that writes after a moment, so that the wait is in progress first.
CHILD = [sys.executable, '-c', 'import sys, time; time.sleep(0.05); sys.stdout.write("hello"); sys.stdout.flush()']


@pytest.fixture
def child():
    proc = subprocess.Popen(CHILD, stdout=subprocess.PIPE)
    yield proc
    proc.wait(10)
    proc.stdout.close()


@pytest.mark.parametrize('backend', BACKENDS)
def test_iowait_reports_a_childs_output_pipe(backend, child):
    with CLASSES[backend]() as w:
        w.watch(child.stdout, read=True)
        events = w.wait(10)
        assert [e.fileobj for e in events] == [child.stdout]
        assert events[0].read
        assert os.read(child.stdout.fileno(), 16) == b'hello'
        w.unwatch(child.stdout)


@pytest.mark.parametrize('backend', BACKENDS)
def test_a_handle_as_an_int_is_watched_as_it_is(backend, child):
    import msvcrt

    handle = msvcrt.get_osfhandle(child.stdout.fileno())
    with CLASSES[backend]() as w:
        w.watch(handle, read=True)
        events = w.wait(10)
        assert [e.fileobj for e in events] == [handle]


@pytest.mark.parametrize('backend', BACKENDS)
def test_selector_and_asyncio_add_reader_on_a_pipe(backend, child):
    with iowait.Selector(backend) as selector:
        key = selector.register(child.stdout, selectors.EVENT_READ, 'out')
        assert selector.select(10) == [(key, selectors.EVENT_READ)]
        selector.unregister(child.stdout)

    proc = subprocess.Popen(CHILD, stdout=subprocess.PIPE)
    loop = asyncio.SelectorEventLoop(iowait.Selector(backend))
    try:
        got = loop.create_future()
        loop.add_reader(proc.stdout, lambda: got.done() or got.set_result(os.read(proc.stdout.fileno(), 16)))
        assert loop.run_until_complete(asyncio.wait_for(got, 10)) == b'hello'
        loop.remove_reader(proc.stdout)
    finally:
        loop.close()
        proc.wait(10)
        proc.stdout.close()
