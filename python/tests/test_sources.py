"""Signals, child processes and timers as sources of an IOWait (docs/behaviour.md,
"Sources"), on every backend: watch_signal, watch_process, watch_timer."""

import errno
import os
import signal
import subprocess
import sys
import time

import pytest

import iowait

posix = pytest.mark.skipif(os.name != 'posix', reason='sends POSIX signals (Windows has SIGINT and SIGBREAK only)')
windows = pytest.mark.skipif(os.name != 'nt', reason='what Windows maps, and refuses, of signals')


def wait_for(w, source, limit=2.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for event in w.wait(0.05):
            if event.fileobj is source:
                return event
    pytest.fail(f'{source!r} not reported within {limit} s')


@posix
def test_a_delivered_signal_is_reported_and_its_handlers_do_not_run(waiter):
    ran = []
    old = signal.signal(signal.SIGUSR1, lambda *a: ran.append(1))
    try:
        source = waiter.watch_signal(signal.SIGUSR1)
        assert source.kind == 'signal' and source.arg == signal.SIGUSR1
        assert waiter.wait(0) == [], 'nothing delivered yet'
        os.kill(os.getpid(), signal.SIGUSR1)
        assert waiter.wait(1) == [iowait.IOEvent(source, True, False)]
        assert ran == [], "while watched, the Python handler does not run"
        assert waiter.wait(0) == []
        waiter.unwatch(source)
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)
        assert ran == [1], 'unwatch() put the Python handler back'
        with pytest.raises(iowait.NotWatchedError):
            waiter.unwatch(source)
    finally:
        signal.signal(signal.SIGUSR1, old)


def test_a_child_exit_is_reported_once_and_the_caller_reaps_it(waiter):
    child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read(); sys.exit(4)'],
                             stdin=subprocess.PIPE)
    source = waiter.watch_process(child.pid)
    assert waiter.wait(0.02) == [], 'still running'
    child.stdin.close()
    assert wait_for(waiter, source) == iowait.IOEvent(source, True, False)
    assert waiter.wait(0.02) == [], 'reported once'
    assert child.wait(5) == 4, 'not reaped by iowait: Popen reads its status'
    waiter.unwatch(source)


def test_timers_once_and_periodic(waiter):
    start = time.monotonic()
    once = waiter.watch_timer(0.2)
    tick = waiter.watch_timer(0.01, 0.01)
    events = waiter.wait()  # only timers: blocks until one is due
    assert time.monotonic() - start >= 0.01
    assert iowait.IOEvent(tick, True, False) in events
    wait_for(waiter, once)
    assert time.monotonic() - start >= 0.2
    waiter.unwatch(tick)
    assert waiter.wait(0.05) == [], 'the once timer is spent and the periodic one unwatched'
    waiter.clear()
    with pytest.raises(ValueError):
        waiter.wait(0), 'nothing watched after clear()'


def test_files_and_sources_in_one_wait(waiter, pair):
    waiter.watch(pair.a, read=True)
    timer = waiter.watch_timer(0)
    pair.sb.send(b'x')
    assert sorted(waiter.wait(1), key=lambda e: e.fileobj is timer) == [
        iowait.IOEvent(pair.a, True, False), iowait.IOEvent(timer, True, False)]
    assert len(waiter) == 2, 'files and sources'
    assert waiter.get_watched() == [iowait.IOEvent(pair.a, True, False), iowait.IOEvent(timer, True, False)]
    assert [isinstance(e.fileobj, iowait.Source) for e in waiter.get_watched()] == [False, True]


def test_a_spent_source_stays_watched_and_shown_until_unwatched(waiter):
    # What wait() waits for, len() counts and get_watched() shows: a once
    # timer that fired stays watched (it will not fire again) until unwatch().
    timer = waiter.watch_timer(0.01)
    assert wait_for(waiter, timer) == iowait.IOEvent(timer, True, False)
    assert len(waiter) == 1 and waiter.get_watched() == [iowait.IOEvent(timer, True, False)]
    assert waiter.wait(0.02) == [], 'spent: not reported again'
    waiter.unwatch(timer)
    assert len(waiter) == 0 and waiter.get_watched() == []
    with pytest.raises(ValueError, match='no file is watched and no source'):
        waiter.wait(), 'nothing left to wait for: at once, not for ever'
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    process = waiter.watch_process(child.pid)
    assert wait_for(waiter, process) == iowait.IOEvent(process, True, False)
    child.wait(5)
    assert waiter.get_watched() == [iowait.IOEvent(process, True, False)] and len(waiter) == 1
    waiter.clear()
    assert len(waiter) == 0 and waiter.get_watched() == []


@windows
def test_windows_has_sigint_and_sigbreak_only(waiter):
    # Delivering them needs a console of the test's own (the C++ suite does it).
    for signo in (signal.SIGINT, signal.SIGBREAK):
        waiter.unwatch(waiter.watch_signal(signo))
    with pytest.raises(NotImplementedError) as e:
        waiter.watch_signal(signal.SIGTERM)
    assert f'watch_signal(signo={int(signal.SIGTERM)})' in str(e.value)


@posix
def test_errors_are_pythons_and_name_the_source(waiter):
    with pytest.raises(OSError) as e:
        waiter.watch_signal(signal.SIGKILL)
    assert e.value.errno == errno.EINVAL and f'watch_signal(signo={int(signal.SIGKILL)})' in str(e.value)
    with pytest.raises(ChildProcessError) as e:
        waiter.watch_process(1)
    assert 'watch_process(pid=1)' in str(e.value)
    with pytest.raises(TypeError):
        waiter.watch_signal('USR1')
    with pytest.raises(ValueError):
        waiter.watch_timer(-1)
    with pytest.raises(ValueError):
        waiter.watch_timer(float('nan'))
    waiter.close()
    with pytest.raises(ValueError):
        waiter.watch_timer(1)


@posix
def test_a_signal_watched_twice_is_refused_and_the_first_source_stays(waiter):
    source = waiter.watch_signal(signal.SIGUSR2)
    with pytest.raises(KeyError) as e:
        waiter.watch_signal(signal.SIGUSR2)
    message = str(e.value)
    assert f'signal {int(signal.SIGUSR2)} is already watched' in message and 'unwatch its Source' in message
    assert ' fd' not in message, 'in words about signals'
    assert waiter.get_watched() == [iowait.IOEvent(source, True, False)], 'nothing changed'
    os.kill(os.getpid(), signal.SIGUSR2)
    assert waiter.wait(1) == [iowait.IOEvent(source, True, False)], 'the first Source is still the one reported'
    waiter.unwatch(source)
    waiter.unwatch(waiter.watch_signal(signal.SIGUSR2))  # once unwatched, it may be watched again


def test_a_process_watched_twice_is_refused_in_words_about_processes(waiter):
    child = subprocess.Popen([sys.executable, '-c', 'import sys; sys.stdin.read()'], stdin=subprocess.PIPE)
    try:
        source = waiter.watch_process(child.pid)
        with pytest.raises(KeyError) as e:
            waiter.watch_process(child.pid)
        assert f'process {child.pid} is already watched' in str(e.value) and ' fd' not in str(e.value)
        assert waiter.get_watched() == [iowait.IOEvent(source, True, False)]
    finally:
        child.stdin.close()
        child.wait(5)
