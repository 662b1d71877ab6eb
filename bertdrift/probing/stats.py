"""Probing statistics: metrics from per-sentence counts, the field's metrics, trivial baselines,
and the rule that says which tasks are informative.

Every score is a function of *counts summed over sentences* (correct/total for accuracy; true
positives, false positives, false negatives, true negatives for F1 and MCC), so resampling
sentences with replacement only re-weights the per-sentence counts: ``counts_score`` turns a
metric into the ``bertdrift.inference.ScoreFn`` that ``inference.paired_bootstrap`` (the
sentence bootstrap, probe seeds averaged inside each replicate) resamples.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bertdrift.errors import ConfigError
from bertdrift.inference import ScoreFn

METRICS = ("accuracy", "f1", "mcc", "micro_f1", "macro_f1")
"""Scores computable from per-sentence counts. ``micro_f1`` over every target × label
decision is Tenney et al.'s (2019) edge-probing metric."""


def count_kind(metric: str) -> str:
    """Which counts a metric reads: ``acc`` (correct, n), ``binary`` (tp, fp, fn, tn), ``prf``
    (tp, fp, fn over all decisions) or ``per_label`` (tp, fp, fn per label)."""
    kinds = {"accuracy": "acc", "f1": "binary", "mcc": "binary", "micro_f1": "prf",
             "macro_f1": "per_label"}
    if metric not in kinds:
        raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return kinds[metric]


def sentence_counts(pred: np.ndarray, gold: np.ndarray, sent: np.ndarray, n_sent: int,
                    kind: str, positive: int | None = None) -> np.ndarray:
    """Per-sentence counts ``(n_sent, K)`` of boolean decisions ``pred``/``gold`` ``(T, C)``.

    ``acc``: a target is correct when its whole label row is right (exact match);
    ``binary``: tp/fp/fn/tn of column ``positive``; ``prf``: tp/fp/fn over all T × C
    decisions; ``per_label``: tp/fp/fn of each label (``3C`` columns)."""
    pred, gold = np.asarray(pred, bool), np.asarray(gold, bool)
    if kind == "acc":
        cols = [(pred == gold).all(-1), np.ones(len(pred), bool)]
    elif kind == "binary":
        k = 1 if positive is None else positive
        p, g = pred[:, k], gold[:, k]
        cols = [p & g, p & ~g, ~p & g, ~p & ~g]
    elif kind == "prf":
        cols = [(pred & gold).sum(-1), (pred & ~gold).sum(-1), (~pred & gold).sum(-1)]
    elif kind == "per_label":
        cols = [*(pred & gold).T, *(pred & ~gold).T, *(~pred & gold).T]
    else:
        raise ConfigError(f"unknown count kind {kind!r}")
    per_target = np.stack([np.asarray(c, dtype=np.int64) for c in cols], -1)
    out = np.zeros((n_sent, per_target.shape[1]), dtype=np.int64)
    np.add.at(out, np.asarray(sent, dtype=np.int64), per_target)
    return out


def metric_from_totals(metric: str, totals: np.ndarray) -> np.ndarray:
    """A metric from counts summed over sentences; ``totals`` is ``(..., K)``; returns
    ``(...)`` in [0, 1] (MCC in [-1, 1]); an undefined score (no positives at all) is 0."""
    t = np.asarray(totals, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        if metric == "accuracy":
            out = t[..., 0] / t[..., 1]
        elif metric in ("f1", "micro_f1"):
            out = 2 * t[..., 0] / (2 * t[..., 0] + t[..., 1] + t[..., 2])
        elif metric == "mcc":
            tp, fp, fn, tn = (t[..., i] for i in range(4))
            out = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
        elif metric == "macro_f1":
            c = t.shape[-1] // 3
            tp, fp, fn = t[..., :c], t[..., c: 2 * c], t[..., 2 * c:]
            present = (tp + fn) > 0
            f1 = np.where(present, 2 * tp / np.maximum(2 * tp + fp + fn, 1), 0.0)
            out = f1.sum(-1) / np.maximum(present.sum(-1), 1)
        else:
            raise ConfigError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")
    return np.nan_to_num(out, nan=0.0)


def auc(scores: np.ndarray, gold: np.ndarray) -> float:
    """Area under the ROC curve (ties count half): the chance that a random positive target
    scores above a random negative one; 0.5 when a class is missing."""
    scores, gold = np.asarray(scores, np.float64), np.asarray(gold, bool)
    n_pos, n_neg = int(gold.sum()), int((~gold).sum())
    if not n_pos or not n_neg:
        return 0.5
    from scipy.stats import rankdata

    ranks = rankdata(scores)
    return float((ranks[gold].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def best_threshold(scores: np.ndarray, gold: np.ndarray) -> float:
    """The decision threshold on ``scores`` that maximises the positive class's F1 (predict
    positive when ``score > threshold``); chosen on a development split, applied to test."""
    scores, gold = np.asarray(scores, np.float64), np.asarray(gold, bool)
    if not gold.any():
        return float(scores.max()) if len(scores) else 0.0
    order = np.argsort(-scores, kind="stable")
    s, g = scores[order], gold[order]
    tp = np.cumsum(g)
    fp = np.cumsum(~g)
    f1 = 2 * tp / (tp + fp + g.sum())
    last = np.r_[s[1:] != s[:-1], True]  # only cut between distinct scores
    k = int(np.argmax(np.where(last, f1, -1.0)))
    nxt = s[k + 1] if k + 1 < len(s) else s[k] - 1.0
    return float((s[k] + nxt) / 2)


def constant_predictions(train_labels: np.ndarray, multilabel: bool) -> dict[str, np.ndarray]:
    """Trivial predictors, each one label row given to every target: ``majority`` (the most
    frequent training label; per label, 'present' when it is on more than half of the training
    targets for multi-label tasks) and ``all_positive`` (every label on; for a binary task,
    'always positive')."""
    y = np.asarray(train_labels) > 0.5
    freq = y.mean(0)
    if multilabel:
        majority = freq > 0.5
    else:
        majority = np.zeros(y.shape[1], bool)
        majority[int(np.argmax(freq))] = True
    out = {"majority": majority}
    if multilabel:
        out["all_positive"] = np.ones(y.shape[1], bool)
    elif y.shape[1] == 2:
        out["all_positive"] = np.array([False, True])
    return out


def counts_score(metric: str) -> ScoreFn:
    """The ``ScoreFn`` of a count-based metric (see ``metric_from_totals``)."""
    return lambda arr, w: metric_from_totals(metric, w @ np.asarray(arr, np.float64))


def informative(margin: Sequence[float]) -> bool:
    """A task is informative when the pre-trained model's margin over its best baseline
    (point, low, high, in points) has a 95 % interval wholly above zero."""
    return float(margin[1]) > 0.0
