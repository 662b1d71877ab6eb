"""Inference: one home for every interval, test and decision the book draws.

A table of contents (every chapter and the claims page use these, nothing else):

=========================  =====================================================================
``t_quantile``             Student-t (or normal, ``dof=inf``) quantile of a two-sided level
``seed_interval``          mean and t-interval over seeds (NaN bounds with fewer than 2 seeds)
``combine``                an ``Estimate`` from per-seed values plus a further standard error,
                           with Welch–Satterthwaite degrees of freedom
``pooled_sd``              the pooled standard deviation of several groups, with its dof
``jackknife_se``           leave-one-out standard error of any statistic of per-seed inputs
``resample_weights``       sentence-bootstrap multiplicities
``paired_bootstrap``       paired percentile bootstrap of a score (or a difference of scores)
``Part``                   one recorded part of a claim: values per seed, se, null, side, margin
``decide_parts``           each part's verdict: agree / disagree / equivalent / inconclusive,
                           with Holm's correction on the disagree side
``conjunction``            a claim's verdict from its parts' verdicts
``holm``                   Holm's step-down adjustment of p-values
=========================  =====================================================================

The verdicts (``VERDICTS``): a part **agrees** when its 95 % interval lies wholly on the
claim's side of the null, **disagrees** when it lies wholly on the other side (one-sided
p-values Holm-adjusted over the claim's parts, since any one part can make a claim disagree),
is **equivalent** when its 90 % interval lies inside ``± margin`` (two one-sided tests at 5 %:
no effect worth the name), and is **inconclusive** otherwise. Equivalence is checked first: an
effect that is real but smaller than the margin is reported as no effect worth the name.
``not judged`` is the claims page's word for a claim whose models did not learn their tasks.

>>> est = combine([1.0, 1.2, 0.8], se=0.05)
>>> round(est.mean, 3), round(est.se, 3), est.dof > 2
(1.0, 0.126, True)
>>> decide_parts({"a": Part(values=[1.0, 1.2, 0.8], null=0.0, margin=0.1)})["a"]
'agree'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from bertdrift.errors import BertdriftError

LEVEL = 0.95
"""The level of every interval the book shows."""
EQUIVALENCE_LEVEL = 0.90
"""The interval two one-sided tests at 5 % read: inside ``± margin`` means equivalent."""
VERDICTS = ("agree", "disagree", "equivalent", "inconclusive", "not judged")
SIDES = ("above", "below")


class InferenceError(BertdriftError):
    """An interval or a decision cannot be computed from what was given."""


def t_quantile(level: float = LEVEL, dof: float = math.inf) -> float:
    """The two-sided ``level`` quantile of Student's t with ``dof`` degrees of freedom (the
    normal quantile when ``dof`` is infinite)."""
    if not 0 < level < 1:
        raise InferenceError(f"level={level}; give a number between 0 and 1")
    if not dof > 0:
        raise InferenceError(f"dof={dof}; an interval needs positive degrees of freedom")
    q = 0.5 + level / 2
    return float(stats.norm.ppf(q) if math.isinf(dof) else stats.t.ppf(q, dof))


def seed_interval(values: Sequence[float], level: float = LEVEL
                  ) -> tuple[float, float, float]:
    """Mean and Student-t interval over seeds (NaNs dropped). With fewer than two finite values
    no spread can be estimated: the bounds are NaN (never a zero-width interval)."""
    v = np.asarray([x for x in values if np.isfinite(x)], dtype=float)
    if v.size == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if v.size == 1:
        return m, math.nan, math.nan
    half = t_quantile(level, v.size - 1) * float(v.std(ddof=1)) / math.sqrt(v.size)
    return m, m - half, m + half


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error and degrees of freedom."""

    mean: float
    se: float
    dof: float

    def interval(self, level: float = LEVEL) -> tuple[float, float]:
        half = t_quantile(level, self.dof) * self.se
        return self.mean - half, self.mean + half


def welch_dof(components: Sequence[tuple[float, float]]) -> float:
    """Welch–Satterthwaite degrees of freedom of a sum of independent variance components
    ``[(variance, dof), ...]`` (``dof`` may be ``inf``)."""
    total = sum(v for v, _ in components)
    if total <= 0:
        return math.inf
    denom = sum(v * v / d for v, d in components if v > 0 and not math.isinf(d))
    return math.inf if denom == 0 else total * total / denom


def combine(values: Sequence[float], se: float = 0.0, se_dof: float = math.inf, *,
            seed_se: float | None = None, seed_dof: float | None = None) -> Estimate:
    """The mean over seeds of ``values`` with a standard error that adds the seed-to-seed
    spread (``sd / sqrt(n)``, ``n - 1`` dof; or ``seed_se`` with ``seed_dof`` when the spread
    was measured elsewhere, e.g. pooled or jackknifed) and a further independent error ``se``
    (e.g. a bootstrap over words or sentences, ``se_dof`` dof, infinite by default), with
    Welch–Satterthwaite degrees of freedom. Raises ``InferenceError`` when no seed spread can
    be had (one value and no ``seed_se``): a verdict never silently drops a source of noise."""
    v = np.asarray(values, dtype=float)
    if v.size == 0 or not np.isfinite(v).all():
        raise InferenceError(f"need finite values per seed, got {list(values)}")
    if seed_se is None:
        if v.size < 2:
            raise InferenceError("needs at least 2 seeds: with one seed the seed-to-seed "
                                 "spread cannot be estimated")
        seed_se, seed_dof = float(v.std(ddof=1) / math.sqrt(v.size)), v.size - 1
    if seed_dof is None or not seed_dof > 0:
        raise InferenceError(f"seed_se={seed_se} needs positive seed_dof, got {seed_dof}")
    comps = [(seed_se ** 2, float(seed_dof)), (float(se) ** 2, float(se_dof))]
    return Estimate(float(v.mean()), math.sqrt(sum(c for c, _ in comps)), welch_dof(comps))


def pooled_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """The pooled standard deviation of several groups (each centred on its own mean) and its
    degrees of freedom ``sum(n_i - 1)``; groups of one value add nothing."""
    ss, dof = 0.0, 0
    for g in groups:
        a = np.asarray(g, dtype=float)
        if a.size > 1:
            ss += float(((a - a.mean()) ** 2).sum())
            dof += a.size - 1
    return (math.sqrt(ss / dof) if dof else math.nan), dof


def jackknife_se(n: int, statistic: Callable[[list[int]], float]) -> tuple[float, float]:
    """Leave-one-out estimate and standard error of ``statistic(kept indices)`` over ``n``
    units (seeds): ``((n - 1) / n * sum((t_i - t_bar) ** 2)) ** 0.5``, ``n - 1`` dof. Returns
    ``(full-sample statistic, se)``."""
    if n < 2:
        raise InferenceError("a jackknife needs at least 2 units")
    idx = list(range(n))
    full = float(statistic(idx))
    loo = np.array([statistic([j for j in idx if j != i]) for i in idx], dtype=float)
    return full, float(math.sqrt((n - 1) / n * ((loo - loo.mean()) ** 2).sum()))


# -- the sentence bootstrap (probing) ---------------------------------------------------------
def resample_weights(n_sent: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """``(n_boot, n_sent)`` multiplicities of a sentence bootstrap (each row sums to n_sent)."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_sent, np.full(n_sent, 1.0 / n_sent), size=n_boot)


ScoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(per-sentence array (S, K), sentence weights (B, S)) -> (B,)`` scores."""


def _seeds_of(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x[None] if x.ndim == 2 else x


def seed_mean_replicates(score_fn: ScoreFn, x: np.ndarray, w: np.ndarray
                         ) -> tuple[float, np.ndarray]:
    """The score of per-sentence arrays ``x`` ``(seeds, S, K)`` averaged over its (probe)
    seeds, on the full data and in every bootstrap replicate of sentence weights ``w``
    ``(B, S)``: the seeds are averaged *inside* each replicate, as the point estimate is."""
    x = _seeds_of(x)
    ones = np.ones((1, x.shape[1]))
    full = float(np.nanmean([score_fn(xi, ones)[0] for xi in x]))
    boot = np.nanmean(np.stack([score_fn(xi, w) for xi in x]), axis=0)
    return full, boot


def paired_bootstrap(score_fn: ScoreFn, a: np.ndarray, b: np.ndarray | None = None, *,
                     n_boot: int = 1000, seed: int = 0, level: float = LEVEL,
                     scale: float = 100.0) -> tuple[float, float, float]:
    """(point, low, high) of the score of ``a`` — or of the difference ``a - b`` on the same
    sentences — times ``scale``. ``a`` and ``b`` are per-sentence arrays ``(seeds, S, K)`` (or
    ``(S, K)``). Each replicate resamples the sentences (the same ones for both sides: paired)
    and averages the probe seeds inside it, as the point does; the interval is the percentile
    interval of the replicates, so it holds the sampling of evaluation sentences (the probe-seed
    spread enters the point, not the interval: give several models' seeds to ``combine``)."""
    a = _seeds_of(a)
    n_sent = a.shape[1]
    w = resample_weights(n_sent, n_boot, seed)
    point, boot = seed_mean_replicates(score_fn, a, w)
    if b is not None:
        b = _seeds_of(b)
        if b.shape[1] != n_sent:
            raise InferenceError("a paired interval needs both sides on the same sentences "
                                 f"({b.shape[1]} vs {n_sent})")
        p_b, boot_b = seed_mean_replicates(score_fn, b, w)
        point, boot = point - p_b, boot - boot_b
    q = (1 - level) / 2
    lo, hi = np.nanquantile(boot, [q, 1 - q])
    return (scale * point, scale * float(min(lo, point)), scale * float(max(hi, point)))


# -- parts, decisions, conjunctions --------------------------------------------------------------
@dataclass(frozen=True)
class Part:
    """One part of a claim, as a chapter records it (``Part.from_record`` reads the JSON form).

    ``values``: the effect per fine-tuning seed. ``se``/``se_dof``: a further independent
    standard error (words, sentences). ``seed_se``/``seed_dof``: a seed spread measured
    elsewhere (pooled, jackknifed), replacing ``values``' own. ``null``: what the effect would
    be were the claim false; ``side``: where the claim puts the effect. ``margin``: half-width
    of the region of practical irrelevance around 0 (``None``: no equivalence arm).
    ``absence``: the paper claims *no* effect here, so ``equivalent`` reads as agreement.
    ``models``: the fine-tuned tasks whose models the part rests on (the competence gate).
    """

    values: Sequence[float]
    null: float = 0.0
    side: str = "above"
    se: float = 0.0
    se_dof: float = math.inf
    seed_se: float | None = None
    seed_dof: float | None = None
    margin: float | None = None
    absence: bool = False
    models: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise InferenceError(f"side={self.side!r}; use 'above' or 'below'")
        if self.margin is not None and not self.margin > 0:
            raise InferenceError(f"margin={self.margin}; an equivalence margin is positive")

    @classmethod
    def from_record(cls, rec: Mapping[str, Any]) -> Part:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(rec) - known
        if unknown:
            raise InferenceError(f"unknown fields {sorted(unknown)} in a claim part; "
                                 f"known: {sorted(known)}")
        kw = dict(rec)
        if kw.get("se_dof") is None:  # JSON has no infinity: a missing dof is infinite
            kw.pop("se_dof", None)
        return cls(**kw)

    def estimate(self) -> Estimate:
        return combine(self.values, self.se, self.se_dof, seed_se=self.seed_se,
                       seed_dof=self.seed_dof)


@dataclass(frozen=True)
class PartResult:
    """A part's effect, its 95 % and 90 % intervals, its one-sided p-value against the claim
    (the disagree side), and its verdict."""

    effect: float
    low: float
    high: float
    low90: float
    high90: float
    p_disagree: float
    verdict: str
    part: Part


def _p_disagree(est: Estimate, part: Part) -> float:
    """One-sided p-value of "the effect lies beyond the null on the other side"."""
    if est.se == 0:
        return 0.0 if (est.mean < part.null if part.side == "above" else
                       est.mean > part.null) else 1.0
    t = (est.mean - part.null) / est.se
    dist = stats.norm if math.isinf(est.dof) else stats.t(est.dof)
    return float(dist.cdf(t) if part.side == "above" else dist.sf(t))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    m = len(p)
    adj = np.empty(m)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adj[i] = running
    return adj.tolist()


def judge_part(part: Part, p_adjusted: float | None = None) -> PartResult:
    """One part's verdict (see the module docstring); ``p_adjusted`` replaces the part's own
    disagree-side p-value (Holm over a claim's parts)."""
    est = part.estimate()
    low, high = est.interval(LEVEL)
    low90, high90 = est.interval(EQUIVALENCE_LEVEL)
    p = _p_disagree(est, part)
    p_use = p if p_adjusted is None else p_adjusted
    alpha = (1 - LEVEL) / 2
    claim_side = low > part.null if part.side == "above" else high < part.null
    if part.margin is not None and -part.margin < low90 and high90 < part.margin:
        verdict = "equivalent"
    elif claim_side:
        verdict = "agree"
    elif p_use < alpha:
        verdict = "disagree"
    else:
        verdict = "inconclusive"
    return PartResult(est.mean, low, high, low90, high90, p, verdict, part)


def decide_parts(parts: Mapping[str, Part]) -> dict[str, str]:
    """Each part's verdict, the disagree side Holm-corrected over the parts."""
    return {k: r.verdict for k, r in judge_parts(parts).items()}


def judge_parts(parts: Mapping[str, Part]) -> dict[str, PartResult]:
    """``judge_part`` for every part, with Holm's correction of the disagree-side p-values
    (a claim disagrees when any one part does, so that side is corrected for their number;
    agreeing needs every part, an intersection-union test that needs no correction)."""
    if not parts:
        raise InferenceError("a claim needs at least one part")
    first = {k: judge_part(p) for k, p in parts.items()}
    adjusted = holm([r.p_disagree for r in first.values()])
    return {k: judge_part(p, adj) for (k, p), adj in zip(parts.items(), adjusted, strict=True)}


def reading(result: PartResult) -> str:
    """A part's verdict as it bears on the paper's claim: for a claim of absence, an
    equivalent part agrees with the paper."""
    if result.part.absence and result.verdict == "equivalent":
        return "agree"
    return result.verdict


def conjunction(verdicts: Sequence[str]) -> str:
    """A claim made of parts: ``disagree`` when any part disagrees, ``agree`` when every part
    agrees, ``equivalent`` when every part is equivalent, else ``inconclusive``."""
    if not verdicts:
        raise InferenceError("a claim needs at least one part")
    vs = list(verdicts)
    if "disagree" in vs:
        return "disagree"
    for v in ("agree", "equivalent"):
        if all(x == v for x in vs):
            return v
    return "inconclusive"
