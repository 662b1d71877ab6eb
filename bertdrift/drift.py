"""The drift stage (chapters 4 and 6): how far each layer of a fine-tuned encoder moved.

``compare_encoders`` runs both encoders over the same word-tokenised sentences (through the
activation store), keeps the first ``n_tokens`` words, and compares the two at every layer with
RSA (cosine kernel, Pearson), linear CKA (plain and debiased) and orthogonal Procrustes, with
block-bootstrap intervals for RSA and CKA and layer x layer maps. Results are cached as JSON under
``<cache>/results/<chapter>/<name>-<key>.json``; asking again returns the stored result.
``task_drift`` and ``drift_frame`` do this for the fine-tuned models on each input domain
(``bertdrift.data.domains``); ``change_summary``, ``seed_spread``, ``rsa_by_task`` and
``domain_gaps`` are the summaries the chapters quote. Every comparison keeps RSA's bootstrap
replicates, drawn with one bootstrap seed (``BOOT_SEED``) so that comparisons on the same words
are paired; ``seed_evidence`` (pre-trained vs each seed and seed vs seed, own data or shared
words) and ``domain_evidence`` (every seed on every domain) gather them for the verdicts, which
``bertdrift.drift_evidence`` computes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertdrift.config import TASK_DOMAIN, Profile, resolve_device
from bertdrift.data.domains import domain_sentences
from bertdrift.drift_evidence import SeedComparisons, stack
from bertdrift.errors import BertdriftError
from bertdrift.inference import LEVEL, t_quantile
from bertdrift.io import cached_json, mtime, results_dir, stable_hash
from bertdrift.similarity import cka, cka_map, procrustes, rsa, rsa_map
from bertdrift.similarity.bootstrap import bootstrap, percentile_interval, rsa_replicates

_TINY = 1e-12


class DriftError(BertdriftError):
    """The drift stage cannot run (missing fine-tuned model, too few tokens, ...)."""


def shared_sentences(profile: Profile, tasks: Sequence[str] | None = None
                     ) -> list[list[str]]:
    """The one stimulus set on which models of different tasks are compared: an equal share of
    ``profile.rsa_tokens`` words from each task's own held-out domain (so no task compares on
    home ground alone), each share drawn as in ``task_drift`` (seeded, the same for every
    model). Cross-task comparisons (chapters 4 and 7) use these sentences."""
    tasks = tuple(tasks) if tasks is not None else tuple(TASK_DOMAIN)
    return [list(s) for s in _shared_sentences(profile, tasks, str(profile.data_path))]


@functools.lru_cache(maxsize=4)
def _shared_sentences(profile: Profile, tasks: tuple[str, ...], data_path: str
                      ) -> tuple[tuple[str, ...], ...]:
    """``shared_sentences``, remembered per profile, tasks and data directory."""
    share = -(-profile.rsa_tokens // len(tasks))
    out: list[tuple[str, ...]] = []
    for task in tasks:
        sents = domain_sentences(TASK_DOMAIN[task], profile, n_sentences=profile.ood_sentences,
                                 seed=0)
        out += [tuple(x) for x in token_prefix(sents, share)]
    return tuple(out)


def token_prefix(sentences: Sequence[Sequence[str]], n_tokens: int) -> list[list[str]]:
    """The fewest leading sentences holding at least ``n_tokens`` words."""
    out, total = [], 0
    for s in sentences:
        if total >= n_tokens:
            break
        out.append(list(s))
        total += len(s)
    if total < n_tokens:
        raise DriftError(
            f"only {total} words in {len(sentences)} sentences, fewer than the {n_tokens} "
            "tokens asked for; lower rsa_tokens or pass more sentences"
        )
    return out


MEASURES: tuple[str, ...] = ("rsa", "cka", "cka_debiased", "procrustes")
"""The per-layer measures ``layer_drift`` can compute (all of them by default)."""
_MEASURE_FNS: dict[str, Any] = {
    "rsa": rsa, "cka": cka, "cka_debiased": lambda a, b: cka(a, b, debiased=True),
    "procrustes": procrustes,
}


def layer_drift(base: Any, tuned: Any, *, n_boot: int = 100, seed: int = 0,
                level: float = 0.95, maps: bool = True,
                intervals: Sequence[str] = ("rsa", "cka"),
                measures: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Compare two ``(L, n, d)`` activation stacks of the same tokens, layer by layer.

    ``measures`` names the measures computed (a subset of ``MEASURES``; a chapter that plots
    two of them need not pay for four); ``intervals`` those that also get bootstrap intervals
    (``rsa``, ``cka``). RSA's bootstrap replicates are kept under ``out["boot"]`` (``rsa``:
    product weights, ``rsa_linear``: linear weights; ``(n_boot, L)``): the verdicts combine
    several comparisons replicate by replicate (``bertdrift.drift_evidence``).
    """
    unknown = [m for m in (*measures, *intervals) if m not in MEASURES]
    if unknown or "rsa" not in measures:
        raise DriftError(f"measures={list(measures)!r}, intervals={list(intervals)!r}: choose "
                         f"from {MEASURES} and include 'rsa'")
    rows: dict[str, list[float]] = {m: _MEASURE_FNS[m](base, tuned).tolist() for m in measures}
    extra: dict[str, Any] = {}
    for name in intervals:
        if name == "rsa":
            reps = rsa_replicates(base, tuned, n_boot=n_boot, seed=seed)
            low, high = percentile_interval(reps.estimate, reps.product, level)
            extra["boot"] = {"rsa": reps.product.tolist(), "rsa_linear": reps.linear.tolist()}
        else:
            iv = bootstrap(base, tuned, measure=name, n_boot=n_boot, seed=seed, level=level)
            low, high = iv.low, iv.high
        rows[f"{name}_low"], rows[f"{name}_high"] = low.tolist(), high.tolist()
    out: dict[str, Any] = {"layers": list(range(len(rows["rsa"]))), **rows, **extra}
    if maps:
        out["rsa_map"] = rsa_map(base, tuned).tolist()
        out["cka_map"] = cka_map(base, tuned).tolist()
    return out


def _features(model_path: str | Path, sentences: list[list[str]], profile: Profile,
              desc: str) -> tuple[np.ndarray, str]:
    """Float32 word vectors of ``sentences`` and the model's weights fingerprint. Only the
    profile's own model keeps its store (every comparison reads it); a fine-tuned model's or
    snapshot's vectors live while its comparison is computed, which is cached."""
    import contextlib

    from bertdrift.features import load_cached, model_features, transient_features
    from bertdrift.models import weights_fingerprint

    keep = str(model_path) == str(profile.model)
    with (contextlib.nullcontext(model_features(model_path, sentences, profile, desc=desc))
          if keep else transient_features(model_path, sentences, profile, desc=desc)) as fs:
        array = np.array(fs.array, dtype=np.float32)
    encoder, _ = load_cached(model_path, resolve_device(profile.device))
    return array, weights_fingerprint(encoder)


BOOT_SEED = 0
"""The bootstrap seed of every comparison: with the same words, replicate ``b`` draws the same
blocks in every comparison, so the verdicts can combine comparisons replicate by replicate."""
RESULT_FORMAT = "replicates-1"
"""Enters every comparison's cache key: results stored before RSA's replicates were kept are
computed again."""


def compare_encoders(tuned_path: str | Path, sentences: Sequence[Sequence[str]],
                     profile: Profile, *, chapter: str, name: str, base_path: str | None = None,
                     n_tokens: int | None = None, seed: int = BOOT_SEED, maps: bool = True,
                     intervals: Sequence[str] = ("rsa", "cka"),
                     measures: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Per-layer similarity of ``base_path`` (default ``profile.model``) and ``tuned_path``.

    Uses the first ``n_tokens`` (default ``profile.rsa_tokens``) words of ``sentences`` and
    ``profile.rsa_bootstrap`` bootstrap replicates (bootstrap seed ``seed``; keep the default
    so that comparisons are paired); cached by a key of both models' paths, the words and the
    settings. Returns a dict of per-layer lists, RSA's replicates (``boot``) and metadata.
    """
    n_tokens = n_tokens or profile.rsa_tokens
    sents = token_prefix(sentences, n_tokens)
    base_path = base_path or profile.model
    key = stable_hash(str(base_path), str(tuned_path), mtime(tuned_path), sents, n_tokens,
                      profile.pooling, profile.feature_max_length, profile.rsa_bootstrap, seed,
                      maps, list(intervals), list(measures), profile.precision, RESULT_FORMAT)
    target = results_dir(profile.cache_path, chapter) / f"{name}-{key}.json"

    def compute() -> dict[str, Any]:
        device = resolve_device(profile.device)
        a, fp_a = _features(base_path, sents, profile, f"{name}: pre-trained")
        b, fp_b = _features(str(tuned_path), sents, profile, f"{name}: fine-tuned")
        to = torch.device(device)
        ta = torch.from_numpy(a[:n_tokens].transpose(1, 0, 2).copy()).to(to)
        tb = torch.from_numpy(b[:n_tokens].transpose(1, 0, 2).copy()).to(to)
        result = layer_drift(ta, tb, n_boot=profile.rsa_bootstrap, seed=seed, maps=maps,
                             intervals=intervals, measures=measures)
        result["meta"] = {"name": name, "base": str(base_path), "tuned": str(tuned_path),
                          "base_fingerprint": fp_a, "tuned_fingerprint": fp_b,
                          "n_tokens": n_tokens, "n_sentences": len(sents), "seed": seed,
                          "n_boot": profile.rsa_bootstrap, "profile": profile.name}
        return result

    return cached_json(target, compute)


def finetuned_path(task: str, profile: Profile, *, seed: int = 0, freeze: int = 0) -> Path:
    """The encoder directory of the fine-tuned ``task`` model (trained on demand, cached)."""
    from bertdrift.finetune import get_finetuned

    return Path(get_finetuned(task, profile, freeze=freeze, seed=seed).encoder_path)


def to_frame(result: dict[str, Any], **labels: Any):
    """The per-layer numbers of one result as a tidy ``pandas.DataFrame`` (plus ``labels``)."""
    import pandas as pd

    cols = [k for k, v in result.items()
            if isinstance(v, list) and len(v) == len(result["layers"]) and not k.endswith("_map")]
    frame = pd.DataFrame({k: result[k] for k in cols})
    for k, v in labels.items():
        frame[k] = v
    return frame


def task_drift(task: str, profile: Profile, *, seed: int = 0, domain: str | None = None,
               maps: bool = True, intervals: Sequence[str] = ("rsa", "cka"),
               measures: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Pre-trained vs ``task``-fine-tuned (seed ``seed``) on ``domain`` (default: the task's own).

    Sentences: ``profile.ood_sentences`` sampled from the domain with a fixed seed (the same
    sample for every model, so chapters share cached features); the first
    ``profile.rsa_tokens`` of their words are compared (bootstrap seed ``BOOT_SEED`` for every
    model: paired replicates).
    """
    domain = domain or TASK_DOMAIN[task]
    tuned = finetuned_path(task, profile, seed=seed)
    return compare_encoders(tuned, _domain_sentences(domain, profile), profile, chapter="drift",
                            name=f"{task}-seed{seed}-{domain}", maps=maps,
                            intervals=intervals, measures=measures)


def _domain_sentences(domain: str, profile: Profile) -> list[list[str]]:
    return domain_sentences(domain, profile, n_sentences=profile.ood_sentences, seed=0)


def drift_runs(profile: Profile, tasks: Sequence[str], *, seeds: Sequence[int] = (0,),
               domains: Sequence[str] | None = None, progress: bool = True,
               maps: bool = True, intervals: Sequence[str] = ("rsa", "cka"),
               measures: Sequence[str] = MEASURES) -> dict[tuple[str, int, str], dict]:
    """``task_drift`` over tasks x seeds x domains (``domains=None``: each task's own), keyed
    ``(task, seed, domain)``. Layer x layer maps and CKA intervals are computed for the first
    seed only; RSA intervals and replicates (which the verdicts use) for every seed."""
    from tqdm.auto import tqdm

    jobs = [(t, s, d) for t in tasks for s in seeds for d in (domains or [TASK_DOMAIN[t]])]
    out = {}
    for task, seed, domain in tqdm(jobs, desc="drift", disable=not progress):
        first = seed == seeds[0]  # maps and CKA intervals for the first seed only (time)
        out[(task, seed, domain)] = task_drift(
            task, profile, seed=seed, domain=domain, maps=maps and first,
            intervals=intervals if first else [i for i in intervals if i == "rsa"],
            measures=measures)
    return out


def drift_frame(profile: Profile, tasks: Sequence[str], *, seeds: Sequence[int] = (0,),
                domains: Sequence[str] | None = None, progress: bool = True,
                maps: bool = True, intervals: Sequence[str] = ("rsa", "cka"),
                measures: Sequence[str] = MEASURES):
    """``drift_runs`` as a tidy per-layer table (``task, seed, domain, in_domain, layers, …``)."""
    import pandas as pd

    runs = drift_runs(profile, tasks, seeds=seeds, domains=domains, progress=progress,
                      maps=maps, intervals=intervals, measures=measures)
    return pd.concat([to_frame(res, task=t, seed=s, domain=d, in_domain=d == TASK_DOMAIN[t])
                      for (t, s, d), res in runs.items()], ignore_index=True)


def seed_spread(frame, measure: str = "rsa"):
    """Per task (and domain, if several) and layer: mean, std, min and max of ``measure`` over
    fine-tuning seeds, and how many seeds there are."""
    keys = ["task"] + (["domain"] if "domain" in frame and frame["domain"].nunique() > 1
                       else []) + ["layers"]
    return (frame.groupby(keys)[measure].agg(["mean", "std", "min", "max", "count"])
            .rename(columns={"count": "seeds"}))


def change_summary(frame, measure: str = "rsa"):
    """Per task/seed/domain: how much each part of the network changed (``1 - similarity``).

    ``top``: change at the last layer; ``lower_half``: mean change over layers 1..L/2;
    ``top_share``: the last two layers' share of the summed change over layers 1..L;
    ``half_depth``: the first layer whose change reaches half of the largest change.
    """
    import pandas as pd

    rows = []
    keys = [k for k in ("task", "seed", "domain", "in_domain") if k in frame]
    for group, g in frame.groupby(keys, sort=False):
        g = g.sort_values("layers")
        change = (1 - g[measure]).to_numpy()
        top, hidden = len(change) - 1, change[1:]
        rows.append({**dict(zip(keys, group, strict=True)), "top": change[top],
                     "lower_half": change[1:top // 2 + 1].mean(),
                     "top_share": hidden[-2:].sum() / max(hidden.sum(), _TINY),
                     "half_depth": int(np.argmax(change >= change.max() / 2))})
    return pd.DataFrame(rows)



# -- the numbers chapters 4 and 6 quote ------------------------------------------------------------
def rsa_by_task(frame, tasks: Sequence[str] | None = None) -> dict[str, list[float]]:
    """Per task: RSA at layers 1..L (mean over seeds) on the task's own data; what chapter 4
    records for the claims page (layer 0, the embeddings, is left out)."""
    hidden = frame[frame["layers"] >= 1]
    tasks = list(tasks) if tasks is not None else list(dict.fromkeys(frame["task"]))
    return {t: hidden[hidden["task"] == t].groupby("layers")["rsa"].mean().tolist()
            for t in tasks}


def change_by_task(summary):
    """``change_summary`` averaged over seeds (and domains): one row per task."""
    return summary.groupby("task", sort=False)[["top", "lower_half", "top_share",
                                                "half_depth"]].mean()


def rsa_cka_agreement(frame) -> float:
    """Mean over (task, seed) of the Spearman correlation between the RSA and CKA depth
    profiles: do the two measures rank the layers alike?"""
    agree = frame.groupby(["task", "seed"]).apply(
        lambda g: g["rsa"].corr(g["cka"], method="spearman"), include_groups=False)
    return float(agree.mean())


def rsa_numbers(frame, summary, profile: Profile) -> dict[str, Any]:
    """Every number chapter 4's prose quotes, keyed by its glue name (``rsa_…``)."""
    top = int(frame["layers"].max())
    by_task = change_by_task(summary)
    out: dict[str, Any] = {}
    for t in by_task.index:
        out[f"rsa_top_{t}"] = f"{1 - by_task.loc[t, 'top']:.4f}"
        out[f"rsa_change_top_{t}"] = f"{by_task.loc[t, 'top']:.4f}"
        out[f"rsa_change_low_{t}"] = f"{by_task.loc[t, 'lower_half']:.4f}"
        out[f"rsa_share_{t}"] = f"{100 * by_task.loc[t, 'top_share']:.0f} %"
        out[f"rsa_half_{t}"] = int(by_task.loc[t, "half_depth"])
        iv = frame[(frame["task"] == t) & (frame["layers"] == top)]
        out[f"rsa_ci_{t}"] = f"[{iv['rsa_low'].mean():.4f}, {iv['rsa_high'].mean():.4f}]"
    out["rsa_cka_rank"] = f"{rsa_cka_agreement(frame):.2f}"
    out["rsa_top_layer"] = top
    out["rsa_n_tokens"] = profile.rsa_tokens
    out["rsa_n_seeds"] = len(profile.seeds)
    return out


def domain_gaps(frame, tasks: Sequence[str], domains: Sequence[str],
                unseen: Sequence[str] = ("wikitext", "gum")):
    """Per task, at the top layer (means over the frame's seeds): RSA on its own domain (with
    its interval), the mean over the other domains, over ``unseen`` ones and over the other
    tasks' data (``tasks``), the gap (others minus own: > 0 means the model changed less out
    of domain) and the ratio of changes (``1 - RSA``, others / own)."""
    import pandas as pd

    top = int(frame["layers"].max())
    at_top = (frame[frame["layers"] == top].groupby(["task", "domain"])
              [["rsa", "rsa_low", "rsa_high"]].mean())
    rows = {}
    for t in tasks:
        own = at_top.loc[(t, TASK_DOMAIN.get(t, t))]
        others = at_top.loc[[(t, d) for d in domains if d != TASK_DOMAIN.get(t, t)]]
        new = at_top.loc[[(t, d) for d in unseen if d in domains]]
        data = at_top.loc[[(t, d) for d in domains if d not in unseen
                           and d != TASK_DOMAIN.get(t, t)]]
        rows[t] = {"own": float(own["rsa"]), "own_low": float(own["rsa_low"]),
                   "own_high": float(own["rsa_high"]), "other": float(others["rsa"].mean()),
                   "unseen": float(new["rsa"].mean()), "tasks": float(data["rsa"].mean()),
                   "gap": float(others["rsa"].mean() - own["rsa"]),
                   "ratio": float((1 - others["rsa"]).mean() / max(1 - own["rsa"], _TINY))}
    return pd.DataFrame.from_dict(rows, orient="index")


def ood_numbers(gaps, frame, profile: Profile, n_domains: int) -> dict[str, Any]:
    """Every number chapter 6's prose quotes from its frame, keyed by its glue name (``ood_…``;
    the judged gaps with their intervals: ``drift_evidence.ood_part_numbers``)."""
    out: dict[str, Any] = {}
    for t, g in gaps.iterrows():
        out[f"ood_own_{t}"] = f"{g['own']:.4f}"
        out[f"ood_own_ci_{t}"] = f"[{g['own_low']:.4f}, {g['own_high']:.4f}]"
        out[f"ood_other_{t}"] = f"{g['other']:.4f}"
        out[f"ood_gap_{t}"] = f"{g['gap']:+.4f}"
        out[f"ood_ratio_{t}"] = f"{g['ratio']:.2f}"
        out[f"ood_unseen_{t}"] = f"{g['unseen']:.4f}"
        out[f"ood_tasks_{t}"] = f"{g['tasks']:.4f}"
    out["ood_top_layer"] = int(frame["layers"].max())
    out["ood_n_seeds"] = int(frame["seed"].nunique()) if "seed" in frame else 1
    out["ood_n_other"] = n_domains - 1
    out["ood_n_tokens"] = profile.rsa_tokens
    return out


# -- seeds, ceilings, shared words and budgets: the evidence behind chapter 4's verdicts -----------
_Z = t_quantile(LEVEL)  # the normal quantile of the book's 95 % level (inference)


def _se(frame) -> np.ndarray:
    """Per row: the bootstrap standard error implied by a 95 % RSA interval."""
    return ((frame["rsa_high"] - frame["rsa_low"]) / (2 * _Z)).to_numpy()


def seed_pair_compare(task: str, profile: Profile, a: int, b: int, *,
                      domain: str | None = None, shared: Sequence[str] | bool = False
                      ) -> dict[str, Any]:
    """RSA per layer between the ``task`` models of seeds ``a`` and ``b`` (with its paired
    replicates), on the task's own data (or ``domain``'s) or on the shared words (``shared``:
    True, or the tasks whose data make them, as in ``shared_sentences``)."""
    if shared:
        tasks = None if shared is True else list(shared)
        sents, where = shared_sentences(profile, tasks), "shared"
    else:
        where = domain or TASK_DOMAIN[task]
        sents = _domain_sentences(where, profile)
    return compare_encoders(finetuned_path(task, profile, seed=b), sents, profile,
                            chapter="drift", name=f"{task}-seeds{a}v{b}-{where}",
                            base_path=str(finetuned_path(task, profile, seed=a)), maps=False,
                            intervals=("rsa",), measures=("rsa",))


def _pairs(seeds: Sequence[int]) -> list[tuple[int, int]]:
    s = sorted(seeds)
    return [(a, b) for i, a in enumerate(s) for b in s[i + 1:]]


def seed_ceiling(task: str, profile: Profile, seeds: Sequence[int] | None = None,
                 domain: str | None = None) -> list[float]:
    """The seed-to-seed similarity: per layer (0..L), RSA between two models fine-tuned on
    ``task`` with different seeds, on the task's own data (mean over every pair of seeds).
    Two seeds differ by twice one seed's noise, so half of ``1 -`` this is what the seed alone
    adds to a pre-trained vs fine-tuned change (``bertdrift.drift_evidence``). Needs two seeds
    or more."""
    seeds = list(seeds) if seeds is not None else list(profile.seeds)
    if len(seeds) < 2:
        raise DriftError(f"a seed-to-seed ceiling needs two seeds or more; got {seeds}")
    sims = [seed_pair_compare(task, profile, a, b, domain=domain)["rsa"]
            for a, b in _pairs(seeds)]
    return np.mean(np.asarray(sims, dtype=float), axis=0).tolist()


def ceiling_frame(profile: Profile, tasks: Sequence[str], seeds: Sequence[int] | None = None):
    """``seed_ceiling`` for every task as a tidy frame (``task, layers, ceiling``)."""
    import pandas as pd

    rows = [{"task": t, "layers": layer, "ceiling": c} for t in tasks
            for layer, c in enumerate(seed_ceiling(t, profile, seeds))]
    return pd.DataFrame(rows)


def seed_evidence(profile: Profile, tasks: Sequence[str], *, shared: bool = False,
                  seeds: Sequence[int] | None = None, progress: bool = False
                  ) -> dict[str, SeedComparisons]:
    """Per task: pre-trained vs each fine-tuning seed and every pair of seeds, with paired
    replicates (``drift_evidence.SeedComparisons``), on each task's own data (the comparisons
    ``drift_frame(profile, tasks, seeds=seeds)`` made, read from the cache) or on the shared
    words (``shared_drift_frame``'s). What the ceiling-corrected change is computed from."""
    seeds = list(seeds) if seeds is not None else list(profile.seeds)
    if shared:
        sents = shared_sentences(profile, tasks)
        pre = {(t, s): shared_compare(t, profile, seed=s, sentences=sents)
               for t in tasks for s in seeds}
    else:
        pre = {(t, s): r for (t, s, _), r in drift_runs(profile, tasks, seeds=seeds,
                                                        progress=progress).items()}
    return {t: SeedComparisons(
        pre={s: stack(pre[(t, s)]) for s in seeds},
        pairs={(a, b): stack(seed_pair_compare(t, profile, a, b,
                                               shared=list(tasks) if shared else False))
               for a, b in _pairs(seeds)}) for t in tasks}


def domain_evidence(profile: Profile, tasks: Sequence[str], domains: Sequence[str], *,
                    seeds: Sequence[int] | None = None, progress: bool = False
                    ) -> dict[str, dict[str, dict[int, Any]]]:
    """``[task][domain][seed]``: pre-trained vs fine-tuned RSA rows with paired replicates on
    every domain, from the comparisons chapter 6's frame made (``drift_frame`` with
    ``maps=False, intervals=("rsa",), measures=OOD_MEASURES``), read from the cache."""
    seeds = list(seeds) if seeds is not None else list(profile.seeds)
    runs = drift_runs(profile, tasks, seeds=seeds, domains=domains, progress=progress,
                      maps=False, intervals=("rsa",), measures=OOD_MEASURES)
    out: dict[str, dict[str, dict[int, Any]]] = {}
    for (t, s, d), res in runs.items():
        out.setdefault(t, {}).setdefault(d, {})[s] = stack(res)
    return out


OOD_MEASURES = ("rsa", "cka")
"""What chapter 6 computes on every domain."""


def shared_drift_frame(profile: Profile, tasks: Sequence[str], *,
                       seeds: Sequence[int] = (0,), paths: dict[tuple[str, int], str] | None
                       = None, progress: bool = True):
    """Pre-trained vs fine-tuned, per layer, on the one shared word set (``shared_sentences``)
    for every task and seed: the cross-task comparison. ``paths`` replaces a (task, seed)'s
    encoder (e.g. a snapshot at a matched budget)."""
    import pandas as pd
    from tqdm.auto import tqdm

    sents = shared_sentences(profile, tasks)
    frames = []
    for task, seed in tqdm([(t, s) for t in tasks for s in seeds], desc="shared words",
                           disable=not progress):
        res = shared_compare(task, profile, seed=seed, sentences=sents,
                             path=(paths or {}).get((task, seed)))
        frames.append(to_frame(res, task=task, seed=seed, domain="shared"))
    return pd.concat(frames, ignore_index=True)


SHARED_MEASURES = ("rsa", "cka")
"""What the shared-word comparisons compute (chapters 4 and 7 plot these two)."""


def shared_compare(task: str, profile: Profile, *, seed: int = 0,
                   sentences: Sequence[Sequence[str]] | None = None,
                   path: str | Path | None = None) -> dict[str, Any]:
    """Pre-trained vs the ``task`` model of ``seed`` (or the encoder at ``path``, e.g. a
    snapshot) on the shared words, RSA with its interval and replicates, and CKA: one cached
    result that chapter 4's cross-task comparison and chapter 7's last snapshot both read."""
    final = finetuned_path(task, profile, seed=seed)
    path = Path(path or final)
    tag = "" if path == final else "-" + stable_hash(str(path))[:8]
    sents = sentences if sentences is not None else shared_sentences(profile)
    return compare_encoders(path, sents, profile, chapter="drift",
                            name=f"{task}-seed{seed}-shared{tag}", maps=False,
                            intervals=("rsa",), measures=SHARED_MEASURES)


def lower_half_change(frame) -> dict[str, dict[int, tuple[float, float]]]:
    """Per task and seed: mean change ``1 - RSA`` over layers 1..L/2 and its bootstrap error."""
    out: dict[str, dict[int, tuple[float, float]]] = {}
    top = int(frame["layers"].max())
    low = frame[(frame["layers"] >= 1) & (frame["layers"] <= top // 2)]
    for (task, seed), g in low.groupby(["task", "seed"], sort=False):
        out.setdefault(str(task), {})[int(seed)] = (float(1 - g["rsa"].mean()),
                                                    float(_se(g).mean()))
    return out


def budget_table(runs):
    """Each task's training budget (per run, mean over seeds): optimizer steps, examples
    (features) seen, tokens seen, and training seconds. ``runs``: ``{(task, seed): result}``."""
    import pandas as pd

    from bertdrift.io import read_json

    rows = []
    for (task, seed), r in runs.items():
        stored = read_json(Path(r.path) / "result.json")
        b = stored.get("budget", {})
        rows.append({"task": task, "seed": seed, "steps": stored.get("total_steps"),
                     "examples seen": b.get("examples_seen"), "tokens seen": b.get("tokens_seen"),
                     "train seconds": sum(h["train_seconds"] for h in r.history)})
    return pd.DataFrame(rows).groupby("task", sort=False).mean(numeric_only=True).drop(
        columns="seed")


def matched_snapshots(runs, profile: Profile, seed: int = 0) -> dict[str, Any]:
    """Per task, the snapshot of seed ``seed``'s run nearest the smallest task's number of
    optimizer steps: the tasks compared at (nearly) equal training steps."""
    from bertdrift.finetune import snapshots

    snaps = {t: snapshots(r, profile) for (t, s), r in runs.items() if s == seed}
    target = min(sn[-1].total for sn in snaps.values())
    return {t: min(sn, key=lambda x: abs(x.step - target)) for t, sn in snaps.items()}


def weight_change_frame(runs, profile: Profile):
    """Per task, seed and depth (0 = embeddings): ``‖W_ft − W_pre‖ / ‖W_pre‖``."""
    import pandas as pd

    from bertdrift.models import layer_weight_change, load_encoder

    pre = load_encoder(profile.model)
    rows = []
    for (task, seed), r in runs.items():
        change = layer_weight_change(pre, load_encoder(r.encoder_path))
        rows += [{"task": task, "seed": seed, "layers": i, "weight_change": c}
                 for i, c in enumerate(change)]
    return pd.DataFrame(rows)


def matched_note(matched, snaps: dict[str, Any], deep: str = "parsing") -> str:
    """One line for the claims page: at (nearly) equal optimizer steps (``matched``: the
    shared-word frame of ``matched_snapshots``, seed 0), the magnitude view, ``deep``'s mean
    change ``1 - RSA`` over layers 1..L/2 minus each other task's, with its words-only
    interval (one seed: no seed spread, no ceiling)."""
    change = lower_half_change(matched)
    if deep not in change or len(change) < 2:
        raise DriftError(f"the matched frame needs {deep} and at least one other task")
    at = ", ".join(f"{t} step {s.step}/{s.total}" for t, s in snaps.items())
    eff = []
    for task, by_seed in change.items():
        if task != deep:
            s = min(set(by_seed) & set(change[deep]))
            d, se = change[deep][s][0] - by_seed[s][0], np.hypot(change[deep][s][1],
                                                                 by_seed[s][1])
            eff.append(f"{deep} − {task} {d:+.4f} ± {_Z * se:.4f}")
    return (f"at matched steps ({at}), lower-half change (1 − RSA, seed 0, words only): "
            + ", ".join(eff))


def evidence_numbers(ceilings, weights, budgets, snaps: dict[str, Any],
                     matched: str) -> dict[str, Any]:
    """The numbers chapter 4 quotes about seeds, ceilings, weights and budgets (``rsa_…``)."""
    top = int(ceilings["layers"].max())
    out: dict[str, Any] = {"rsa_matched": matched}
    for t in budgets.index:
        c = ceilings[(ceilings["task"] == t)].set_index("layers")["ceiling"]
        w = weights[weights["task"] == t].groupby("layers")["weight_change"].mean()
        out[f"rsa_ceiling_top_{t}"] = f"{c[top]:.4f}"
        out[f"rsa_ceiling_low_{t}"] = f"{c.loc[1:top // 2].mean():.4f}"
        out[f"rsa_wtop_{t}"] = f"{w.iloc[-1]:.4f}"
        out[f"rsa_wemb_{t}"] = f"{w.iloc[0]:.4f}"
        out[f"rsa_wratio_{t}"] = f"{w.iloc[-1] / max(w.iloc[1], _TINY):.1f}"
        out[f"rsa_steps_{t}"] = int(budgets.loc[t, "steps"])
        out[f"rsa_examples_{t}"] = int(budgets.loc[t, "examples seen"])
        out[f"rsa_tokens_{t}"] = f"{int(budgets.loc[t, 'tokens seen']):,}"
        if t in snaps:
            out[f"rsa_matched_step_{t}"] = f"{snaps[t].step} of {snaps[t].total}"
    return out
