"""The shared ground of the similarity measures: input checks and row preparation.

Arrays in, arrays out: nothing here reads or writes files. ``measures`` and ``bootstrap`` both
build on these public helpers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from bertdrift.errors import BertdriftError

KERNELS = ("cosine", "correlation", "euclidean")
METHODS = ("pearson", "spearman")
EPS = 1e-12


class SimilarityError(BertdriftError, ValueError):
    """Inputs to a similarity measure have the wrong shape or an unknown option."""


def as_layers(x: Any, device: str | torch.device | None = None) -> tuple[Tensor, bool]:
    """``x`` as a float64 ``(L, n, d)`` tensor and whether it was a single ``(n, d)`` layer."""
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    if device is not None:
        t = t.to(device)
    t = t.to(torch.float64)
    if t.ndim == 2:
        return t.unsqueeze(0), True
    if t.ndim != 3:
        raise SimilarityError(
            f"expected activations of shape (n, d) or (L, n, d), got {tuple(t.shape)}"
        )
    return t, False


def pair_layers(x: Any, y: Any, paired: bool) -> tuple[Tensor, Tensor, bool]:
    """Both inputs as ``(L, n, d)`` float64 tensors on one device, checked to share their ``n``
    rows (and, when ``paired``, their depth); the flag says both were single layers."""
    a, single_a = as_layers(x)
    b, single_b = as_layers(y, a.device)
    if a.shape[1] != b.shape[1]:
        raise SimilarityError(
            f"both inputs need the same tokens (rows): got n={a.shape[1]} and n={b.shape[1]}"
        )
    if a.shape[1] < 4:
        raise SimilarityError(f"need at least 4 tokens to compare, got {a.shape[1]}")
    if paired and a.shape[0] != b.shape[0]:
        raise SimilarityError(
            f"layer stacks differ in depth ({a.shape[0]} vs {b.shape[0]}); use the *_map "
            "function to compare every layer with every layer"
        )
    return a, b, single_a and single_b


def check_options(kernel: str, method: str) -> None:
    """Raise ``SimilarityError`` for an unknown RSA kernel or correlation method."""
    if kernel not in KERNELS:
        raise SimilarityError(f"unknown kernel {kernel!r}; choose one of {KERNELS}")
    if method not in METHODS:
        raise SimilarityError(f"unknown method {method!r}; choose one of {METHODS}")


def frobenius2(m: Tensor) -> Tensor:
    """Squared Frobenius norm of each matrix in a batch."""
    return torch.linalg.matrix_norm(m).square()


def prepare_rows(t: Tensor, kernel: str) -> tuple[Tensor, Tensor]:
    """Rows ready for the kernel's Gram matrix, and each row's squared norm after that.

    Cosine/correlation rows are divided by their norm, so their squared norm is 1 (0 for an
    all-zero row) and comes from the norms already computed instead of another pass.
    """
    if kernel == "euclidean":
        f = t - t.mean(dim=1, keepdim=True)
        return f, f.square().sum(-1)
    f = t - t.mean(dim=2, keepdim=True) if kernel == "correlation" else t.clone()
    norm = torch.linalg.vector_norm(f, dim=2, keepdim=True)
    safe = norm.clamp_min(EPS)
    f.div_(safe)  # f is our own copy: normalise in place
    return f, (norm / safe).square().squeeze(-1)


def normalised_rows(t: Tensor, kernel: str) -> Tensor:
    """``prepare_rows(t, kernel)`` without the squared norms."""
    return prepare_rows(t, kernel)[0]
