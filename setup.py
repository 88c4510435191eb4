"""Builds iowait._iowait with the project's own CMake build, so the module
is compiled exactly as `cmake --preset release` would, with the core linked
in statically. Configuration is in pyproject.toml; this file only adds the
CMake step, which setuptools has no declarative form for."""

import os
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        build_dir = os.path.join(ROOT, 'build', 'pip')
        jobs = os.environ.get('CMAKE_BUILD_PARALLEL_LEVEL', '2')  # shared build machines
        subprocess.run(['cmake', '-S', ROOT, '-B', build_dir, '-DCMAKE_BUILD_TYPE=Release',
                        '-DIOWAIT_BUILD_TESTS=OFF', '-DIOWAIT_BUILD_EXAMPLES=OFF',
                        '-DIOWAIT_BUILD_PYTHON=ON', f'-DPython_EXECUTABLE={sys.executable}'],
                       check=True)
        subprocess.run(['cmake', '--build', build_dir, '--target', '_iowait', '-j', jobs], check=True)
        built = os.path.join(build_dir, 'python', 'iowait', os.path.basename(self.get_ext_filename(ext.name)))
        if not os.path.exists(built):
            sys.exit(f'iowait: CMake did not build {built}: is pybind11 installed (Debian: pybind11-dev)?')
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        self.copy_file(built, target)


setup(ext_modules=[Extension('iowait._iowait', sources=[])], cmdclass={'build_ext': CMakeBuild})
