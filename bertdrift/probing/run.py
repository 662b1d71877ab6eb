"""The probing chapter's experiment: every probe, every model, every probe seed, cached.

``run_probing(profile)`` probes the random-encoder floor, the pre-trained encoder and every
fine-tuning seed of each fine-tuned one (MNLI, SQuAD, dependency parsing; named as in
``probing.names``: ``"mnli"`` for seed 0, ``"mnli@1"`` for seed 1, ...) with edge probes (per layer + scalar mix), control tasks (pos, deps) and
structural probes (distance, depth), and returns tidy tables. All probe seeds of a probe train
in the same pass as extra heads (each with its own initialisation and dropout masks; batch order
from the first seed). Every (model, probe) unit is cached as JSON under
``<cache>/results/probing/units/``, keyed by the model's identity and feature settings, the rows
it probes and its settings; the tables are written as CSV beside it. A model's features are
extracted (once, for the union of all sentences the probes use) only when one of its units is
missing, into a store that is removed once its units are written: the cache keeps the probes'
results, not every layer of every word of every model.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from bertdrift.config import (
    CONTROL_TASKS,
    EDGE_TASKS,
    PROBE_ALL_TRAIN_TASKS,
    RANDOM_MODEL,
    STRUCTURAL_PROBES,
    Profile,
    resolve_device,
)
from bertdrift.data.edges import POSITIVE_LABEL
from bertdrift.data.sample import hash_order
from bertdrift.errors import DataError, MissingDataError
from bertdrift.features import features_identity, transient_features
from bertdrift.finetune import get_finetuned
from bertdrift.io import (
    MISSING,
    atomic_path,
    cached_json,
    read_stored,
    results_dir,
    stable_hash,
    write_json,
)
from bertdrift.probing.control import control_rows, label_distribution
from bertdrift.probing.edge import (
    EDGE_PROBE_VERSION,
    EdgeProbeConfig,
    encode_targets,
    train_edge_probes_seeds,
)
from bertdrift.probing.floor import random_encoder
from bertdrift.probing.names import probe_models, split_name
from bertdrift.probing.stats import constant_predictions, count_kind, sentence_counts
from bertdrift.probing.structural import (
    STRUCTURAL_METRICS,
    StructuralConfig,
    baseline_predictions,
    sentence_stats,
    train_structural_probes_seeds,
    trees_from_ud,
)

STRUCTURAL = STRUCTURAL_PROBES


@dataclass
class ProbingResults:
    """Tidy tables: ``edge`` (model, task, seed, layer, score, metric, tenney_f1), ``mix``
    (model, task, seed, layer, weight), ``control`` (model, task, seed, layer, task_score,
    control_score, selectivity), ``structural`` (model, probe, seed, layer, metric, value),
    ``budget`` (model, task, sentences and targets of each split, epochs run, best epoch, steps;
    one row per probe seed), ``extra`` (model, task, seed, auc, mcc of the binary tasks'
    scalar-mix probes), ``timings``.

    For the intervals: ``counts[(model, task)]`` holds the scalar-mix probe's per-sentence counts
    ``{"task": (seeds, S, K), "tenney": (seeds, S, 3)}`` on the evaluation sentences, and the
    top layer's probe's counts in the task metric, ``"top": (seeds, S, K)``;
    ``baselines[task]`` the trivial predictors' ``{name: {"task": (S, K), "tenney": (S, 3)}}``
    on the same sentences; ``tree_stats[(model, probe)][layer]`` the structural probes'
    ``(seeds, S, 4)`` ``sentence_stats`` and ``tree_baselines[probe]`` the baseline's ``(S, 4)``;
    ``metrics[task]`` is each edge task's task metric."""

    edge: pd.DataFrame
    mix: pd.DataFrame
    control: pd.DataFrame
    structural: pd.DataFrame
    timings: dict[str, float]
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)
    extra: pd.DataFrame = field(default_factory=pd.DataFrame)
    counts: dict[tuple[str, str], dict[str, np.ndarray]] = field(default_factory=dict)
    baselines: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    tree_stats: dict[tuple[str, str], dict[int, np.ndarray]] = field(default_factory=dict)
    tree_baselines: dict[str, np.ndarray] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    """Probes left out because their corpus cannot be had here: name -> reason."""


@dataclass(frozen=True)
class _Unit:
    """One cached (model, probe) result: where it is stored, which timer it counts towards,
    and how to compute it from a feature array and its sentence offsets."""

    path: Path
    timer: str
    task: str
    variant: str
    compute: Any
    size: int = 0
    """Training targets (edge) or words (structural): larger units start first."""


@dataclass
class _Split:
    rows: list[dict]
    labels: list[str]
    multilabel: bool
    single_span: bool
    metric: str


def model_paths(profile: Profile, models: Sequence[str] | None = None,
                progress: bool = True) -> dict[str, str]:
    """Encoder location of each model (default ``names.probe_models(profile)``): the profile's
    model, the random-encoder floor (``floor.random_encoder``), or ``get_finetuned(task,
    seed=seed)`` for a fine-tuned model's name (``"mnli"``, ``"mnli@1"``, ...)."""
    out: dict[str, str] = {}
    for name in probe_models(profile) if models is None else models:
        task, seed = split_name(name)
        if name == "pretrained":
            out[name] = profile.model
        elif name == RANDOM_MODEL:
            out[name] = str(random_encoder(profile))
        else:
            run = get_finetuned(task, profile, seed=seed or 0, progress=progress)
            out[name] = str(run.encoder_path)
    return out


def _edge_rows(ds: Any) -> list[dict]:
    """Plain ``{"tokens", "targets"}`` rows of an edge dataset (``data.edges.EDGE_FEATURES``:
    every label is already a list); Arrow converts the columns in bulk, far faster than
    iterating the dataset row by row."""
    return ds.select_columns(["tokens", "targets"]).to_list()


def train_limit(profile: Profile, task: str | None = None) -> int | None:
    """Sentences drawn from a task's training split: ``probe_train_size`` to train on plus
    ``probe_dev_size`` held out to stop early on; every one for the small corpora
    (``config.PROBE_ALL_TRAIN_TASKS``) and when ``probe_train_size`` is ``None``."""
    if profile.probe_train_size is None or task in PROBE_ALL_TRAIN_TASKS:
        return None
    return profile.probe_train_size + profile.probe_dev_size


def split_dev(rows: list, dev_size: int) -> tuple[list, list]:
    """(train, dev): the last ``dev_size`` rows of a sample are the development split (at most
    a fifth of the rows, so a small corpus keeps most of them to train on)."""
    n_dev = min(dev_size, len(rows) // 5)
    return rows[: len(rows) - n_dev], rows[len(rows) - n_dev:]


def train_indices(tokens: Sequence[Sequence[str]], limit: int | None) -> list[int]:
    """Positions of the first ``limit`` sentences in ``data.sample.hash_order`` (all of them
    when ``None``)."""
    order = hash_order(tokens)
    return order if limit is None else order[:limit]


def eval_indices(tokens: Sequence[Sequence[str]], counts: Sequence[int],
                 sentences: int | None, targets: int | None = None) -> list[int]:
    """Positions of the shortest prefix in ``hash_order`` with at least ``sentences``
    sentences and at least ``targets`` targets (``counts[i]`` of sentence ``i``); every
    sentence, in corpus order, when ``sentences`` is ``None``."""
    if sentences is None:
        return list(range(len(tokens)))
    out, n = [], 0
    for i in hash_order(tokens):
        if len(out) >= sentences and n >= (targets or 0):
            break
        out.append(i)
        n += counts[i]
    return out


def take_train(rows: list[dict], limit: int | None) -> list[dict]:
    """The first ``limit`` rows in ``data.sample.hash_order`` (all of them when ``None``): the
    same sentences for every task of a corpus, so their features are extracted once."""
    return [rows[i] for i in train_indices([r["tokens"] for r in rows], limit)]


def take_eval(rows: list[dict], sentences: int | None, targets: int | None = None,
              count=lambda r: len(r["targets"])) -> list[dict]:
    """The shortest prefix of ``rows`` in ``hash_order`` with at least ``sentences`` rows and
    at least ``targets`` targets (``count`` of each row); every row when ``sentences`` is
    ``None``."""
    return [rows[i] for i in eval_indices([r["tokens"] for r in rows],
                                          [count(r) for r in rows], sentences, targets)]


def load_edge_splits(profile: Profile, tasks: Sequence[str] = EDGE_TASKS,
                     skipped: dict[str, str] | None = None) -> dict[str, dict[str, _Split]]:
    """``{task: {"train": ..., "dev": ..., "eval": ...}}`` from
    ``bertdrift.data.edges.build_edge_task``: ``train`` and ``dev`` (held out, ``split_dev``)
    from ``take_train`` of the training split; ``eval`` from ``take_eval`` of the source's dev
    split (test where it has none): at least ``probe_eval_size`` sentences and
    ``probe_eval_targets`` targets. With ``skipped`` (a dict), a task whose corpus cannot be
    had (``MissingDataError``) is recorded there with the reason and left out instead of
    stopping the run."""
    import pyarrow.compute as pc

    from bertdrift.data.edges import build_edge_task

    out: dict[str, dict[str, _Split]] = {}
    for name in tasks:
        splits = {}
        for role in ("train", "eval"):
            try:
                task = build_edge_task(name, role, data_dir=profile.data_path, limit=None,
                                       seed=0)
            except MissingDataError as exc:
                if skipped is None:
                    raise
                skipped[name] = str(exc)
                break
            if len(task.data) < (5 if role == "train" else 1):
                raise DataError(f"edge task {name!r} has too few {role} examples; check the "
                                "data directory (BERTDRIFT_DATA)")
            # choose the sentences on the token column alone, then convert only those rows
            table = task.data.with_format("arrow")
            tokens = table["tokens"].to_pylist()
            meta = (list(task.labels), task.multilabel, task.single_span, task.metric)
            if role == "train":
                keep = train_indices(tokens, train_limit(profile, name))
                tr, dev = split_dev(_edge_rows(task.data.select(keep)),
                                    profile.probe_dev_size)
                splits["train"], splits["dev"] = _Split(tr, *meta), _Split(dev, *meta)
            else:
                counts = pc.list_value_length(table["targets"]).to_pylist()
                keep = eval_indices(tokens, counts, profile.probe_eval_size,
                                    profile.probe_eval_targets)
                splits[role] = _Split(_edge_rows(task.data.select(keep)), *meta)
        if name not in (skipped or {}):
            out[name] = splits
    return out


def load_tree_splits(profile: Profile) -> dict[str, list[dict]]:
    """UD EWT trees, in the same ``hash_order`` as the pos/deps edge tasks, so that the
    structural probes reuse their sentences (and features); ``dev`` held out as for them."""
    from bertdrift.data import load_ud

    def rows(split: str) -> list[dict]:
        return [{"tokens": list(r["tokens"]), "head": list(r["head"]), "upos": list(r["upos"])}
                for r in load_ud(split, data_dir=profile.data_path)]

    train, dev = split_dev(take_train(rows("train"), train_limit(profile)),
                           profile.probe_dev_size)
    ev = take_eval(rows("dev"), profile.probe_eval_size, profile.probe_eval_targets,
                   count=lambda r: len(r["tokens"]))
    return {"train": train, "dev": dev, "eval": ev}


class Corpus:
    """Unique sentences across every probe, and their positions in one feature set."""

    def __init__(self) -> None:
        self.sentences: list[list[str]] = []
        self.index: dict[tuple[str, ...], int] = {}

    def add(self, tokens: Sequence[str]) -> int:
        key = tuple(tokens)
        if key not in self.index:
            self.index[key] = len(self.sentences)
            self.sentences.append(list(tokens))
        return self.index[key]


def compact_rows(array: np.ndarray, offsets: np.ndarray, sents: list[int]
                 ) -> tuple[torch.Tensor, list[int]]:
    """Rows of ``sents`` (each once) as a float16 tensor, and each sentence's start in it."""
    unique = sorted(set(sents))
    rows = np.concatenate([np.arange(offsets[s], offsets[s + 1]) for s in unique])
    starts_u = np.concatenate([[0], np.cumsum([offsets[s + 1] - offsets[s] for s in unique])])
    where = {s: int(starts_u[k]) for k, s in enumerate(unique)}
    return torch.from_numpy(np.ascontiguousarray(array[rows])), [where[s] for s in sents]


def _edge_unit(array: np.ndarray, offsets: np.ndarray, *, ids: dict[str, list[int]],
               rows: tuple[list[dict], list[dict], list[dict]], labels: Sequence[str],
               multilabel: bool, single_span: bool, cfg: EdgeProbeConfig, seeds: Sequence[int],
               progress: bool, device: str = "cpu", max_steps: int | None = None) -> dict:
    feats, starts = compact_rows(array, offsets, ids["train"] + ids["dev"] + ids["eval"])
    sizes = (len(ids["train"]), len(ids["dev"]))
    n_train, n_dev = sizes
    enc = dict(multilabel=multilabel, single_span=single_span)
    tr = encode_targets(rows[0], labels, starts[:n_train], **enc)
    dev = encode_targets(rows[1], labels, starts[n_train: n_train + n_dev], **enc)
    ev = encode_targets(rows[2], labels, starts[n_train + n_dev:], **enc)
    res = train_edge_probes_seeds(feats, tr, {"eval": ev}, cfg, seeds=seeds, progress=progress,
                                  device=device, dev=dev, max_steps=max_steps)
    return {"metric": cfg.metric, "n_train": len(tr), "n_dev": len(dev), "n_eval": len(ev),
            "n_train_sents": len(rows[0]), "n_dev_sents": len(rows[1]),
            "n_eval_sents": len(rows[2]), "seeds": [
        {"seed": sd, "scores": r.scores["eval"], "tenney": r.tenney["eval"],
         "metric": cfg.metric, "epochs_run": r.epochs_run, "best_epoch": r.best_epoch,
         "steps": r.steps, "threshold": r.threshold, "extra": r.extra.get("eval", {}),
         "counts": {k: v.tolist() for k, v in r.counts["eval"].items()},
         "mix_weights": None if r.mix_weights is None else r.mix_weights.tolist()}
        for sd, r in res.items()]}


def edge_baselines(split: dict[str, _Split], positive: str | None = None
                   ) -> dict[str, dict[str, np.ndarray]]:
    """The trivial predictors of ``stats.constant_predictions`` (fitted on the training
    targets) as per-sentence counts on the evaluation targets, in the task metric and in
    Tenney's micro-F1."""
    tr, ev = split["train"], split["eval"]
    enc = dict(multilabel=tr.multilabel, single_span=tr.single_span)
    train = encode_targets(tr.rows, tr.labels, [0] * len(tr.rows), **enc)
    data = encode_targets(ev.rows, ev.labels, [0] * len(ev.rows), **enc)
    gold = data.labels > 0.5
    kind = task_kind(tr.metric, len(tr.labels), tr.multilabel)
    pos = tr.labels.index(positive) if positive in tr.labels else None
    out = {}
    for name, row in constant_predictions(train.labels, tr.multilabel).items():
        pred = np.broadcast_to(row, gold.shape)
        out[name] = {"task": sentence_counts(pred, gold, data.sent, len(ev.rows), kind, pos),
                     "tenney": sentence_counts(pred, gold, data.sent, len(ev.rows), "prf")}
    return out


def task_kind(metric: str, n_labels: int, multilabel: bool) -> str:
    """The per-sentence counts behind a task's metric (binary counts for a two-label F1)."""
    if metric == "f1" and n_labels == 2 and not multilabel:
        return "binary"
    return count_kind(metric)


def run_probing(
    profile: Profile,
    *,
    models: Sequence[str] | dict[str, str] | None = None,
    tasks: Sequence[str] = EDGE_TASKS,
    structural: Sequence[str] = STRUCTURAL,
    control: Sequence[str] = CONTROL_TASKS,
    progress: bool = True,
) -> ProbingResults:
    """Run (or read from the cache) every probe on every model (default
    ``names.probe_models(profile)``: the floor, the pre-trained model and every fine-tuning seed)
    for every probe seed, and the baselines on the same evaluation sentences."""
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    paths = dict(models) if isinstance(models, dict) else model_paths(profile, models, progress)
    times["models"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    skipped: dict[str, str] = {}
    edge = load_edge_splits(profile, tasks, skipped) if tasks else {}
    trees: dict[str, list[dict]] = {}
    if structural:
        try:
            trees = load_tree_splits(profile)
        except MissingDataError as exc:
            skipped["structural"] = str(exc)
    times["data"] = time.perf_counter() - t0
    corpus = Corpus()
    roles = ("train", "dev", "eval")
    edge_ids = {t: {r: [corpus.add(x["tokens"]) for x in sp[r].rows] for r in roles}
                for t, sp in edge.items()}
    tree_ids = {r: [corpus.add(x["tokens"]) for x in rows] for r, rows in trees.items()}
    ecfg = EdgeProbeConfig(proj_dim=profile.probe_hidden, hidden=profile.probe_hidden,
                           epochs=profile.probe_epochs, batch_size=profile.probe_batch_size,
                           lr=profile.probe_lr, patience=profile.probe_patience)
    scfg = StructuralConfig(rank=profile.structural_rank, epochs=profile.probe_epochs,
                            batch_size=profile.probe_batch_size, lr=profile.probe_lr,
                            patience=profile.probe_patience)
    units = results_dir(profile.cache_path, "probing") / "units"
    device = resolve_device(profile.device)  # probes train where the model ran
    tables: dict[str, list[dict]] = {"edge": [], "mix": [], "control": [], "structural": [],
                                     "budget": [], "extra": []}
    bound = [] if profile.max_steps is None else [profile.max_steps]  # in keys when bounded
    out = ProbingResults(*(pd.DataFrame() for _ in range(4)), timings=times, skipped=skipped)
    out.baselines = {t: edge_baselines(sp, POSITIVE_LABEL.get(t)) for t, sp in edge.items()}
    out.metrics = {t: sp["train"].metric for t, sp in edge.items()}
    tree_data = {}
    if trees:
        tree_data = {r: trees_from_ud(trees[r], [0] * len(trees[r])) for r in roles}
        out.tree_baselines = {k: sentence_stats(k, baseline_predictions(k, tree_data["eval"]),
                                                tree_data["eval"]) for k in structural}
    times["features"] = times["edge"] = times["control"] = times["structural"] = 0.0
    for model_name, path in paths.items():
        # every unit's key: the model's identity and feature settings, what it probes (the
        # rows themselves), how, and its seeds; not the other tasks' sentences, so a run with
        # fewer corpora reuses these units
        ident = features_identity(path, profile)
        units_of: list[_Unit] = []
        for task, splits in edge.items():
            spec = splits["train"]
            dist = label_distribution(spec.rows) if task in control else None
            variants = [("task", tuple(splits[r].rows for r in roles))]
            if dist is not None:  # one control assignment, seeded by the first probe seed
                cseed = profile.probe_seeds[0]
                variants.append(("control", tuple(control_rows(splits[r].rows, dist, cseed)
                                                  for r in roles)))
            for variant, rows in variants:
                # control tasks train with the first probe seed only (selectivity is read per
                # layer against that seed's task probe; three seeds would double the cost)
                seeds = profile.probe_seeds if variant == "task" else profile.probe_seeds[:1]
                is_task = variant == "task"
                cfg = replace(ecfg, metric=spec.metric if is_task else "accuracy",
                              positive=POSITIVE_LABEL.get(task) if is_task else None)
                key = stable_hash(ident, task, variant, rows, asdict(cfg), seeds,
                                  EDGE_PROBE_VERSION, *bound)
                units_of.append(_Unit(
                    units / f"{model_name}-{task}-{variant}-{key}.json",
                    "edge" if is_task else "control", task, variant, partial(
                        _edge_unit, ids=edge_ids[task], rows=rows,
                        labels=spec.labels if is_task else sorted(dist or {}),
                        multilabel=spec.multilabel and is_task, single_span=spec.single_span,
                        cfg=cfg, seeds=seeds, progress=progress, device=device,
                        max_steps=profile.max_steps),
                    sum(len(r["targets"]) for r in rows[0])))
        for kind in structural if trees else ():
            key = stable_hash(ident, kind, [trees[r] for r in roles], asdict(scfg),
                              profile.probe_seeds, EDGE_PROBE_VERSION, *bound)
            units_of.append(_Unit(
                units / f"{model_name}-structural-{kind}-{key}.json", "structural", kind, "",
                partial(_structural_unit, ids=tree_ids, trees=trees, kind=kind, cfg=scfg,
                        seeds=profile.probe_seeds, progress=progress, device=device,
                        max_steps=profile.max_steps),
                sum(len(t["tokens"]) for t in trees["train"])))
        values = {u.path: read_stored(u.path) for u in units_of}  # a damaged one: MISSING
        missing = [u for u in units_of if values[u.path] is MISSING]
        if missing:  # features only when a unit must be trained, and only while it is
            t0 = time.perf_counter()
            with transient_features(path, corpus.sentences, profile, progress=progress,
                                    desc=f"features {model_name}") as fs:
                times["features"] += time.perf_counter() - t0
                t0 = time.perf_counter()
                for unit, seconds, value in train_units(missing, fs.array, fs.offsets, device):
                    times[unit.timer] += seconds
                    values[unit.path] = value
                times["probes_wall"] = times.get("probes_wall", 0.0) + time.perf_counter() - t0
        for unit in units_of:
            stored = values[unit.path]
            if unit.timer == "structural":
                _collect_structural(tables, out, model_name, unit.task, stored)
                continue
            for seed_unit in stored["seeds"]:
                _collect(tables, model_name, unit.task, unit.variant, seed_unit, stored)
            if unit.variant == "task":
                out.counts[(model_name, unit.task)] = {
                    k: np.stack([np.asarray(su["counts"][k]) for su in stored["seeds"]])
                    for k in ("task", "tenney", "top")}
    out.edge, out.mix, out.structural, out.budget, out.extra = (
        pd.DataFrame(tables[k]) for k in ("edge", "mix", "structural", "budget", "extra"))
    out.control = _selectivity(out.edge, pd.DataFrame(tables["control"]))
    save_results(out, results_dir(profile.cache_path, "probing"))
    return out


def train_units(units: Sequence[_Unit], array: np.ndarray, offsets: np.ndarray,
                device: str) -> list[tuple[_Unit, float, dict]]:
    """Train and store ``units`` (``cached_json``); returns each with its seconds and its
    result. On a CPU
    with several threads they train side by side, one intra-op thread each, largest first:
    a probe's small matrix products keep two threads only partly busy, two probes keep both
    busy (``benchmarks/probing.py --workers`` measures it). Each unit's arithmetic does not
    depend on what runs beside it, so the results equal one-at-a-time training."""
    import torch

    def one(unit: _Unit) -> tuple[_Unit, float, dict]:
        t0 = time.perf_counter()
        value = cached_json(unit.path, partial(unit.compute, array, offsets))
        return unit, time.perf_counter() - t0, value

    units = sorted(units, key=lambda u: -u.size)
    workers = min(torch.get_num_threads(), len(units)) if device == "cpu" else 1
    if workers <= 1:
        return [one(u) for u in units]
    from concurrent.futures import ThreadPoolExecutor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(one, units))
    finally:
        torch.set_num_threads(threads)


def _structural_unit(array: np.ndarray, offsets: np.ndarray, *, ids: dict[str, list[int]],
                     trees: dict[str, list[dict]], kind: str, cfg: StructuralConfig,
                     seeds: Sequence[int], progress: bool, device: str,
                     max_steps: int | None = None) -> dict:
    roles = ("train", "dev", "eval")
    rids = [ids[r] for r in roles]
    feats, starts = compact_rows(array, offsets, rids[0] + rids[1] + rids[2])
    bounds = np.cumsum([0] + [len(r) for r in rids])
    tr, dv, ev = (trees_from_ud(trees[r], starts[bounds[k]: bounds[k + 1]])
                  for k, r in enumerate(roles))
    res = train_structural_probes_seeds(feats, tr, ev, kind, cfg, seeds=seeds,
                                        progress=progress, device=device, stop_on=dv,
                                        with_stats=True, max_steps=max_steps)
    return {"n_train_sents": len(tr), "n_dev_sents": len(dv), "n_eval_sents": len(ev),
            "seeds": {str(sd): {str(k): {m: (v.tolist() if isinstance(v, np.ndarray) else v)
                                         for m, v in metrics.items()}
                                for k, metrics in per_layer.items()}
                      for sd, per_layer in res.items()}}


def _collect_structural(tables: dict[str, list[dict]], out: ProbingResults, model: str,
                        kind: str, unit: dict) -> None:
    stats: dict[int, list[np.ndarray]] = {}
    for seed, per_layer in unit["seeds"].items():
        for layer, metrics in per_layer.items():
            for metric in STRUCTURAL_METRICS[kind]:
                tables["structural"].append(dict(model=model, probe=kind, seed=int(seed),
                                                 layer=int(layer), metric=metric,
                                                 value=metrics[metric]))
            stats.setdefault(int(layer), []).append(np.asarray(metrics["stats"]))
        first = next(iter(per_layer.values()))
        tables["budget"].append(dict(
            model=model, task=kind, seed=int(seed), train_sentences=unit["n_train_sents"],
            dev_sentences=unit["n_dev_sents"], eval_sentences=unit["n_eval_sents"],
            epochs_run=first["epochs_run"]))
    out.tree_stats[(model, kind)] = {k: np.stack(v) for k, v in stats.items()}


def _collect(tables: dict[str, list[dict]], model: str, task: str, variant: str,
             seed_unit: dict, unit: dict) -> None:
    seed = seed_unit["seed"]
    if variant != "task":
        for layer, value in seed_unit["scores"].items():
            tables["control"].append(dict(model=model, task=task, seed=seed, layer=layer,
                                          control_score=value))
        return
    for layer, value in seed_unit["scores"].items():
        tables["edge"].append(dict(model=model, task=task, seed=seed, layer=layer, score=value,
                                   metric=seed_unit["metric"],
                                   tenney_f1=seed_unit["tenney"][layer]))
    for layer, w in enumerate(seed_unit["mix_weights"] or []):
        tables["mix"].append(dict(model=model, task=task, seed=seed, layer=layer, weight=w))
    tables["budget"].append(dict(
        model=model, task=task, seed=seed, train_sentences=unit["n_train_sents"],
        train_targets=unit["n_train"], dev_sentences=unit["n_dev_sents"],
        eval_sentences=unit["n_eval_sents"], eval_targets=unit["n_eval"],
        epochs_run=seed_unit["epochs_run"], best_epoch=seed_unit["best_epoch"],
        steps=seed_unit["steps"]))
    if seed_unit["extra"]:
        tables["extra"].append(dict(model=model, task=task, seed=seed, **seed_unit["extra"]))


def _selectivity(edge: pd.DataFrame, control: pd.DataFrame) -> pd.DataFrame:
    if control.empty:
        return control
    merged = control.merge(edge[["model", "task", "seed", "layer", "score"]],
                           on=["model", "task", "seed", "layer"], how="left")
    merged = merged.rename(columns={"score": "task_score"})
    merged["selectivity"] = merged["task_score"] - merged["control_score"]
    return merged


def save_results(results: ProbingResults, folder: Path) -> None:
    for name in ("edge", "mix", "control", "structural", "budget", "extra"):
        with atomic_path(folder / f"{name}.csv") as tmp:
            getattr(results, name).to_csv(tmp, index=False)
    write_json(folder / "timings.json", results.timings)
    write_json(folder / "skipped.json", results.skipped)


HOW_TO_ADD = {
    "srl": ("ewt-srl/ewt_propbank_srl.{train,dev,test}.jsonl (PropBank SRL on EWT words, "
            "from the bertdrift data mirror)", ""),
    "spr2": ("spr2/ (SPR2 from decomp.io with its derived sentences file, from the bertdrift "
             "data mirror)", ""),
    "rel": ("semeval2010-task8/{TRAIN_FILE,TEST_FILE_FULL}.TXT",
            "; online, the chapter reads the Hugging Face Hub copy "
            "(SemEvalWorkshop/sem_eval_2010_task_8) instead"),
    "structural": ("ud-ewt/en_ewt-ud-{train,dev}.conllu (UD English EWT v2.16)",
                   "; online, they are downloaded from the UD repository"),
}
"""Per probe: the files that add it to the data directory, and another way, if any."""


def skipped_note(skipped: dict[str, str]) -> str:
    """A Markdown note naming the probes left out, why, and how to add them ('' if none)."""
    if not skipped:
        return ""
    lines = ["**Skipped probes.** Their corpora could not be had here, so this run leaves them "
             "out of every table and figure below (and the claims page says so):", ""]
    for name, reason in skipped.items():
        why = reason.split(". Set ")[0].strip().rstrip(".")
        files, other = HOW_TO_ADD.get(name, ("the corpus (see the README)", ""))
        lines.append(f"- `{name}`: {why}. To add it, put {files} in the data directory "
                     f"(`BERTDRIFT_DATA`) and re-run this chapter{other}.")
    return "\n".join(lines)
