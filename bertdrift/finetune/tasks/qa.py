"""SQuAD v1.1: start/end span scores per token, features with a document stride and offset
mapping, and n-best post-processing, as in Hugging Face's ``run_qa.py``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from bertdrift.errors import DataError
from bertdrift.finetune.metrics import squad_scores
from bertdrift.finetune.tasks.base import Batch, Feature, Task, TaskData

N_BEST = 20
MAX_ANSWER_LENGTH = 30


class SpanHead(nn.Module):
    """A linear layer giving a start and an end score to every token; padding scores -1e4."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.qa_outputs = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        logits = self.qa_outputs(hidden).float()
        pad = batch["attention_mask"] == 0
        logits = logits.masked_fill(pad.unsqueeze(-1), -1e4)
        return {"start_logits": logits[..., 0], "end_logits": logits[..., 1]}


def _tokenize(examples: Any, tokenizer: Any, recipe: Any) -> Any:
    questions = [q.lstrip() for q in examples["question"]]
    pad_right = getattr(tokenizer, "padding_side", "right") == "right"
    return tokenizer(
        questions if pad_right else list(examples["context"]),
        list(examples["context"]) if pad_right else questions,
        truncation="only_second" if pad_right else "only_first",
        max_length=recipe.max_length,
        stride=recipe.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )


class QATask(Task):
    name = "squad"
    primary_metric = "dev_f1"

    def load(self, profile: Any) -> TaskData:
        """Subsets (``train_size`` set) and offline runs split SQuAD v1.1 dev by article: the
        last ``profile.squad_eval_articles`` articles evaluate, the rest train. With
        ``train_size=None`` the official train set is used when it can be loaded."""
        from bertdrift.data import load_squad, split_squad_by_article

        r = profile.recipe("squad")
        full = load_squad("dev", data_dir=profile.data_path)
        train = None
        if r.train_size is None:  # full data (paper): the official train set when reachable
            try:
                train, dev = load_squad("train", data_dir=profile.data_path), full
            except DataError as exc:
                if not profile.allow_subsets:
                    raise DataError(
                        "this profile trains SQuAD on the official train set (squad_train_size="
                        f"None), which could not be loaded ({exc}). Put train-v1.1.json in "
                        f"{profile.data_path}/squad-v1.1/ or run online (rajpurkar/squad on the "
                        "Hugging Face Hub), or pass allow_subsets=True to split SQuAD dev by "
                        "article instead; captions and the claims page then say so.") from exc
                train = None
        if train is None:  # subsets, or offline: split the dev articles, never the questions
            train, dev = split_squad_by_article(full, profile.squad_eval_articles)
        if r.train_size is not None and r.train_size < len(train):
            train = train.shuffle(seed=0).select(range(r.train_size))
        if r.eval_size is not None and r.eval_size < len(dev):
            dev = dev.shuffle(seed=0).select(range(r.eval_size))
        return TaskData(train, {"dev": dev}, {})

    def build_features(
        self, examples: Any, tokenizer: Any, recipe: Any, meta: dict[str, Any], *, train: bool
    ) -> list[Feature]:
        enc = _tokenize(examples, tokenizer, recipe)
        context_index = 1 if getattr(tokenizer, "padding_side", "right") == "right" else 0
        features: list[Feature] = []
        answers = list(examples["answers"]) if train else []
        for i, offsets in enumerate(enc["offset_mapping"]):
            ids = enc["input_ids"][i]
            types = enc["token_type_ids"][i] if "token_type_ids" in enc else [0] * len(ids)
            seq = enc.sequence_ids(i)
            sample = enc["overflow_to_sample_mapping"][i]
            feat: Feature = {"input_ids": ids, "token_type_ids": types, "example_index": sample}
            if train:
                feat.update(self._positions(answers[sample], offsets, seq, ids,
                                            tokenizer, context_index))
            else:
                feat["offset_mapping"] = [
                    tuple(o) if seq[k] == context_index else None for k, o in enumerate(offsets)
                ]
            features.append(feat)
        return features

    @staticmethod
    def _positions(answers: dict, offsets: list, seq: list, ids: list, tokenizer: Any,
                   ctx: int) -> dict[str, int]:
        cls = ids.index(tokenizer.cls_token_id) if tokenizer.cls_token_id in ids else 0
        start_char = answers["answer_start"][0]
        end_char = start_char + len(answers["text"][0])
        first = 0
        while seq[first] != ctx:
            first += 1
        last = len(ids) - 1
        while seq[last] != ctx:
            last -= 1
        if not (offsets[first][0] <= start_char and offsets[last][1] >= end_char):
            return {"start_position": cls, "end_position": cls}
        while first < len(offsets) and offsets[first][0] <= start_char:
            first += 1
        while offsets[last][1] >= end_char:
            last -= 1
        return {"start_position": first - 1, "end_position": last + 1}

    def collate_extra(self, features: list[Feature], length: int) -> Batch:
        if "start_position" not in features[0]:
            return {}
        return {
            "start_positions": torch.tensor([f["start_position"] for f in features]),
            "end_positions": torch.tensor([f["end_position"] for f in features]),
        }

    def build_head(self, hidden_size: int, meta: dict[str, Any]) -> nn.Module:
        return SpanHead(hidden_size)

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        ce = nn.functional.cross_entropy
        return (ce(outputs["start_logits"], batch["start_positions"])
                + ce(outputs["end_logits"], batch["end_positions"])) / 2

    def predict(self, outputs: dict[str, torch.Tensor], batch: Batch) -> list[Any]:
        lengths = batch["attention_mask"].sum(-1).tolist()
        start = outputs["start_logits"].detach().float().cpu().numpy()
        end = outputs["end_logits"].detach().float().cpu().numpy()
        return [(start[i, :n], end[i, :n]) for i, n in enumerate(lengths)]

    def evaluate(
        self, examples: Any, features: list[Feature], predictions: list[Any],
        meta: dict[str, Any], recipe: Any,
    ) -> dict[str, float]:
        texts = postprocess(examples, features, predictions)
        refs = {ex_id: list(ans["text"]) for ex_id, ans in zip(examples["id"], examples["answers"], strict=False)}
        return squad_scores(texts, refs)


def postprocess(
    examples: Any, features: list[Feature], predictions: list[Any],
    n_best: int = N_BEST, max_answer_length: int = MAX_ANSWER_LENGTH,
) -> dict[str, str]:
    """Best answer text per question id: the highest start+end score over all features of the
    question, among spans inside the context, with ``end >= start`` and at most
    ``max_answer_length`` tokens."""
    by_example: dict[int, list[int]] = {}
    for i, f in enumerate(features):
        by_example.setdefault(f["example_index"], []).append(i)
    contexts = list(examples["context"])
    answers: dict[str, str] = {}
    for e, ex_id in enumerate(examples["id"]):
        best_score, best_text = -np.inf, ""
        for i in by_example.get(e, []):
            start, end = predictions[i]
            offsets = features[i]["offset_mapping"]
            starts = np.argsort(start)[-1 : -n_best - 1 : -1]
            ends = np.argsort(end)[-1 : -n_best - 1 : -1]
            for s in starts:
                if s >= len(offsets) or offsets[s] is None:
                    continue
                for t in ends:
                    if t >= len(offsets) or offsets[t] is None or t < s:
                        continue
                    if t - s + 1 > max_answer_length:
                        continue
                    score = start[s] + end[t]
                    if score > best_score:
                        best_score = score
                        best_text = contexts[e][offsets[s][0] : offsets[t][1]]
        answers[ex_id] = best_text
    return answers
