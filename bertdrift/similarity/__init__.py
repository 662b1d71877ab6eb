"""Representational similarity (chapters 1, 4 and 6): arrays in, arrays out, no file IO.

| module | public names |
|---|---|
| ``measures`` | ``rsa``, ``rsa_map``, ``cka``, ``cka_map``, ``procrustes``, ``procrustes_map``, ``rdm_vectors``, ``rank_average``, ``MEASURES``, ``MAPS`` |
| ``bootstrap`` | ``bootstrap`` (block-bootstrap intervals for RSA and CKA), ``Interval``, ``block_weights``, ``rsa_replicates`` (paired replicates of RSA), ``replicate_variance``, ``percentile_interval`` |
| ``geometry`` | ``layer_geometry`` (norms, anisotropy, cosine to the layer below) |
| ``core`` | ``SimilarityError``, ``as_layers`` and the helpers the other modules share |

Every measure takes ``(n, d)`` or ``(L, n, d)`` activations (the same ``n`` tokens in both) and
returns a scalar or an ``(L,)`` tensor; ``*_map`` compares every layer with every layer::

    from bertdrift.similarity import rsa, cka, bootstrap
    rsa(a, b)                     # a, b: (L, n, d) -> (L,) Pearson RSA, cosine kernel
    bootstrap(a, b, n_boot=200)   # Interval(estimate, low, high, samples, level)
"""

from __future__ import annotations

from bertdrift.similarity.bootstrap import Interval, block_weights, bootstrap
from bertdrift.similarity.core import KERNELS, METHODS, SimilarityError, as_layers
from bertdrift.similarity.geometry import layer_geometry
from bertdrift.similarity.measures import (
    MAPS,
    MEASURES,
    cka,
    cka_map,
    procrustes,
    procrustes_map,
    rank_average,
    rdm_vectors,
    rsa,
    rsa_map,
)

__all__ = [
    "KERNELS",
    "MAPS",
    "MEASURES",
    "METHODS",
    "Interval",
    "SimilarityError",
    "as_layers",
    "block_weights",
    "bootstrap",
    "cka",
    "cka_map",
    "layer_geometry",
    "procrustes",
    "procrustes_map",
    "rank_average",
    "rdm_vectors",
    "rsa",
    "rsa_map",
]
