"""The one seeded sampler every loader and stage shares."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
from datasets import Dataset

from bertdrift.data._jsonl import check_limit


def subsample(ds: Dataset, limit: int | None, seed: int) -> Dataset:
    """A seeded random subset of ``limit`` rows, kept in file order (all rows when ``None``)."""
    if limit is None or check_limit(limit) >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(ds), size=limit, replace=False))
    return ds.select(idx.tolist())


def hash_order(sentences: Sequence[Sequence[str]], seed: int = 0) -> np.ndarray:
    """Row indices ordered by a seeded hash of each sentence's words.

    Unlike ``subsample``'s draw, the order of a sentence depends only on its words and the
    seed, so tasks built on the same corpus (pos, deps, SRL, the structural probes on EWT;
    constituents, entities and coreference on GUM) that take the first rows of this order read
    mostly the *same* sentences, and one feature extraction serves them all."""
    def key(words: Sequence[str]) -> bytes:
        text = "\x1f".join(words).encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, digest_size=8, key=str(seed).encode()).digest()

    keys = [key(s) for s in sentences]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)
