"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data directory (``$BERTDRIFT_DATA``); tests using it skip when it is unset."""
    value = os.environ.get("BERTDRIFT_DATA")
    if not value:
        pytest.skip("BERTDRIFT_DATA is not set: point it at the data mirror to run real-data tests")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"BERTDRIFT_DATA={value} is not a directory")
    return path
