"""MNLI: a sentence-pair classifier on the [CLS] vector, scored by accuracy on matched and
mismatched dev."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from bertdrift.errors import DataError
from bertdrift.finetune.metrics import accuracy
from bertdrift.finetune.tasks.base import Batch, Feature, Task, TaskData

LABELS = ("entailment", "neutral", "contradiction")


class ClassifierHead(nn.Module):
    """Dropout and a linear layer on the [CLS] hidden state (as BERT's GLUE recipe, without
    the pooler, whose pre-training objective MiniLM never had)."""

    def __init__(self, hidden_size: int, n_classes: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, n_classes)

    def forward(self, hidden: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        return {"logits": self.classifier(self.dropout(hidden[:, 0]))}


def _segments(sequence_ids: list[int | None]) -> list[int]:
    """BERT's segment ids (0 up to the first separator, 1 after) from a tokenizer's sequence
    ids, for tokenizers that return no ``token_type_ids``: special tokens take the segment of
    the token before them."""
    out, current = [], 0
    for s in sequence_ids:
        current = s if s is not None else current
        out.append(current)
    return out


def mnli_is_sample(data_dir: Any) -> bool:
    """True when MNLI train would be read from the mirror's ``train_sample.jsonl``."""
    from bertdrift.data.sources import local_path

    return local_path("mnli/train_sample.jsonl", data_dir=data_dir) is not None


class NLITask(Task):
    name = "mnli"
    primary_metric = "dev_matched_accuracy"

    def load(self, profile: Any) -> TaskData:
        from bertdrift.data import load_mnli

        r = profile.recipe("mnli")
        data_dir = profile.data_path
        if r.train_size is None and mnli_is_sample(data_dir) and not profile.allow_subsets:
            raise DataError(
                "this profile trains MNLI on the whole training set (mnli_train_size=None), but "
                f"{data_dir}/mnli/train_sample.jsonl is only a 12,081-pair sample (most of its "
                "hypotheses lost their final period). Get the full set from the Hugging Face Hub "
                "(nyu-mll/glue, config mnli: move train_sample.jsonl out of the data directory "
                "and run online), or pass allow_subsets=True to train on the sample; captions "
                "and the claims page then say so.")
        train = load_mnli("train", data_dir=data_dir, limit=r.train_size, seed=0)
        evals = {
            split: load_mnli(split, data_dir=data_dir, limit=r.eval_size, seed=0)
            for split in ("dev_matched", "dev_mismatched")
        }
        return TaskData(train, evals, self.meta_from(train))

    def meta_from(self, train: Any) -> dict[str, Any]:
        return {"labels": list(LABELS)}

    def build_features(
        self, examples: Any, tokenizer: Any, recipe: Any, meta: dict[str, Any], *, train: bool
    ) -> list[Feature]:
        enc = tokenizer(
            list(examples["premise"]), list(examples["hypothesis"]),
            truncation=True, max_length=recipe.max_length,
        )
        types = enc.get("token_type_ids") or [  # segment ids from the sequence ids
            _segments(enc.sequence_ids(i)) for i in range(len(enc["input_ids"]))]
        return [
            {"input_ids": ids, "token_type_ids": tt, "label": int(label)}
            for ids, tt, label in zip(enc["input_ids"], types, examples["label"], strict=False)
        ]

    def collate_extra(self, features: list[Feature], length: int) -> Batch:
        return {"labels": torch.tensor([f["label"] for f in features], dtype=torch.long)}

    def build_head(self, hidden_size: int, meta: dict[str, Any]) -> nn.Module:
        return ClassifierHead(hidden_size, len(meta.get("labels", LABELS)))

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        return nn.functional.cross_entropy(outputs["logits"].float(), batch["labels"])

    def predict(self, outputs: dict[str, torch.Tensor], batch: Batch) -> list[Any]:
        return outputs["logits"].detach().argmax(-1).tolist()

    def evaluate(
        self, examples: Any, features: list[Feature], predictions: list[Any],
        meta: dict[str, Any], recipe: Any,
    ) -> dict[str, float]:
        return {"accuracy": accuracy(predictions, [f["label"] for f in features])}
