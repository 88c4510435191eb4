"""The same random operations on iowait.Selector (each backend) and on
selectors.DefaultSelector, compared after every select(0): the same keys
ready with the same events and data, and the same exceptions.

The operations: register/modify/unregister with random events and data,
small sends, reads, filling a send buffer, shutdown(SHUT_WR), and closing a
pair (after unregistering it) and opening a new one, which usually gets the
same fd numbers. Left out, because the rules make them legitimately differ
(docs/behaviour.md): closing a registered socket (C1-C3: iowait keeps the
watch until unregister, selectors' own rules about closed file objects
differ between its classes), and a socket shut down both ways while its
send buffer is full, which select() cannot see (R6).
"""

import random
import selectors
import socket

import pytest

iowait = pytest.importorskip('iowait')
from conftest import BACKENDS  # noqa: E402 (after the import it needs)

PAIRS = 4
SEEDS = range(40)
OPS_PER_SEED = 300
EVENTS = [selectors.EVENT_READ, selectors.EVENT_WRITE, selectors.EVENT_READ | selectors.EVENT_WRITE]


class World:
    """Socket pairs and the state that decides which operations are allowed."""

    def __init__(self):
        self.socks = []  # 2 * PAIRS sockets, peer of i is i ^ 1
        self.filled = []  # this end's sends fill the peer's buffer (until the peer reads)
        self.shut = []  # this end did shutdown(SHUT_WR)
        for _ in range(PAIRS):
            self._add_pair()

    def _add_pair(self, at=None):
        a, b = socket.socketpair()
        for s in (a, b):
            s.setblocking(False)
        if at is None:
            self.socks += [a, b]
            self.filled += [False, False]
            self.shut += [False, False]
        else:
            self.socks[at:at + 2] = [a, b]
            self.filled[at:at + 2] = [False, False]
            self.shut[at:at + 2] = [False, False]

    def reopen(self, pair):
        for s in self.socks[2 * pair:2 * pair + 2]:
            s.close()
        self._add_pair(2 * pair)

    def close(self):
        for s in self.socks:
            s.close()


def outcome(call):
    """What a call did: ('ok', value) or the exception's type."""
    try:
        return ('ok', call())
    except (KeyError, ValueError, OSError) as e:
        return ('raised', type(e).__name__)


def ready(selector):
    return sorted((key.fd, mask, key.data) for key, mask in selector.select(0))


def run(seed, backend):
    rng = random.Random(seed)
    world = World()
    ours = iowait.Selector(backend)
    ref = selectors.DefaultSelector()
    trace = []
    registered = set()
    try:
        for step in range(OPS_PER_SEED):
            op = rng.randrange(9)
            i = rng.randrange(2 * PAIRS)
            s = world.socks[i]
            peer = world.socks[i ^ 1]
            if op == 0:
                events, data = rng.choice(EVENTS), rng.randrange(1000)
                trace.append(f'register(sock {i} fd {s.fileno()}, {events}, {data})')
                a = outcome(lambda: ours.register(s, events, data).data)
                b = outcome(lambda: ref.register(s, events, data).data)
                assert a == b, trace
                registered.add(i)
            elif op == 1:
                events, data = rng.choice(EVENTS), rng.randrange(1000)
                trace.append(f'modify(sock {i}, {events}, {data})')
                a = outcome(lambda: ours.modify(s, events, data).data)
                b = outcome(lambda: ref.modify(s, events, data).data)
                assert a == b, trace
            elif op == 2:
                trace.append(f'unregister(sock {i})')
                a = outcome(lambda: ours.unregister(s).fd)
                b = outcome(lambda: ref.unregister(s).fd)
                assert a == b, trace
                registered.discard(i)
            elif op == 3 and not world.shut[i]:
                n = outcome(lambda: s.send(b'x' * rng.randrange(1, 200)))
                trace.append(f'send(sock {i}) = {n}')
            elif op == 4:
                got = 0
                while True:
                    try:
                        chunk = s.recv(65536)
                    except BlockingIOError:
                        break
                    if not chunk:
                        break
                    got += len(chunk)
                world.filled[i ^ 1] = False
                trace.append(f'recv all(sock {i}) = {got}')
            elif op == 5 and not (world.shut[i] or world.shut[i ^ 1]):
                # A full buffer never meets a shutdown on that pair (R6, see above).
                sent = 0
                try:
                    while True:
                        sent += s.send(b'f' * 65536)
                except BlockingIOError:
                    pass
                world.filled[i] = True
                trace.append(f'fill(sock {i}) = {sent}')
            elif op == 6 and not (world.filled[i] or world.filled[i ^ 1]):
                s.shutdown(socket.SHUT_WR)
                world.shut[i] = True
                trace.append(f'shutdown(sock {i}, SHUT_WR)')
            elif op == 7:
                pair = i // 2
                for j in (2 * pair, 2 * pair + 1):
                    if j in registered:
                        trace.append(f'unregister(sock {j}) before reopen')
                        assert outcome(lambda: ours.unregister(world.socks[j]).fd) == \
                            outcome(lambda: ref.unregister(world.socks[j]).fd), trace
                        registered.discard(j)
                world.reopen(pair)
                trace.append(f'reopen(pair {pair}) = fds {world.socks[2 * pair].fileno()}, '
                             f'{world.socks[2 * pair + 1].fileno()}')
            elif op == 8:
                a, b = ready(ours), ready(ref)
                trace.append(f'select(0) = {b}')
                assert a == b, (f'seed {seed}, step {step}: iowait.Selector({backend!r}) {a} != '
                                f'{type(ref).__name__} {b}', trace)
        a, b = ready(ours), ready(ref)
        assert a == b, (f'seed {seed}: {a} != {b}', trace)
        assert sorted(k.fd for k in ours.get_map().values()) == sorted(k.fd for k in ref.get_map().values())
    finally:
        ours.close()
        ref.close()
        world.close()


@pytest.mark.parametrize('backend', BACKENDS)
@pytest.mark.parametrize('seed', SEEDS)
def test_same_random_operations_same_results_as_default_selector(seed, backend):
    run(seed, backend)
