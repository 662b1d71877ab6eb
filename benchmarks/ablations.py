"""Frozen-prefix caching: measured vs predicted training speed-up, per frozen depth ``k``.

For each ``k`` the same MNLI subset is fine-tuned twice in this process, with and without
``cache_frozen`` (same seed, data and recipe), and the ratio of their training times is compared
with ``bertdrift.ablations.predicted_speedup`` = E (L + 2 (L - k)) / (k + 3 E (L - k)), and
with the same formula using the backward / forward cost ratio measured on this machine
(``pred(b)``) instead of 2.

    BERTDRIFT_DATA=... HF_HUB_OFFLINE=1 python benchmarks/ablations.py --train 96 --epochs 3

Training time is the loop's own ``train_seconds`` (the prefix pass of the first epoch included,
evaluation excluded). On a shared CPU timings are noisy: ``--repeats`` alternates the two runs
and reports medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from bertdrift import get_profile
from bertdrift.ablations import predicted_speedup
from bertdrift.finetune import build_task_model
from bertdrift.finetune.loop import fit
from bertdrift.finetune.tasks import get_task
from bertdrift.models import load_encoder, load_tokenizer, num_layers


def run(task, data, tok, recipe, k: int, cache: bool, seed: int) -> tuple[float, float, float]:
    """(training seconds, dev_matched accuracy, wall seconds incl. evaluation) of one run."""
    model = build_task_model(task, load_encoder(), data.meta, seed)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        out = fit(task, model, tok, data, recipe, Path(tmp), freeze=k, seed=seed,
                  cache_frozen=cache, progress=False)
    wall = time.monotonic() - t0
    seconds = sum(h["train_seconds"] for h in out["history"])
    return seconds, out["metrics"]["dev_matched_accuracy"], wall


def backward_factor(task, data, tok, recipe, seed: int, repeats: int = 5) -> float:
    """Measured cost of one layer's backward pass in forward passes: the median over
    ``repeats`` of (forward + backward - forward) / forward of the whole encoder on one batch."""
    model = build_task_model(task, load_encoder(), data.meta, seed).train()
    feats = task.build_features(data.train, tok, recipe, data.meta, train=True)
    batch = task.collate(feats[: recipe.batch_size], tok.pad_token_id)
    ratios = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            model(batch)
        fwd = time.perf_counter() - t0
        t0 = time.perf_counter()
        task.loss(model(batch), batch).backward()
        both = time.perf_counter() - t0
        model.zero_grad(set_to_none=True)
        ratios.append((both - fwd) / fwd)
    return statistics.median(ratios)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=96)
    ap.add_argument("--eval", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--ks", type=int, nargs="*", default=None, help="frozen depths (default 0..L)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    P = get_profile("tiny", mnli_train_size=a.train, mnli_eval_size=a.eval, mnli_epochs=a.epochs,
                    mnli_batch_size=a.batch_size, mnli_lr=a.lr, mnli_max_length=a.max_length)
    task, tok = get_task("mnli"), load_tokenizer(P.model)
    data = task.load(P)
    data.evals = {"dev_matched": data.evals["dev_matched"]}
    data.meta = task.meta_from(data.train)
    recipe = P.recipe("mnli")
    L = num_layers(load_encoder(P.model))
    ks = a.ks if a.ks else list(range(L + 1))
    print(f"MNLI, {a.train} train pairs x {a.epochs} epochs, batch {a.batch_size}, {a.eval} eval "
          f"pairs, seed {a.seed}, {a.threads} threads, {a.repeats} repeat(s), {P.describe()}",
          flush=True)
    b = backward_factor(task, data, tok, recipe, a.seed)
    print(f"measured backward / forward cost: {b:.2f} (the formula assumes 2)", flush=True)
    header = (f"{'k':>2} {'plain s':>8} {'cached s':>8} {'measured':>8} {'predicted':>9} "
              f"{'off by':>7} {'pred(b)':>8} {'acc plain':>9} {'acc cached':>10}")
    print(header, flush=True)
    misses = 0
    for k in ks:
        plain, cached = [], []
        for _ in range(a.repeats):
            plain.append(run(task, data, tok, recipe, k, False, a.seed))
            cached.append(run(task, data, tok, recipe, k, True, a.seed))
        sp = statistics.median(r[0] for r in plain)
        sc = statistics.median(r[0] for r in cached)
        measured, predicted = sp / sc, predicted_speedup(L, k, a.epochs)
        calibrated = predicted_speedup(L, k, a.epochs, backward_cost=b)
        off = measured / predicted - 1
        misses += abs(off) > 0.2
        print(f"{k:>2} {sp:8.1f} {sc:8.1f} {measured:7.2f}x {predicted:8.2f}x {off:+7.0%} "
              f"{calibrated:7.2f}x "
              f"{plain[0][1]:9.1f} {cached[0][1]:10.1f}", flush=True)
    print(f"{misses} of {len(ks)} depths miss the prediction by more than 20 %")


if __name__ == "__main__":
    main()
