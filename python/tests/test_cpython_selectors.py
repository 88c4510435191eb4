"""CPython's own selector tests (Lib/test/test_selectors.py, from Debian's
libpython3.11-testsuite) run against iowait.Selector on every backend."""

import os
import selectors
import socket
import unittest
import unittest.mock

import iowait
from conformance_skip import SIGNALS_DO_NOT_END_A_WAIT
from conftest import REFUSED

try:
    from test import test_selectors
except ImportError as e:  # pragma: no cover - the reason is printed by the skip
    raise unittest.SkipTest(f'CPython test suite missing ({e}); Debian: apt-get install '
                            'libpython3.11-testsuite') from None


def selector_on(backend):
    # The tests call SELECTOR() with no argument and read SELECTOR.__name__.
    return type(f'Selector_{backend}', (iowait.Selector,), {
        '__init__': lambda self: iowait.Selector.__init__(self, backend)})


class ModifyUnregisterMixIn:
    # CPython's test_modify_unregister patches the standard library's own
    # classes and skips for any other selector; this is the same check
    # (bpo-30014: a failed modify leaves the file unregistered) for ours.
    def test_modify_unregister(self):
        s = self.SELECTOR()
        self.addCleanup(s.close)
        rd, wr = self.make_socketpair()
        s.register(rd, selectors.EVENT_READ)
        self.assertEqual(len(s.get_map()), 1)
        with unittest.mock.patch.object(s, '_poller', wraps=s._poller) as p:
            p._modify.side_effect = ZeroDivisionError
            with self.assertRaises(ZeroDivisionError):
                s.modify(rd, selectors.EVENT_WRITE)
        self.assertEqual(len(s.get_map()), 0)
        s.register(rd, selectors.EVENT_READ)  # and it can be registered again


class SelectorTestCase(ModifyUnregisterMixIn, test_selectors.BaseSelectorTestCase,
                       test_selectors.ScalableSelectorMixIn, unittest.TestCase):
    SELECTOR = iowait.Selector


def make_case(backend):
    # select() cannot go past FD_SETSIZE: it gets the base tests only.
    scalable = (test_selectors.ScalableSelectorMixIn,) if backend != 'select' else ()
    body = {'SELECTOR': selector_on(backend)}
    if backend in SIGNALS_DO_NOT_END_A_WAIT:
        reason = SIGNALS_DO_NOT_END_A_WAIT[backend]
        body['test_select_interrupt_exc'] = unittest.skip(reason)(lambda self: None)
    return type(f'SelectorTestCase_{backend}',
                (ModifyUnregisterMixIn, test_selectors.BaseSelectorTestCase) + scalable + (unittest.TestCase,), body)


# SelectorTestCase already runs on the first (default) backend.
for _b in iowait.available_backends()[1:]:
    globals()[f'SelectorTestCase_{_b}'] = make_case(_b)
# A backend this build has and this machine refuses: a skip that says why.
for _b, _why in REFUSED.items():
    globals()[f'SelectorTestCase_{_b}'] = unittest.skip(f'{_b} is not available here: {_why}')(
        type(f'SelectorTestCase_{_b}', (unittest.TestCase,), {'test_selectors_suite': lambda self: None}))


class SelectorExtrasTestCase(unittest.TestCase):
    def test_is_a_base_selector_and_reports_its_backend(self):
        with iowait.Selector() as s:
            self.assertIsInstance(s, selectors.BaseSelector)
            self.assertEqual(s.backend, os.environ.get('IOWAIT_BACKEND') or iowait.available_backends()[0])

    def test_every_ready_fd_in_one_select_past_the_epoll_batch(self):
        for backend in iowait.available_backends():
            with self.subTest(backend=backend), iowait.Selector(backend) as s:
                pairs = [socket.socketpair() for _ in range(300)]
                try:
                    for a, b in pairs:
                        s.register(a, selectors.EVENT_READ, b)
                        b.send(b'x')
                    ready = s.select(5)
                    self.assertEqual(sorted(k.fd for k, _ in ready), sorted(a.fileno() for a, _ in pairs))
                    self.assertTrue(all(ev == selectors.EVENT_READ for _, ev in ready))
                finally:
                    for a, b in pairs:
                        a.close()
                        b.close()
