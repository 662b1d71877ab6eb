"""float32 vs bf16 autocast training on the tiny MNLI recipe, in one process: training samples/s,
their ratio, and the final matched accuracy over several seeds (one seed is not enough to tell
a precision effect from seed noise).

    BERTDRIFT_DATA=... HF_HUB_OFFLINE=1 python benchmarks/precision.py --train 1000 --epochs 2

Runs alternate (fp32, bf16, fp32, bf16, ...) so a load change on a shared machine hits both.
Where the CPU has no native bf16 (``config.cpu_has_bf16()``), bf16 is skipped and the profile's
``precision="auto"`` trains in float32. Target: >= 1.8x at an accuracy within the seed spread.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch

from bertdrift import get_profile
from bertdrift.config import cpu_has_bf16, resolve_device
from bertdrift.finetune import build_task_model
from bertdrift.finetune.loop import fit
from bertdrift.finetune.tasks import get_task
from bertdrift.models import load_encoder, load_tokenizer


def run(task, data, tok, recipe, seed: int, precision: str) -> tuple[float, float]:
    model = build_task_model(task, load_encoder(), data.meta, seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = fit(task, model, tok, data, recipe, Path(tmp), seed=seed, progress=False,
                  precision=precision)
    seconds = sum(h["train_seconds"] for h in out["history"])
    return out["budget"]["examples_seen"] / seconds, out["metrics"]["dev_matched_accuracy"]


def step_ab(task, data, tok, recipe, steps: int, batch_size: int = 16,
            length: int = 128) -> list[float]:
    """Per pair of alternating training steps on one fixed batch of ``batch_size x length``
    tokens: fp32 seconds / bf16 seconds. Interleaving step by step makes the ratio robust to a
    shared machine's changing load."""
    import time

    from bertdrift.finetune.loop import Autocast

    model = build_task_model(task, load_encoder(), data.meta, 0).train()
    feats = task.build_features(data.train, tok, recipe, data.meta, train=True)[:batch_size]
    batch = task.collate(feats, tok.pad_token_id)
    ids = batch["input_ids"]
    if ids.shape[1] < length:  # pad every row to ``length`` tokens of real vocabulary
        reps = -(-length // ids.shape[1])
        batch = {k: (v.repeat(1, reps)[:, :length] if v.dim() == 2 and v.shape[1] == ids.shape[1]
                     else v) for k, v in batch.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ratios = []
    for _ in range(steps + 1):
        times = {}
        for name in ("fp32", "bf16"):
            t0 = time.perf_counter()
            with Autocast("cpu", name == "bf16").autocast():
                loss = task.loss(model(batch), batch)
            loss.backward()
            opt.step()
            opt.zero_grad()
            times[name] = time.perf_counter() - t0
        ratios.append(times["fp32"] / times["bf16"])
    return ratios[1:]  # the first pair warms up


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--eval", type=int, default=400)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--step-ab", type=int, default=0,
                    help="only time N alternating fp32/bf16 training steps on one batch")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    P = get_profile("tiny", mnli_train_size=a.train, mnli_eval_size=a.eval,
                    mnli_epochs=a.epochs)
    task, tok = get_task("mnli"), load_tokenizer(P.model)
    data = task.load(P)
    data.evals = {"dev_matched": data.evals["dev_matched"]}
    recipe = P.recipe("mnli")
    if a.step_ab:
        r = step_ab(task, data, tok, recipe, a.step_ab)
        print(f"one training step, batch 16 x 128 tokens, fp32 time / bf16 time over {len(r)} "
              f"alternating pairs: median {statistics.median(r):.2f}x (min {min(r):.2f}, max "
              f"{max(r):.2f})")
        return
    cpu = resolve_device(P.device) == "cpu"
    precisions = ["fp32", "bf16"] if (not cpu or cpu_has_bf16()) else ["fp32"]
    runs: dict[str, list[tuple[float, float]]] = {p: [] for p in precisions}
    for seed in a.seeds:
        for p in precisions:
            runs[p].append(run(task, data, tok, recipe, seed, p))
    print(f"MNLI, {a.train} train pairs x {a.epochs} epochs, seeds {a.seeds}, {a.threads} "
          f"threads, native CPU bf16: {cpu_has_bf16()}, {P.describe()}")
    for p, v in runs.items():
        accs = [x for _, x in v]
        sd = statistics.stdev(accs) if len(accs) > 1 else float("nan")
        print(f"{p:>5}: {statistics.median(s for s, _ in v):7.2f} train samples/s (median), "
              f"matched accuracy {statistics.mean(accs):5.1f} ± {sd:.1f} (sd over seeds): "
              + ", ".join(f"{x:.1f}" for x in accs))
    if "bf16" in runs:
        speed = [b[0] / f[0] for f, b in zip(runs["fp32"], runs["bf16"], strict=True)]
        diff = [b[1] - f[1] for f, b in zip(runs["fp32"], runs["bf16"], strict=True)]
        print(f"bf16 / fp32 speed: {statistics.median(speed):.2f}x (per seed: "
              + ", ".join(f"{s:.2f}" for s in speed) + "); accuracy bf16 - fp32: "
              + ", ".join(f"{d:+.1f}" for d in diff) + " points")
    else:
        print("no native bf16 on this CPU: the profile trains in float32 (precision='auto')")


if __name__ == "__main__":
    main()
