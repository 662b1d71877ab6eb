"""The one home of inference: intervals that cover, rules with known answers, Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bertdrift import inference as inf
from bertdrift.probing.stats import counts_score

DRAWS = 400


def test_combine_is_the_t_interval_plus_a_further_error():
    # three seeds 1, 2, 3: mean 2, sd 1, seed se 1/sqrt(3); t(2) = 4.303
    est = inf.combine([1.0, 2.0, 3.0])
    assert est.mean == pytest.approx(2.0) and est.dof == pytest.approx(2.0)
    lo, hi = est.interval()
    assert hi - 2.0 == pytest.approx(4.3027 / 3 ** 0.5, rel=1e-3)
    # an equal independent error with infinite dof: Welch–Satterthwaite gives dof 2 * 4 = 8
    est2 = inf.combine([1.0, 2.0, 3.0], se=1 / 3 ** 0.5)
    assert est2.se == pytest.approx((2 / 3) ** 0.5)
    assert est2.dof == pytest.approx(8.0)
    # one seed and no measured spread: refused, never a zero-width interval
    with pytest.raises(inf.InferenceError, match="at least 2 seeds"):
        inf.combine([5.0], se=1.0)
    # one value with a spread measured elsewhere (pooled): t with its dof
    est3 = inf.combine([5.0], seed_se=1.0, seed_dof=4)
    assert est3.interval()[1] == pytest.approx(5 + 2.776, abs=1e-3)
    with pytest.raises(inf.InferenceError):
        inf.combine([])


def test_pooled_sd_and_jackknife():
    sd, dof = inf.pooled_sd([[1.0, 2.0, 3.0], [10.0, 12.0], [7.0]])
    assert dof == 3 and sd == pytest.approx(math.sqrt((2 + 2) / 3))
    # the jackknife of a mean is the usual standard error of the mean
    x = np.array([1.0, 4.0, 2.0, 8.0])
    full, se = inf.jackknife_se(4, lambda keep: float(x[keep].mean()))
    assert full == pytest.approx(x.mean()) and se == pytest.approx(x.std(ddof=1) / 2)


def test_holm_matches_the_step_down_definition():
    adj = inf.holm([0.01, 0.04, 0.03, 0.2])
    assert adj == pytest.approx([0.04, 0.09, 0.09, 0.2])


def _part(values, se=0.0, **kw):
    return inf.Part(values=values, se=se, **kw)


def test_rules_with_known_answers():
    rng = np.random.default_rng(0)
    # no effect, little data: the interval holds both 0 and the margin's edge -> inconclusive
    few = list(rng.normal(0.0, 0.05, 3))
    assert inf.decide_parts({"a": _part(few, null=0.0, margin=0.02)})["a"] == "inconclusive"
    # no effect, much data: the 90 % interval fits inside the margin -> equivalent
    many = list(rng.normal(0.0, 0.05, 400))
    assert inf.decide_parts({"a": _part(many, null=0.0, margin=0.02)})["a"] == "equivalent"
    # a real effect well beyond the margin -> agree; the reverse -> disagree
    assert inf.decide_parts({"a": _part([0.10, 0.12, 0.11], margin=0.02)})["a"] == "agree"
    assert inf.decide_parts({"a": _part([-0.10, -0.12, -0.11], margin=0.02)})["a"] == (
        "disagree")
    # the claim's side may be below its null
    assert inf.decide_parts({"a": _part([0.1, 0.2, 0.15], null=1.0, side="below")})["a"] == (
        "agree")


def test_conjunction_and_absence():
    assert inf.conjunction(["agree", "agree"]) == "agree"
    assert inf.conjunction(["agree", "disagree"]) == "disagree"
    assert inf.conjunction(["equivalent", "equivalent"]) == "equivalent"
    assert inf.conjunction(["agree", "equivalent"]) == "inconclusive"
    # a claim of absence: an equivalent part agrees with the paper
    r = inf.judge_parts({"a": _part(list(np.zeros(5) + [0.001, -0.001, 0, 0.001, -0.001]),
                                    null=-0.5, margin=0.5, absence=True)})["a"]
    assert r.verdict == "equivalent" and inf.reading(r) == "agree"


def test_holm_guards_the_disagree_side_of_many_parts():
    # each part alone sits just beyond the null on the other side (p about 0.02 < 0.025),
    # but with ten parts Holm needs p < 0.0025 for the smallest: none disagrees
    est = inf.combine([-1.0, 0.0, 1.0])  # se = 0.577, dof 2
    t_needed = -float(np.abs(__import__("scipy").stats.t.ppf(0.02, 2)))
    shift = t_needed * est.se
    parts = {f"p{i}": _part([shift - 1.0, shift, shift + 1.0]) for i in range(10)}
    alone = inf.judge_part(parts["p0"])
    assert alone.verdict == "disagree"
    assert set(inf.decide_parts(parts).values()) == {"inconclusive"}


def _coverage(draw, truth) -> float:
    hits = 0
    for i in range(DRAWS):
        lo, hi = draw(np.random.default_rng(1000 + i))
        hits += lo <= truth <= hi
    return hits / DRAWS


def test_coverage_of_the_seed_interval_with_a_word_error():
    # per-seed effects (fine-tuning seed noise, sd 0.03) share one word-sampling error (se 0.02)
    def draw(rng):
        common = rng.normal(0, 0.02)
        values = 0.1 + common + rng.normal(0, 0.03, 3)
        return inf.combine(values, se=0.02).interval()
    cov = _coverage(draw, 0.1)
    assert 0.93 <= cov <= 0.97, cov


def test_coverage_of_a_pooled_drop():
    # freezing: three seeds at k = 0 and three at k, pooled sd, dof 4: an exact t-interval
    def draw(rng):
        a, b = rng.normal(80, 2, 3), rng.normal(75, 2, 3)
        sd, dof = inf.pooled_sd([a, b])
        return inf.combine([a.mean() - b.mean()], seed_se=sd * math.sqrt(2 / 3),
                           seed_dof=dof).interval()
    cov = _coverage(draw, 5.0)
    assert 0.93 <= cov <= 0.97, cov


def test_coverage_of_the_paired_sentence_bootstrap():
    # two models scored on the same 300 sentences (accuracy, 1-6 targets each); the true
    # difference is that of the per-target probabilities 0.80 and 0.75, correlated per sentence
    def draw(rng):
        n = rng.integers(1, 7, 300)
        ease = rng.normal(0, 1, 300)
        pa = 1 / (1 + np.exp(-(np.log(4) + ease)))
        pb = 1 / (1 + np.exp(-(np.log(3) + ease)))
        ca, cb = rng.binomial(n, pa), rng.binomial(n, pb)
        a = np.stack([ca, n], axis=1)
        b = np.stack([cb, n], axis=1)
        _, lo, hi = inf.paired_bootstrap(_acc, a, b, n_boot=500, seed=int(rng.integers(1e9)),
                                         scale=1.0)
        return lo, hi
    # the population difference of the logistic means, by simulation on a large sample
    rng = np.random.default_rng(7)
    e = rng.normal(0, 1, 2_000_000)
    truth = float(np.mean(1 / (1 + np.exp(-(np.log(4) + e))))
                  - np.mean(1 / (1 + np.exp(-(np.log(3) + e)))))
    cov = _coverage(draw, truth)
    assert 0.93 <= cov <= 0.97, cov


def _acc(arr: np.ndarray, w: np.ndarray) -> np.ndarray:
    tot = w @ np.asarray(arr, np.float64)
    return tot[:, 0] / tot[:, 1]


def test_paired_bootstrap_averages_probe_seeds_inside_replicates():
    rng = np.random.default_rng(0)
    n = np.full(50, 4)
    seeds = np.stack([np.stack([rng.binomial(n, p), n], axis=1) for p in (0.6, 0.7, 0.8)])
    point, lo, hi = inf.paired_bootstrap(_acc, seeds, n_boot=200, scale=1.0)
    assert point == pytest.approx(np.mean([s[:, 0].sum() / s[:, 1].sum() for s in seeds]))
    assert lo <= point <= hi
    assert counts_score("accuracy") is not None  # the probing metrics plug in as ScoreFns


def test_the_module_docstring_examples_run():
    import doctest

    result = doctest.testmod(inf, raise_on_error=False, verbose=False)
    assert result.attempted >= 3 and result.failed == 0
