"""User-space instructions of one select(0) call, counted by callgrind:
iowait.Selector against a bare select.epoll().poll(0) over the same sockets,
with selectors.EpollSelector as a third column. Prints the counts and the
ratios to the bare call, and the project's target (iowait at most 1.15x).

    cmake --preset release && cmake --build build/release --target iowait_python
    PYTHONPATH=build/release/python /usr/bin/python3 python/bench/instructions.py

The interpreter is part of the figure: the bare call's count is the
interpreter's own code, so another build of the same Python version gives
other counts and other ratios (a pyenv 3.11.7 against Debian's 3.11.2: 0.68x
and 0.62x where Debian's gives 0.73x and 0.68x). Name the interpreter the
module was built for (CMake takes /usr/bin/python3 when it exists), not a
`python3` that PATH may resolve elsewhere; the table's first line says which
ran. A module built without optimisation (the dev preset) is refused.

1,000 socket pairs, the read ends registered for reading, 1, then 10, then
100 of them ready (spread evenly). One process under valgrind --tool=callgrind does
every measurement in turn: a loop of K calls `f(0)`, bracketed by two libc
calls that mark it for callgrind (os.getppid() zeroes the counters,
os.getpgrp() dumps them: --zero-before and --dump-before, since CPython's own
functions have no symbols in Debian's stripped interpreter). The same loop
with no call in it (`pass`) is measured too, and its cost per iteration is
subtracted, so a figure is what executing `f(0)` costs a Python program:
the call, the result list and its tuples, and freeing them. Deterministic:
the same counts from run to run (PYTHONHASHSEED is fixed).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

PAIRS = 1000
READY = (1, 10, 100)
CALLS = 2000
BAR = 1.15


def child(calls):
    """Runs under callgrind: the measurements, in the order parent() expects."""
    import resource
    import select
    import selectors
    import socket

    import iowait

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2 * PAIRS + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * PAIRS), hard))
    pairs = [socket.socketpair() for _ in range(PAIRS)]
    fds = [a.fileno() for a, _ in pairs]
    rng = range(calls)

    def measure(f):
        f(0)  # warm-up: lazy allocations, the batch that grows
        os.getppid()
        for _ in rng:
            f(0)
        os.getpgrp()

    def baseline():
        os.getppid()
        for _ in rng:
            pass
        os.getpgrp()

    ours = iowait.Selector()
    std = selectors.EpollSelector()
    ep = select.epoll()
    for fd in fds:
        ours.register(fd, selectors.EVENT_READ)
        std.register(fd, selectors.EVENT_READ)
        ep.register(fd, select.EPOLLIN)
    written = set()
    for ready in READY:
        for i in range(0, PAIRS, PAIRS // ready)[:ready]:
            if i not in written:
                pairs[i][1].send(b'x')
                written.add(i)
        assert len(ep.poll(0)) == ready and len(ours.select(0)) == ready and len(std.select(0)) == ready
        baseline()
        measure(ep.poll)
        measure(ours.select)
        measure(std.select)
    print(f'iowait.Selector backend: {ours.backend}')
    print(f'module: {iowait._iowait.__file__}')


# The order of child()'s dumps, per READY entry.
COLUMNS = ('baseline', 'select.epoll().poll(0)', 'iowait.Selector.select(0)', 'selectors.EpollSelector.select(0)')


def totals(prefix):
    """Instruction totals of callgrind's dumps, in the order they were made."""
    dumps = []
    for name in os.listdir(os.path.dirname(prefix)):
        path = os.path.join(os.path.dirname(prefix), name)
        suffix = name[len(os.path.basename(prefix)) + 1:]
        if name.startswith(os.path.basename(prefix) + '.') and suffix.isdigit():
            with open(path, encoding='latin-1') as fh:
                total = next(int(line.split()[1]) for line in fh if line.startswith(('totals:', 'summary:')))
            dumps.append((int(suffix), total))
    return [t for _, t in sorted(dumps)]


def parent(calls):
    if not shutil.which('valgrind'):
        sys.exit('instructions.py: valgrind is missing (scripts/install-deps)')
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, 'cg.out')
        env = dict(os.environ, PYTHONHASHSEED='0')
        run = subprocess.run(
            ['valgrind', '--tool=callgrind', '--callgrind-out-file=' + out, '--zero-before=getppid',
             '--dump-before=getpgrp', sys.executable, os.path.abspath(__file__), '--child', '--calls', str(calls)],
            env=env, capture_output=True, text=True)
        if run.returncode != 0:
            sys.exit(f'instructions.py: the measured process failed:\n{run.stdout}{run.stderr}')
        counts = totals(out)
    if len(counts) != len(READY) * len(COLUMNS):
        sys.exit(f'instructions.py: {len(counts)} callgrind dumps, expected {len(READY) * len(COLUMNS)}')
    backend, module = run.stdout.strip().split('\n')
    print(f'Python {sys.version.split()[0]} ({sys.executable}), {backend}; {PAIRS} socket pairs registered for reading;')
    print(f'{module}')
    print(f'user-space instructions per call (callgrind, {calls} calls, less the empty loop), ratio to the bare call:\n')
    print('| ready | ' + ' | '.join(COLUMNS[1:]) + ' |')
    print('|--:|' + '--:|' * (len(COLUMNS) - 1))
    verdicts, loops = [], []
    for i, ready in enumerate(READY):
        row = counts[i * len(COLUMNS):(i + 1) * len(COLUMNS)]
        loop = row[0] / calls
        per_call = [c / calls - loop for c in row[1:]]
        bare = per_call[0]
        cells = [f'{bare:.0f}'] + [f'{c:.0f} ({c / bare:.2f}x)' for c in per_call[1:]]
        print(f'| {ready} of {PAIRS} | ' + ' | '.join(cells) + ' |')
        loops.append(f'{loop:.0f}')
        ratio = per_call[1] / bare
        verdicts.append(f'{"met" if ratio <= BAR else "MISSED"}: {ready} ready, iowait.Selector.select(0) '
                        f'{ratio:.2f}x the bare epoll.poll(0) (bar: {BAR}x)')
    print(f'\n(The empty loop, subtracted: {" and ".join(loops)} instructions per iteration.)')
    print('\nTarget:\n')
    for v in verdicts:
        print(f'- {v}')
    return verdicts


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--calls', type=int, default=CALLS, help=f'calls per measurement (default {CALLS})')
    p.add_argument('--check', action='store_true', help='exit with status 1 when the bar is missed')
    p.add_argument('--child', action='store_true', help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.calls)
        return
    import iowait
    if iowait._iowait._debug_build:
        sys.exit(f'instructions.py: {iowait._iowait.__file__} is built without optimisation (a Debug build); '
                 'build the release preset (see --help)')
    verdicts = parent(args.calls)
    if args.check and any(v.startswith('MISSED') for v in verdicts):
        sys.exit(1)


if __name__ == '__main__':
    main()
