"""Builds iowait._iowait with the project's own CMake build, so the module
is compiled exactly as `cmake --preset release` would, with the core linked
in statically. Configuration is in pyproject.toml; this file only adds the
CMake step, which setuptools has no declarative form for. The same file
builds the wheels of every system (cibuildwheel, .github/workflows/wheels.yml):
Visual Studio's multi-configuration generator included."""

import glob
import os
import re
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


def version():
    # The one place the version is written: project(iowait VERSION x.y.z) in
    # CMakeLists.txt. The compiled module reports the same (iowait.__version__).
    with open(os.path.join(ROOT, 'CMakeLists.txt'), encoding='utf-8') as f:
        found = re.search(r'^project\(iowait VERSION (\d+\.\d+\.\d+)\b', f.read(), re.MULTILINE)
    if not found:
        sys.exit('iowait: no "project(iowait VERSION x.y.z" in CMakeLists.txt')
    return found.group(1)


def pybind11_dir():
    # pybind11 from pip (an isolated build, cibuildwheel) or Debian's
    # python3-pybind11; without it, CMake's own search (pybind11-dev).
    try:
        import pybind11
    except ImportError:
        return []
    return [f'-Dpybind11_DIR={pybind11.get_cmake_dir()}']


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        # One build directory per interpreter: CMake caches what it found of
        # Python, and cibuildwheel builds several versions from one tree.
        build_dir = os.path.join(ROOT, 'build', f'pip-{sys.implementation.cache_tag}')
        jobs = os.environ.get('CMAKE_BUILD_PARALLEL_LEVEL', '2')  # shared build machines
        subprocess.run(['cmake', '-S', ROOT, '-B', build_dir, '-DCMAKE_BUILD_TYPE=Release',
                        '-DIOWAIT_BUILD_TESTS=OFF', '-DIOWAIT_BUILD_EXAMPLES=OFF', '-DIOWAIT_BUILD_BENCH=OFF',
                        '-DIOWAIT_BUILD_PYTHON=ON', f'-DPython_EXECUTABLE={sys.executable}', *pybind11_dir()],
                       check=True)
        subprocess.run(['cmake', '--build', build_dir, '--config', 'Release', '--target', '_iowait', '-j', jobs],
                       check=True)
        # The name CMake gave it (pybind11's suffix: .cpython-311-x86_64-linux-gnu.so,
        # or a plain .pyd on Windows), installed under the name setuptools expects.
        suffix = os.path.splitext(self.get_ext_filename(ext.name))[1]
        built = glob.glob(os.path.join(build_dir, 'python', 'iowait', '_iowait*' + suffix))
        if len(built) != 1:
            sys.exit(f'iowait: CMake built {built or "no _iowait*" + suffix} in {build_dir}/python/iowait: '
                     'is pybind11 installed (Debian: pybind11-dev)?')
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.copy_file(built[0], target)


setup(version=version(), ext_modules=[Extension('iowait._iowait', sources=[])], cmdclass={'build_ext': CMakeBuild})
