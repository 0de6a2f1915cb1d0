"""The compiled hot path is optional: without a C compiler gradx installs and runs in Python."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("gradx._speedups", ["gradx/_speedups.c"], optional=True)])
