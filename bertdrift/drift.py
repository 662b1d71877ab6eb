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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertdrift.config import TASK_DOMAIN, Profile, resolve_device
from bertdrift.data.domains import domain_sentences
from bertdrift.errors import BertdriftError
from bertdrift.io import cached_json, results_dir, stable_hash
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
    tasks = list(tasks) if tasks is not None else list(TASK_DOMAIN)
    share = -(-profile.rsa_tokens // len(tasks))
    out: list[list[str]] = []
    for task in tasks:
        sents = domain_sentences(TASK_DOMAIN[task], profile, n_sentences=profile.ood_sentences,
                                 seed=0)
        out += token_prefix(sents, share)
    return out


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


def layer_drift(base: Any, tuned: Any, *, n_boot: int = 100, seed: int = 0,
                level: float = 0.95, maps: bool = True,
                intervals: Sequence[str] = ("rsa", "cka")) -> dict[str, Any]:
    """Compare two ``(L, n, d)`` activation stacks of the same tokens, layer by layer.

    ``intervals`` names the measures that get bootstrap intervals (``rsa``, ``cka``).
    """
    rows: dict[str, list[float]] = {
        "rsa": rsa(base, tuned).tolist(),
        "cka": cka(base, tuned).tolist(),
        "cka_debiased": cka(base, tuned, debiased=True).tolist(),
        "procrustes": procrustes(base, tuned).tolist(),
    }
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
                     intervals: Sequence[str] = ("rsa", "cka")) -> dict[str, Any]:
    """Per-layer similarity of ``base_path`` (default ``profile.model``) and ``tuned_path``.

    Uses the first ``n_tokens`` (default ``profile.rsa_tokens``) words of ``sentences`` and
    ``profile.rsa_bootstrap`` bootstrap replicates; cached by a key of both models' paths, the
    words and the settings. Returns a dict of per-layer lists plus metadata.
    """
    n_tokens = n_tokens or profile.rsa_tokens
    sents = token_prefix(sentences, n_tokens)
    base_path = base_path or profile.model
    key = stable_hash(str(base_path), str(tuned_path), _mtime(tuned_path), sents, n_tokens,
                      profile.pooling, profile.feature_max_length, profile.rsa_bootstrap, seed,
                      maps, list(intervals))
    target = results_dir(profile.cache_path, chapter) / f"{name}-{key}.json"

    def compute() -> dict[str, Any]:
        device = resolve_device(profile.device)
        a, fp_a = _features(base_path, sents, profile, f"{name}: pre-trained")
        b, fp_b = _features(str(tuned_path), sents, profile, f"{name}: fine-tuned")
        to = torch.device(device)
        ta = torch.from_numpy(a[:n_tokens].transpose(1, 0, 2).copy()).to(to)
        tb = torch.from_numpy(b[:n_tokens].transpose(1, 0, 2).copy()).to(to)
        result = layer_drift(ta, tb, n_boot=profile.rsa_bootstrap, seed=seed, maps=maps,
                             intervals=intervals)
        result["meta"] = {"name": name, "base": str(base_path), "tuned": str(tuned_path),
                          "base_fingerprint": fp_a, "tuned_fingerprint": fp_b,
                          "n_tokens": n_tokens, "n_sentences": len(sents), "seed": seed,
                          "n_boot": profile.rsa_bootstrap, "profile": profile.name}
        return result

    return cached_json(target, compute)


def _mtime(path: str | Path) -> float:
    p = Path(path)
    return p.stat().st_mtime if p.exists() else 0.0


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
               maps: bool = True, intervals: Sequence[str] = ("rsa", "cka")) -> dict[str, Any]:
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
                            intervals=intervals)


def drift_frame(profile: Profile, tasks: Sequence[str], *, seeds: Sequence[int] = (0,),
                domains: Sequence[str] | None = None, progress: bool = True,
                maps: bool = True, intervals: Sequence[str] = ("rsa", "cka")):
    """Tidy per-layer table over tasks x seeds x domains (``domains=None``: each task's own)."""
    import pandas as pd
    from tqdm.auto import tqdm

    jobs = [(t, s, d) for t in tasks for s in seeds for d in (domains or [TASK_DOMAIN[t]])]
    frames = []
    for task, seed, domain in tqdm(jobs, desc="drift", disable=not progress):
        res = task_drift(task, profile, seed=seed, domain=domain, maps=maps, intervals=intervals)
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
        out[f"rsa_change_top_{t}"] = f"{by_task.loc[t, 'top']:.2e}"
        out[f"rsa_change_low_{t}"] = f"{by_task.loc[t, 'lower_half']:.2e}"
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
