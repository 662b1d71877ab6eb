"""Probing statistics on inputs whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from bertdrift.inference import paired_bootstrap, resample_weights, seed_mean_replicates
from bertdrift.probing.edge import decisions, score
from bertdrift.probing.stats import (
    auc,
    best_threshold,
    constant_predictions,
    counts_score,
    informative,
    metric_from_totals,
    sentence_counts,
)
from bertdrift.probing.structural import (
    TreeData,
    baseline_predictions,
    sentence_stats,
    structural_score,
)


def test_tenney_micro_f1_counts_every_target_label_decision() -> None:
    # two targets, three labels; sigmoid decisions logit > 0
    logits = np.array([[2.0, 1.0, -1.0], [-1.0, -2.0, -3.0]])
    y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    # decisions: t0 -> {0, 1}, t1 -> {}; tp = 1, fp = 1, fn = 1 -> F1 = 2/4
    assert score(logits, y, "tenney_f1", multilabel=False) == pytest.approx(0.5)
    # the task metric (argmax) is accuracy 1/2
    assert score(logits, y, "accuracy", multilabel=False) == pytest.approx(0.5)


def test_binary_f1_mcc_and_threshold() -> None:
    gold = np.array([[0, 1], [0, 1], [1, 0], [1, 0]], dtype=float)
    logits = np.array([[0.0, 0.3], [0.0, -0.2], [0.0, -0.5], [0.0, -1.0]])
    # argmax: only target 0 positive -> tp 1, fn 1 -> F1 2/3
    assert score(logits, gold, "f1", multilabel=False) == pytest.approx(2 / 3)
    margins = logits[:, 1] - logits[:, 0]
    t = best_threshold(margins, gold[:, 1] > 0)
    assert -0.5 < t < -0.2  # cuts between the positives and the negatives
    assert score(logits, gold, "f1", multilabel=False, threshold=t) == pytest.approx(1.0)
    pred = decisions(logits, False, 1, t)
    counts = sentence_counts(pred, gold > 0, np.zeros(4, int), 1, "binary", 1)[0]
    assert list(counts) == [2, 0, 0, 2]
    assert metric_from_totals("mcc", counts) == pytest.approx(1.0)
    assert metric_from_totals("mcc", np.array([2, 2, 0, 0])) == 0.0  # constant: undefined -> 0
    assert auc(margins, gold[:, 1] > 0) == pytest.approx(1.0)
    assert auc(np.zeros(4), gold[:, 1] > 0) == pytest.approx(0.5)
    assert auc(-margins, gold[:, 1] > 0) == pytest.approx(0.0)


def test_constant_baselines() -> None:
    y = np.array([[1, 0], [0, 1], [0, 1]], dtype=float)
    base = constant_predictions(y, multilabel=False)
    assert list(base["majority"]) == [False, True] and list(base["all_positive"]) == [False, True]
    multi = constant_predictions(np.array([[1, 0, 1], [1, 0, 0]], float), multilabel=True)
    assert list(multi["majority"]) == [True, False, False]
    assert list(multi["all_positive"]) == [True, True, True]
    # always-positive F1 with positive share p is 2p / (1 + p)
    gold = np.array([[0, 1]] + [[1, 0]] * 3, bool)
    c = sentence_counts(np.broadcast_to([False, True], gold.shape), gold, np.arange(4), 4,
                        "binary", 1)
    assert metric_from_totals("f1", c.sum(0)) == pytest.approx(2 * 0.25 / 1.25)


def test_per_label_macro_f1_and_accuracy_counts() -> None:
    pred = np.array([[1, 0], [1, 0], [0, 1]], bool)
    gold = np.array([[1, 0], [0, 1], [0, 1]], bool)
    acc = sentence_counts(pred, gold, np.array([0, 0, 1]), 2, "acc")
    assert acc.tolist() == [[1, 2], [1, 1]]
    per = sentence_counts(pred, gold, np.zeros(3, int), 1, "per_label")[0]
    # label 0: tp 1 fp 1 fn 0 -> 2/3; label 1: tp 1 fp 0 fn 1 -> 2/3
    assert metric_from_totals("macro_f1", per) == pytest.approx(2 / 3)


def test_bootstrap_intervals_cover_and_pair() -> None:
    rng = np.random.default_rng(0)
    n = 400
    correct = (rng.random(n) < 0.7).astype(int)
    counts = np.stack([correct, np.ones(n, int)], -1)
    acc = counts_score("accuracy")
    point, lo, hi = paired_bootstrap(acc, counts, n_boot=500)
    assert point == pytest.approx(100 * correct.mean())
    assert lo < point < hi and 4 < hi - lo < 12  # about ±4.5 points at p = 0.7, n = 400
    # the same predictions minus themselves: a zero-width paired interval
    assert paired_bootstrap(acc, counts, counts, n_boot=200) == (0.0, 0.0, 0.0)
    # paired: a model that differs from another on a few sentences only has a narrow change
    other = counts.copy()
    other[:8, 0] = 1 - other[:8, 0]
    d, dlo, dhi = paired_bootstrap(acc, other, counts, n_boot=500)
    assert d == pytest.approx(100 * (other[:, 0].mean() - correct.mean()))
    assert dhi - dlo < (hi - lo) / 2


def test_paired_bootstrap_averages_probe_seeds_inside_each_replicate() -> None:
    """The old paired_interval drew one probe seed per side per replicate, so the seeds' spread
    widened the interval; paired_bootstrap averages the seeds inside each replicate, as the
    point does. With equal totals per sentence, the mean of the seeds' accuracies equals the
    accuracy of their averaged counts, so both give the same interval exactly."""
    rng = np.random.default_rng(1)
    n = 300
    a = np.stack([(rng.random(n) < 0.6).astype(int), np.ones(n, int)], -1)
    b = a.copy()
    b[: n // 4, 0] = 1  # a second probe seed that gets a quarter of the sentences right
    acc = counts_score("accuracy")
    both = paired_bootstrap(acc, np.stack([a, b]), n_boot=400, seed=3)
    averaged = paired_bootstrap(acc, (a + b) / 2, n_boot=400, seed=3)
    assert both == pytest.approx(averaged)
    assert both[0] == pytest.approx(50 * (a[:, 0].mean() + b[:, 0].mean()))
    # the replicates are the per-seed replicates averaged, on the same resampled sentences
    w = resample_weights(n, 400, 3)
    full, boot = seed_mean_replicates(acc, np.stack([a, b]), w)
    assert np.allclose(boot, (acc(a, w) + acc(b, w)) / 2) and full == pytest.approx(both[0] / 100)
    # so the interval is no wider than the wider seed's own: seeds no longer add spread
    one = paired_bootstrap(acc, a, n_boot=400, seed=3)
    other = paired_bootstrap(acc, b, n_boot=400, seed=3)
    assert both[2] - both[1] <= max(one[2] - one[1], other[2] - other[1]) + 1e-9


def test_informative_rule() -> None:
    assert informative([5.0, 1.0, 9.0])
    assert not informative([5.0, -1.0, 9.0])
    assert not informative([-3.0, -6.0, -1.0])


def _trees() -> TreeData:
    # "a b c d": a chain 0-1-2-3 with root 1; and a star 0<-2->1 with root 2
    chain = np.abs(np.subtract.outer(np.arange(4), np.arange(4))).astype(float)
    star = np.array([[0, 2, 1], [2, 0, 1], [1, 1, 0]], float)
    return TreeData(np.array([0, 4]), np.array([4, 3]), [chain, star],
                    [np.array([1.0, 0, 1, 2]), np.array([1.0, 1, 0])],
                    [np.zeros(4, bool), np.zeros(3, bool)])


def test_structural_baselines_adjacent_chain_and_left_to_right() -> None:
    trees = _trees()
    dist = sentence_stats("distance", baseline_predictions("distance", trees), trees)
    # the chain sentence is recovered exactly (3/3 edges); the star shares edge 1-2 only
    assert dist[:, :2].tolist() == [[3, 3], [1, 2]]
    assert structural_score("uuas", dist)[0] == pytest.approx(4 / 5)
    depth = sentence_stats("depth", baseline_predictions("depth", trees), trees)
    # left to right guesses word 0 as the root: wrong for both sentences
    assert depth[:, 0].tolist() == [0, 0]
    # the Spearman mean only covers lengths 5..50 by default; with lo=1 it averages per length
    rho = structural_score("nspr", depth, lo=1)[0]
    assert -1 <= rho <= 1
    w = np.array([[2.0, 0.0]])  # a bootstrap replicate that drew the chain sentence twice
    assert structural_score("uuas", dist, w)[0] == pytest.approx(1.0)


def test_random_encoder_is_a_seeded_local_checkpoint(tmp_path) -> None:
    import torch

    from bertdrift.config import get_profile
    from bertdrift.models import load_encoder, weights_fingerprint
    from bertdrift.probing.floor import random_encoder

    p = get_profile("tiny", cache_dir=str(tmp_path))
    state = torch.random.get_rng_state()
    folder = random_encoder(p, seed=0)
    assert torch.equal(state, torch.random.get_rng_state())  # the global stream is untouched
    assert (folder / "config.json").exists() and (folder / "tokenizer.json").exists()
    assert random_encoder(p, seed=0) == folder  # created once
    enc = load_encoder(str(folder))
    pre = load_encoder(p.model)
    assert enc.config.num_hidden_layers == pre.config.num_hidden_layers
    assert weights_fingerprint(enc) != weights_fingerprint(pre)
    torch.manual_seed(0)  # seeded: the same draw as from_config under manual_seed(0)
    from transformers import AutoModel

    again = AutoModel.from_config(enc.config)
    assert weights_fingerprint(again) == weights_fingerprint(enc)


def test_structural_metrics_from_stats_match_the_direct_ones() -> None:
    from bertdrift.probing.structural import evaluate_structure

    rng = np.random.default_rng(0)
    n = 6
    chain = np.abs(np.subtract.outer(np.arange(n), np.arange(n))).astype(float)
    trees = TreeData(np.array([0, n]), np.array([n, n]), [chain, chain],
                     [np.arange(n, dtype=float)] * 2, [np.zeros(n, bool)] * 2)
    for kind, metrics in (("distance", ("uuas", "dspr")), ("depth", ("root_acc", "nspr"))):
        preds = [rng.random((n, n)) + rng.random((n, n)).T if kind == "distance"
                 else rng.random(n) for _ in range(2)]
        direct = evaluate_structure(kind, preds, trees)
        stats = sentence_stats(kind, preds, trees)
        for m in metrics:
            assert structural_score(m, stats)[0] == pytest.approx(direct[m])
