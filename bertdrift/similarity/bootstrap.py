"""Block-bootstrap confidence intervals for Pearson RSA and plain linear CKA, per layer.

See :func:`bootstrap`. The measures themselves are in :mod:`bertdrift.similarity.measures`; this module uses only
the public helpers of :mod:`bertdrift.similarity.core`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from bertdrift.similarity.core import (
    SimilarityError,
    check_options,
    frobenius2,
    normalised_rows,
    pair_layers,
)


@dataclass(frozen=True)
class Interval:
    """A per-layer estimate with a bootstrap percentile interval (tensors of shape ``(L,)``)."""

    estimate: Tensor
    low: Tensor
    high: Tensor
    samples: Tensor
    """``(n_boot, L)`` bootstrap replicates."""
    level: float


def block_weights(n_blocks: int, n_boot: int, seed: int = 0) -> Tensor:
    """Multinomial counts ``(n_boot, n_blocks)``: how often each block is drawn per replicate."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(n_blocks, (n_boot, n_blocks), generator=g)
    w = torch.zeros(n_boot, n_blocks, dtype=torch.float64)
    return w.scatter_add_(1, idx, torch.ones_like(w))


def _block_stats(fa: Tensor, fb: Tensor, n_blocks: int) -> dict[str, Tensor]:
    """Per-block sums over ``n_blocks`` contiguous row blocks (zero rows pad the last ones)."""
    n = fa.shape[0]
    size = -(-n // n_blocks)
    counts = torch.tensor([len(c) for c in torch.arange(n).tensor_split(n_blocks)],
                          dtype=torch.float64, device=fa.device)
    # rows padded so that block k holds rows starting at its tensor_split offset
    starts = torch.cat([torch.zeros(1, device=fa.device), counts.cumsum(0)[:-1]]).long()
    idx = starts[:, None] + torch.arange(size, device=fa.device)[None, :]
    valid = torch.arange(size, device=fa.device)[None, :] < counts[:, None]
    idx = torch.where(valid, idx, torch.zeros_like(idx))

    def blocks(f: Tensor) -> Tensor:
        return f[idx] * valid[..., None]

    a, b = blocks(fa), blocks(fb)
    qa, qb = a.square().sum(-1), b.square().sum(-1)
    return {"ab": a.transpose(1, 2) @ b, "aa": a.transpose(1, 2) @ a,
            "bb": b.transpose(1, 2) @ b, "sa": a.sum(1), "sb": b.sum(1), "n": counts,
            "qa": qa.sum(1), "qb": qb.sum(1), "qab": (qa * qb).sum(1),
            "qaa": qa.square().sum(1), "qbb": qb.square().sum(1)}


def _weighted(st: dict[str, Tensor], w: Tensor, measure: str) -> Tensor:
    """The statistic for each row of block weights ``w`` ``(R, B)``."""
    def wsum(key: str) -> Tensor:
        c = st[key]
        return (w @ c.reshape(c.shape[0], -1)).reshape(-1, *c.shape[1:])

    sw = w @ st["n"]
    if measure == "cka":
        mu_a, mu_b = (w @ st["sa"]) / sw[:, None], (w @ st["sb"]) / sw[:, None]

        def centred(key: str, u: Tensor, v: Tensor) -> Tensor:
            return frobenius2(wsum(key) - sw[:, None, None] * u[:, :, None] * v[:, None, :])

        return centred("ab", mu_a, mu_b) / torch.sqrt(
            centred("aa", mu_a, mu_a) * centred("bb", mu_b, mu_b))
    w2 = w.square()
    pairs = (sw.square() - w2 @ st["n"]) / 2
    ta = ((w @ st["sa"]).square().sum(-1) - w2 @ st["qa"]) / 2
    tb = ((w @ st["sb"]).square().sum(-1) - w2 @ st["qb"]) / 2
    paa = (frobenius2(wsum("aa")) - w2 @ st["qaa"]) / 2
    pbb = (frobenius2(wsum("bb")) - w2 @ st["qbb"]) / 2
    pab = (frobenius2(wsum("ab")) - w2 @ st["qab"]) / 2
    return (pairs * pab - ta * tb) / torch.sqrt((pairs * paa - ta**2) * (pairs * pbb - tb**2))


def bootstrap(x: Any, y: Any, *, measure: str = "rsa", kernel: str = "cosine",
              n_boot: int = 100, n_blocks: int = 50, level: float = 0.95, seed: int = 0,
              weights: Tensor | None = None, chunk: int = 25, progress: bool = False
              ) -> Interval:
    """Per-layer estimate and block-bootstrap percentile interval for Pearson RSA or plain CKA.

    The ``n`` tokens (rows, in corpus order) are cut into ``n_blocks`` contiguous blocks, so
    tokens of one sentence mostly stay together; each replicate draws ``n_blocks`` blocks with
    replacement (seeded). Resampling rows duplicates them, and a duplicated token would pair with
    its own copy at distance 0, inflating RSA. So each replicate is computed as a *weighted*
    statistic: token ``i`` has weight ``w_i`` (how often its block was drawn), every pair of
    distinct tokens counts ``w_i w_j`` times, and copy-with-copy pairs are excluded; this equals
    RSA on the resampled tokens with the artificial zero-distance pairs removed. Plain CKA is a
    V-statistic, so its weighted form equals CKA on the resampled rows exactly. Everything is
    computed from per-block ``d x d`` sums, so a replicate costs no pass over the tokens.

    The interval is the replicates' percentile spread around their own mean, centred on the
    full-sample estimate (resampling blocks over-weights within-block pairs, which shifts the
    replicates; only their spread is used). ``samples`` keeps the raw replicates.
    ``kernel`` is ``"cosine"`` or ``"correlation"`` for RSA (ignored for CKA).
    """
    if measure not in ("rsa", "cka"):
        raise SimilarityError(f"bootstrap supports measure='rsa' or 'cka', not {measure!r}")
    if measure == "rsa" and kernel == "euclidean":
        raise SimilarityError("bootstrap RSA supports kernel='cosine' or 'correlation'")
    check_options(kernel, "pearson")
    if not 0 < level < 1:
        raise SimilarityError(f"level must be in (0, 1), got {level}")
    a, b, _ = pair_layers(x, y, paired=True)
    n = a.shape[1]
    n_blocks = min(n_blocks, n)
    w = block_weights(n_blocks, n_boot, seed) if weights is None else weights.to(torch.float64)
    w = torch.cat([torch.ones(1, n_blocks, dtype=torch.float64), w]).to(a.device)
    from tqdm.auto import tqdm

    out = []
    for layer in tqdm(range(a.shape[0]), desc=f"bootstrap {measure}", disable=not progress,
                      leave=False):
        if measure == "cka":
            fa = a[layer] - a[layer].mean(0)
            fb = b[layer] - b[layer].mean(0)
        else:
            fa, fb = (normalised_rows(t[layer].unsqueeze(0), kernel)[0] for t in (a, b))
        st = _block_stats(fa, fb, n_blocks)
        out.append(torch.cat([_weighted(st, w[s:s + chunk], measure)
                              for s in range(0, len(w), chunk)]))
    values = torch.stack(out, dim=1).cpu()
    low, high = percentile_interval(values[0], values[1:], level)
    return Interval(values[0], low, high, values[1:], level)


def percentile_interval(estimate: Tensor, samples: Tensor, level: float = 0.95
                        ) -> tuple[Tensor, Tensor]:
    """The replicates' percentile spread around their own mean, centred on ``estimate``
    (``samples``: ``(n_boot, L)``); see :func:`bootstrap`."""
    alpha = (1 - level) / 2
    spread = samples - samples.mean(0)
    q = torch.quantile(spread, torch.tensor([alpha, 1 - alpha], dtype=torch.float64), dim=0)
    return estimate + q[0], estimate + q[1]


# -- paired replicates for a standard error (the verdicts of chapters 4 and 6) -----------------
@dataclass(frozen=True)
class Replicates:
    """Per-layer RSA on the full words and in every replicate of one block bootstrap.

    ``product`` (``(n_boot, L)``) weights a pair of words by ``w_i w_j`` (RSA on the resampled
    words, as in :func:`bootstrap`); ``linear`` weights it by ``w_i + w_j - 1`` (the same draw,
    expanded to first order in the weights). :func:`replicate_variance` combines the two into a
    variance free of the pair-level overcount (see there). Replicates made with the same
    ``seed``, number of blocks and number of words are *paired*: the same blocks are drawn in
    replicate ``b`` of every comparison, so any function of several comparisons can be
    evaluated replicate by replicate."""

    estimate: Tensor
    product: Tensor
    linear: Tensor


def _pearson(pairs: Tensor, ta: Tensor, tb: Tensor, paa: Tensor, pbb: Tensor,
             pab: Tensor) -> Tensor:
    return (pairs * pab - ta * tb) / torch.sqrt((pairs * paa - ta**2) * (pairs * pbb - tb**2))


def rsa_replicates(x: Any, y: Any, *, n_boot: int = 100, n_blocks: int = 50, seed: int = 0,
                   kernel: str = "cosine", weights: Tensor | None = None,
                   max_bytes: int = 1 << 28) -> Replicates:
    """Pearson RSA of ``x`` and ``y`` (``(L, n, d)`` or ``(n, d)``) per layer, with ``n_boot``
    block-bootstrap replicates of two kinds (``Replicates``), vectorised over layers.

    The blocks, weights and the copy-pair exclusion are those of :func:`bootstrap` (its
    ``samples`` equal ``product`` here). Each replicate's pair sums are quadratic forms
    ``w^T G w`` in the block weights, with ``G_kk' = <M_k, M_k'>`` the Gram matrix of the
    per-block ``d x d`` sums ``M_k``: the cost does not grow with ``n_boot``. The linear
    replicate needs only ``<M_k, sum_k' M_k'>``. Layers are processed in groups whose block
    sums stay under ``max_bytes``. ``weights`` (``(R, n_blocks)``) replaces the seeded draw."""
    check_options(kernel, "pearson")
    if kernel == "euclidean":
        raise SimilarityError("rsa_replicates supports kernel='cosine' or 'correlation'")
    a, b, _ = pair_layers(x, y, paired=True)
    n_layers, n, d = a.shape
    nb = min(n_blocks, n)
    drawn = block_weights(nb, n_boot, seed) if weights is None else weights.to(torch.float64)
    w = torch.cat([torch.ones(1, nb, dtype=torch.float64), drawn]).to(a.device)
    w2 = w.square()
    counts = torch.tensor([len(c) for c in torch.arange(n).tensor_split(nb)],
                          dtype=torch.float64, device=a.device)
    size = int(counts.max())
    starts = torch.cat([torch.zeros(1, device=a.device), counts.cumsum(0)[:-1]]).long()
    idx = starts[:, None] + torch.arange(size, device=a.device)[None, :]
    valid = torch.arange(size, device=a.device)[None, :] < counts[:, None]
    idx = torch.where(valid, idx, torch.zeros_like(idx))
    sw = w @ counts
    m = n * (n - 1) / 2
    pairs = (sw.square() - w2 @ counts) / 2
    pairs_lin = (n - 1) * sw - m
    group = max(1, max_bytes // (3 * nb * d * d * 8))
    prod, lin = [], []
    for s in range(0, n_layers, group):
        fa = normalised_rows(a[s:s + group], kernel)
        fb = normalised_rows(b[s:s + group], kernel)
        qa, qb = fa.square().sum(-1)[:, idx] * valid, fb.square().sum(-1)[:, idx] * valid
        ba, bb = fa[:, idx] * valid[..., None], fb[:, idx] * valid[..., None]
        terms = {"a": (ba.sum(2), qa.sum(2)), "b": (bb.sum(2), qb.sum(2)),
                 "aa": ((ba.transpose(2, 3) @ ba).flatten(2), (qa * qa).sum(2)),
                 "bb": ((bb.transpose(2, 3) @ bb).flatten(2), (qb * qb).sum(2)),
                 "ab": ((ba.transpose(2, 3) @ bb).flatten(2), (qa * qb).sum(2))}
        quad, first = {}, {}
        for key, (blocks, diag) in terms.items():
            gram = blocks @ blocks.transpose(1, 2)  # (l, nb, nb)
            quad[key] = ((w @ gram) * w).sum(-1) - diag @ w2.T  # (l, 1 + n_boot)
            total = blocks.sum(1)  # (l, D)
            rows = (blocks * total[:, None]).sum(-1) - diag  # each block's pair sums
            full = (total.square().sum(-1) - diag.sum(1)) / 2
            first[key] = rows @ w.T - full[:, None]
        prod.append(_pearson(pairs, *(quad[k] / 2 for k in ("a", "b", "aa", "bb", "ab"))))
        lin.append(_pearson(pairs_lin, *(first[k] for k in ("a", "b", "aa", "bb", "ab"))))
    p, q = torch.cat(prod).T.cpu(), torch.cat(lin).T.cpu()
    return Replicates(p[0], p[1:], q[1:])


def replicate_variance(product: Any, linear: Any) -> Any:
    """The bootstrap variance of a statistic of pairs of words (RSA, or any smooth function of
    several paired RSAs), freed of the overcount of pair-level noise: ``2 var(linear) -
    var(product)`` along the first axis, floored at ``var(linear) / 2``.

    Why: split a pair statistic into what each word contributes on its own (variance ``V1``)
    and what is specific to the pair (``V2``, which shrinks as ``1/n^2``). Its true variance is
    ``V1 + V2``. Product weights ``w_i w_j`` count the pair part three times
    (``var(w_i w_j) = 3`` for multinomial weights) and the linear weights' per-word sums carry
    it twice, so ``var(product) ≈ V1 + 3 V2`` and ``var(linear) ≈ V1 + 2 V2``; the
    combination recovers ``V1 + V2``. The floor is the least value consistent with ``V1 >= 0``.
    With thousands of words the correction is small; with hundreds it keeps intervals from
    being much too wide (``tests/test_similarity.py``)."""
    p = torch.as_tensor(product, dtype=torch.float64)
    q = torch.as_tensor(linear, dtype=torch.float64)
    vp, vl = p.var(0, unbiased=True), q.var(0, unbiased=True)
    return torch.maximum(2 * vl - vp, vl / 2)
