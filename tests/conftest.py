"""Shared pytest fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


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


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; restore the setting for other tests. Modules of
    such tests use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    """The packaged MiniLM tokenizer."""
    from bertdrift.models import load_tokenizer

    return load_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    """A tiny random BERT (2 layers, hidden 32) over the packaged tokenizer's vocabulary."""
    from bertdrift.models import tiny_bert

    return tiny_bert(num_layers=2, hidden=32, vocab=tok.vocab_size, seed=0)
