"""The statistics behind the verdicts of chapters 4 and 6: arrays in, claim parts out, no IO.

A *comparison* is one per-layer RSA between two encoders on one word set, stacked as rows
``(1 + 2B, L)``: the value on all words, then ``B`` product-weight and ``B`` linear-weight
replicates of one block bootstrap (``bertdrift.similarity.bootstrap.rsa_replicates``). Every
comparison of a chapter uses the same words and the same bootstrap seed, so replicate ``b``
draws the same blocks everywhere and any statistic of several comparisons is computed
replicate by replicate (paired).

**The ceiling-corrected change.** Write a fine-tuned seed's representation as the
pre-trained one plus a change every seed shares plus seed noise. Its dissimilarity matrix then
has three uncorrelated parts and, for seeds ``a`` and ``b`` of one task,
``RSA(pre, ft_a) RSA(pre, ft_b) / RSA(ft_a, ft_b) = RSA(pre, pre + change)^2`` (the seeds'
noise lowers both numerator and denominator alike: Spearman's correction for attenuation).
So per layer and pair of seeds

    c_ab = 1 - sqrt(RSA(pre, ft_a) RSA(pre, ft_b) / RSA(ft_a, ft_b)),

averaged over pairs, estimates ``c = 1 - RSA(pre, pre + change)``. To first order
``c_ab ≈ ½(1 - RSA(pre, ft_a)) + ½(1 - RSA(pre, ft_b)) - ½(1 - RSA(ft_a, ft_b))``: each seed's
change ``1 - RSA(pre, ft) ≈ c + σ²`` carries one seed's noise, two seeds differ by two
(``1 - RSA(ft_a, ft_b) ≈ 2σ²``), hence the ½. The first-order form is biased once the noise
is not small (``tests/test_inference_coverage_drift.py``); the ratio is not.

**Intervals** (``estimate``): words and seeds. The words' standard error comes from the paired
replicates (``replicate_variance``). The seeds' comes from a jackknife over fine-tuning seeds
(``inference.jackknife_se``; leaving a seed out drops its pre-vs-fine-tuned value and every pair
holding it) with the part of it that is word noise removed (the same jackknife evaluated on the
replicates: the bootstrap already counts that part), floored at 0, with ``seeds - 1`` degrees
of freedom. ``inference.combine`` adds the two (Welch–Satterthwaite).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from bertdrift import inference
from bertdrift.config import CLAIM_MARGINS, TASK_DOMAIN, TASKS
from bertdrift.inference import InferenceError
from bertdrift.similarity.bootstrap import Replicates, replicate_variance

Rows = np.ndarray
"""``(1 + 2B, L)``: all words, ``B`` product-weight replicates, ``B`` linear-weight ones."""


def stack(result: Mapping[str, Any] | Replicates) -> Rows:
    """A comparison as rows: from ``Replicates`` or from a cached ``compare_encoders`` result
    (``result["rsa"]`` and ``result["boot"]``)."""
    if isinstance(result, Replicates):
        parts = [result.estimate[None], result.product, result.linear]
    else:
        boot = result.get("boot") or {}
        if "rsa" not in boot or "rsa_linear" not in boot:
            raise InferenceError("this comparison has no stored bootstrap replicates; compute "
                                 "it with intervals=('rsa',) (the cache keeps them)")
        parts = [np.asarray(result["rsa"])[None], boot["rsa"], boot["rsa_linear"]]
    return np.vstack([np.asarray(p, dtype=np.float64) for p in parts])


@dataclass(frozen=True)
class SeedComparisons:
    """One task's comparisons on one word set: pre-trained vs each fine-tuning seed (``pre``)
    and every pair of seeds (``pairs``, keyed ``(a, b)`` with ``a < b``), as rows."""

    pre: Mapping[int, Rows]
    pairs: Mapping[tuple[int, int], Rows]

    @property
    def seeds(self) -> list[int]:
        return sorted(self.pre)

    @property
    def n_layers(self) -> int:
        return next(iter(self.pre.values())).shape[1]


def pair_change(r_a: np.ndarray, r_b: np.ndarray, q_ab: np.ndarray) -> np.ndarray:
    """``1 - sqrt(r_a r_b / q_ab)``: the change two seeds share (see the module docstring)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1 - np.sqrt(np.clip(r_a * r_b / q_ab, 0, None))


def seed_profiles(ev: SeedComparisons, keep: Sequence[int]) -> np.ndarray:
    """``(len(keep), 1 + 2B, L)``: per kept seed, the ceiling-corrected change averaged over the
    kept pairs that hold it (so the mean over seeds is the mean over pairs)."""
    keep = list(keep)
    if len(keep) < 2:
        raise InferenceError(f"needs at least 2 seeds (got {keep}): the ceiling compares two "
                             "fine-tuning seeds of the same task")
    if len(ev.seeds) < 3:
        raise InferenceError(f"needs at least 3 seeds (got {ev.seeds}): the jackknife over "
                             "seeds leaves one out and still needs a pair for the ceiling")
    change = {(a, b): pair_change(ev.pre[a], ev.pre[b], ev.pairs[(a, b)])
              for a, b in combinations(sorted(keep), 2)}
    return np.stack([np.mean([c for p, c in change.items() if s in p], axis=0) for s in keep])


def _memo(ev: SeedComparisons) -> Callable[[list[int]], np.ndarray]:
    """``seed_profiles`` of ``ev``, remembered per set of kept seeds."""
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def profiles(keep: list[int]) -> np.ndarray:
        key = tuple(keep)
        if key not in cache:
            cache[key] = seed_profiles(ev, keep)
        return cache[key]

    return profiles


def _n_boot(rows: np.ndarray) -> int:
    return (rows.shape[-1] - 1) // 2


def _variance(product: np.ndarray, linear: np.ndarray) -> np.ndarray:
    return np.asarray(replicate_variance(product, linear), dtype=np.float64)


def words_se(rows: np.ndarray) -> float:
    """The words' standard error of a statistic given as ``(1 + 2B,)`` rows."""
    b = _n_boot(rows)
    return float(np.sqrt(_variance(rows[1:1 + b], rows[1 + b:])))


PerSeed = Callable[[list[int]], np.ndarray]
"""``kept seeds -> (len(kept), 1 + 2B)``: a statistic per kept seed, on all words and in every
replicate; the claim's effect is its mean over seeds."""


def estimate(per_seed: PerSeed, seeds: Sequence[int]) -> dict[str, Any]:
    """A part's numbers (``values`` per seed, ``se`` over words, ``seed_se``/``seed_dof`` over
    seeds; see the module docstring). ``per_seed`` may need a minimum of seeds and raise
    ``InferenceError`` below it (a claim that cannot be estimated is not judged)."""
    seeds = list(seeds)
    n = len(seeds)
    if n < 2:
        raise InferenceError(f"needs at least 2 seeds (got {seeds}) to put the seed-to-seed "
                             "spread in the interval")
    rows = per_seed(seeds)
    loo = {tuple(k): per_seed(list(k)).mean(0) for k in combinations(seeds, n - 1)}
    loo[tuple(seeds)] = rows.mean(0)
    _, jk = inference.jackknife_se(n, lambda kept: loo[tuple(seeds[i] for i in kept)][0])
    dev = np.stack([loo[k] for k in combinations(seeds, n - 1)])
    dev = dev - dev.mean(0)
    b = _n_boot(dev)
    word_part = (n - 1) / n * float(_variance(dev[:, 1:1 + b].T, dev[:, 1 + b:].T).sum())
    return {"values": rows[:, 0].tolist(), "se": words_se(rows.mean(0)),
            "seed_se": float(np.sqrt(max(0.0, jk ** 2 - word_part))), "seed_dof": n - 1}


def part(per_seed: PerSeed, seeds: Sequence[int], *, margin: float, models: Sequence[str],
         null: float = 0.0, side: str = "above") -> dict[str, Any]:
    """A claim part in the record's form (the fields of ``inference.Part``)."""
    return {**estimate(per_seed, seeds), "null": null, "side": side, "margin": margin,
            "absence": False, "models": list(models)}


def interval(p: Mapping[str, Any]) -> tuple[float, float, float]:
    """(effect, low, high) of a part dict: ``inference.combine``'s 95 % interval."""
    est = inference.combine(p["values"], p["se"], seed_se=p.get("seed_se"),
                            seed_dof=p.get("seed_dof"))
    return (est.mean, *est.interval())


# -- depth: which layers, what share ---------------------------------------------------------
def thirds(n_layers: int) -> tuple[list[int], list[int]]:
    """The bottom and top third of the hidden layers ``1..L`` of a stack ``0..L``."""
    hidden = list(range(1, n_layers))
    k = max(1, len(hidden) // 3)
    return hidden[:k], hidden[-k:]


def lower_half(n_layers: int) -> list[int]:
    """Layers ``1..L/2`` of a stack ``0..L``."""
    return list(range(1, (n_layers - 1) // 2 + 1))


def top_minus_bottom(n_layers: int) -> np.ndarray:
    """Weights over layers: mean of the top third minus mean of the bottom third."""
    bottom, top = thirds(n_layers)
    g = np.zeros(n_layers)
    g[top] += 1 / len(top)
    g[bottom] -= 1 / len(bottom)
    return g


def lower_share(profile: np.ndarray) -> np.ndarray:
    """Share of the change over layers ``1..L`` that falls in ``1..L/2`` (last axis: layers)."""
    n_layers = profile.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        return profile[..., lower_half(n_layers)].sum(-1) / profile[..., 1:].sum(-1)


# -- chapter 4 -----------------------------------------------------------------------------------
def change_table(evidence: Mapping[str, SeedComparisons]):
    """Per task and layer: the ceiling-corrected change with its 95 % interval (words and seeds),
    beside what it corrects: the raw change ``1 - RSA(pre, ft)`` and the seed-to-seed change
    ``1 - RSA(ft_a, ft_b)`` (means over seeds and pairs)."""
    import pandas as pd

    rows = []
    for task, ev in evidence.items():
        raw = 1 - np.mean([r[0] for r in ev.pre.values()], axis=0)
        ceil = 1 - np.mean([q[0] for q in ev.pairs.values()], axis=0)
        profiles = _memo(ev)
        for layer in range(ev.n_layers):
            eff, lo, hi, se = _or_nan(lambda la=layer, f=profiles, seeds=ev.seeds: estimate(
                lambda k: f(k)[:, :, la], seeds))
            rows.append({"task": task, "layers": layer, "change": eff, "change_low": lo,
                         "change_high": hi, "se_words": se[0], "se_seeds": se[1],
                         "pre_vs_ft": raw[layer], "seed_vs_seed": ceil[layer]})
    return pd.DataFrame(rows)


def _or_nan(make: Callable[[], dict[str, Any]]) -> tuple[float, float, float, tuple]:
    """(effect, low, high, (se words, se seeds)) of the part ``make`` builds; NaNs where too
    few seeds leave it without an interval (a table still shows; a verdict is not judged)."""
    try:
        p = make()
    except InferenceError:
        return math.nan, math.nan, math.nan, (math.nan, math.nan)
    return (*interval(p), (p["se"], p["seed_se"]))


def top_layer_part(ev: SeedComparisons, task: str, margin: float) -> dict[str, Any]:
    """"Fine-tuning mostly changes the top layers", for one task: the ceiling-corrected change
    averaged over the top third of layers ``1..L`` minus over the bottom third."""
    g = top_minus_bottom(ev.n_layers)
    return part(lambda k: seed_profiles(ev, k) @ g, ev.seeds, margin=margin, models=[task])


def deeper_part(deep: SeedComparisons, other: SeedComparisons, tasks: Sequence[str],
                margin: float) -> dict[str, Any]:
    """"Parsing changes deeper", against one other task on the same words: per seed, the share
    of the ceiling-corrected change that falls in the lower half of layers ``1..L``, ``deep``
    minus ``other`` (seeds paired by number)."""
    _check_same_seeds(deep, other)
    return part(lambda k: lower_share(seed_profiles(deep, k)) - lower_share(
        seed_profiles(other, k)), deep.seeds, margin=margin, models=tasks)


def magnitude_part(deep: SeedComparisons, other: SeedComparisons, tasks: Sequence[str],
                   margin: float, corrected: bool = True) -> dict[str, Any]:
    """The magnitude view: mean change over layers ``1..L/2``, ``deep`` minus ``other``;
    ceiling-corrected, or the raw ``1 - RSA(pre, ft)`` (``corrected=False``)."""
    _check_same_seeds(deep, other)
    low = lower_half(deep.n_layers)

    def per_seed(k: list[int]) -> np.ndarray:
        if corrected:
            return (seed_profiles(deep, k)[..., low].mean(-1)
                    - seed_profiles(other, k)[..., low].mean(-1))
        return np.stack([other.pre[s][:, low].mean(-1) - deep.pre[s][:, low].mean(-1)
                         for s in k])

    return part(per_seed, deep.seeds, margin=margin, models=tasks)


def _check_same_seeds(a: SeedComparisons, b: SeedComparisons) -> None:
    if a.seeds != b.seeds:
        raise InferenceError(f"tasks compared seed by seed need the same seeds ({a.seeds} vs "
                             f"{b.seeds})")


def _claim(build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A claim's record, or ``{"not_judged": why}`` when it cannot be estimated."""
    try:
        return build()
    except InferenceError as err:
        return {"not_judged": f"cannot be estimated: {err}"}


def rsa_record(own: Mapping[str, SeedComparisons], shared: Mapping[str, SeedComparisons],
               margins: Mapping[str, float] | None = None, *, deep: str = "parsing",
               note: str | None = None) -> dict[str, Any]:
    """Chapter 4's claim record: ``top_layers`` (one part per task, on its own data) and
    ``parsing_deeper`` (one part per other task, depth share on the shared words; the view,
    ``{"title", "parts"}`` with parts in the same form, holds the magnitude: the mean change
    over layers ``1..L/2``, deep minus other, ceiling-corrected and raw). ``margins``: ``{claim key: margin}`` (default:
    ``config.CLAIM_MARGINS``)."""
    margins = margins or {k: m.value for k, m in CLAIM_MARGINS.items()}
    def top() -> dict[str, Any]:
        return {"parts": {t: top_layer_part(ev, t, margins["top_layers"])
                          for t, ev in own.items()}}

    def deeper() -> dict[str, Any]:
        if deep not in shared or len(shared) < 2:
            raise InferenceError(f"the shared words need {deep} and another task")
        m = margins["parsing_deeper"]
        others = [t for t in shared if t != deep]
        rec: dict[str, Any] = {
            "parts": {f"{deep} − {t}": deeper_part(shared[deep], shared[t], [deep, t], m)
                      for t in others},
            "view": {"title": "magnitude: lower-half change",
                     "parts": {f"{deep} − {t} ({kind})": magnitude_part(
                         shared[deep], shared[t], [deep, t], m, corrected=kind == "corrected")
                         for t in others for kind in ("corrected", "raw")}}}
        if note:
            rec["note"] = note
        return rec

    return {"top_layers": _claim(top), "parsing_deeper": _claim(deeper)}


def parts_table(parts: Mapping[str, Mapping[str, Any]], digits: int = 4):
    """Parts (or a view's parts) as a table: effect, 95 % interval, words and seeds se."""
    import pandas as pd

    rows = []
    for name, p in parts.items():
        eff, lo, hi = interval(p)
        rows.append({"part": name, "effect": eff, "low": lo, "high": hi, "se_words": p["se"],
                     "se_seeds": p.get("seed_se"), "seeds": len(p["values"])})
    return pd.DataFrame(rows).set_index("part").round(digits)


def claim_table(record: Mapping[str, Any], key: str, digits: int = 4):
    """One claim of a record as a table (one row per part, a plain index): its judged parts,
    then its view's (the ``evidence`` column says which), or one row saying why it is not
    judged."""
    import pandas as pd

    rec = record[key]
    if "parts" not in rec:
        return pd.DataFrame({"claim": [key], "not judged": [rec.get("not_judged", "no parts")]})
    frames = [parts_table(rec["parts"], digits).assign(evidence="judged")]
    if rec.get("view"):
        frames.append(parts_table(rec["view"]["parts"], digits).assign(
            evidence=rec["view"]["title"]))
    out = pd.concat(frames).reset_index()
    out.insert(0, "claim", key)
    return out[["claim", "evidence", *[c for c in out.columns if c not in ("claim",
                                                                           "evidence")]]]


def record_table(record: Mapping[str, Any], digits: int = 4):
    """``claim_table`` of every claim in a record, one below the other."""
    import pandas as pd

    return pd.concat([claim_table(record, k, digits) for k in record], ignore_index=True)


# -- chapter 6 -----------------------------------------------------------------------------------
def unseen_domains(domains, task_domain: Mapping[str, str] = TASK_DOMAIN) -> list[str]:
    """The domains no task was fine-tuned on (``OOD_DOMAINS`` minus the task domains), in
    ``domains``' order."""
    return [d for d in domains if d not in set(task_domain.values())]


def gap_part(own: Mapping[int, Rows], other: Mapping[str, Mapping[int, Rows]], task: str,
             margin: float, layer: int = -1) -> dict[str, Any]:
    """"The change is weaker out of domain", for one task: per seed, RSA at ``layer`` (the top
    one by default) averaged over the ``other`` domains minus on the task's own data."""
    seeds = sorted(own)
    missing = {d: sorted(set(seeds) - set(by_seed)) for d, by_seed in other.items()}
    if not other or any(missing.values()):
        raise InferenceError(f"every seed needs every domain: missing {missing}")

    def per_seed(k: list[int]) -> np.ndarray:
        return np.stack([np.mean([by[s][:, layer] for by in other.values()], axis=0)
                         - own[s][:, layer] for s in k])

    return part(per_seed, seeds, margin=margin, models=[task])


def ood_record(evidence: Mapping[str, Mapping[str, Mapping[int, Rows]]],
               unseen: Sequence[str] | None = None, margin: float | None = None,
               task_domain: Mapping[str, str] = TASK_DOMAIN) -> dict[str, Any]:
    """Chapter 6's claim record: one part per task on ``unseen`` text (default: the domains
    that are no task's data), the other tasks' data as the ``view``.
    ``evidence[task][domain][seed]``: rows. ``margin``: default ``config.CLAIM_MARGINS``."""
    unseen = list(unseen) if unseen is not None else unseen_domains(
        dict.fromkeys(d for by in evidence.values() for d in by), task_domain)
    margin = margin if margin is not None else CLAIM_MARGINS["out_of_domain"].value
    def build() -> dict[str, Any]:
        parts, view = {}, {}
        for task, by_domain in evidence.items():
            own = by_domain[task_domain[task]]
            new = {d: by_domain[d] for d in unseen if d in by_domain}
            others = {d: v for d, v in by_domain.items()
                      if d != task_domain[task] and d not in unseen}
            parts[task] = gap_part(own, new, task, margin)
            if others:
                view[task] = gap_part(own, others, task, margin)
        rec: dict[str, Any] = {"parts": parts}
        if view:
            rec["view"] = {"title": "other tasks' data", "parts": view}
        return rec

    return {"out_of_domain": _claim(build)}


# -- the numbers the chapters quote ----------------------------------------------------------------
def share_table(evidence: Mapping[str, SeedComparisons]):
    """Per task: the share of the ceiling-corrected change in layers ``1..L/2`` (mean over
    seeds of each seed's share), with its 95 % interval (words and seeds)."""
    import pandas as pd

    rows = {}
    for task, ev in evidence.items():
        eff, lo, hi, _ = _or_nan(lambda e=ev: estimate(
            lambda k: lower_share(seed_profiles(e, k)), e.seeds))
        rows[task] = {"share": eff, "share_low": lo, "share_high": hi}
    return pd.DataFrame.from_dict(rows, orient="index")


def _ci(lo: float, hi: float, digits: int = 4) -> str:
    return f"[{lo:+.{digits}f}, {hi:+.{digits}f}]"


def change_numbers(table, shares) -> dict[str, Any]:
    """Chapter 4's numbers about the ceiling-corrected change (``rsa_cc_…``): at the top layer
    per task with its interval, and the lower-half share per task with its interval."""
    top = int(table["layers"].max())
    out: dict[str, Any] = {}
    for _, r in table[table["layers"] == top].iterrows():
        out[f"rsa_cc_top_{r['task']}"] = f"{r['change']:+.4f}"
        out[f"rsa_cc_ci_{r['task']}"] = _ci(r["change_low"], r["change_high"])
        out[f"rsa_cc_raw_{r['task']}"] = f"{r['pre_vs_ft']:.4f}"
        out[f"rsa_cc_seeds_{r['task']}"] = f"{r['seed_vs_seed']:.4f}"
    for task, r in shares.iterrows():
        out[f"rsa_cc_share_{task}"] = f"{r['share']:.2f}"
        out[f"rsa_cc_share_ci_{task}"] = _ci(r["share_low"], r["share_high"], 2)
    return out


def ood_part_numbers(record: Mapping[str, Any], tasks: Sequence[str] = TASKS
                     ) -> dict[str, Any]:
    """Chapter 6's numbers from its claim record (``ood_…``): per task the gap on unseen text
    (the judged part) and on the other tasks' data (the view), each with its interval ("—"
    where the claim could not be estimated)."""
    rec = record["out_of_domain"]
    out: dict[str, Any] = {f"ood_gap_{kind}{ci}_{t}": "—" for kind in ("unseen", "tasks")
                           for ci in ("", "_ci") for t in tasks}
    for kind, parts in (("unseen", rec.get("parts", {})),
                        ("tasks", rec.get("view", {}).get("parts", {}))):
        for task, p in parts.items():
            eff, lo, hi = interval(p)
            out[f"ood_gap_{kind}_{task}"] = f"{eff:+.4f}"
            out[f"ood_gap_{kind}_ci_{task}"] = _ci(lo, hi)
    return out
