"""Representational similarity: RSA, linear CKA and orthogonal Procrustes, batched over layers.

Every measure takes two activation tensors of shape ``(n, d)`` (one layer) or ``(L, n, d)`` (a
stack of layers; rows are the same ``n`` tokens in both) and returns a scalar or an ``(L,)``
tensor; ``*_map`` variants compare every layer of one stack with every layer of the other and
return ``(La, Lb)``. Work happens on the tensors' device, accumulated in float64.

RSA builds one representational dissimilarity matrix (RDM) per representation and correlates
their upper triangles (diagonal excluded). Kernels: ``"cosine"`` (1 - cosine similarity),
``"correlation"`` (1 - Pearson correlation between rows: cosine after removing each row's mean;
this is rsatoolbox's ``'correlation'``) and ``"euclidean"`` (squared Euclidean distance, as
rsatoolbox computes it; Pearson is invariant to its 1/d scaling). Methods: ``"pearson"`` or
``"spearman"`` (average ranks for ties, rsatoolbox's ``'spearman'``; equal to ``'rho-a'`` when
nothing ties).

Pearson RSA never needs the ``n x n`` RDMs. With similarity ``S = F F^T`` (``F`` the row-normalised
features) and ``q_i = S_ii``, the sums over the ``m = n(n-1)/2`` pairs ``i < j`` are
``sum S_ij = (|F^T 1|^2 - sum q_i) / 2`` and
``sum S^a_ij S^b_ij = (|F_a^T F_b|_F^2 - sum q^a_i q^b_i) / 2`` (the trace of a Gram product
counts every ordered pair once and the diagonal once; subtracting the diagonal and halving leaves
the upper triangle). Pearson of the dissimilarities ``1 - S`` equals Pearson of ``S``. For the
squared Euclidean kernel, after centring the columns (distances do not change), with
``q_i = |x_i|^2``: ``sum D_ij = n sum q_i`` and
``sum D^a_ij D^b_ij = n sum q^a_i q^b_i + (sum q^a)(sum q^b) + 2 |X_a^T X_b|_F^2``. Only ``d x d``
products are formed, so the cost is ``O(n d^2)`` instead of ``O(n^2 d)``.

Linear CKA (Kornblith et al. 2019) uses column-centred features: plain
``|Y^T X|_F^2 / (|X^T X|_F |Y^T Y|_F)``, or with ``debiased=True`` the unbiased HSIC estimator of
Song et al. (2012) as used by Nguyen et al. (2021), also in feature space. Procrustes similarity is
the nuclear norm ``|X^T Y|_*`` of centred, Frobenius-normalised features (1 minus half the squared
orthogonal Procrustes distance).

Block-bootstrap intervals: :func:`bertdrift.similarity.bootstrap.bootstrap`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from bertdrift.similarity.core import (
    SimilarityError,
    as_layers,
    check_options,
    frobenius2,
    normalised_rows,
    pair_layers,
    prepare_rows,
)

_EPS = 1e-12


_BLOCK_BYTES = 1 << 27
"""Largest cross-product block ``_cross`` forms at once (128 MiB)."""


def _cross(a: Tensor, b: Tensor, paired: bool, fn: Callable[[Tensor], Tensor]) -> Tensor:
    """``fn(a_l^T b_k)`` for matching layers ``(L,)`` or for all pairs ``(La, Lb)``.

    For all pairs, the layers are laid side by side, ``(n, L*d)``, so each group of ``a``'s
    layers meets all of ``b``'s in one large matrix product (faster than one per layer), in
    groups small enough to keep the product under ``_BLOCK_BYTES``.
    """
    if paired:
        return fn(a.transpose(1, 2) @ b)
    (la, n, da), (lb, _, db) = a.shape, b.shape
    wide_b = b.permute(1, 0, 2).reshape(n, lb * db)
    group = max(1, _BLOCK_BYTES // (da * lb * db * a.element_size()))
    rows = []
    for s in range(0, la, group):
        g = a[s:s + group]
        wide_a = g.permute(1, 0, 2).reshape(n, -1)
        blocks = (wide_a.T @ wide_b).view(len(g), da, lb, db).transpose(1, 2)
        rows.append(fn(blocks))
    return torch.cat(rows)


def _self_frobenius2(f: Tensor, depth: int = 2) -> Tensor:
    """``|f_l^T f_l|_F^2`` per layer, using symmetry: split the columns in two halves and
    compute the off-diagonal block once (recursively), about 0.6x the cost of one product."""
    h = f.shape[-1] // 2
    if depth == 0 or h < 32:
        return frobenius2(f.transpose(1, 2) @ f)
    a, b = f[..., :h], f[..., h:]
    return (_self_frobenius2(a, depth - 1) + _self_frobenius2(b, depth - 1)
            + 2 * frobenius2(a.transpose(1, 2) @ b))


def _qq(qa: Tensor, qb: Tensor, paired: bool) -> Tensor:
    return (qa * qb).sum(-1) if paired else qa @ qb.T


def _outer(va: Tensor, vb: Tensor, paired: bool) -> tuple[Tensor, Tensor]:
    return (va, vb) if paired else (va[:, None], vb[None, :])


def _finish(out: Tensor, single: bool) -> Tensor:
    return out[0] if single and out.ndim == 1 else (out[0, 0] if single else out)


# -- RSA ---------------------------------------------------------------------------------------
def _pearson_from_sums(m: float, ta: Tensor, tb: Tensor, paa: Tensor, pbb: Tensor,
                       pab: Tensor) -> Tensor:
    return (m * pab - ta * tb) / torch.sqrt((m * paa - ta**2) * (m * pbb - tb**2))


def _rsa_feature(a: Tensor, b: Tensor, kernel: str, paired: bool) -> Tensor:
    n = a.shape[1]
    m = n * (n - 1) / 2
    (fa, qa), (fb, qb) = prepare_rows(a, kernel), prepare_rows(b, kernel)
    saa, sbb = _self_frobenius2(fa), _self_frobenius2(fb)
    sab = _cross(fa, fb, paired, frobenius2)
    if kernel == "euclidean":
        ta, tb = n * qa.sum(-1), n * qb.sum(-1)
        paa = n * (qa * qa).sum(-1) + qa.sum(-1) ** 2 + 2 * saa
        pbb = n * (qb * qb).sum(-1) + qb.sum(-1) ** 2 + 2 * sbb
        sa, sb = _outer(qa.sum(-1), qb.sum(-1), paired)
        pab = n * _qq(qa, qb, paired) + sa * sb + 2 * sab
    else:
        ta = (fa.sum(1).square().sum(-1) - qa.sum(-1)) / 2
        tb = (fb.sum(1).square().sum(-1) - qb.sum(-1)) / 2
        paa, pbb = (saa - (qa * qa).sum(-1)) / 2, (sbb - (qb * qb).sum(-1)) / 2
        pab = (sab - _qq(qa, qb, paired)) / 2
    ta, tb = _outer(ta, tb, paired)
    paa, pbb = _outer(paa, pbb, paired)
    return _pearson_from_sums(m, ta, tb, paa, pbb, pab)


def rdm_vectors(x: Any, kernel: str = "cosine") -> Tensor:
    """Upper-triangle (``i < j``, row-major) dissimilarities ``(L, n(n-1)/2)`` of each layer."""
    check_options(kernel, "pearson")
    t, _ = as_layers(x)
    n = t.shape[1]
    iu = torch.triu_indices(n, n, 1, device=t.device)
    out = []
    for layer in t:
        f = normalised_rows(layer.unsqueeze(0), kernel)[0]
        g = f @ f.T
        if kernel == "euclidean":
            q = g.diagonal()
            d = q[:, None] + q[None, :] - 2 * g
        else:
            d = 1 - g
        out.append(d[iu[0], iu[1]])
    return torch.stack(out)


def rank_average(v: Tensor) -> Tensor:
    """Ranks 1..m of the last axis, ties sharing their average rank (like scipy's rankdata)."""
    flat = v.reshape(-1, v.shape[-1])
    out = torch.empty_like(flat, dtype=torch.float64)
    for i, row in enumerate(flat):
        order = row.argsort(stable=True)
        _, inv, counts = torch.unique_consecutive(row[order], return_inverse=True,
                                                  return_counts=True)
        ends = counts.cumsum(0)
        avg = (ends - counts + ends + 1).to(torch.float64) / 2
        out[i, order] = avg[inv]
    return out.reshape(v.shape)


def _corr_rows(va: Tensor, vb: Tensor, paired: bool, chunk: int = 1 << 22) -> Tensor:
    """Pearson correlation between rows of ``va`` (La, m) and ``vb`` (Lb, m)."""
    va = va - va.mean(-1, keepdim=True)
    vb = vb - vb.mean(-1, keepdim=True)
    va = va / va.norm(dim=-1, keepdim=True)
    vb = vb / vb.norm(dim=-1, keepdim=True)
    if paired:
        return (va * vb).sum(-1)
    out = torch.zeros(va.shape[0], vb.shape[0], dtype=torch.float64, device=va.device)
    for s in range(0, va.shape[1], chunk):
        out += va[:, s:s + chunk] @ vb[:, s:s + chunk].T
    return out


def _rsa(x: Any, y: Any, kernel: str, method: str, space: str, paired: bool) -> Tensor:
    check_options(kernel, method)
    a, b, single = pair_layers(x, y, paired)
    if space not in ("auto", "feature", "sample"):
        raise SimilarityError(f"space={space!r}; choose 'auto', 'feature' or 'sample'")
    if method == "spearman" and space == "feature":
        raise SimilarityError("Spearman RSA needs the ranks of the RDMs; use space='sample'")
    n, d = a.shape[1], max(a.shape[2], b.shape[2])
    if method == "pearson" and (space == "feature" or (space == "auto" and n > d)):
        return _finish(_rsa_feature(a, b, kernel, paired), single)
    va, vb = rdm_vectors(a, kernel), rdm_vectors(b, kernel)
    if method == "spearman":
        va, vb = rank_average(va), rank_average(vb)
    return _finish(_corr_rows(va, vb, paired), single)


def rsa(x: Any, y: Any, *, kernel: str = "cosine", method: str = "pearson",
        space: str = "auto") -> Tensor:
    """RSA between matching layers: ``(n, d)`` pairs give a scalar, ``(L, n, d)`` give ``(L,)``.

    ``space="auto"`` uses the ``d x d`` feature-space identity for Pearson when ``n > d`` and the
    explicit ``n x n`` RDMs otherwise (always for Spearman).
    """
    return _rsa(x, y, kernel, method, space, paired=True)


def rsa_map(x: Any, y: Any, *, kernel: str = "cosine", method: str = "pearson",
            space: str = "auto") -> Tensor:
    """RSA of every layer of ``x`` with every layer of ``y``: ``(La, Lb)``."""
    return _rsa(x, y, kernel, method, space, paired=False)


# -- CKA and Procrustes ------------------------------------------------------------------------
def _cka(x: Any, y: Any, debiased: bool, paired: bool) -> Tensor:
    a, b, single = pair_layers(x, y, paired)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    saa, sbb = _self_frobenius2(a), _self_frobenius2(b)
    sab = _cross(a, b, paired, frobenius2)
    if debiased:
        n = a.shape[1]
        qa, qb = a.square().sum(-1), b.square().sum(-1)

        def unbiased(xty: Tensor, qq: Tensor, na: Tensor, nb: Tensor) -> Tensor:
            return xty - n / (n - 2) * qq + na * nb / ((n - 1) * (n - 2))

        na, nb = qa.sum(-1), qb.sum(-1)
        saa = unbiased(saa, (qa * qa).sum(-1), na, na)
        sbb = unbiased(sbb, (qb * qb).sum(-1), nb, nb)
        oa, ob = _outer(na, nb, paired)
        sab = unbiased(sab, _qq(qa, qb, paired), oa, ob)
    saa, sbb = _outer(saa, sbb, paired)
    return _finish(sab / torch.sqrt(saa * sbb), single)


def cka(x: Any, y: Any, *, debiased: bool = False) -> Tensor:
    """Linear CKA between matching layers (scalar or ``(L,)``)."""
    return _cka(x, y, debiased, paired=True)


def cka_map(x: Any, y: Any, *, debiased: bool = False) -> Tensor:
    """Linear CKA of every layer of ``x`` with every layer of ``y``: ``(La, Lb)``."""
    return _cka(x, y, debiased, paired=False)


def _procrustes(x: Any, y: Any, paired: bool) -> Tensor:
    a, b, single = pair_layers(x, y, paired)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    a = a / torch.linalg.matrix_norm(a)[:, None, None]
    b = b / torch.linalg.matrix_norm(b)[:, None, None]
    out = _cross(a, b, paired, _nuclear)
    return _finish(out, single)


def _nuclear(m: Tensor) -> Tensor:
    """Nuclear norm via the eigenvalues of ``m^T m`` (much faster than an SVD on the CPU)."""
    gram = m.transpose(-1, -2) @ m if m.shape[-1] <= m.shape[-2] else m @ m.transpose(-1, -2)
    if gram.is_cuda:
        return torch.linalg.eigvalsh(gram).clamp_min(0).sqrt().sum(-1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small eigenproblems: threads only add contention (10 s vs 0.04 s)
    try:
        values = torch.linalg.eigvalsh(gram)
    finally:
        torch.set_num_threads(threads)
    return values.clamp_min(0).sqrt().sum(-1)


def procrustes(x: Any, y: Any) -> Tensor:
    """Orthogonal Procrustes similarity ``|X^T Y|_*`` in [0, 1] between matching layers."""
    return _procrustes(x, y, paired=True)


def procrustes_map(x: Any, y: Any) -> Tensor:
    """Procrustes similarity of every layer of ``x`` with every layer of ``y``: ``(La, Lb)``."""
    return _procrustes(x, y, paired=False)


MEASURES: dict[str, Callable[..., Tensor]] = {
    "rsa": rsa, "cka": cka, "cka_debiased": lambda x, y: cka(x, y, debiased=True),
    "procrustes": procrustes,
}
MAPS: dict[str, Callable[..., Tensor]] = {
    "rsa": rsa_map, "cka": cka_map, "cka_debiased": lambda x, y: cka_map(x, y, debiased=True),
    "procrustes": procrustes_map,
}
