"""The drift stage: how far each layer of a fine-tuned encoder moved from the pre-trained one.

``compare_encoders`` runs both encoders over the same word-tokenised sentences (through the
activation store), keeps the first ``n_tokens`` words, and compares the two at every layer with
RSA (cosine kernel, Pearson), linear CKA (plain and debiased) and orthogonal Procrustes, with
block-bootstrap intervals for RSA and CKA and layer x layer maps. Results are cached as JSON under
``<cache>/results/<chapter>/<name>-<key>.json``; asking again returns the stored result.

``domain_sentences`` gives word-tokenised sentences from each input domain: the three tasks'
held-out data (``mnli``: MNLI dev-matched premises and hypotheses; ``squad``: sentences of the
evaluation articles' paragraphs and their questions; ``parsing``: UD EWT dev) and text none of the
tasks trained on (``wikitext``: WikiText-2 test; ``brown``: the Brown corpus, all genres;
``gum``: GENTLE, GUM's out-of-domain test2 genres). Strings are word-tokenised by ``word_tokenize`` (words with inner hyphens/apostrophes,
numbers, single punctuation marks); paragraphs are split into sentences after ``.``, ``!``, ``?``.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bertdrift.config import Profile, resolve_device
from bertdrift.errors import BertdriftError, DataError
from bertdrift.io import read_json, stable_hash, write_json
from bertdrift.similarity import cka, cka_map, procrustes, rsa, rsa_map
from bertdrift.similarity_bootstrap import bootstrap

DOMAINS = ("mnli", "squad", "parsing", "wikitext", "brown", "gum")
TASK_DOMAIN = {"mnli": "mnli", "squad": "squad", "parsing": "parsing"}
_WORD = re.compile(r"(?i)['’](?:s|re|ve|ll|d|m|t)\b|\w+(?:[-'’.]\w+)*|[^\w\s]")
_TINY = 1e-12
_SENT = re.compile(r"(?<=[.!?])\s+(?=[\"'“(\[]?[A-Z0-9])")


class DriftError(BertdriftError):
    """The drift stage cannot run (missing fine-tuned model, too few tokens, ...)."""


def word_tokenize(text: str) -> list[str]:
    """Split a string into words and punctuation marks (``"don't stop."`` -> 3 tokens)."""
    return _WORD.findall(text)


def split_sentences(text: str) -> list[str]:
    """Split a paragraph after ``.``/``!``/``?`` followed by space and a capital or digit."""
    return [s for s in (p.strip() for p in _SENT.split(text)) if s]


def _strings_to_sentences(texts: Sequence[str], split: bool) -> list[list[str]]:
    out: list[list[str]] = []
    for text in texts:
        for sent in split_sentences(text) if split else [text]:
            words = word_tokenize(sent)
            if len(words) >= 3:
                out.append(words)
    return out


def _wikitext(profile: Profile) -> list[list[str]]:
    from bertdrift.data import load_wikitext

    return [list(t) for t in load_wikitext(data_dir=profile.data_dir)["tokens"]]


def _gum(profile: Profile) -> list[list[str]]:
    from bertdrift.data.gum import load_gum

    rows = load_gum("test2", data_dir=profile.data_dir)["tokens"]
    return [list(t) for t in rows if not all(w == "_" for w in t)]


def all_domain_sentences(domain: str, profile: Profile) -> list[list[str]]:
    """Every word-tokenised sentence of ``domain`` (held-out data for the three tasks)."""
    from bertdrift import data

    if domain == "mnli":
        ds = data.load_mnli("dev_matched", data_dir=profile.data_dir)
        return _strings_to_sentences([*ds["premise"], *ds["hypothesis"]], split=False)
    if domain == "squad":
        ds = data.load_squad("dev", data_dir=profile.data_dir)
        _, held_out = data.split_squad_by_article(ds, profile.squad_eval_articles)
        contexts = list(dict.fromkeys(held_out["context"]))
        return _strings_to_sentences(contexts, split=True) + _strings_to_sentences(
            held_out["question"], split=False)
    if domain == "parsing":
        return [list(t) for t in data.load_ud("dev", data_dir=profile.data_dir)["tokens"]]
    if domain == "wikitext":
        return _wikitext(profile)
    if domain == "gum":
        return _gum(profile)
    if domain == "brown":
        return [list(t) for t in data.load_brown(data_dir=profile.data_dir)["tokens"]]
    raise DataError(f"unknown domain {domain!r}; choose one of {', '.join(DOMAINS)}")


def domain_sentences(domain: str, profile: Profile, *, n_sentences: int | None = None,
                     seed: int = 0, max_words: int = 60) -> list[list[str]]:
    """A seeded random sample of ``n_sentences`` sentences of ``domain`` (3..max_words words)."""
    pool = [s for s in all_domain_sentences(domain, profile) if 3 <= len(s) <= max_words]
    if not pool:
        raise DataError(f"domain {domain!r} yielded no sentences; check the data directory")
    order = list(range(len(pool)))
    random.Random(seed).shuffle(order)
    keep = sorted(order[: n_sentences or len(pool)])
    return [pool[i] for i in keep]


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


_LOADED: dict[tuple[str, str, float], tuple[Any, Any, str]] = {}


def _load(model_path: str | None, device: str) -> tuple[Any, Any, str]:
    """Encoder, tokenizer and weight fingerprint; the last two models stay loaded."""
    from bertdrift.models import load_encoder, load_tokenizer, weights_fingerprint

    key = (str(model_path), device, _mtime(model_path) if model_path else 0.0)
    if key not in _LOADED:
        while len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        model = load_encoder(model_path, device=device)
        _LOADED[key] = (model, load_tokenizer(model_path), weights_fingerprint(model))
    return _LOADED[key]


def _features(model_path: str | None, sentences: list[list[str]], profile: Profile,
              device: str, desc: str) -> tuple[np.ndarray, str]:
    from bertdrift.features import extract_features

    model, tok, fingerprint = _load(model_path, device)
    fs = extract_features(model, tok, sentences, pooling=profile.pooling,
                          batch_size=profile.feature_batch_size,
                          max_length=profile.feature_max_length,
                          cache_root=profile.cache_path / "features", device=device, desc=desc)
    return np.asarray(fs.array, dtype=np.float32), fingerprint


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
    target = profile.cache_path / "results" / chapter / f"{name}-{key}.json"
    if target.exists():
        return read_json(target)
    device = resolve_device(profile.device)
    a, fp_a = _features(base_path, sents, profile, device, f"{name}: pre-trained")
    b, fp_b = _features(str(tuned_path), sents, profile, device, f"{name}: fine-tuned")
    to = torch.device(device)
    ta = torch.from_numpy(a[:n_tokens].transpose(1, 0, 2).copy()).to(to)
    tb = torch.from_numpy(b[:n_tokens].transpose(1, 0, 2).copy()).to(to)
    result = layer_drift(ta, tb, n_boot=profile.rsa_bootstrap, seed=seed, maps=maps,
                         intervals=intervals)
    result["meta"] = {"name": name, "base": str(base_path), "tuned": str(tuned_path),
                      "base_fingerprint": fp_a, "tuned_fingerprint": fp_b,
                      "n_tokens": n_tokens, "n_sentences": len(sents), "seed": seed,
                      "n_boot": profile.rsa_bootstrap, "profile": profile.name}
    write_json(target, result)
    return result


def _mtime(path: str | Path) -> float:
    p = Path(path)
    return p.stat().st_mtime if p.exists() else 0.0


def finetuned_path(task: str, profile: Profile, *, seed: int = 0, freeze: int = 0) -> Path:
    """The encoder directory of the fine-tuned ``task`` model (trained on demand, cached)."""
    try:
        from bertdrift.finetune import get_finetuned
    except ImportError as exc:
        raise DriftError(
            "bertdrift.finetune is not available yet, so there is no fine-tuned model to compare; "
            "update bertdrift or pass an encoder directory to compare_encoders"
        ) from exc
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

