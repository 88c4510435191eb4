"""help(iowait) covers every public name: each name of iowait.__all__, and
each public method, property and attribute of its classes, has a docstring
of its own (not only pybind11's signature line)."""

import inspect
import os
import re

import iowait


def documented(obj, name):
    doc = inspect.getdoc(obj)
    if not doc:
        return False
    lines = doc.strip().splitlines()
    # pybind11 writes "name(args) -> result" first; a function bound without a
    # docstring has nothing more.
    if re.match(rf'{re.escape(name)}\(.*\)( -> .*)?$', lines[0]):
        lines = lines[1:]
    return any(line.strip() for line in lines)


def public_members(cls):
    """(name, object) of the public attributes a class of this package defines
    or inherits from another class of it (the standard library's are its own
    business: selectors.BaseSelector's, object's)."""
    for name in dir(cls):
        if name.startswith('_'):
            continue
        owner = next(c for c in cls.__mro__ if name in c.__dict__)
        if not owner.__module__.startswith('iowait'):
            continue
        raw = owner.__dict__[name]
        if isinstance(raw, (bool, int, float, str, tuple, type(None))):
            continue  # a data attribute (available, backend names): documented by its class
        yield name, raw if isinstance(raw, property) else getattr(cls, name)


def undocumented():
    missing = []
    if not documented(iowait, 'iowait'):
        missing.append('iowait')
    for name in iowait.__all__:
        obj = getattr(iowait, name)
        if not documented(obj, name):
            missing.append(name)
        if inspect.isclass(obj):
            for member, value in public_members(obj):
                if not documented(value, member):
                    missing.append(f'{name}.{member}')
    # Selector.select is the compiled method itself on each Selector.
    with iowait.Selector() as s:
        if not documented(s.select, 'select'):
            missing.append('Selector().select')
    return missing


def test_every_public_name_has_a_docstring():
    assert undocumented() == []


def test_the_check_finds_an_undocumented_method():
    def probe(self):
        pass

    iowait.AbstractIOWait.probe = probe
    try:
        assert 'IOWait.probe' in undocumented()
    finally:
        del iowait.AbstractIOWait.probe


def test_help_lists_every_public_name():
    import pydoc
    text = pydoc.render_doc(iowait, renderer=pydoc.plaintext)
    for name in iowait.__all__:
        assert name in text, name


def test_version_is_the_projects():
    assert re.fullmatch(r'\d+\.\d+\.\d+', iowait.__version__)
    cmakelists = os.path.join(os.path.dirname(__file__), '..', '..', 'CMakeLists.txt')
    if not os.path.exists(cmakelists):
        import pytest
        pytest.skip('no CMakeLists.txt beside these tests: not run from the source tree')
    with open(cmakelists, encoding='utf-8') as f:
        written = re.search(r'^project\(iowait VERSION (\S+)', f.read(), re.MULTILINE).group(1)
    assert iowait.__version__ == written
