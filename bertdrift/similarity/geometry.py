"""Simple per-layer geometry of word vectors: how they look and move through depth.

Arrays in, a table out: ``layer_geometry`` takes a ``(n_words, L, d)`` array (or a
``bertdrift.features.FeatureSet``, whose ``array`` is one) and reads no files.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def layer_geometry(words: Any, sample: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Per layer: mean vector norm, anisotropy and similarity to the previous layer.

    - ``anisotropy``: mean cosine between random pairs of different words (0 = isotropic; high
      values mean all vectors point into a narrow cone, Ethayarajh 2019).
    - ``cos_to_previous``: mean cosine between a word's vector at this layer and the layer below
      (how much each layer rewrites the representation).
    Computed on ``sample`` words drawn with ``seed``.
    """
    array = getattr(words, "array", words)  # (n_words, L, d)
    n_words, n_layers = int(array.shape[0]), int(array.shape[1])
    rng = np.random.default_rng(seed)
    n = min(sample, n_words)
    rows = np.sort(rng.choice(n_words, size=n, replace=False))
    x = np.asarray(array[rows], dtype=np.float32)  # (n, L, d)
    unit = x / np.linalg.norm(x, axis=-1, keepdims=True).clip(min=1e-8)
    a, b = rng.integers(0, n, size=(2, 4 * n))
    keep = a != b
    a, b = a[keep], b[keep]
    out = []
    for layer in range(n_layers):
        u = unit[:, layer]
        out.append({
            "layer": layer,
            "norm": float(np.linalg.norm(x[:, layer], axis=-1).mean()),
            "anisotropy": float((u[a] * u[b]).sum(-1).mean()),
            "cos_to_previous": float((u * unit[:, layer - 1]).sum(-1).mean()) if layer else np.nan,
        })
    return pd.DataFrame(out)


def geometry_numbers(table: pd.DataFrame, n_words: int) -> dict[str, Any]:
    """The numbers chapter 1's prose quotes from a ``layer_geometry`` table (``setup_…``)."""
    top = int(table["layer"].max())
    aniso = table["anisotropy"]
    return {
        "setup_n_words": int(n_words),
        "setup_aniso_emb": round(float(aniso.iloc[0]), 2),
        "setup_aniso_top": round(float(table.loc[table["layer"] == top, "anisotropy"].iloc[0]), 2),
        "setup_aniso_max": round(float(aniso.max()), 2),
        "setup_aniso_max_layer": int(table.loc[aniso.idxmax(), "layer"]),
        "setup_min_cos": round(float(table["cos_to_previous"].min()), 2),
        "setup_min_cos_layer": int(table.loc[table["cos_to_previous"].idxmin(), "layer"]),
    }
