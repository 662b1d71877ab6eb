"""Benchmark: every layer's edge probe in one pass vs one probe per layer trained in sequence.

Same features (the packaged model on real edge-task data), same epochs, same batch order and
same per-layer initialisation, in one process. Prints the wall-clock ratio (best of
``--repeat`` runs of each side) and the per-layer score difference. The defaults are chapter 3's
settings in the ``tiny`` profile; ``--mix`` adds the scalar-mix probe to both sides, as the
chapter trains it. Usage::

    BERTDRIFT_DATA=/work/shared/data python benchmarks/probing.py --task deps --mix
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch

import bertdrift
from bertdrift.probing.edge import (
    EdgeProbeConfig,
    encode_targets,
    train_edge_probes,
    train_edge_probes_seeds,
)
from bertdrift.probing.run import _compact, _Corpus, _features, load_edge_splits


def main() -> None:
    tiny = bertdrift.get_profile("tiny")  # defaults: the probe settings chapter 3 runs with
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="pos")
    ap.add_argument("--train", type=int, default=tiny.probe_train_size,
                    help="training sentences")
    ap.add_argument("--eval", type=int, default=tiny.probe_eval_size,
                    help="evaluation sentences")
    ap.add_argument("--epochs", type=int, default=tiny.probe_epochs)
    ap.add_argument("--hidden", type=int, default=tiny.probe_hidden)
    ap.add_argument("--batch-size", type=int, default=tiny.probe_batch_size)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", type=int, default=len(tiny.probe_seeds),
                    help="probe seeds: the batched run trains N seeds x all layers in one pass "
                         "(as chapter 3 does) against N x layers separate runs")
    ap.add_argument("--mix", action="store_true",
                    help="also train the scalar-mix probe (one more head per seed in the batched "
                         "run, one more run per seed in sequence)")
    ap.add_argument("--repeat", type=int, default=3, help="time each side N times, keep the best")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="where the probes train (cpu, cuda)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    profile = bertdrift.get_profile("tiny", probe_train_size=args.train,
                                    probe_eval_size=args.eval)
    splits = load_edge_splits(profile, (args.task,))[args.task]
    corpus = _Corpus()
    ids = [corpus.add(r["tokens"]) for r in splits["train"].rows + splits["eval"].rows]
    fs = _features(profile.model, corpus.sentences, profile, False, "pretrained")
    feats, starts = _compact(fs.array, fs.offsets, ids)
    spec = splits["train"]
    enc = dict(multilabel=spec.multilabel, single_span=spec.single_span)
    n = len(splits["train"].rows)
    train = encode_targets(spec.rows, spec.labels, starts[:n], **enc)
    dev = encode_targets(splits["eval"].rows, spec.labels, starts[n:], **enc)
    cfg = EdgeProbeConfig(proj_dim=args.hidden, hidden=args.hidden, epochs=args.epochs,
                          batch_size=args.batch_size, metric=spec.metric)
    layers = list(range(feats.shape[1]))
    print(f"task {args.task}: {len(train)} train / {len(dev)} eval targets, {len(layers)} "
          f"layers, dim {feats.shape[2]}, {args.epochs} epochs, {args.threads} threads, "
          f"probes on {args.device}")

    seeds = [args.seed + i for i in range(args.seeds)]

    def batched() -> dict[str, float]:
        return train_edge_probes_seeds(feats, train, {"dev": dev}, cfg, layers=layers,
                                       mix=args.mix, seeds=seeds, progress=False,
                                       device=args.device)[seeds[0]] \
            .scores["dev"]

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
    keys = [str(k) for k in layers] + (["mix"] if args.mix else [])

    diffs = np.array([100 * (together[k] - alone[k]) for k in keys])
    print(f"{'probe':>5} {'batched':>8} {'one-by-one':>10} {'diff (pts)':>10}")
    for k, d in zip(keys, diffs, strict=True):
        print(f"{k:>5} {100 * together[k]:8.2f} {100 * alone[k]:10.2f} {d:10.3f}")
    print(f"{len(seeds)} seed(s) x {len(keys)} probes: all in one pass {t_batched:.3f} s; one "
          f"probe at a time in sequence: {t_sequential:.3f} s (best of {args.repeat}); "
          f"speed-up {t_sequential / t_batched:.2f}x")
    print(f"max |score difference| {np.abs(diffs).max():.3f} points (target <= 0.5)")


if __name__ == "__main__":
    main()
