"""The small interface every fine-tuning task implements, and the model that wraps a task head.

A task turns raw examples into *features* (token ids plus whatever the head needs), pads a list
of features into a batch, scores a batch with its head, turns head outputs into a loss or into
predictions, and evaluates predictions against the raw examples. The training loop
(``bertdrift.finetune.loop.fit``) knows nothing else about the task.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from bertdrift.errors import ModelError

Feature = dict[str, Any]
Batch = dict[str, torch.Tensor]


@dataclass
class TaskData:
    """Raw examples of one task: a training set and named evaluation sets."""

    train: Any
    evals: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    """Task-specific, JSON-serialisable facts (e.g. the label vocabulary) the head depends on."""


class Task(ABC):
    """One fine-tuning task. Subclasses set ``name`` and ``primary_metric``."""

    name: ClassVar[str]
    primary_metric: ClassVar[str]
    """Key of the score reported as 'the' result, e.g. ``dev_matched_accuracy``."""

    # -- data -------------------------------------------------------------------------------
    @abstractmethod
    def load(self, profile: Any) -> TaskData:
        """Load the profile's training and evaluation examples (sizes from its recipe)."""

    def meta_from(self, train: Any) -> dict[str, Any]:
        """Facts learned from the training examples that fix the head's shape."""
        return {}

    @abstractmethod
    def build_features(
        self, examples: Any, tokenizer: Any, recipe: Any, meta: dict[str, Any], *, train: bool
    ) -> list[Feature]:
        """Tokenise examples. Every feature has ``input_ids`` and ``token_type_ids`` lists."""

    def collate(self, features: list[Feature], pad_id: int) -> Batch:
        """Pad to the longest feature in the batch (dynamic padding) and add task fields."""
        batch = pad_inputs(features, pad_id)
        batch.update(self.collate_extra(features, batch["input_ids"].shape[1]))
        return batch

    def collate_extra(self, features: list[Feature], length: int) -> Batch:
        return {}

    # -- model ------------------------------------------------------------------------------
    @abstractmethod
    def build_head(self, hidden_size: int, meta: dict[str, Any]) -> nn.Module:
        """A head mapping ``(hidden [B, T, H], batch)`` to a dict of output tensors."""

    def bind(self, head: nn.Module) -> None:
        """Attach ``head`` (built here or loaded from a run) before ``loss``/``predict`` are
        called; tasks whose scoring needs the head's own modules keep it, others ignore it."""
        return None

    @abstractmethod
    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        """Mean training loss of a batch."""

    @abstractmethod
    def predict(self, outputs: dict[str, torch.Tensor], batch: Batch) -> list[Any]:
        """One CPU prediction per feature of the batch, in batch order."""

    @abstractmethod
    def evaluate(
        self, examples: Any, features: list[Feature], predictions: list[Any],
        meta: dict[str, Any], recipe: Any,
    ) -> dict[str, float]:
        """Scores (percentages) of ``predictions`` (one per feature) against ``examples``."""


def pad_inputs(features: list[Feature], pad_id: int) -> Batch:
    """``input_ids``, ``token_type_ids``, ``attention_mask`` padded to the batch maximum."""
    length = max(len(f["input_ids"]) for f in features)
    n = len(features)
    ids = torch.full((n, length), pad_id, dtype=torch.long)
    types = torch.zeros((n, length), dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    for i, f in enumerate(features):
        k = len(f["input_ids"])
        ids[i, :k] = torch.tensor(f["input_ids"])
        types[i, :k] = torch.tensor(f["token_type_ids"])
        mask[i, :k] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


class TaskModel(nn.Module):
    """An encoder plus a task head; ``forward(batch)`` returns the head's outputs.

    With ``prefix`` (the hidden states after the bottom ``start_layer`` layers, as cached for a
    frozen prefix), only the layers from ``start_layer`` up and the head run.
    """

    def __init__(self, encoder: nn.Module, head: nn.Module, task: str, meta: dict[str, Any]):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.task = task
        self.meta = meta

    def layers(self) -> nn.ModuleList:
        from bertdrift.models import encoder_layers

        return encoder_layers(self.encoder)

    def prefix(self, batch: Batch, k: int) -> torch.Tensor:
        """Hidden states after the embeddings and the bottom ``k`` layers (blocks)."""
        from bertdrift.families import embed

        return self.run_layers(embed(self.encoder, batch), batch["attention_mask"], 0, k)

    def run_layers(self, hidden: torch.Tensor, mask: torch.Tensor, start: int, end: int):
        """Blocks ``start..end-1``, called as the encoder family's own forward calls them."""
        from bertdrift.families import run_blocks

        return run_blocks(self.encoder, hidden, mask, start, end)

    def forward(
        self, batch: Batch, prefix: torch.Tensor | None = None, start_layer: int = 0
    ) -> dict[str, torch.Tensor]:
        from bertdrift.families import encoder_inputs, finish

        if prefix is None:
            out = self.encoder(**encoder_inputs(self.encoder, batch))
            hidden = out.last_hidden_state
        else:
            if start_layer > len(self.layers()):
                raise ModelError(f"start_layer={start_layer} exceeds the encoder depth")
            hidden = self.run_layers(
                prefix, batch["attention_mask"], start_layer, len(self.layers())
            )
            hidden = finish(self.encoder, hidden)
        return self.head(hidden, batch)
