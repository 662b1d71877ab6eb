"""Chapter 3's evidence on forgetting: what each probe reads at each level, the pre-trained
margin over its floors, each fine-tuned task's change averaged over its fine-tuning seeds, and
the claim record the claims page judges.

**Levels.** An edge probe is read at its scalar mix (``"mix"``) and at the top layer's own probe
(``"top"``): a mix can route around a loss in the top layer by reading lower layers, so a
stable mix alone is weak evidence against forgetting. A structural probe has no mix: it is read
at the pre-trained model's best layer in its primary metric (``PRIMARY_STRUCTURAL``; the layer
the verdict table shows, level ``"layer k"``) and at the top layer (one level when the two
coincide).

**Intervals.** Every model is scored on the same evaluation sentences, so one sentence
bootstrap serves them all (paired: each replicate resamples the same sentences for every
model). A model's score averages its probe seeds, inside each replicate as in the point
(``inference.seed_mean_replicates``). A fine-tuned task's change is, per fine-tuning seed *s*,
``score(ft_s) - score(pre)`` in points; their mean carries the sentence-bootstrap standard error
of the seed-mean change, and ``inference.combine`` adds the spread over fine-tuning seeds with
Welch–Satterthwaite degrees of freedom (``SeedMean``).

**The forgetting rule** (``forgetting_record``). A (task, level) is judged only when it is
*informative* there: the pre-trained margin over its best floor (the trivial baselines and the
random encoder, at that level) has a 95 % interval above 0 (``stats.informative``); the others
are shown in the view, not judged. For each informative (task, level) and fine-tuned task *m*,
the part ``"<task> · <m> · <level>"`` holds the per-seed changes, their standard error, the
null ``-f × margin`` and the equivalence margin ``f × margin`` (``f``:
``config.CLAIM_MARGINS["forgetting"]``, a quarter: losing a quarter of what a probe finds above
its floor is a loss worth the name), side ``above``, ``absence`` (the paper claims *no*
forgetting, so an equivalent part agrees with it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bertdrift.config import CLAIM_MARGINS, EDGE_TASKS, RANDOM_MODEL, TASKS
from bertdrift.inference import (
    LEVEL,
    Estimate,
    ScoreFn,
    combine,
    paired_bootstrap,
    resample_weights,
    seed_mean_replicates,
)
from bertdrift.probing.names import finetuned_seeds
from bertdrift.probing.run import ProbingResults
from bertdrift.probing.stats import counts_score, informative
from bertdrift.probing.structural import structural_score

PRIMARY_STRUCTURAL = {"distance": "uuas", "depth": "nspr"}
"""The structural probes' metric in the verdict table and the forgetting record (Hewitt &
Manning report UUAS and DSpr for distance, root accuracy and NSpr for depth; all four are in
``summary.structural_table``)."""
CLAIM = "forgetting"


@dataclass(frozen=True)
class Reading:
    """One probe read one way: ``task`` (edge task or structural probe) in ``metric`` at
    ``level`` (``"mix"``, ``"top"`` or ``"layer k"``; ``layer`` its index where it is one layer),
    with ``models``' per-sentence arrays ``(probe seeds, S, K)`` and the trivial ``floors``'
    ``(S, K)`` on the same sentences, scored by ``score``."""

    task: str
    metric: str
    level: str
    layer: int | None
    score: ScoreFn
    models: dict[str, np.ndarray]
    floors: dict[str, np.ndarray]
    main: bool = True
    """The reading the verdict table shows (the mix; a structural probe's best layer)."""

    @property
    def label(self) -> str:
        """The row name tables show: the task, with the layer of a structural probe."""
        return self.task if self.task in EDGE_TASKS or self.layer is None else (
            f"{self.task} (layer {self.layer})")


def _tree_fn(metric: str) -> ScoreFn:
    return lambda arr, w: structural_score(metric, arr, w)


def readings(res: ProbingResults) -> list[Reading]:
    """Every way chapter 3 reads a probe: each edge task at the mix (task metric, then Tenney's
    micro-F1) and at the top layer (task metric; when the results hold its counts), then each
    structural probe at the pre-trained model's best layer (``"layer k"``) and at the top layer
    (``"top"``; only that when the best layer is the top one)."""
    out: list[Reading] = []
    tasks = sorted({t for _, t in res.counts}, key=lambda t: (
        EDGE_TASKS.index(t) if t in EDGE_TASKS else 99, t))
    for task in tasks:
        models = {m: c for (m, t), c in res.counts.items() if t == task}
        base = res.baselines.get(task, {})
        metric = res.metrics[task]
        for level, key, name in (("mix", "task", metric), ("mix", "tenney", "tenney_f1"),
                                 ("top", "top", metric)):
            if not all(key in c for c in models.values()):
                continue
            fn = counts_score("micro_f1" if key == "tenney" else metric)
            floors = {b: c["tenney" if key == "tenney" else "task"] for b, c in base.items()}
            out.append(Reading(task, name, level, None, fn,
                               {m: c[key] for m, c in models.items()}, floors,
                               main=level == "mix"))
    for kind in sorted({k for _, k in res.tree_stats}):
        metric = PRIMARY_STRUCTURAL[kind]
        s = res.structural
        sub = s[(s.probe == kind) & (s.metric == metric) & (s.model == "pretrained")] if len(
            s) else s
        per_model = {m: st for (m, k), st in res.tree_stats.items() if k == kind}
        top = max(max(st) for st in per_model.values())
        best = int(sub.groupby("layer")["value"].mean().idxmax()) if len(sub) else top
        base = {"linear order": res.tree_baselines[kind]} if kind in res.tree_baselines else {}
        levels = [("top", top, True)] if best == top else [
            (f"layer {best}", best, True), ("top", top, False)]  # one level when they coincide
        for level, layer, main in levels:
            out.append(Reading(kind, metric, level, layer, _tree_fn(metric),
                               {m: st[layer] for m, st in per_model.items() if layer in st},
                               base, main=main))
    return out


@dataclass(frozen=True)
class SeedMean:
    """A quantity per fine-tuning seed (``values``, points, probe seeds averaged) and the
    sentence-bootstrap standard error ``se`` of their mean (probe and fine-tuning seeds averaged
    inside each replicate)."""

    values: tuple[float, ...]
    se: float

    @property
    def finite(self) -> bool:
        return bool(np.isfinite(self.values).all() and math.isfinite(self.se))

    @property
    def point(self) -> float:
        return float(np.mean(self.values))

    def estimate(self) -> Estimate:
        """``inference.combine`` of the seeds' spread and the bootstrap error; with one seed
        (no spread to estimate) the bootstrap error alone; NaN when a score is undefined."""
        if not self.finite:
            return Estimate(math.nan, math.nan, math.inf)
        if len(self.values) < 2:
            return Estimate(self.point, self.se, math.inf)
        return combine(self.values, self.se)

    def interval(self, level: float = LEVEL) -> tuple[float, float, float]:
        """(point, low, high)."""
        return (self.point, *self.estimate().interval(level))


def seed_mean(score: ScoreFn, per_seed: Sequence[np.ndarray], minus: np.ndarray | None = None,
              *, n_boot: int = 1000, seed: int = 0, scale: float = 100.0) -> SeedMean:
    """Per fine-tuning seed, the score of ``per_seed[s]`` (``(probe seeds, S, K)``) minus that
    of ``minus`` (the pre-trained model; none: the score itself), probe seeds averaged, times
    ``scale``; and the bootstrap standard error of their mean: each of ``n_boot`` replicates
    resamples the sentences once for every model (paired) and averages probe and fine-tuning
    seeds inside it, as the point does."""
    n_sent = np.asarray(per_seed[0]).shape[-2]
    w = resample_weights(n_sent, n_boot, seed)
    base, base_boot = (0.0, 0.0) if minus is None else seed_mean_replicates(score, minus, w)
    values, boots = [], []
    for x in per_seed:
        full, boot = seed_mean_replicates(score, x, w)
        values.append(scale * (full - base))
        boots.append(boot - base_boot)
    mean_boot = np.nanmean(np.stack(boots), axis=0)
    return SeedMean(tuple(float(v) for v in values), float(scale * np.nanstd(mean_boot, ddof=1)))


def floor_margin(r: Reading, *, n_boot: int = 1000, seed: int = 0
                 ) -> tuple[str, float, tuple[float, float, float]] | None:
    """``(best floor, its score, the pre-trained margin over it)`` at ``r``'s level: the floors
    are the trivial predictors and the random encoder; the margin is (point, low, high) in
    points, a paired percentile bootstrap with probe seeds averaged inside each replicate.
    ``None`` without a pre-trained model or any floor."""
    scores = {b: 100 * float(r.score(np.asarray(a, np.float64), np.ones((1, len(a))))[0])
              for b, a in r.floors.items()}
    arrays = dict(r.floors)
    if RANDOM_MODEL in r.models:
        x = np.asarray(r.models[RANDOM_MODEL], np.float64)
        ones = np.ones((1, x.shape[-2]))
        scores[RANDOM_MODEL] = 100 * seed_mean_replicates(r.score, x, ones)[0]
        arrays[RANDOM_MODEL] = x
    if "pretrained" not in r.models or not scores:
        return None
    best = max(scores, key=scores.__getitem__)
    margin = paired_bootstrap(r.score, r.models["pretrained"], arrays[best], n_boot=n_boot,
                              seed=seed)
    return best, scores[best], margin


def _changes(r: Reading, n_boot: int, seed: int) -> dict[str, SeedMean]:
    """Each fine-tuned task's seed-mean change from the pre-trained model at ``r``."""
    out = {}
    for task in TASKS:
        names = finetuned_seeds(list(r.models), task)
        if names and "pretrained" in r.models:
            out[task] = seed_mean(r.score, [r.models[n] for n in names.values()],
                                  r.models["pretrained"], n_boot=n_boot, seed=seed)
    return out


def forgetting_record(res: ProbingResults, *, n_boot: int = 1000, seed: int = 0,
                      fraction: float | None = None) -> dict[str, Any]:
    """The claim record of "no catastrophic forgetting" (see the module docstring):
    ``{"forgetting": {"parts": {name: part}, "note": str, "view": {...}}}``.

    Each part has the ``inference.Part`` fields: ``values`` (per fine-tuning seed, the change
    ``score(ft) - score(pre)`` in points, probe seeds averaged), ``se`` (the sentence-bootstrap
    standard error of their mean), ``null`` (``-fraction × margin``), ``side`` ``"above"``,
    ``margin`` (``fraction × margin``), ``absence`` and ``models`` (``[m]``); ``margin`` is the
    pre-trained margin over the best floor at that level (point). ``fraction`` defaults to
    ``config.CLAIM_MARGINS["forgetting"].value``. The view holds, per task and level, the metric,
    the floor, the pre-trained margin ``[point, low, high]``, whether it is informative, and
    each fine-tuned task's per-seed changes, standard error and ``[point, low, high]``."""
    f = CLAIM_MARGINS[CLAIM].value if fraction is None else float(fraction)
    parts: dict[str, dict[str, Any]] = {}
    view: dict[str, dict[str, Any]] = {}
    for r in readings(res):
        if r.metric == "tenney_f1":
            continue
        fm = floor_margin(r, n_boot=n_boot, seed=seed)
        if fm is None:
            continue
        floor, floor_score, margin = fm
        ok = informative(margin) and margin[0] > 0
        changes = _changes(r, n_boot, seed)
        view.setdefault(r.task, {"metric": r.metric, "levels": {}})["levels"][r.level] = {
            "layer": r.layer, "floor": floor, "floor_score": floor_score,
            "margin": [float(x) for x in margin], "informative": bool(ok),
            "change": {m: {"values": list(c.values), "se": c.se,
                           "interval": [float(x) for x in c.interval()]}
                       for m, c in changes.items()}}
        if not ok:
            continue
        allowed = f * float(margin[0])
        for m, c in changes.items():
            if not c.finite:  # an undefined score (no sentence in a Spearman's range)
                continue
            parts[f"{r.task} · {m} · {r.level}"] = {
                "values": list(c.values), "null": -allowed, "side": "above", "se": c.se,
                "margin": allowed, "absence": True, "models": [m]}
    at_floor = [t for t, v in view.items() if not any(lv["informative"]
                                                      for lv in v["levels"].values())]
    note = (f"judged on every fine-tuning seed at the scalar mix and the top layer (structural "
            f"probes: best and top layer); a loss beyond {f:g} of the pre-trained margin over "
            f"the best floor is forgetting; at floor, shown and not judged: "
            f"{', '.join(at_floor) or 'none'}")
    return {CLAIM: {"parts": parts, "note": note,
                    "view": {"fraction": f, "tasks": view}}}


def forgetting_numbers(record: dict[str, Any]) -> dict[str, Any]:
    """The numbers chapter 3 quotes about its record: ``probe_n_parts`` (parts judged),
    ``probe_n_judged`` (tasks with at least one judged level) and ``probe_judged_list``."""
    rec = record[CLAIM]
    tasks = [t for t, v in rec["view"]["tasks"].items()
             if any(lv["informative"] for lv in v["levels"].values())]
    return {"probe_n_parts": len(rec["parts"]), "probe_n_judged": len(tasks),
            "probe_judged_list": ", ".join(tasks) or "none"}
