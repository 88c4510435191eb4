"""The seed's session (seed_session.txt) as a doctest."""

import doctest
import os


def test_the_seeds_session_runs_as_written():
    path = os.path.join(os.path.dirname(__file__), 'seed_session.txt')
    result = doctest.testfile(path, module_relative=False, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted >= 10
    assert result.failed == 0
