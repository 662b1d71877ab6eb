"""Similarity measures: agreement with rsatoolbox, invariances, batching, bootstrap weighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from rsatoolbox.data import Dataset
from rsatoolbox.rdm import RDMs, calc_rdm, compare
from scipy.spatial.distance import pdist

from bertdrift import similarity as sim

torch.set_num_threads(2)


def _pair(n: int = 60, d: int = 12, e: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) + rng.normal(size=d)  # an offset, like real activations
    y = x @ rng.normal(size=(d, e)) + 0.7 * rng.normal(size=(n, e))
    return x, y


def _rsatoolbox(x: np.ndarray, y: np.ndarray, rdm_method: str, cmp: str) -> float:
    ra = calc_rdm(Dataset(x), method=rdm_method)
    rb = calc_rdm(Dataset(y), method=rdm_method)
    return float(compare(ra, rb, method=cmp)[0, 0])


@pytest.mark.parametrize("space", ["feature", "sample"])
@pytest.mark.parametrize(
    ("kernel", "rdm_method"), [("correlation", "correlation"), ("euclidean", "euclidean")]
)
def test_pearson_rsa_matches_rsatoolbox(space: str, kernel: str, rdm_method: str) -> None:
    x, y = _pair()
    ours = float(sim.rsa(x, y, kernel=kernel, space=space))
    assert ours == pytest.approx(_rsatoolbox(x, y, rdm_method, "corr"), abs=1e-9)


@pytest.mark.parametrize("cmp", ["spearman", "rho-a"])
@pytest.mark.parametrize(
    ("kernel", "rdm_method"), [("correlation", "correlation"), ("euclidean", "euclidean")]
)
def test_spearman_rsa_matches_rsatoolbox(cmp: str, kernel: str, rdm_method: str) -> None:
    x, y = _pair(n=40)
    ours = float(sim.rsa(x, y, kernel=kernel, method="spearman"))
    assert ours == pytest.approx(_rsatoolbox(x, y, rdm_method, cmp), abs=1e-9)


def test_cosine_rsa_matches_rsatoolbox_on_cosine_rdms() -> None:
    """The cosine kernel has no rsatoolbox method; compare its RDMs through rsatoolbox."""
    x, y = _pair()
    ra, rb = RDMs(pdist(x, "cosine")[None]), RDMs(pdist(y, "cosine")[None])
    for method, cmp in (("pearson", "corr"), ("spearman", "spearman")):
        ref = float(compare(ra, rb, method=cmp)[0, 0])
        assert float(sim.rsa(x, y, method=method)) == pytest.approx(ref, abs=1e-9)
    np.testing.assert_allclose(sim.rdm_vectors(x)[0].numpy(), pdist(x, "cosine"), atol=1e-12)
    # on row-centred inputs the cosine kernel is rsatoolbox's correlation distance
    xc, yc = x - x.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    assert float(sim.rsa(xc, yc)) == pytest.approx(
        _rsatoolbox(x, y, "correlation", "corr"), abs=1e-9
    )


def test_feature_space_equals_sample_space_for_all_kernels() -> None:
    x, y = _pair(n=80, d=30, e=20, seed=3)
    for kernel in sim.KERNELS:
        a = sim.rsa(x, y, kernel=kernel, space="feature")
        b = sim.rsa(x, y, kernel=kernel, space="sample")
        assert float(a) == pytest.approx(float(b), abs=1e-10)


def test_wide_features_use_the_symmetric_split_correctly() -> None:
    """d = 130 exercises the recursive half-split of the self products."""
    x, y = _pair(n=90, d=130, e=70, seed=8)
    for kernel in sim.KERNELS:
        a = sim.rsa(x, y, kernel=kernel, space="feature")
        assert float(a) == pytest.approx(float(sim.rsa(x, y, kernel=kernel, space="sample")),
                                         abs=1e-10)
    k, ell = x - x.mean(0), y - y.mean(0)
    ref = np.linalg.norm(k.T @ ell) ** 2 / (np.linalg.norm(k.T @ k) * np.linalg.norm(ell.T @ ell))
    assert float(sim.cka(x, y)) == pytest.approx(ref, abs=1e-12)


def test_ranks_average_ties() -> None:
    v = torch.tensor([[3.0, 1.0, 3.0, 2.0, 3.0]])
    assert sim.rank_average(v).tolist() == [[4.0, 1.0, 4.0, 2.0, 4.0]]


def _stack(n: int = 50, layers: int = 3, d: int = 8, seed: int = 1) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(layers, n, d))
    b = a + 0.5 * rng.normal(size=(layers, n, d)) * np.arange(1, layers + 1)[:, None, None]
    return a, b


@pytest.mark.parametrize("name", ["rsa", "cka", "cka_debiased", "procrustes"])
def test_batched_equals_per_layer_and_map_diagonal(name: str) -> None:
    a, b = _stack()
    batched = sim.MEASURES[name](a, b)
    assert batched.shape == (3,)
    for layer in range(3):
        single = sim.MEASURES[name](a[layer], b[layer])
        assert single.ndim == 0
        assert float(batched[layer]) == pytest.approx(float(single), abs=1e-12)
    full = sim.MAPS[name](a, b[:2])
    assert full.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            assert float(full[i, j]) == pytest.approx(
                float(sim.MEASURES[name](a[i], b[j])), abs=1e-12
            )


def test_rsa_map_sample_space_and_spearman_batched() -> None:
    a, b = _stack(n=30)
    for method in ("pearson", "spearman"):
        m = sim.rsa_map(a, b, method=method, space="sample")
        for i in range(3):
            assert float(m[i, i]) == pytest.approx(
                float(sim.rsa(a[i], b[i], method=method, space="sample")), abs=1e-12
            )
    np.testing.assert_allclose(
        sim.rsa_map(a, b, space="sample").numpy(), sim.rsa_map(a, b, space="feature").numpy(),
        atol=1e-10,
    )


def test_cka_invariances() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 16))
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    for debiased in (False, True):
        assert float(sim.cka(x, x, debiased=debiased)) == pytest.approx(1.0, abs=1e-12)
        assert float(sim.cka(x, x @ q, debiased=debiased)) == pytest.approx(1.0, abs=1e-12)
        assert float(sim.cka(x, 3.7 * x, debiased=debiased)) == pytest.approx(1.0, abs=1e-12)
    assert float(sim.procrustes(x, x @ q)) == pytest.approx(1.0, abs=1e-12)
    assert float(sim.procrustes(x, 2.0 * x + 5.0)) == pytest.approx(1.0, abs=1e-12)
    # not invariant to a general linear map
    assert float(sim.cka(x, x @ rng.normal(size=(16, 16)))) < 0.99


def test_debiased_cka_near_zero_for_independent_inputs() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(500, 64)), rng.normal(size=(500, 64))
    plain = float(sim.cka(x, y))
    debiased = float(sim.cka(x, y, debiased=True))
    assert abs(debiased) < 0.02
    assert plain > 0.1  # the biased estimator is far from 0 when d is not small next to n


def test_cka_matches_gram_formulas() -> None:
    """Feature-space CKA equals the n x n Gram-matrix definitions (Kornblith / Song et al.)."""
    x, y = _pair(n=40, seed=6)
    n = len(x)
    k, ell = x @ x.T, y @ y.T
    h = np.eye(n) - 1 / n
    hsic = lambda p, r: np.trace(h @ p @ h @ r)  # noqa: E731
    ref = hsic(k, ell) / np.sqrt(hsic(k, k) * hsic(ell, ell))
    assert float(sim.cka(x, y)) == pytest.approx(ref, abs=1e-12)

    def hsic_u(p: np.ndarray, r: np.ndarray) -> float:
        p, r = p - np.diag(np.diag(p)), r - np.diag(np.diag(r))
        one = np.ones(n)
        return (np.trace(p @ r) + one @ p @ one * (one @ r @ one) / ((n - 1) * (n - 2))
                - 2 / (n - 2) * one @ p @ r @ one) / (n * (n - 3))

    xc, yc = x - x.mean(0), y - y.mean(0)
    kc, lc = xc @ xc.T, yc @ yc.T
    ref_u = hsic_u(kc, lc) / np.sqrt(hsic_u(kc, kc) * hsic_u(lc, lc))
    assert float(sim.cka(x, y, debiased=True)) == pytest.approx(ref_u, abs=1e-12)


def test_bootstrap_full_weights_reproduce_estimate_and_seed() -> None:
    a, b = _stack(n=120)
    for measure, ref in (("rsa", sim.rsa(a, b)), ("cka", sim.cka(a, b))):
        res = sim.bootstrap(a, b, measure=measure, n_boot=30, n_blocks=12, seed=1)
        np.testing.assert_allclose(res.estimate.numpy(), ref.numpy(), atol=1e-12)
        assert res.samples.shape == (30, 3)
        assert bool((res.low <= res.high).all())
        again = sim.bootstrap(a, b, measure=measure, n_boot=30, n_blocks=12, seed=1)
        assert torch.equal(res.samples, again.samples)


def test_bootstrap_weighting_matches_explicit_resample() -> None:
    """A weighted replicate equals the statistic on resampled rows (RSA: copy pairs dropped)."""
    a, b = _stack(n=24, layers=1)
    w = torch.tensor([[2.0, 0.0, 1.0, 3.0, 0.0, 0.0]])  # 6 blocks of 4 tokens, 6 blocks drawn
    res = sim.bootstrap(a, b, n_boot=1, n_blocks=6, weights=w)
    idx = np.concatenate([np.repeat(np.arange(4 * k, 4 * k + 4)[None], int(c), 0).ravel()
                          for k, c in enumerate(w[0].tolist())])
    va = sim.rdm_vectors(a[0][idx])[0].numpy()
    vb = sim.rdm_vectors(b[0][idx])[0].numpy()
    iu = np.triu_indices(len(idx), 1)
    keep = idx[iu[0]] != idx[iu[1]]  # pairs of a token with its own copy are excluded
    ref = np.corrcoef(va[keep], vb[keep])[0, 1]
    assert float(res.samples[0, 0]) == pytest.approx(ref, abs=1e-10)
    res_cka = sim.bootstrap(a, b, measure="cka", n_boot=1, n_blocks=6, weights=w)
    assert float(res_cka.samples[0, 0]) == pytest.approx(float(sim.cka(a[0][idx], b[0][idx])),
                                                         abs=1e-10)


def test_errors_say_what_to_do() -> None:
    x, y = _pair()
    with pytest.raises(sim.SimilarityError, match="choose one of"):
        sim.rsa(x, y, kernel="rbf")
    with pytest.raises(sim.SimilarityError, match="same tokens"):
        sim.rsa(x, y[:10])
    with pytest.raises(sim.SimilarityError, match="_map"):
        sim.cka(np.stack([x, x]), np.stack([y, y, y]))
    with pytest.raises(sim.SimilarityError, match="space='sample'"):
        sim.rsa(x, y, method="spearman", space="feature")
