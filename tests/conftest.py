"""Shared test set-up: ``tests/`` on ``sys.path`` so that test files import the ``support`` helpers."""
from __future__ import annotations

import os
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
