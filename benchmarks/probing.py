"""Benchmark: every layer's edge probe in one pass vs one probe per layer trained in sequence.

Same features (the packaged model on real edge-task data), same epochs, same batch order and
same per-layer initialisation, in one process. Prints, per edge task and for all of them
together, the wall-clock ratio (best of ``--repeat`` runs of each side) and the largest score
difference. The defaults are chapter 3's data sizes in the ``tiny`` profile (its training
sentences, every sentence of the small corpora, its evaluation sentences), on all nine tasks;
``--mix`` adds the scalar-mix probe to both sides, as the chapter trains it. Both sides train a
fixed ``--epochs`` without early stopping (a batched run stops on the heads' mean development
loss, a lone probe on its own, so stopping would make the two do different work). Usage::

    BERTDRIFT_DATA=/work/shared/data python benchmarks/probing.py --mix
    BERTDRIFT_DATA=/work/shared/data python benchmarks/probing.py --task deps --repeat 5

``--engines`` compares instead two probe *settings* as chapter 3 runs them (every layer, the
scalar mix, every probe seed in one pass, early stopping on the held-out sentences): today's
(``--batch-size``, ``--lr``) against ``--new-batch-size`` and ``--new-lr``, with the same tasks,
layers, seeds, epochs and patience. It prints each side's time, the ratio, and per task the
largest and the mean difference of the probe-seed mean score over the heads, beside the
probe-seed spread (the largest standard deviation over seeds of any head)::

    BERTDRIFT_DATA=/work/shared/data python benchmarks/probing.py --engines --train 1000

``--workers`` compares how chapter 3 trains a model's probes: today's engine one probe (task)
after another with every core's thread working on it, against ``probing.run.train_units``,
which trains them side by side, one thread each; every task, every layer, the scalar mix and
every probe seed, early stopping as in the chapter. It prints both times, their ratio and the
largest difference of any head's score (the arithmetic is the same, so it should be 0)::

    BERTDRIFT_DATA=/work/shared/data python benchmarks/probing.py --workers --train 1000
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

import bertdrift
from bertdrift.config import EDGE_TASKS
from bertdrift.data.edges import POSITIVE_LABEL
from bertdrift.features import model_features
from bertdrift.probing.edge import (
    EdgeProbeConfig,
    encode_targets,
    train_edge_probes,
    train_edge_probes_seeds,
)
from bertdrift.probing.run import Corpus, compact_rows, load_edge_splits


def measure(task: str, splits: dict, array: np.ndarray, offsets: np.ndarray, ids: list[int],
            args: argparse.Namespace) -> tuple[float, float, float]:
    """Best-of-``repeat`` seconds for the batched run and for the one-at-a-time runs, and the
    largest per-probe score difference (points, first seed), on one task; ``ids`` are its
    train then eval sentences' rows in the shared feature ``array``."""
    feats, starts = compact_rows(array, offsets, ids)
    spec = splits["train"]
    enc = dict(multilabel=spec.multilabel, single_span=spec.single_span)
    n = len(splits["train"].rows)
    train = encode_targets(spec.rows, spec.labels, starts[:n], **enc)
    dev = encode_targets(splits["eval"].rows, spec.labels, starts[n:], **enc)
    cfg = EdgeProbeConfig(proj_dim=args.hidden, hidden=args.hidden, epochs=args.epochs,
                          batch_size=args.batch_size, metric=spec.metric,
                          positive=POSITIVE_LABEL.get(task))
    layers = list(range(feats.shape[1]))
    seeds = [args.seed + i for i in range(args.seeds)]

    def batched() -> dict[str, float]:
        return train_edge_probes_seeds(feats, train, {"dev": dev}, cfg, layers=layers,
                                       mix=args.mix, seeds=seeds, progress=False,
                                       device=args.device)[seeds[0]].scores["dev"]

    def sequential() -> dict[str, float]:
        alone: dict[str, float] = {}
        runs = [([layer], False) for layer in layers] + ([([], True)] if args.mix else [])
        for sd in seeds:
            for run_layers, run_mix in runs:
                res = train_edge_probes(feats, train, {"dev": dev}, cfg, layers=run_layers,
                                        mix=run_mix, seed=sd, progress=False,
                                        device=args.device)
                if sd == seeds[0]:
                    alone.update(res.scores["dev"])
        return alone

    def best(fn: Callable[[], dict[str, float]]) -> tuple[dict[str, float], float]:
        times = []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
        return out, min(times)

    together, t_batched = best(batched)
    alone, t_sequential = best(sequential)
    diff = max(abs(100 * (together[k] - alone[k])) for k in alone)
    print(f"{task:>9} {len(train):>7} {len(seeds) * len(alone):>6} {t_batched:>9.3f} "
          f"{t_sequential:>9.3f} {t_sequential / t_batched:>7.2f}x {diff:>8.3f}", flush=True)
    return t_batched, t_sequential, diff


def engines(task: str, splits: dict, array: np.ndarray, offsets: np.ndarray, ids: list[int],
            n_dev: int, args: argparse.Namespace) -> tuple[float, float, float, float, float]:
    """Seconds of today's settings and of the new ones on one task (every head, every seed,
    early stopping), the largest and mean difference of seed-mean scores (points), and the
    largest probe-seed standard deviation of any head under today's settings (points)."""
    feats, starts = compact_rows(array, offsets, ids)
    spec = splits["train"]
    enc = dict(multilabel=spec.multilabel, single_span=spec.single_span)
    rows = spec.rows
    n_train = len(rows) - n_dev
    train = encode_targets(rows[:n_train], spec.labels, starts[:n_train], **enc)
    dev = encode_targets(rows[n_train:], spec.labels, starts[n_train:len(rows)], **enc)
    ev = encode_targets(splits["eval"].rows, spec.labels, starts[len(rows):], **enc)
    seeds = [args.seed + i for i in range(args.seeds)]

    def run(batch_size: int, lr: float) -> tuple[np.ndarray, float]:
        cfg = EdgeProbeConfig(proj_dim=args.hidden, hidden=args.hidden, epochs=args.epochs,
                              patience=args.patience, batch_size=batch_size, lr=lr,
                              metric=spec.metric, positive=POSITIVE_LABEL.get(task))
        t0 = time.perf_counter()
        res = train_edge_probes_seeds(feats, train, {"eval": ev}, cfg, seeds=seeds,
                                      progress=False, device=args.device, dev=dev)
        seconds = time.perf_counter() - t0
        keys = list(res[seeds[0]].scores["eval"])
        return np.array([[res[sd].scores["eval"][k] for k in keys] for sd in seeds]), seconds

    old, t_old = run(args.batch_size, args.lr)
    new, t_new = run(args.new_batch_size, args.new_lr)
    diff = 100 * (new.mean(0) - old.mean(0))
    spread = 100 * float(old.std(0, ddof=1).max()) if len(seeds) > 1 else float("nan")
    print(f"{task:>9} {len(train):>7} {t_old:>8.1f} {t_new:>8.1f} {t_old / t_new:>7.2f}x "
          f"{np.abs(diff).max():>8.2f} {diff.mean():>+8.2f} {spread:>7.2f}", flush=True)
    return t_old, t_new, float(np.abs(diff).max()), float(diff.mean()), spread


def main() -> None:
    tiny = bertdrift.get_profile("tiny")  # defaults: the probe settings chapter 3 runs with
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", action="append", choices=EDGE_TASKS,
                    help="edge task (repeatable; default: all nine, as chapter 3 runs them)")
    ap.add_argument("--train", type=int, default=tiny.probe_train_size,
                    help="training sentences")
    ap.add_argument("--eval", type=int, default=tiny.probe_eval_size,
                    help="evaluation sentences")
    ap.add_argument("--epochs", type=int, default=2,
                    help="fixed epochs on both sides (chapter 3 stops early, at most "
                         f"{tiny.probe_epochs})")
    ap.add_argument("--hidden", type=int, default=tiny.probe_hidden)
    ap.add_argument("--batch-size", type=int, default=tiny.probe_batch_size)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=len(tiny.probe_seeds),
                    help="probe seeds: the batched run trains N seeds x all layers in one pass "
                         "(as chapter 3 does) against N x layers separate runs")
    ap.add_argument("--mix", action="store_true",
                    help="also train the scalar-mix probe (one more head per seed in the batched "
                         "run, one more run per seed in sequence), as chapter 3 does")
    ap.add_argument("--repeat", type=int, default=1, help="time each side N times, keep the best")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where the probes train (cpu, cuda)")
    ap.add_argument("--engines", action="store_true",
                    help="compare today's probe settings with --new-batch-size/--new-lr, with "
                         "early stopping, as chapter 3 trains them")
    ap.add_argument("--lr", type=float, default=tiny.probe_lr)
    ap.add_argument("--new-batch-size", type=int, default=tiny.probe_batch_size)
    ap.add_argument("--new-lr", type=float, default=tiny.probe_lr)
    ap.add_argument("--patience", type=int, default=tiny.probe_patience)
    ap.add_argument("--dev", type=int, default=200,
                    help="held-out sentences (--engines, --workers)")
    ap.add_argument("--workers", action="store_true",
                    help="compare probes trained one after another with probes trained side "
                         "by side (probing.run.train_units)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tasks = args.task or list(EDGE_TASKS)
    if args.engines:
        return compare_engines(tasks, args)
    if args.workers:
        return compare_workers(tasks, args)
    print(f"{args.train} train / {args.eval} eval sentences, {args.epochs} epochs, hidden "
          f"{args.hidden}, batch {args.batch_size}, {args.seeds} seed(s), mix {args.mix}, "
          f"{args.threads} threads, probes on {args.device}; times are the best of "
          f"{args.repeat}")
    print(f"{'task':>9} {'targets':>7} {'probes':>6} {'one pass':>9} {'in turn':>9} "
          f"{'speed-up':>8} {'max diff':>8}")
    profile = bertdrift.get_profile("tiny", probe_train_size=args.train,
                                    probe_eval_size=args.eval)
    splits = load_edge_splits(profile, tasks)
    corpus = Corpus()  # every task's sentences, their features extracted once
    ids = {t: [corpus.add(r["tokens"]) for r in sp["train"].rows + sp["eval"].rows]
           for t, sp in splits.items()}
    fs = model_features(profile.model, corpus.sentences, profile, progress=False,
                        desc="features pretrained")
    rows = [measure(t, splits[t], fs.array, fs.offsets, ids[t], args) for t in tasks]
    t_b, t_s = sum(r[0] for r in rows), sum(r[1] for r in rows)
    print(f"{'all':>9} {'':>7} {'':>6} {t_b:>9.3f} {t_s:>9.3f} {t_s / t_b:>7.2f}x "
          f"{max(r[2] for r in rows):>8.3f}")
    print("speed-up: one probe per layer (and seed) trained in turn vs all in one pass; max "
          "diff: largest score difference of any probe, in points (target <= 0.5)")


ROLES = ("train", "dev", "eval")


def chapter_data(tasks: list[str], args: argparse.Namespace) -> tuple[dict, dict, Any]:
    """Chapter 3's splits of ``tasks`` at ``--train`` / ``--dev`` / ``--eval`` sentences, each
    role's rows in one feature set of the pre-trained model, and that set:
    ``(splits, ids[task][role], features)``."""
    profile = bertdrift.get_profile("tiny", probe_train_size=args.train,
                                    probe_dev_size=args.dev, probe_eval_size=args.eval)
    splits = load_edge_splits(profile, tasks)
    corpus = Corpus()
    ids = {t: {r: [corpus.add(x["tokens"]) for x in sp[r].rows] for r in ROLES}
           for t, sp in splits.items()}
    return splits, ids, model_features(profile.model, corpus.sentences, profile, progress=False)


def compare_engines(tasks: list[str], args: argparse.Namespace) -> None:
    splits, by_role, fs = chapter_data(tasks, args)
    ids, n_dev = {}, {}
    for t, sp in splits.items():  # train + dev rows (as one list), then eval
        sp["train"].rows = sp["train"].rows + sp["dev"].rows
        n_dev[t] = len(sp["dev"].rows)
        ids[t] = [i for r in ROLES for i in by_role[t][r]]
    print(f"{args.train} train + {args.dev} dev / {args.eval} eval sentences, at most "
          f"{args.epochs} epochs (patience {args.patience}), hidden {args.hidden}, {args.seeds} "
          f"probe seed(s), every layer + mix, {args.threads} threads; today: batch "
          f"{args.batch_size}, lr {args.lr:g}; new: batch {args.new_batch_size}, lr "
          f"{args.new_lr:g}")
    print(f"{'task':>9} {'targets':>7} {'today s':>8} {'new s':>8} {'speed-up':>8} "
          f"{'max diff':>8} {'mean':>8} {'seed sd':>7}")
    rows = [engines(t, splits[t], fs.array, fs.offsets, ids[t], n_dev[t], args) for t in tasks]
    t_old, t_new = sum(r[0] for r in rows), sum(r[1] for r in rows)
    print(f"{'all':>9} {'':>7} {t_old:>8.1f} {t_new:>8.1f} {t_old / t_new:>7.2f}x "
          f"{max(r[2] for r in rows):>8.2f}")
    print("scores: the probe-seed mean of each head (layers 0..L and mix) in the task metric, "
          "in points; max diff / mean: new minus today over the heads; seed sd: today's "
          "largest probe-seed standard deviation of any head")


def compare_workers(tasks: list[str], args: argparse.Namespace) -> None:
    import tempfile
    from functools import partial
    from pathlib import Path

    from bertdrift.probing.run import _edge_unit, _Unit, train_units

    splits, ids, fs = chapter_data(tasks, args)
    seeds = [args.seed + i for i in range(args.seeds)]

    def units(folder: Path) -> list:
        out = []
        for t, sp in splits.items():
            spec = sp["train"]
            cfg = EdgeProbeConfig(proj_dim=args.hidden, hidden=args.hidden, epochs=args.epochs,
                                  patience=args.patience, batch_size=args.batch_size,
                                  lr=args.lr, metric=spec.metric, positive=POSITIVE_LABEL.get(t))
            rows = tuple(sp[r].rows for r in ROLES)
            out.append(_Unit(folder / f"{t}.json", "edge", t, "task", partial(
                _edge_unit, ids=ids[t], rows=rows, labels=spec.labels,
                multilabel=spec.multilabel, single_span=spec.single_span, cfg=cfg, seeds=seeds,
                progress=False, device=args.device), sum(len(r["targets"]) for r in rows[0])))
        return out

    def scores(folder: Path) -> dict[str, np.ndarray]:
        from bertdrift.io import read_json

        return {t: np.array([list(su["scores"].values()) for su in
                             read_json(folder / f"{t}.json")["seeds"]]) for t in splits}

    with tempfile.TemporaryDirectory() as tmp:
        one, two = Path(tmp, "one"), Path(tmp, "two")
        t0 = time.perf_counter()
        for unit in units(one):  # today: one after another, every thread on each
            train_units([unit], fs.array, fs.offsets, args.device)
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        train_units(units(two), fs.array, fs.offsets, args.device)
        t_two = time.perf_counter() - t0
        a, b = scores(one), scores(two)
    diff = max(float(np.abs(a[t] - b[t]).max()) for t in a)
    print(f"{args.train} train + {args.dev} dev / {args.eval} eval sentences, {len(tasks)} "
          f"tasks, {args.seeds} probe seed(s), every layer + mix, at most {args.epochs} epochs "
          f"(patience {args.patience}), {args.threads} threads")
    print(f"one after another {t_one:.1f} s; side by side {t_two:.1f} s; speed-up "
          f"{t_one / t_two:.2f}x; largest score difference {100 * diff:.4f} points")


if __name__ == "__main__":
    main()
