"""Builds bcai's Cython kernels (`bcai._kernels`); everything else is in pyproject.toml.

Flags are portable on purpose (no -march=native): the wheel must run on any
x86-64 (or arm64) machine. OpenMP gives the kernels their threads.
"""

import os
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

openmp = [] if sys.platform == "darwin" else ["-fopenmp"]
extension = Extension(
    "bcai._kernels",
    ["native/cython/_kernels.pyx"],
    include_dirs=[numpy.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    extra_compile_args=["-O3", *openmp],
    extra_link_args=openmp,
)

setup(
    ext_modules=cythonize(
        [extension],
        compiler_directives={
            "language_level": 3,
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        annotate=bool(os.environ.get("BCAI_CYTHON_ANNOTATE")),
    ),
)
