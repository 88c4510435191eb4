"""The original iowait's own test files, unchanged, against this module.

They are not in this repository (see docs/python.md, "Coming from the original
iowait"): name them in IOWAIT_ORIGINAL_TESTS (paths separated by ':'), e.g.
IOWAIT_ORIGINAL_TESTS=~/orig/test_iowait_0.1.py:~/orig/test_iowait_0.2.py,
and each runs through python/scripts/run-original-tests, once as published
and once more with every class on each mechanism of this build. Without the
variable this test is skipped, and says why.
"""

import os
import subprocess
import sys

import pytest

import iowait
from conftest import BACKENDS

SCRIPT = os.path.join(os.path.dirname(__file__), '..', 'scripts', 'run-original-tests')
FILES = [os.path.expanduser(p) for p in os.environ.get('IOWAIT_ORIGINAL_TESTS', '').split(os.pathsep) if p]


@pytest.mark.skipif(not FILES, reason='IOWAIT_ORIGINAL_TESTS names no test file of the original iowait')
@pytest.mark.parametrize('backend', [None] + BACKENDS)
def test_the_originals_own_tests_pass(backend):
    for path in FILES:
        assert os.path.isfile(path), f'IOWAIT_ORIGINAL_TESTS: no file {path}'
    args = [sys.executable, SCRIPT] + (['--backend', backend] if backend else []) + FILES
    here = os.path.dirname(os.path.dirname(iowait.__file__))  # the iowait these tests import
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([here] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    run = subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)
    summary = [line for line in run.stdout.splitlines() if line.startswith('== ')]
    assert run.returncode == 0, '\n'.join(summary) + '\n' + run.stderr[-4000:]
    assert all(' 0 failed' in line for line in summary if 'passed' in line), summary
