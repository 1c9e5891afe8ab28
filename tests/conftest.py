"""Shared test set-up.

- ``tests/`` goes on ``sys.path`` so that test files import the ``support`` helpers.
- Fixtures: ``repo_root`` (the repository root, a Path), ``load_tool`` (``tools/<name>.py`` as a module,
  to call its ``main``), ``tiny_config`` (a factory of tiny image / VIS configs, ``support/repo.py``).
- ``OMP_NUM_THREADS`` defaults to 1 (the tools' ``--threads`` default follows it).
- The ``slow`` marker (registered in pytest.ini): whole-pipeline trainings, tool end-to-end runs, demo
  quality and export tests. ``make test`` runs everything, ``make test-fast`` deselects them.
"""
from __future__ import annotations

import os
import sys

import pytest

# The tools' --threads default follows OMP_NUM_THREADS (queryinst/cli.py): tests run torch on one thread,
# as the per-test fixtures always did, on a machine whose cores other jobs may share.
os.environ.setdefault("OMP_NUM_THREADS", "1")

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)

from support import repo  # noqa: E402  (needs tests/ on sys.path)


@pytest.fixture(scope="session")
def repo_root():
    """The repository root (holds configs/, tools/, models/, assets/)."""
    return repo.REPO_ROOT


@pytest.fixture(scope="session")
def load_tool():
    """``load_tool(name)`` -> ``tools/<name>.py`` as a module."""
    return repo.load_tool


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(vis=False, narrow=False, **model_fields)`` -> a tiny ``Config`` / ``VisConfig``."""
    return repo.tiny_config
