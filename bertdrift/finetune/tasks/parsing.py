"""UD dependency parsing: biaffine arc and label scorers (Dozat & Manning 2017) over the first
subword of each word, decoded to a well-formed single-rooted tree by Chu-Liu/Edmonds.

The [CLS] vector stands for the artificial root. The label scorer is trained on full UD
relations (with subtypes); LAS is scored on universal relations (CoNLL 2018).
"""

from __future__ import annotations

import collections
from typing import Any

import torch
from torch import nn

from bertdrift.errors import DataError
from bertdrift.finetune.metrics import attachment_scores
from bertdrift.finetune.tasks.base import Batch, Feature, Task, TaskData
from bertdrift.finetune.tasks.mst import decode_tree

IGNORE = -100


class BiaffineParserHead(nn.Module):
    """Arc scores ``s[b, d, h] = dep_d U head_h + head_h . u`` and label scores
    ``s[b, d, h, r] = dep_d U_r head_h + W_r [dep_d; head_h] + b_r`` over MLP projections."""

    def __init__(self, hidden_size: int, n_rels: int, arc_dim: int = 256, rel_dim: int = 128,
                 dropout: float = 0.33):
        super().__init__()

        def mlp(dim: int) -> nn.Module:
            return nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden_size, dim),
                                 nn.LeakyReLU(0.1), nn.Dropout(dropout))

        self.arc_dep, self.arc_head = mlp(arc_dim), mlp(arc_dim)
        self.rel_dep, self.rel_head = mlp(rel_dim), mlp(rel_dim)
        self.arc_u = nn.Parameter(torch.zeros(arc_dim, arc_dim))
        self.arc_bias = nn.Parameter(torch.zeros(arc_dim))
        self.rel_u = nn.Parameter(torch.zeros(n_rels, rel_dim, rel_dim))
        self.rel_w = nn.Linear(2 * rel_dim, n_rels)

    def words(self, hidden: torch.Tensor, batch: Batch) -> torch.Tensor:
        """[B, 1 + W, H]: the root ([CLS], position 0) then each word's first subword."""
        starts = batch["word_starts"].clamp(min=0)
        idx = torch.cat([torch.zeros_like(starts[:, :1]), starts], dim=1)
        return hidden.gather(1, idx.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))

    def forward(self, hidden: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        x = self.words(hidden, batch)
        dep, head = self.arc_dep(x), self.arc_head(x)
        arc = torch.einsum("bdi,ij,bhj->bdh", dep, self.arc_u, head)
        arc = arc + (head @ self.arc_bias).unsqueeze(1)
        valid = torch.cat([torch.ones_like(batch["word_mask"][:, :1]), batch["word_mask"]], 1)
        arc = arc.float().masked_fill(~valid.bool().unsqueeze(1), -1e4)
        return {"arc": arc, "rel_dep": self.rel_dep(x), "rel_head": self.rel_head(x)}

    def rel_scores(self, rel_dep: torch.Tensor, rel_head: torch.Tensor,
                   heads: torch.Tensor) -> torch.Tensor:
        """[B, D, R] label scores of each word ``d`` (including the root slot) with head
        ``heads[b, d]``."""
        h = rel_head.gather(1, heads.clamp(min=0).unsqueeze(-1).expand(-1, -1,
                                                                        rel_head.shape[-1]))
        bil = torch.einsum("bdi,rij,bdj->bdr", rel_dep, self.rel_u, h)
        return (bil + self.rel_w(torch.cat([rel_dep, h], -1))).float()

    def all_rel_scores(self, rel_dep: torch.Tensor, rel_head: torch.Tensor) -> torch.Tensor:
        """[B, D, H, R] label scores for every dependent-head pair (evaluation only)."""
        bil = torch.einsum("bdi,rij,bhj->bdhr", rel_dep, self.rel_u, rel_head)
        k = rel_dep.shape[-1]
        w = self.rel_w.weight
        lin = (rel_dep @ w[:, :k].T).unsqueeze(2) + (rel_head @ w[:, k:].T).unsqueeze(1)
        return (bil + lin + self.rel_w.bias).float()


class ParsingTask(Task):
    name = "parsing"
    primary_metric = "dev_las"

    def __init__(self) -> None:
        self._head: BiaffineParserHead | None = None

    def load(self, profile: Any) -> TaskData:
        from bertdrift.data import load_ud

        r = profile.recipe("parsing")
        train = load_ud("train", data_dir=profile.data_path, limit=r.train_size)
        dev = load_ud("dev", data_dir=profile.data_path, limit=r.eval_size)
        return TaskData(train, {"dev": dev}, self.meta_from(train))

    def meta_from(self, train: Any) -> dict[str, Any]:
        counts = collections.Counter(rel for rels in train["deprel"] for rel in rels)
        if not counts:
            raise DataError("the UD training set has no relations; check load_ud('train')")
        return {"relations": sorted(counts)}

    def build_features(
        self, examples: Any, tokenizer: Any, recipe: Any, meta: dict[str, Any], *, train: bool
    ) -> list[Feature]:
        from bertdrift.families import marker_ids, replace_empty_words, word_positions

        rel_ids = {r: i for i, r in enumerate(meta["relations"])}
        sentences = replace_empty_words(tokenizer, list(map(list, examples["tokens"])))
        enc = tokenizer(sentences, is_split_into_words=True, truncation=True,
                        max_length=recipe.max_length)
        markers = marker_ids(tokenizer)
        features: list[Feature] = []
        all_heads, all_rels = list(examples["head"]), list(examples["deprel"])
        for i, ids in enumerate(enc["input_ids"]):
            starts: list[int] = []  # first piece of each word, not a bare word-start marker
            for where in word_positions(enc.word_ids(i), ids, len(sentences[i]), markers):
                if not where:
                    break  # truncated from here on
                starts.append(where[0])
            n_kept = len(starts)
            heads = [int(h) for h in all_heads[i]]
            rels = [rel_ids.get(r, IGNORE) for r in all_rels[i]]
            # a word whose head was truncated away cannot be trained on
            heads_kept = [h if h <= n_kept else IGNORE for h in heads[:n_kept]]
            rels_kept = [r if h != IGNORE else IGNORE for r, h in zip(rels[:n_kept], heads_kept, strict=False)]
            types = enc["token_type_ids"][i] if "token_type_ids" in enc else [0] * len(ids)
            features.append({"input_ids": ids, "token_type_ids": types, "word_starts": starts,
                             "heads": heads_kept, "rels": rels_kept, "n_words": len(heads),
                             "example_index": i})
        return features

    def collate_extra(self, features: list[Feature], length: int) -> Batch:
        n = len(features)
        w = max(1, max(len(f["word_starts"]) for f in features))
        starts = torch.zeros((n, w), dtype=torch.long)
        mask = torch.zeros((n, w), dtype=torch.long)
        heads = torch.full((n, w), IGNORE, dtype=torch.long)
        rels = torch.full((n, w), IGNORE, dtype=torch.long)
        for i, f in enumerate(features):
            k = len(f["word_starts"])
            if k:
                starts[i, :k] = torch.tensor(f["word_starts"])
                heads[i, :k] = torch.tensor(f["heads"])
                rels[i, :k] = torch.tensor(f["rels"])
            mask[i, :k] = 1
        return {"word_starts": starts, "word_mask": mask, "heads": heads, "rels": rels}

    def build_head(self, hidden_size: int, meta: dict[str, Any]) -> nn.Module:
        self._head = BiaffineParserHead(hidden_size, len(meta["relations"]))
        return self._head

    def bind(self, head: nn.Module) -> None:
        """Use ``head`` (e.g. a loaded model's) for label scoring in ``loss``/``predict``."""
        self._head = head  # type: ignore[assignment]

    def loss(self, outputs: dict[str, torch.Tensor], batch: Batch) -> torch.Tensor:
        assert self._head is not None, "build_head or bind must be called first"
        arc = outputs["arc"][:, 1:]  # dependents are words 1..W
        heads = batch["heads"]
        arc_loss = nn.functional.cross_entropy(arc.reshape(-1, arc.shape[-1]), heads.reshape(-1),
                                               ignore_index=IGNORE)
        gold = torch.cat([torch.zeros_like(heads[:, :1]), heads.clamp(min=0)], 1)
        rel = self._head.rel_scores(outputs["rel_dep"], outputs["rel_head"], gold)[:, 1:]
        rel_loss = nn.functional.cross_entropy(rel.reshape(-1, rel.shape[-1]),
                                               batch["rels"].reshape(-1), ignore_index=IGNORE)
        return arc_loss + rel_loss

    def predict(self, outputs: dict[str, torch.Tensor], batch: Batch) -> list[Any]:
        assert self._head is not None, "build_head or bind must be called first"
        arc = torch.log_softmax(outputs["arc"].detach().float(), -1).cpu().numpy()
        n_words = batch["word_mask"].sum(-1).tolist()
        trees = torch.zeros(batch["word_mask"].shape[0], arc.shape[1], dtype=torch.long)
        for b, n in enumerate(n_words):
            if n:
                trees[b, 1 : n + 1] = torch.from_numpy(decode_tree(arc[b, : n + 1, : n + 1]))
        with torch.no_grad():
            rel = self._head.rel_scores(outputs["rel_dep"], outputs["rel_head"],
                                        trees.to(outputs["rel_dep"].device)).argmax(-1).cpu()
        return [(trees[b, 1 : n + 1].tolist(), rel[b, 1 : n + 1].tolist())
                for b, n in enumerate(n_words)]

    def evaluate(
        self, examples: Any, features: list[Feature], predictions: list[Any],
        meta: dict[str, Any], recipe: Any,
    ) -> dict[str, float]:
        relations = meta["relations"]
        all_heads, all_rels = list(examples["head"]), list(examples["deprel"])
        gold_h, gold_r, pred_h, pred_r = [], [], [], []
        truncated = 0
        for f, (heads, rels) in zip(features, predictions, strict=False):
            e = f["example_index"]
            gh = [int(h) for h in all_heads[e]]
            missing = f["n_words"] - len(heads)
            truncated += missing
            gold_h.append(gh)
            gold_r.append(list(all_rels[e]))
            pred_h.append(list(heads) + [-1] * missing)  # words cut by max_length count as wrong
            pred_r.append([relations[r] for r in rels] + ["_"] * missing)
        scores = attachment_scores(gold_h, gold_r, pred_h, pred_r)
        scores["truncated_words"] = float(truncated)
        return scores

