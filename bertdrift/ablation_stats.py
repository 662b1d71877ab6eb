"""Chapter 5's judgement of the freezing claim, from a sweep's scores (numbers in, no models).

A drop is judged as a **fraction of what fine-tuning taught above the trivial baseline**, so
MNLI accuracy, SQuAD F1 and LAS share one scale (0: nothing lost; 1: back at the baseline):

    f_t(k) = (S̄_t(0) − S̄_t(k)) / M_t,        M_t = S̄_t(0) − b_t,

with ``S̄_t(k)`` the mean over the seeds at frozen depth ``k`` and ``b_t`` the task's best
trivial baseline on the same evaluation set. The seed-to-seed spread is **pooled over both
arms** (``inference.pooled_sd([scores at 0, scores at k])``: ``n_0 + n_k − 2`` degrees of
freedom), and the standard error of ``f`` follows from it by the delta method, the baseline
being fixed:

    se_f = s / M · sqrt((1 − f)² / n_0 + 1 / n_k),

which is the drop's ``s · sqrt(1/n_0 + 1/n_k)`` divided by ``M`` when ``f = 0`` (the
denominator's own noise, shared with the ``k = 0`` arm, enters through ``1 − f``).

The claim is judged **on the curve**: at the paper's analogous depth ``k*`` (MNLI and SQuAD
barely drop: ``f < margin``; parsing drops earlier: ``f_parsing − f_other > 0``), and the view
gives, per task, the shallowest depth whose drop's 95 % interval lies wholly above the margin.
A depth is judged only with at least ``min_seeds`` seeds in both arms (the profile's
``seeds``); otherwise its part carries one value and no seed spread, so
``inference.Part.estimate`` raises ``InferenceError`` and the claims page says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from bertdrift.config import CLAIM_MARGINS
from bertdrift.inference import Estimate, pooled_sd, seed_interval, welch_dof

__all__ = ["baseline_margins", "drop_fraction", "first_above", "freezing_curve",
           "freezing_numbers", "freezing_record", "margin_numbers"]

MARGIN = CLAIM_MARGINS["freezing"].value
"""'Barely drops': less than this fraction of the ``k = 0`` margin over the baseline is lost."""


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def drop_fraction(scores0: Sequence[float], scores_k: Sequence[float], baseline: float,
                  min_seeds: int = 2) -> dict[str, Any]:
    """The drop from ``k = 0`` (``scores0``, one per seed) to depth ``k`` (``scores_k``) in
    points and as a fraction of the ``k = 0`` margin over ``baseline``, with the pooled seed
    spread, its degrees of freedom and the fraction's standard error (see the module
    docstring). ``judged`` is False when either arm has fewer than ``min_seeds`` seeds, no
    spread can be pooled, or the ``k = 0`` mean is not above the baseline (``why`` says which):
    then ``se`` is None.
    """
    a0, ak = np.asarray(scores0, float), np.asarray(scores_k, float)
    if a0.size == 0 or ak.size == 0:
        raise ValueError("both arms need at least one score")
    m0, mk = float(a0.mean()), float(ak.mean())
    margin = m0 - float(baseline)
    points = m0 - mk
    sd, dof = pooled_sd([a0.tolist(), ak.tolist()])
    frac = points / margin if margin > 0 else None
    why = ("too few seeds" if min(a0.size, ak.size) < max(min_seeds, 1) else
           "no seed spread" if dof == 0 else
           "k = 0 not above the baseline" if frac is None else None)
    se = None
    if why is None:
        se = sd / margin * math.sqrt((1 - frac) ** 2 / a0.size + 1 / ak.size)
    return {"n0": int(a0.size), "nk": int(ak.size), "points": points, "margin_points": margin,
            "fraction": frac, "sd": _num(sd), "dof": int(dof), "se": se,
            "judged": why is None, "why": why}


def _arms(sweep: pd.DataFrame, k0: Mapping[str, Sequence[float]] | None
          ) -> dict[str, dict[int, list[float]]]:
    """Per task and depth, the scores per seed; ``k0[task]`` (every seed of the sweep's recipe
    with nothing frozen) replaces the sweep's own ``k = 0`` rows when given."""
    out: dict[str, dict[int, list[float]]] = {}
    for (task, k), g in sweep.groupby(["task", "k"], sort=False):
        out.setdefault(str(task), {})[int(k)] = g.sort_values("seed")["score"].astype(float).tolist()
    for task, arms in out.items():
        if k0 is not None and task in k0:
            arms[0] = [float(x) for x in k0[task]]
        if 0 not in arms:
            raise ValueError(f"the sweep for {task} has no k = 0 scores; include 0 in "
                             "ablation_ks or pass k0")
    return out


def freezing_curve(sweep: pd.DataFrame, baseline: Mapping[str, float],
                   k0: Mapping[str, Sequence[float]] | None = None, *, min_seeds: int = 2,
                   level: float = 0.95) -> pd.DataFrame:
    """One row per task and frozen depth ``k > 0``: seeds per arm, the drop in points and as a
    fraction (``drop``), its pooled ``sd``/``dof``, ``se`` and ``level`` interval
    (``low``/``high``; NaN where the depth is not judged: fewer than ``min_seeds`` seeds)."""
    rows = []
    for task, arms in _arms(sweep, k0).items():
        for k in sorted(arms):
            if k == 0:
                continue
            d = drop_fraction(arms[0], arms[k], baseline[task], min_seeds)
            low = high = math.nan
            if d["judged"]:
                low, high = Estimate(d["fraction"], d["se"], d["dof"]).interval(level)
            rows.append({"task": task, "k": k, "n0": d["n0"], "nk": d["nk"],
                         "drop_points": d["points"], "drop": d["fraction"], "sd": d["sd"],
                         "dof": d["dof"], "se": d["se"], "low": low, "high": high,
                         "judged": d["judged"], "why": d["why"]})
    return pd.DataFrame(rows)


def first_above(curve: pd.DataFrame, margin: float = MARGIN) -> dict[str, dict[str, Any]]:
    """Per task, the shallowest judged depth whose drop's interval lies wholly above
    ``margin`` (``k`` None if there is none), with its drop and interval, and the shallower
    depths that could not be judged (too few seeds): the true first depth may be among them."""
    out: dict[str, dict[str, Any]] = {}
    for task, g in curve.groupby("task", sort=False):
        g = g.sort_values("k")
        hit = g[g["judged"] & (g["low"] > margin)]
        row = hit.iloc[0] if len(hit) else None
        k = None if row is None else int(row["k"])
        shallower = g if k is None else g[g["k"] < k]
        out[str(task)] = {
            "k": k, "drop": None if row is None else _num(row["drop"]),
            "low": None if row is None else _num(row["low"]),
            "high": None if row is None else _num(row["high"]),
            "unjudged_shallower": [int(x) for x in shallower.loc[~shallower["judged"], "k"]],
            "judged_depths": [int(x) for x in g.loc[g["judged"].astype(bool), "k"]]}
    return out


def _plain(v: Any) -> Any:
    """A JSON-able Python value (NaN -> None)."""
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return _num(float(v))
    return v


def _part(*, values: list[float], null: float, side: str,
          absence: bool, models: list[str], margin: float, seed_se: float | None = None,
          seed_dof: float | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"values": values, "null": null, "side": side, "se": 0.0,
                            "margin": margin, "absence": absence, "models": models}
    if seed_se is not None:  # absent: one value and no spread, so Part.estimate refuses
        part |= {"seed_se": seed_se, "seed_dof": seed_dof}
    return part


def freezing_record(sweep: pd.DataFrame, k_star: int, layers: int,
                    baseline: Mapping[str, float],
                    k0: Mapping[str, Sequence[float]] | None = None, *, min_seeds: int = 2,
                    deep: str = "parsing", margin: float = MARGIN) -> dict[str, Any]:
    """Chapter 5's claim record ``{"freezing": {"parts", "view", "note"}}``.

    Parts, at ``k_star``: ``"<task> drop at k*"`` for every task but ``deep`` (the drop
    fraction; null = ``margin``, side below, an absence claim: equivalent reads as agreement)
    and ``"<deep> − <task>"`` (the difference of drop fractions; null 0, side above). Each has
    ``values`` = [the estimate] and ``seed_se``/``seed_dof`` from the pooled spread; a part
    whose depth has fewer than ``min_seeds`` seeds in an arm has no ``seed_se`` (not judged).
    ``k0``: per task, every seed's ``k = 0`` score under the sweep's recipe
    (``ablations.k0_scores(S)``); default: the sweep's own ``k = 0`` rows. The view holds the
    curve (every depth's drop fraction and interval) and, per task, the shallowest depth whose
    drop lies wholly above ``margin``.
    """
    curve = freezing_curve(sweep, baseline, k0, min_seeds=min_seeds)
    at = {r["task"]: {k: _plain(v) for k, v in r.items()}
          for r in curve[curve["k"] == k_star].to_dict("records")}
    missing = [t for t in dict.fromkeys(sweep["task"]) if t not in at]
    if missing:
        raise ValueError(f"the sweep for {missing} lacks k = {k_star}; include it in ablation_ks")
    parts: dict[str, dict[str, Any]] = {}
    others = [t for t in at if t != deep]
    for t in others:
        r = at[t]
        parts[f"{t} drop at k*"] = _part(
            values=[] if r["drop"] is None else [r["drop"]], null=margin, side="below",
            absence=True, models=[t], margin=margin,
            seed_se=r["se"] if r["judged"] else None, seed_dof=r["dof"])
    if deep in at:
        p = at[deep]
        for t in others:
            o = at[t]
            both = p["judged"] and o["judged"]
            diff = ([] if p["drop"] is None or o["drop"] is None else [p["drop"] - o["drop"]])
            se = math.hypot(p["se"], o["se"]) if both else None
            dof = welch_dof([(p["se"] ** 2, p["dof"]), (o["se"] ** 2, o["dof"])]) if both else None
            parts[f"{deep} − {t}"] = _part(values=diff, null=0.0, side="above",
                                           absence=False, models=[deep, t], margin=margin,
                                           seed_se=se, seed_dof=dof)
    first = first_above(curve, margin)
    short = {t: {"n0": r["n0"], "nk": r["nk"]} for t, r in at.items()
             if r["why"] == "too few seeds"}
    unjudged = {t: r["why"] for t, r in at.items() if not r["judged"]}
    view = {"k_star": k_star, "layers": layers, "margin": margin, "seeds_needed": min_seeds,
            "baseline": {t: float(baseline[t]) for t in at},
            "curve": [{k: _plain(v) for k, v in r.items()} for r in curve.to_dict("records")],
            "first_above": first, "too_few_seeds": short, "not_judged": unjudged}
    out = {"parts": parts, "view": view, "note": _note(at, first, k_star, layers, margin)}
    if unjudged:  # the claims page shows this reason instead of a verdict
        out["not_judged"] = _not_judged_text(view)
    return {"freezing": out}


def _not_judged_text(view: Mapping[str, Any]) -> str:
    """Why the parts at ``k*`` cannot be judged ("" when they can)."""
    short, unjudged = view["too_few_seeds"], view.get("not_judged", {})
    if short:
        k = view["k_star"]
        have = ", ".join(f"{t} {s['n0']} / {s['nk']}" for t, s in short.items())
        return (f"the rule needs {view['seeds_needed']} seeds (the profile's seeds) at k = 0 "
                f"and at k = {k}; the sweep has, at k = 0 / k = {k}: {have}")
    if unjudged:
        return "at k = {}: {}".format(view["k_star"], ", ".join(f"{t}: {w}"
                                                                 for t, w in unjudged.items()))
    return ""


def _fmt(x: float | None, lo: float | None = None, hi: float | None = None) -> str:
    if x is None:
        return "—"
    if lo is None or hi is None:
        return f"{x:+.2f}"
    return f"{x:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def _note(at: Mapping[str, Any], first: Mapping[str, Any], k_star: int, layers: int,
          margin: float) -> str:
    drops = "; ".join(f"{t} {_fmt(r['drop'], r['low'], r['high'])}" for t, r in at.items())
    out = (f"drop as a fraction of the k = 0 margin over the trivial baseline, at k = {k_star} "
           f"of {layers}: {drops}. Shallowest depth whose drop lies wholly above "
           f"{margin:g}: " + "; ".join(f"{t} {_first_text(f)}" for t, f in first.items()))
    return out  # why a part is not judged: the record's "not_judged" (_not_judged_text)


def _first_text(f: Mapping[str, Any]) -> str:
    if f["k"] is None and not f.get("judged_depths", True):
        return "no depth could be judged (k = {})".format(", ".join(map(str,
                                                                      f["unjudged_shallower"])))
    if f["k"] is None:
        text = "none of the judged depths"
    else:
        text = f"k = {f['k']} ({_fmt(f['drop'], f['low'], f['high'])})"
    if f["unjudged_shallower"]:
        ks = ", ".join(map(str, f["unjudged_shallower"]))
        text += f" (k = {ks} not judged)"
    return text


def freezing_numbers(record: Mapping[str, Any], tasks: Sequence[str] | None = None
                     ) -> dict[str, Any]:
    """The numbers chapter 5's prose quotes about the freezing verdict, from
    ``freezing_record``'s view: per task the drop fraction at ``k*`` with its interval
    (``abl_frac_<task>``) and the shallowest depth clearly past the margin
    (``abl_first_<task>``); the margin, the seeds the rule needs and whether this run judges."""
    view = record["freezing"]["view"]
    k_star = view["k_star"]
    curve = [r for r in view["curve"] if r["k"] == k_star]
    tasks = list(tasks) if tasks is not None else [r["task"] for r in curve]
    out: dict[str, Any] = {"abl_freezing_margin": f"{view['margin']:g}",
                           "abl_seeds_needed": view["seeds_needed"]}
    nk = []
    for r in curve:
        if r["task"] not in tasks:
            continue
        nk.append(r["nk"])
        if not r["judged"]:
            extra = f"; {r['nk']} seed(s), no interval"
        else:
            extra = ""
        out[f"abl_frac_{r['task']}"] = _fmt(r["drop"], r["low"], r["high"]) + extra
        out[f"abl_first_{r['task']}"] = _first_text(view["first_above"][r["task"]])
    out["abl_kstar_seeds"] = min(nk) if nk else 0
    reason = _not_judged_text(view)
    if reason:
        text = f"{reason}, so the freezing claim is not judged in this run"
    else:
        text = (f"every judged depth has at least {view['seeds_needed']} seeds on both sides, "
                "so the seeds allow a verdict (the claims page still holds back any claim whose "
                "models fall short of their task's competence floor)")
    out["abl_judged_text"] = text
    return out


# -- the unfrozen models against their baselines ----------------------------------------------
def baseline_margins(k0: Mapping[str, Sequence[float]], baseline: Mapping[str, float],
                     level: float = 0.95) -> pd.DataFrame:
    """Per task, how far the ``k = 0`` models lie above the trivial baseline: the mean margin
    in points with its seed interval (Student t; NaN with one seed), how many seeds beat the
    baseline, and ``clearly``: the interval lies wholly above 0."""
    rows = []
    for task, scores in k0.items():
        m = [float(x) - float(baseline[task]) for x in scores]
        mean, low, high = seed_interval(m, level)
        rows.append({"task": task, "margin": mean, "low": low, "high": high,
                     "seeds_above": sum(x > 0 for x in m), "seeds": len(m),
                     "clearly": bool(np.isfinite(low) and low > 0)})
    return pd.DataFrame(rows)


def margin_numbers(k0: Mapping[str, Sequence[float]], baseline: Mapping[str, float]
                   ) -> dict[str, Any]:
    """Glue names for ``baseline_margins``: ``abl_margin_<task>`` ("+4.2 [+1.0, +7.4]") and
    ``abl_margins_text``, a sentence naming the tasks clearly above their baseline and those
    that are not, by how much."""
    table = baseline_margins(k0, baseline)
    out: dict[str, Any] = {}
    above, not_above = [], []
    for r in table.to_dict("records"):
        iv = "" if not np.isfinite(r["low"]) else f" [{r['low']:+.1f}, {r['high']:+.1f}]"
        out[f"abl_margin_{r['task']}"] = f"{r['margin']:+.1f}{iv}"
        text = (f"{r['task']} {r['margin']:+.1f}{iv} points ({r['seeds_above']} of "
                f"{r['seeds']} seeds above it)")
        (above if r["clearly"] else not_above).append(text)
    parts = []
    if above:
        parts.append("clearly above their trivial baseline (95 % seed interval above 0): "
                     + ", ".join(above))
    if not_above:
        parts.append(f"not clearly above {'it' if above else 'their trivial baseline'}: "
                     + ", ".join(not_above))
    out["abl_margins_text"] = "; ".join(parts)
    return out
