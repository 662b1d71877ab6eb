"""The probing chapter's experiment: every probe, every model, every probe seed, cached.

``run_probing(profile)`` probes the pre-trained encoder and each fine-tuned one (MNLI, SQuAD,
dependency parsing) with edge probes (per layer + scalar mix), control tasks (pos, deps) and
structural probes (distance, depth), and returns tidy tables. Features are extracted once per
model for the union of all sentences the probes use. All probe seeds of a probe train in the same
pass as extra heads (each with its own initialisation and dropout masks; batch order from the
first seed). Every (model, probe) unit is cached as JSON under
``<cache>/results/probing/units/``; the tables are written as CSV beside it.
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
    MODELS,
    STRUCTURAL_PROBES,
    Profile,
    resolve_device,
)
from bertdrift.data.edges import POSITIVE_LABEL
from bertdrift.data.sample import subsample
from bertdrift.errors import DataError, MissingDataError
from bertdrift.features import model_features
from bertdrift.finetune import get_finetuned
from bertdrift.io import atomic_path, cached_json, results_dir, stable_hash, write_json
from bertdrift.probing.control import control_rows, label_distribution
from bertdrift.probing.edge import (
    EDGE_PROBE_VERSION,
    EdgeProbeConfig,
    encode_targets,
    train_edge_probes_seeds,
)
from bertdrift.probing.structural import (
    StructuralConfig,
    train_structural_probes_seeds,
    trees_from_ud,
)

STRUCTURAL = STRUCTURAL_PROBES


@dataclass
class ProbingResults:
    """Tidy tables: ``edge`` (model, task, seed, layer, score, metric), ``mix`` (model, task,
    seed, layer, weight), ``control`` (model, task, seed, layer, task_score, control_score,
    selectivity), ``structural`` (model, probe, seed, layer, metric, value), ``timings``."""

    edge: pd.DataFrame
    mix: pd.DataFrame
    control: pd.DataFrame
    structural: pd.DataFrame
    timings: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)
    """Probes left out because their corpus cannot be had here: name -> reason."""


@dataclass
class _Split:
    rows: list[dict]
    labels: list[str]
    multilabel: bool
    single_span: bool
    metric: str


def model_paths(profile: Profile, models: Sequence[str] = MODELS,
                progress: bool = True) -> dict[str, str]:
    """Encoder location of each model: the profile's model, or ``get_finetuned(task)``."""
    out: dict[str, str] = {}
    for name in models:
        if name == "pretrained":
            out[name] = profile.model
        else:
            out[name] = str(get_finetuned(name, profile, progress=progress).encoder_path)
    return out


def _edge_rows(ds: Any) -> list[dict]:
    rows = []
    for r in ds:
        targets = [{"span1": list(t["span1"]), "span2": list(t["span2"]),
                    "label": list(t["label"]) if isinstance(t["label"], (list, tuple))
                    else [t["label"]]} for t in r["targets"]]
        rows.append({"tokens": list(r["tokens"]), "targets": targets})
    return rows


def load_edge_splits(profile: Profile, tasks: Sequence[str] = EDGE_TASKS,
                     skipped: dict[str, str] | None = None) -> dict[str, dict[str, _Split]]:
    """``{task: {"train": ..., "eval": ...}}`` from ``bertdrift.data.edges.build_edge_task``
    (``eval`` is the dev split, or test where a source has no dev split). With ``skipped`` (a
    dict), a task whose corpus cannot be had (``MissingDataError``) is recorded there with the
    reason and left out instead of stopping the run."""
    from bertdrift.data.edges import build_edge_task

    out: dict[str, dict[str, _Split]] = {}
    for name in tasks:
        splits = {}
        for role, limit in (("train", profile.probe_train_size),
                            ("eval", profile.probe_eval_size)):
            try:
                task = build_edge_task(name, role, data_dir=profile.data_path, limit=limit,
                                       seed=0)
            except MissingDataError as exc:
                if skipped is None:
                    raise
                skipped[name] = str(exc)
                break
            if len(task.data) == 0:
                raise DataError(f"edge task {name!r} has no {role} examples; check the data "
                                "directory (BERTDRIFT_DATA)")
            splits[role] = _Split(_edge_rows(task.data), list(task.labels), task.multilabel,
                                  task.single_span, task.metric)
        if name not in (skipped or {}):
            out[name] = splits
    return out


def load_tree_splits(profile: Profile) -> dict[str, list[dict]]:
    """UD EWT trees, subsampled with the same seed as the pos/deps edge tasks, so that the
    structural probes reuse their sentences (and features)."""
    from bertdrift.data import load_ud

    def rows(split: str, limit: int | None) -> list[dict]:
        ds = subsample(load_ud(split, data_dir=profile.data_path), limit, 0)
        return [{"tokens": list(r["tokens"]), "head": list(r["head"]), "upos": list(r["upos"])}
                for r in ds]

    return {"train": rows("train", profile.probe_train_size),
            "eval": rows("dev", profile.probe_eval_size)}


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


def _edge_unit(feats: torch.Tensor, starts: list[int], n_train: int, tr_rows: list[dict],
               ev_rows: list[dict], labels: Sequence[str], multilabel: bool, single_span: bool,
               cfg: EdgeProbeConfig, seeds: Sequence[int], progress: bool,
               device: str = "cpu", max_steps: int | None = None) -> dict:
    enc = dict(multilabel=multilabel, single_span=single_span)
    tr = encode_targets(tr_rows, labels, starts[:n_train], **enc)
    ev = encode_targets(ev_rows, labels, starts[n_train:], **enc)
    res = train_edge_probes_seeds(feats, tr, {"eval": ev}, cfg, seeds=seeds, progress=progress,
                                  device=device, max_steps=max_steps)
    return {"metric": cfg.metric, "n_train": len(tr), "n_eval": len(ev), "seeds": [
        {"seed": sd, "scores": r.scores["eval"], "metric": cfg.metric,
         "mix_weights": None if r.mix_weights is None else r.mix_weights.tolist()}
        for sd, r in res.items()]}


def run_probing(
    profile: Profile,
    *,
    models: Sequence[str] | dict[str, str] = MODELS,
    tasks: Sequence[str] = EDGE_TASKS,
    structural: Sequence[str] = STRUCTURAL,
    control: Sequence[str] = CONTROL_TASKS,
    progress: bool = True,
) -> ProbingResults:
    """Run (or read from the cache) every probe on every model for every probe seed."""
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
    edge_ids = {t: {r: [corpus.add(x["tokens"]) for x in s.rows] for r, s in sp.items()}
                for t, sp in edge.items()}
    tree_ids = {r: [corpus.add(x["tokens"]) for x in rows] for r, rows in trees.items()}
    ecfg = EdgeProbeConfig(proj_dim=profile.probe_hidden, hidden=profile.probe_hidden,
                           epochs=profile.probe_epochs, batch_size=profile.probe_batch_size,
                           lr=profile.probe_lr)
    scfg = StructuralConfig(rank=profile.structural_rank, epochs=profile.probe_epochs,
                            batch_size=profile.probe_batch_size, lr=profile.probe_lr)
    units = results_dir(profile.cache_path, "probing") / "units"
    bound = [] if profile.max_steps is None else [profile.max_steps]  # in keys when bounded
    device = resolve_device(profile.device)  # probes train where the model ran
    tables: dict[str, list[dict]] = {"edge": [], "mix": [], "control": [], "structural": []}
    times["features"] = times["edge"] = times["control"] = times["structural"] = 0.0
    for model_name, path in paths.items():
        t0 = time.perf_counter()
        fs = model_features(path, corpus.sentences, profile, progress=progress,
                            desc=f"features {model_name}")
        array, offsets = fs.array, fs.offsets
        times["features"] += time.perf_counter() - t0
        fkey = fs.path.name
        for task, splits in edge.items():
            feats, starts = compact_rows(array, offsets, edge_ids[task]["train"]
                                     + edge_ids[task]["eval"])
            n_train = len(edge_ids[task]["train"])
            spec = splits["train"]
            dist = label_distribution(spec.rows) if task in control else None
            variants = [("task", spec.rows, splits["eval"].rows)]
            if dist is not None:  # one control assignment, seeded by the first probe seed
                cseed = profile.probe_seeds[0]
                variants.append(("control", control_rows(spec.rows, dist, cseed),
                                 control_rows(splits["eval"].rows, dist, cseed)))
            for variant, tr_rows, ev_rows in variants:
                key = stable_hash(fkey, task, variant, asdict(ecfg), profile.probe_seeds,
                                  profile.probe_train_size, profile.probe_eval_size,
                                  EDGE_PROBE_VERSION, *bound)
                path = units / f"{model_name}-{task}-{variant}-{key}.json"
                t0 = time.perf_counter()
                is_task = variant == "task"
                unit = cached_json(path, partial(
                    _edge_unit, feats, starts, n_train, tr_rows, ev_rows,
                    spec.labels if is_task else sorted(dist or {}),
                    spec.multilabel and is_task, spec.single_span,
                    replace(ecfg, metric=spec.metric if is_task else "accuracy",
                            positive=POSITIVE_LABEL.get(task) if is_task else None),
                    profile.probe_seeds, progress, device, profile.max_steps))
                times["edge" if variant == "task" else "control"] += time.perf_counter() - t0
                for seed_unit in unit["seeds"]:
                    _collect(tables, model_name, task, variant, seed_unit["seed"], seed_unit)
        if trees:
            feats, starts = compact_rows(array, offsets, tree_ids["train"] + tree_ids["eval"])
            n_train = len(tree_ids["train"])
            tr = trees_from_ud(trees["train"], starts[:n_train])
            ev = trees_from_ud(trees["eval"], starts[n_train:])
            for kind in structural:
                key = stable_hash(fkey, kind, asdict(scfg), profile.probe_seeds,
                                  profile.probe_train_size, profile.probe_eval_size, *bound)
                path = units / f"{model_name}-structural-{kind}-{key}.json"
                t0 = time.perf_counter()
                unit = cached_json(path, partial(_structural_unit, feats, tr, ev, kind, scfg,
                                                 profile.probe_seeds, progress, device,
                                                 profile.max_steps))
                times["structural"] += time.perf_counter() - t0
                for seed, per_layer in unit.items():
                    for layer, metrics in per_layer.items():
                        for metric, value in metrics.items():
                            tables["structural"].append(dict(
                                model=model_name, probe=kind, seed=int(seed), layer=int(layer),
                                metric=metric, value=value))
    results = ProbingResults(*(pd.DataFrame(tables[k]) for k in
                               ("edge", "mix", "control", "structural")), timings=times,
                             skipped=skipped)
    results.control = _selectivity(results.edge, pd.DataFrame(tables["control"]))
    save_results(results, results_dir(profile.cache_path, "probing"))
    return results


def _structural_unit(feats: torch.Tensor, tr: Any, ev: Any, kind: str, cfg: StructuralConfig,
                     seeds: Sequence[int], progress: bool, device: str,
                     max_steps: int | None = None) -> dict:
    res = train_structural_probes_seeds(feats, tr, ev, kind, cfg, seeds=seeds,
                                        progress=progress, device=device, max_steps=max_steps)
    return {str(sd): {str(k): v for k, v in m.items()} for sd, m in res.items()}


def _collect(tables: dict[str, list[dict]], model: str, task: str, variant: str, seed: int,
             unit: dict) -> None:
    if variant != "task":
        for layer, value in unit["scores"].items():
            tables["control"].append(dict(model=model, task=task, seed=seed, layer=layer,
                                          control_score=value))
        return
    for layer, value in unit["scores"].items():
        tables["edge"].append(dict(model=model, task=task, seed=seed, layer=layer, score=value,
                                   metric=unit["metric"]))
    for layer, w in enumerate(unit["mix_weights"] or []):
        tables["mix"].append(dict(model=model, task=task, seed=seed, layer=layer, weight=w))


def _selectivity(edge: pd.DataFrame, control: pd.DataFrame) -> pd.DataFrame:
    if control.empty:
        return control
    merged = control.merge(edge[["model", "task", "seed", "layer", "score"]],
                           on=["model", "task", "seed", "layer"], how="left")
    merged = merged.rename(columns={"score": "task_score"})
    merged["selectivity"] = merged["task_score"] - merged["control_score"]
    return merged


def save_results(results: ProbingResults, folder: Path) -> None:
    for name in ("edge", "mix", "control", "structural"):
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
