"""Only here to hook the cffi extension into the setuptools build."""
from setuptools import setup

setup(cffi_modules=["arch_um/_build.py:ffibuilder"])
