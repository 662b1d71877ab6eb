"""The one seeded sampler every loader and stage shares."""

from __future__ import annotations

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
