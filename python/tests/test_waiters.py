"""Several Python threads waiting on one IOWait or one iowait.Selector at once
(docs/behaviour.md, "Several waiters", L1-L9, and P4): each ready file goes
to one thread, never to two at once, nothing is lost, and notify() and
close() end every wait in progress."""

import random
import selectors
import socket
import threading
import time

import pytest

import iowait
from conftest import BACKENDS, CLASSES


def pool(wait_once, pairs, threads=4, writes=600):
    """Threads call wait_once() (a list of ready socket objects) until every
    byte written is read; returns (read, written, overlaps)."""
    busy = set()
    lock = threading.Lock()
    state = {'read': 0, 'overlaps': 0}
    stop = threading.Event()

    def worker():
        while not stop.is_set():
            for s in wait_once():
                with lock:
                    if s in busy:
                        state['overlaps'] += 1
                    busy.add(s)
                time.sleep(0)  # let another thread in, were it handed the same file
                n = 0
                while True:
                    try:
                        got = s.recv(4096)
                    except BlockingIOError:
                        break
                    if not got:
                        break
                    n += len(got)
                with lock:
                    busy.discard(s)
                    state['read'] += n

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for t in workers:
        t.start()
    rng = random.Random(5)
    for i in range(writes):
        rng.choice(pairs)[1].send(b'x')
        if i % 32 == 0:
            time.sleep(0.001)
    deadline = time.monotonic() + 20
    while state['read'] < writes and time.monotonic() < deadline:
        time.sleep(0.005)
    stop.set()
    for t in workers:
        t.join()
    return state['read'], writes, state['overlaps']


@pytest.fixture
def pairs():
    made = []
    for _ in range(8):
        a, b = socket.socketpair()
        a.setblocking(False)
        b.setblocking(False)
        made.append((a, b))
    yield made
    for a, b in made:
        a.close()
        b.close()


@pytest.mark.parametrize('backend', BACKENDS)
def test_several_threads_wait_on_one_iowait_each_file_to_one_thread(backend, pairs):
    with CLASSES[backend]() as w:
        for a, _ in pairs:
            w.watch(a, read=True)
        read, written, overlaps = pool(lambda: [e.fileobj for e in w.wait(0.02)], pairs)
    assert read == written, 'bytes were left unreported'
    assert overlaps == 0, 'two threads handled one file at once'


@pytest.mark.parametrize('backend', BACKENDS)
def test_several_threads_select_on_one_selector_each_file_to_one_thread(backend, pairs):
    with iowait.Selector(backend) as sel:
        for a, _ in pairs:
            sel.register(a, selectors.EVENT_READ)
        read, written, overlaps = pool(lambda: [key.fileobj for key, _ in sel.select(0.02)], pairs)
    assert read == written, 'bytes were left unreported'
    assert overlaps == 0, 'two threads handled one file at once'


def asleep(tid):
    """Whether the thread sleeps (Linux: its state in /proc), else None."""
    try:
        with open(f'/proc/self/task/{tid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'S'
    except OSError:
        return None


def wait_in_threads(call, n=3):
    """Starts n threads that each call call() once, and probes until each
    sleeps in it; returns (threads, results)."""
    results = []
    tids = []

    def run():
        tids.append(threading.get_native_id())
        results.append(call())
    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 5
    while len(tids) < n and time.monotonic() < deadline:
        time.sleep(0.001)
    stable = 0
    while stable < 2 and time.monotonic() < deadline:
        states = [asleep(t) for t in tids]
        if None in states:  # the system does not say: time, then
            time.sleep(0.2)
            break
        stable = stable + 1 if all(states) else 0
        time.sleep(0.005)
    return threads, results


@pytest.mark.parametrize('backend', BACKENDS)
def test_notify_ends_every_wait_in_progress(backend, pairs):
    with CLASSES[backend]() as w:
        w.watch(pairs[0][0], read=True)
        threads, results = wait_in_threads(lambda: w.wait(10))
        start = time.monotonic()
        w.notify()
        for t in threads:
            t.join(10)
        assert results == [[], [], []]
        assert time.monotonic() - start < 5, 'a wait ran to its timeout'


@pytest.mark.parametrize('backend', BACKENDS)
def test_close_ends_every_wait_in_progress(backend, pairs):
    w = CLASSES[backend]()
    w.watch(pairs[0][0], read=True)
    threads, results = wait_in_threads(lambda: w.wait(10))
    start = time.monotonic()
    w.close()
    for t in threads:
        t.join(10)
    assert results == [[], [], []]
    assert time.monotonic() - start < 5, 'a wait ran to its timeout'
    assert w.closed

