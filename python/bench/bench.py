"""iowait against its peers in one run: selectors (the standard library) and
the original pure-Python iowait (Debian's python3-iowait, 0.1). Prints each
time and the ratio "peer time / iowait time" (above 1: iowait is faster).

    PYTHONPATH=build/release/python /usr/bin/python3 python/bench/bench.py

Workloads: select()/wait(0) with 1,000 registered socket pairs
of which 10 are ready; register+unregister of 1,000 sockets; an asyncio echo
round trip. Each figure is the best of several repeats (the least disturbed
by other processes), per operation. --quick: few iterations, for CI.
Instruction counts of one select(0), against the bare epoll.poll(0):
instructions.py beside this file.
"""

import argparse
import asyncio
import functools
import importlib.util
import os
import resource
import selectors
import socket
import sys
import time

import iowait

ORIGINAL_PATH = '/usr/lib/python3/dist-packages/iowait.py'


def load_original():
    if not os.path.exists(ORIGINAL_PATH):
        return None, f'the original module is not installed ({ORIGINAL_PATH}; Debian: python3-iowait)'
    spec = importlib.util.spec_from_file_location('iowait_original', ORIGINAL_PATH)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod, None


def best(fn, number, repeat):
    """Seconds per call of fn(), best of `repeat` runs of `number` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return min(times)


def compare(title, candidates, number, repeat):
    """Times each (name, fn) in turn, round after round, so that a burst of
    load from other processes hits every candidate alike; reports each best."""
    times = {name: [] for name, _ in candidates}
    for fn_name, fn in candidates:
        fn()  # warm-up
    for _ in range(repeat):
        for name, fn in candidates:
            times[name].append(best(fn, number, 1))
    report(title, [(name, min(times[name])) for name, _ in candidates])


def report(title, rows):
    base = rows[0][1]
    print(f'\n{title}')
    for name, t in rows:
        ratio = '' if t is base else f'   {t / base:5.1f}x iowait\'s time'
        print(f'  {name:<42} {t * 1e6:9.2f} us{ratio}')


def ready_set(n_pairs=1000, n_ready=10):
    pairs = [socket.socketpair() for _ in range(n_pairs)]
    for a, b in pairs:
        a.setblocking(False)
    for a, b in pairs[:: n_pairs // n_ready][:n_ready]:
        b.send(b'x')
    return pairs


def bench_select(original, number, repeat):
    pairs = ready_set()
    open_ = []
    try:
        def registered(sel):
            open_.append(sel)
            for a, _ in pairs:
                sel.register(a, selectors.EVENT_READ)
            assert len(sel.select(0)) == 10
            return sel.select
        ours = iowait.Selector()
        compare('select(0): 1,000 registered socket pairs, 10 ready', [
            (f'iowait.Selector({ours.backend}).select(0)', functools.partial(registered(ours), 0)),
            ('selectors.EpollSelector.select(0)', functools.partial(registered(selectors.EpollSelector()), 0)),
            ('selectors.PollSelector.select(0)', functools.partial(registered(selectors.PollSelector()), 0))],
            number, repeat)

        def watched(w):
            open_.append(w)
            for a, _ in pairs:
                w.watch(a, read=True)
            assert len(w.wait(0)) == 10
            return functools.partial(w.wait, 0)
        w = iowait.IOWait()
        rows = [(f'iowait.IOWait({w.backend}).wait(0)', watched(w))]
        if original:
            rows.append((f'original iowait.{original.IOWait.__name__}.wait(0)', watched(original.IOWait())))
        compare('wait(0): 1,000 watched socket pairs, 10 ready', rows, number, repeat)
    finally:
        for sel in open_:
            if hasattr(sel, 'close'):
                sel.close()
        for a, b in pairs:
            a.close()
            b.close()


def bench_churn(original, number, repeat):
    pairs = ready_set(1000, 10)
    socks = [a for a, _ in pairs]
    ours, std = iowait.Selector(), selectors.EpollSelector()
    w = iowait.IOWait()
    try:
        def churn_selector(s):
            def run():
                for x in socks:
                    s.register(x, selectors.EVENT_READ)
                for x in socks:
                    s.unregister(x)
            return run
        compare('register + unregister of 1,000 sockets (time per 1,000 pairs of calls)', [
            (f'iowait.Selector({ours.backend})', churn_selector(ours)),
            ('selectors.EpollSelector', churn_selector(std))], number, repeat)

        def churn_waiter(w):
            def run():
                for x in socks:
                    w.watch(x, read=True)
                for x in socks:
                    w.unwatch(x)
            return run
        rows = [(f'iowait.IOWait({w.backend})', churn_waiter(w))]
        if original:
            rows.append((f'original iowait.{original.IOWait.__name__}', churn_waiter(original.IOWait())))
        compare('watch + unwatch of 1,000 sockets (time per 1,000 pairs of calls)', rows, number, repeat)
    finally:
        ours.close()
        std.close()
        w.close()
        for a, b in pairs:
            a.close()
            b.close()


def bench_asyncio(round_trips, repeat):
    async def echo(round_trips):
        a, b = socket.socketpair()
        ra, wa = await asyncio.open_connection(sock=a)
        rb, wb = await asyncio.open_connection(sock=b)

        async def server():
            while line := await rb.readline():
                wb.write(line)
        task = asyncio.ensure_future(server())
        start = time.perf_counter()
        for _ in range(round_trips):
            wa.write(b'ping\n')
            assert await ra.readline() == b'ping\n'
        took = time.perf_counter() - start
        wa.close()
        await task
        wb.close()
        return took / round_trips

    def run(make_selector, trips):
        loop = asyncio.SelectorEventLoop(make_selector())
        try:
            return loop.run_until_complete(echo(trips))
        finally:
            loop.close()
    # Warm up both first: the first 256 KiB recv buffers of a process come
    # from mmap until glibc raises its threshold, which would penalise
    # whichever ran first. Then alternate, and keep each one's best.
    candidates = [iowait.Selector, selectors.DefaultSelector]
    for make in candidates:
        run(make, 100)
    times = {make: [] for make in candidates}
    for _ in range(repeat):
        for make in candidates:
            times[make].append(run(make, round_trips))
    rows = [(f'iowait.Selector({iowait.Selector().backend})', min(times[iowait.Selector])),
            (f'selectors.DefaultSelector ({selectors.DefaultSelector.__name__})',
             min(times[selectors.DefaultSelector]))]
    report('asyncio echo round trip over a socket pair (time per round trip)', rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--quick', action='store_true', help='few iterations: checks that it runs, no figures')
    args = parser.parse_args()
    number, repeat, trips = (20, 2, 200) if args.quick else (2000, 7, 5000)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4200:  # 1,000 pairs and the selectors' own fds
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    original, why = load_original()
    print(f'iowait {iowait.__file__}\nPython {sys.version.split()[0]}, backends {iowait.available_backends()}')
    if why:
        print(f'not compared with the original: {why}')
    # The floor under every figure: one system call, which no library avoids.
    import select
    ep = select.epoll()
    print(f'one empty epoll_wait() from Python here: {best(functools.partial(ep.poll, 0), number, repeat) * 1e6:.2f} us')
    ep.close()
    bench_select(original, number, repeat)
    bench_churn(original, max(1, number // 100), repeat)
    bench_asyncio(trips, max(2, repeat // 2))


if __name__ == '__main__':
    main()
