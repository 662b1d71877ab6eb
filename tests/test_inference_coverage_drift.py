"""The ceiling-corrected change checked by simulation (issue 23): synthetic pre-trained and
fine-tuned activations with a known shared change and seed noise, the statistic and its
interval computed with the functions chapter 4 uses, over 400 draws.

Design: ``pre`` is 300 words x 32 dimensions; every seed ``s`` of 3 is
``pre + Δ + σ_s ε_s`` with a change ``Δ`` the seeds share (``a`` times Gaussian noise per word)
and seed noise whose size ``σ_s`` differs from seed to seed (log-normal), so the population
values of RSA differ between seeds and the seeds' spread is part of the truth. The target is
the population value ``c = 1 - RSA(pre, pre + Δ)``, computed on 100,000 words. The 400 draws
are stacked as 400 "layers" of one comparison, so one call of the package's functions does
them all.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from bertdrift import drift_evidence as de
from bertdrift import inference
from bertdrift.similarity import rsa

boot = importlib.import_module("bertdrift.similarity.bootstrap")

N_WORDS, DIMS, SEEDS, DRAWS, N_BOOT = 300, 32, (0, 1, 2), 400, 100
NOISE, NOISE_SPREAD = 0.4, 0.3


def _population_change(a: float) -> float:
    rng = np.random.default_rng(123)
    x = rng.standard_normal((100_000, DIMS))
    return 1.0 - float(rsa(x, x + a * rng.standard_normal(x.shape)))


def _simulate(a: float, seed: int) -> de.SeedComparisons:
    rng = np.random.default_rng(seed)
    pre = torch.from_numpy(rng.standard_normal((DRAWS, N_WORDS, DIMS)))
    shared = pre + a * torch.from_numpy(rng.standard_normal(pre.shape))
    ft = {}
    for s in SEEDS:
        sigma = NOISE * np.exp(NOISE_SPREAD * rng.standard_normal((DRAWS, 1, 1)))
        ft[s] = shared + torch.from_numpy(sigma * rng.standard_normal(pre.shape))

    def rows(x, y):  # every comparison with the same bootstrap seed: paired replicates
        return de.stack(boot.rsa_replicates(x, y, n_boot=N_BOOT, seed=0))

    return de.SeedComparisons(pre={s: rows(pre, ft[s]) for s in SEEDS},
                              pairs={(i, j): rows(ft[i], ft[j]) for i in SEEDS for j in SEEDS
                                     if i < j})


def _coverage(ev: de.SeedComparisons, c: float) -> tuple[float, float, float, float]:
    """Coverage of ``c`` by the corrected statistic's interval and by the old statistic's
    (ceiling RSA minus pre-vs-fine-tuned RSA, words-only error of the latter, seed spread),
    and both statistics' means over draws."""
    profiles = {k: de.seed_profiles(ev, list(k)) for k in [SEEDS, *[
        tuple(s for s in SEEDS if s != i) for i in SEEDS]]}
    hits, old_hits, effects, old_effects = 0, 0, [], []
    ceiling = np.mean([q[0] for q in ev.pairs.values()], axis=0)
    r_mean = np.mean([r for r in ev.pre.values()], axis=0)
    for draw in range(DRAWS):
        p = de.estimate(lambda k, d=draw: profiles[tuple(k)][:, :, d], SEEDS)
        eff, lo, hi = de.interval(p)
        hits += lo <= c <= hi
        effects.append(eff)
        old = inference.combine([ceiling[draw] - ev.pre[s][0, draw] for s in SEEDS],
                                de.words_se(r_mean[:, draw]))
        lo, hi = old.interval()
        old_hits += lo <= c <= hi
        old_effects.append(old.mean)
    return hits / DRAWS, old_hits / DRAWS, float(np.mean(effects)), float(np.mean(old_effects))


@pytest.mark.parametrize("a", [0.0, 0.15, 0.3])
def test_corrected_change_interval_covers_the_shared_change(a: float) -> None:
    torch.set_num_threads(2)
    c = _population_change(a)
    ev = _simulate(a, seed=int(1000 * a) + 7)
    cover, old_cover, mean, old_mean = _coverage(ev, c)
    print(f"a={a}: c={c:.4f}; corrected: mean {mean:.4f}, coverage {cover:.3f}; old "
          f"(ceiling - RSA): mean {old_mean:.4f}, coverage {old_cover:.3f}")
    assert 0.93 <= cover <= 0.97
    assert mean == pytest.approx(c, abs=0.002)
    # the old statistic estimates c - σ² (σ²: one seed's noise), far from c, and its interval
    # misses c however wide the seeds make it
    assert old_mean < c - 0.05 and old_cover < 0.8
