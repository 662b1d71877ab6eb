"""Our training loop vs Hugging Face ``Trainer`` on MNLI: same model, data, hyperparameters and
seeds, in one process. Prints training samples/s, their ratio, and the final accuracies over
``--seeds`` (default three: one seed cannot tell a loop's effect from seed noise).

    BERTDRIFT_DATA=... HF_HUB_OFFLINE=1 python benchmarks/finetune.py --train 512 --eval 300

``Trainer`` runs with dynamic padding (``DataCollatorWithPadding``) in random order — its default
— and, for transparency, also with ``train_sampling_strategy="group_by_length"``. Timings on a
shared CPU are noisy: the runs alternate per seed and speeds are medians.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from bertdrift import get_profile
from bertdrift.finetune import build_task_model, evaluate_task_model
from bertdrift.finetune.loop import fit
from bertdrift.finetune.tasks import get_task
from bertdrift.models import load_encoder, load_tokenizer


class _TrainerModel(nn.Module):
    """The same TaskModel, called the way ``Trainer`` calls models (keyword tensors)."""

    def __init__(self, model: nn.Module, task) -> None:
        super().__init__()
        self.model, self.task = model, task

    def forward(self, input_ids, attention_mask, token_type_ids=None, labels=None):
        batch = {"input_ids": input_ids, "attention_mask": attention_mask,
                 "token_type_ids": token_type_ids if token_type_ids is not None
                 else torch.zeros_like(input_ids)}
        out = self.model(batch)
        if labels is None:
            return {"logits": out["logits"]}
        batch["labels"] = labels
        return {"loss": self.task.loss(out, batch), "logits": out["logits"]}


def run_ours(task, data, tok, recipe, seed: int, precision: str = "fp32") -> tuple[float, float]:
    model = build_task_model(task, load_encoder(), data.meta, seed)
    with tempfile.TemporaryDirectory() as tmp:
        out = fit(task, model, tok, data, recipe, Path(tmp), seed=seed, progress=False,
                  precision=precision)
    seconds = sum(h["train_seconds"] for h in out["history"])
    n = len(data.train) * recipe.epochs
    return n / seconds, out["metrics"]["dev_matched_accuracy"]


def run_trainer(task, data, tok, profile, seed: int, group_by_length: bool
                ) -> tuple[float, float]:
    from datasets import Dataset
    from transformers import DataCollatorWithPadding, Trainer, TrainingArguments

    recipe = profile.recipe(task.name)
    feats = task.build_features(data.train, tok, recipe, data.meta, train=True)
    train = Dataset.from_list([{"input_ids": f["input_ids"], "token_type_ids": f["token_type_ids"],
                                "attention_mask": [1] * len(f["input_ids"]), "label": f["label"]}
                               for f in feats])
    total = -(-len(feats) // recipe.batch_size) * recipe.epochs
    model = _TrainerModel(build_task_model(task, load_encoder(), data.meta, seed), task)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=recipe.batch_size,
            per_device_eval_batch_size=2 * recipe.batch_size, learning_rate=recipe.lr,
            num_train_epochs=recipe.epochs, weight_decay=recipe.weight_decay,
            warmup_steps=int(recipe.warmup_ratio * total), lr_scheduler_type="linear",
            max_grad_norm=1.0, seed=seed, save_strategy="no", eval_strategy="no",
            logging_strategy="no", report_to=[], use_cpu=not torch.cuda.is_available(),
            bf16=torch.cuda.is_available(), disable_tqdm=True,
            train_sampling_strategy="group_by_length" if group_by_length else "random",
            dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=train,
                          data_collator=DataCollatorWithPadding(tok))
        t0 = time.monotonic()
        trainer.train()
        seconds = time.monotonic() - t0
    # Scored by the same evaluation code as ours (Trainer.predict may reorder examples when it
    # groups by length, which would misalign predictions and labels).
    acc = evaluate_task_model(task, model.model, profile, data=data,
                              tokenizer=tok)["dev_matched_accuracy"]
    return len(feats) * recipe.epochs / seconds, acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=512)
    ap.add_argument("--eval", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    P = get_profile("tiny", mnli_train_size=a.train, mnli_eval_size=a.eval,
                    mnli_epochs=a.epochs, mnli_batch_size=a.batch_size, mnli_lr=a.lr)
    task, tok = get_task("mnli"), load_tokenizer(P.model)
    data = task.load(P)
    data.evals = {"dev_matched": data.evals["dev_matched"]}
    recipe = P.recipe("mnli")
    runs: dict[str, list[tuple[float, float]]] = {"ours": [], "Trainer": [],
                                                  "Trainer group_by_length": []}
    for seed in a.seeds:
        runs["Trainer"].append(run_trainer(task, data, tok, P, seed, False))
        runs["ours"].append(run_ours(task, data, tok, recipe, seed))
        runs["Trainer group_by_length"].append(run_trainer(task, data, tok, P, seed, True))
    print(f"MNLI, {a.train} train pairs x {a.epochs} epoch(s), batch {a.batch_size}, "
          f"lr {a.lr}, seeds {a.seeds}, {a.threads} threads, model {P.describe()}")
    med = {k: (statistics.median(s for s, _ in v), statistics.mean(x for _, x in v),
               statistics.stdev(x for _, x in v) if len(v) > 1 else float("nan"))
           for k, v in runs.items()}
    for name, (sps, acc, sd) in med.items():
        print(f"{name:>24}: {sps:7.2f} train samples/s (median), dev_matched accuracy "
              f"{acc:5.1f} ± {sd:.1f} (sd over seeds)")
    for base in ("Trainer", "Trainer group_by_length"):
        print(f"speed ratio ours / {base}: {med['ours'][0] / med[base][0]:.2f}x; "
              f"accuracy difference: {med['ours'][1] - med[base][1]:+.1f} points (compare with "
              "the sd over seeds)")


if __name__ == "__main__":
    main()
