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
    samples = values[1:]
    alpha = (1 - level) / 2
    spread = samples - samples.mean(0)
    q = torch.quantile(spread, torch.tensor([alpha, 1 - alpha], dtype=torch.float64), dim=0)
    return Interval(values[0], values[0] + q[0], values[0] + q[1], samples, level)
