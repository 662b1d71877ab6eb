"""The drift stage (chapters 4 and 6): how far each layer of a fine-tuned encoder moved.

``compare_encoders`` runs both encoders over the same word-tokenised sentences (through the
activation store), keeps the first ``n_tokens`` words, and compares the two at every layer with
RSA (cosine kernel, Pearson), linear CKA (plain and debiased) and orthogonal Procrustes, with
block-bootstrap intervals for RSA and CKA and layer x layer maps. Results are cached as JSON under
``<cache>/results/<chapter>/<name>-<key>.json``; asking again returns the stored result.
``task_drift`` and ``drift_frame`` do this for the fine-tuned models on each input domain
(``bertdrift.data.domains``); ``change_summary``, ``seed_spread``, ``rsa_by_task`` and
``domain_gaps`` are the summaries the chapters quote.
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
from bertdrift.errors import BertdriftError
from bertdrift.io import cached_json, mtime, results_dir, stable_hash
from bertdrift.similarity import cka, cka_map, procrustes, rsa, rsa_map
from bertdrift.similarity.bootstrap import bootstrap

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
    (``rsa``, ``cka``).
    """
    unknown = [m for m in (*measures, *intervals) if m not in MEASURES]
    if unknown or "rsa" not in measures:
        raise DriftError(f"measures={list(measures)!r}, intervals={list(intervals)!r}: choose "
                         f"from {MEASURES} and include 'rsa'")
    rows: dict[str, list[float]] = {m: _MEASURE_FNS[m](base, tuned).tolist() for m in measures}
    for name in intervals:
        iv = bootstrap(base, tuned, measure=name, n_boot=n_boot, seed=seed, level=level)
        rows[f"{name}_low"], rows[f"{name}_high"] = iv.low.tolist(), iv.high.tolist()
    out: dict[str, Any] = {"layers": list(range(len(rows["rsa"]))), **rows}
    if maps:
        out["rsa_map"] = rsa_map(base, tuned).tolist()
        out["cka_map"] = cka_map(base, tuned).tolist()
    return out


def _features(model_path: str | Path, sentences: list[list[str]], profile: Profile,
              desc: str) -> tuple[np.ndarray, str]:
    from bertdrift.features import load_cached, model_features
    from bertdrift.models import weights_fingerprint

    fs = model_features(model_path, sentences, profile, desc=desc)
    encoder, _ = load_cached(model_path, resolve_device(profile.device))
    return np.asarray(fs.array, dtype=np.float32), weights_fingerprint(encoder)


def compare_encoders(tuned_path: str | Path, sentences: Sequence[Sequence[str]],
                     profile: Profile, *, chapter: str, name: str, base_path: str | None = None,
                     n_tokens: int | None = None, seed: int = 0, maps: bool = True,
                     intervals: Sequence[str] = ("rsa", "cka"),
                     measures: Sequence[str] = MEASURES) -> dict[str, Any]:
    """Per-layer similarity of ``base_path`` (default ``profile.model``) and ``tuned_path``.

    Uses the first ``n_tokens`` (default ``profile.rsa_tokens``) words of ``sentences`` and
    ``profile.rsa_bootstrap`` bootstrap replicates; cached by a key of both models' paths, the
    words and the settings. Returns a dict of per-layer lists plus metadata.
    """
    n_tokens = n_tokens or profile.rsa_tokens
    sents = token_prefix(sentences, n_tokens)
    base_path = base_path or profile.model
    key = stable_hash(str(base_path), str(tuned_path), mtime(tuned_path), sents, n_tokens,
                      profile.pooling, profile.feature_max_length, profile.rsa_bootstrap, seed,
                      maps, list(intervals), list(measures), profile.precision)
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
    ``profile.rsa_tokens`` of their words are compared.
    """
    domain = domain or TASK_DOMAIN[task]
    tuned = finetuned_path(task, profile, seed=seed)
    sents = domain_sentences(domain, profile, n_sentences=profile.ood_sentences, seed=0)
    return compare_encoders(tuned, sents, profile, chapter="drift",
                            name=f"{task}-seed{seed}-{domain}", seed=seed, maps=maps,
                            intervals=intervals, measures=measures)


def drift_frame(profile: Profile, tasks: Sequence[str], *, seeds: Sequence[int] = (0,),
                domains: Sequence[str] | None = None, progress: bool = True,
                maps: bool = True, intervals: Sequence[str] = ("rsa", "cka"),
                measures: Sequence[str] = MEASURES):
    """Tidy per-layer table over tasks x seeds x domains (``domains=None``: each task's own).

    Layer x layer maps and CKA intervals are computed for the first seed only; RSA intervals
    (which the verdicts use) for every seed."""
    import pandas as pd
    from tqdm.auto import tqdm

    jobs = [(t, s, d) for t in tasks for s in seeds for d in (domains or [TASK_DOMAIN[t]])]
    frames = []
    for task, seed, domain in tqdm(jobs, desc="drift", disable=not progress):
        first = seed == seeds[0]  # maps and CKA intervals for the first seed only (time)
        res = task_drift(task, profile, seed=seed, domain=domain, maps=maps and first,
                         intervals=intervals if first else [i for i in intervals if i == "rsa"],
                         measures=measures)
        frames.append(to_frame(res, task=task, seed=seed, domain=domain,
                               in_domain=domain == TASK_DOMAIN[task]))
    return pd.concat(frames, ignore_index=True)


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
    """Per task, at the top layer: RSA on its own domain (with its interval), the mean over the
    other domains and over ``unseen`` ones, the gap (others minus own: > 0 means the model
    changed less out of domain) and the ratio of changes (``1 - RSA``, others / own)."""
    import pandas as pd

    top = int(frame["layers"].max())
    at_top = frame[frame["layers"] == top].set_index(["task", "domain"])
    rows = {}
    for t in tasks:
        own = at_top.loc[(t, t)]
        others = at_top.loc[[(t, d) for d in domains if d != t]]
        new = at_top.loc[[(t, d) for d in unseen if d in domains]]
        rows[t] = {"own": float(own["rsa"]), "own_low": float(own["rsa_low"]),
                   "own_high": float(own["rsa_high"]), "other": float(others["rsa"].mean()),
                   "unseen": float(new["rsa"].mean()),
                   "gap": float(others["rsa"].mean() - own["rsa"]),
                   "ratio": float((1 - others["rsa"]).mean() / max(1 - own["rsa"], _TINY))}
    return pd.DataFrame.from_dict(rows, orient="index")


def ood_numbers(gaps, frame, profile: Profile, n_domains: int) -> dict[str, Any]:
    """Every number chapter 6's prose quotes, keyed by its glue name (``ood_…``)."""
    out: dict[str, Any] = {}
    for t, g in gaps.iterrows():
        out[f"ood_own_{t}"] = f"{g['own']:.4f}"
        out[f"ood_own_ci_{t}"] = f"[{g['own_low']:.4f}, {g['own_high']:.4f}]"
        out[f"ood_other_{t}"] = f"{g['other']:.4f}"
        out[f"ood_gap_{t}"] = f"{g['gap']:+.4f}"
        out[f"ood_ratio_{t}"] = f"{g['ratio']:.2f}"
        out[f"ood_unseen_{t}"] = f"{g['unseen']:.4f}"
    out["ood_top_layer"] = int(frame["layers"].max())
    out["ood_n_other"] = n_domains - 1
    out["ood_n_tokens"] = profile.rsa_tokens
    return out


# -- seeds, ceilings, shared words and budgets: the evidence behind chapter 4's verdicts -----------
_Z = 1.959963984540054


def _se(frame) -> np.ndarray:
    """Per row: the bootstrap standard error implied by a 95 % RSA interval."""
    return ((frame["rsa_high"] - frame["rsa_low"]) / (2 * _Z)).to_numpy()


def seed_ceiling(task: str, profile: Profile, seeds: Sequence[int] | None = None,
                 domain: str | None = None) -> list[float]:
    """The noise ceiling: per layer (0..L), RSA between two models fine-tuned on ``task`` with
    different seeds, on the task's own data (mean over every pair of seeds). A pre-trained vs
    fine-tuned similarity at this level is a change no larger than what the seed alone makes.
    Needs two seeds or more."""
    seeds = list(seeds) if seeds is not None else list(profile.seeds)
    if len(seeds) < 2:
        raise DriftError(f"a seed-to-seed ceiling needs two seeds or more; got {seeds}")
    domain = domain or TASK_DOMAIN[task]
    sents = domain_sentences(domain, profile, n_sentences=profile.ood_sentences, seed=0)
    pairs = [(a, b) for i, a in enumerate(seeds) for b in seeds[i + 1:]]
    sims = [compare_encoders(finetuned_path(task, profile, seed=b), sents, profile,
                             chapter="drift", name=f"{task}-seeds{a}v{b}-{domain}",
                             base_path=str(finetuned_path(task, profile, seed=a)), maps=False,
                             intervals=(), measures=("rsa",))["rsa"] for a, b in pairs]
    return np.mean(np.asarray(sims, dtype=float), axis=0).tolist()


def ceiling_frame(profile: Profile, tasks: Sequence[str], seeds: Sequence[int] | None = None):
    """``seed_ceiling`` for every task as a tidy frame (``task, layers, ceiling``)."""
    import pandas as pd

    rows = [{"task": t, "layers": layer, "ceiling": c} for t in tasks
            for layer, c in enumerate(seed_ceiling(t, profile, seeds))]
    return pd.DataFrame(rows)


def top_layer_parts(frame, ceilings) -> dict[str, dict[str, Any]]:
    """The claims page's evidence for "top layers change most", per task: for each seed, the
    mean *excess* change (ceiling minus pre-trained-vs-fine-tuned RSA) over the top third of
    layers 1..L minus that over the bottom third; ``se`` is the bootstrap error over words of
    that difference (the two thirds' errors added in quadrature, conservatively)."""
    out: dict[str, dict[str, Any]] = {}
    for task, g in frame[frame["layers"] >= 1].groupby("task", sort=False):
        ceil = ceilings[ceilings["task"] == task].set_index("layers")["ceiling"]
        values, ses = [], []
        for _, s in g.groupby("seed"):
            s = s.sort_values("layers")
            excess = ceil.loc[s["layers"]].to_numpy() - s["rsa"].to_numpy()
            se = _se(s)
            third = max(1, len(excess) // 3)
            values.append(float(excess[-third:].mean() - excess[:third].mean()))
            ses.append(float(np.hypot(se[-third:].mean(), se[:third].mean())))
        out[str(task)] = {"values": values, "se": float(np.mean(ses)), "null": 0.0,
                          "side": "above"}
    return out


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
    snapshot) on the shared words, RSA with its interval and CKA: one cached result that
    chapter 4's cross-task comparison and chapter 7's last snapshot both read."""
    final = finetuned_path(task, profile, seed=seed)
    path = Path(path or final)
    tag = "" if path == final else "-" + stable_hash(str(path))[:8]
    sents = sentences if sentences is not None else shared_sentences(profile)
    return compare_encoders(path, sents, profile, chapter="drift",
                            name=f"{task}-seed{seed}-shared{tag}", seed=seed, maps=False,
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


def deeper_parts(frame, deep: str = "parsing") -> dict[str, dict[str, Any]]:
    """Evidence for "parsing changes deeper", on shared words: for each other task, per seed,
    parsing's lower-half change minus the other task's (seeds paired by index)."""
    change = lower_half_change(frame)
    if deep not in change or len(change) < 2:
        raise DriftError(f"the shared-word frame needs {deep} and at least one other task")
    out = {}
    for task, by_seed in change.items():
        if task == deep:
            continue
        seeds = sorted(set(by_seed) & set(change[deep]))
        out[f"{deep} − {task}"] = {
            "values": [change[deep][s][0] - by_seed[s][0] for s in seeds],
            "se": float(np.mean([np.hypot(change[deep][s][1], by_seed[s][1]) for s in seeds])),
            "null": 0.0, "side": "above"}
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


def ood_parts(frame, seed_frame=None) -> dict[str, dict[str, Any]]:
    """Evidence for "the change is weaker out of domain", per task, at the top layer: RSA
    out of domain (mean over the other domains) minus in domain, for the frame's one seed.
    Its error combines the bootstrap errors over words (own domain; the mean of the others)
    with the seed-to-seed spread of the in-domain top-layer RSA in ``seed_frame`` (chapter 4's
    own-domain frame over every seed; ``n - 1`` degrees of freedom), a proxy for how much one
    seed's gap can move."""
    top = int(frame["layers"].max())
    at_top = frame[frame["layers"] == top]
    out: dict[str, dict[str, Any]] = {}
    for task, g in at_top.groupby("task", sort=False):
        own = g[g["domain"] == task]
        others = g[g["domain"] != task]
        se_own, se_oth = _se(own), _se(others)
        se_words = float(np.hypot(se_own.mean(), np.sqrt((se_oth ** 2).sum()) / len(se_oth)))
        part: dict[str, Any] = {"values": [float(others["rsa"].mean() - own["rsa"].mean())],
                                "se": se_words, "null": 0.0, "side": "above"}
        if seed_frame is not None:
            s = seed_frame[(seed_frame["task"] == task) & (seed_frame["layers"] == top)]["rsa"]
            if len(s) > 1:
                part["se"] = float(np.hypot(se_words, s.std(ddof=1)))
                part["dof"] = len(s) - 1
        out[str(task)] = part
    return out


def matched_note(matched_parts: dict[str, dict[str, Any]], snaps: dict[str, Any]) -> str:
    """One line for the claims page: the parsing-deeper effect at (nearly) equal steps."""
    at = ", ".join(f"{t} step {s.step}/{s.total}" for t, s in snaps.items())
    eff = ", ".join(f"{k} {np.mean(v['values']):+.4f} ± {_Z * v['se']:.4f} (words only, seed 0)"
                    for k, v in matched_parts.items())
    return f"at matched steps ({at}): {eff}"


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
