"""Tiny synthetic task data, a word-level tokenizer and a tiny random BERT for fine-tuning tests."""

from __future__ import annotations

import random
from pathlib import Path

from datasets import Dataset
from transformers import BertTokenizerFast

from bertdrift.finetune.tasks import TaskData
from bertdrift.models import tiny_bert

WORDS = ("the cat dog sat on mat ran to park a bird flew over house red blue big small is was "
         "not who what where did . , ?").split()


def tiny_tokenizer(tmp: Path) -> BertTokenizerFast:
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    # transformers 5 ignores vocab_file= here (5 special tokens, every word [UNK]): pass the dict
    return BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)


def tiny_encoder(seed: int = 0):
    return tiny_bert(num_layers=2, hidden=32, vocab=64, seed=seed)


def _sentence(rng: random.Random, n: int) -> list[str]:
    return [rng.choice(WORDS[:-3]) for _ in range(n)]


def mnli_data(n_train: int = 24, n_eval: int = 8, seed: int = 0) -> TaskData:
    rng = random.Random(seed)

    def make(n: int) -> Dataset:
        rows = {"premise": [], "hypothesis": [], "label": []}
        for _ in range(n):
            p = _sentence(rng, rng.randint(3, 9))
            label = rng.randint(0, 2)
            h = p[:3] if label == 0 else _sentence(rng, rng.randint(2, 5))
            rows["premise"].append(" ".join(p))
            rows["hypothesis"].append(" ".join(h))
            rows["label"].append(label)
        return Dataset.from_dict(rows)

    return TaskData(make(n_train), {"dev_matched": make(n_eval), "dev_mismatched": make(n_eval)},
                    {"labels": ["entailment", "neutral", "contradiction"]})


def squad_data(n_train: int = 16, n_eval: int = 6, seed: int = 0) -> TaskData:
    rng = random.Random(seed)

    def make(n: int, prefix: str) -> Dataset:
        rows: dict[str, list] = {"id": [], "context": [], "question": [], "answers": []}
        for i in range(n):
            words = _sentence(rng, rng.randint(20, 40))
            context = " ".join(words)
            k = rng.randrange(len(words) - 2)
            start = len(" ".join(words[:k])) + (1 if k else 0)
            text = " ".join(words[k : k + 2])
            rows["id"].append(f"{prefix}{i}")
            rows["context"].append(context)
            rows["question"].append("what " + " ".join(_sentence(rng, 3)) + " ?")
            rows["answers"].append({"text": [text], "answer_start": [start]})
        return Dataset.from_dict(rows)

    return TaskData(make(n_train, "t"), {"dev": make(n_eval, "d")}, {})


def random_tree(rng: random.Random, n: int) -> list[int]:
    """Heads (1-based, 0 = root) of a random single-rooted tree over n words."""
    order = list(range(1, n + 1))
    rng.shuffle(order)
    heads = [0] * n
    for pos, w in enumerate(order[1:], start=1):
        heads[w - 1] = order[rng.randrange(pos)]
    heads[order[0] - 1] = 0
    return heads


def ud_data(n_train: int = 16, n_eval: int = 6, seed: int = 0) -> TaskData:
    rng = random.Random(seed)
    rels = ["nsubj", "obj", "nmod:poss", "nmod", "det", "punct", "obl:tmod"]

    def make(n: int) -> Dataset:
        rows: dict[str, list] = {"tokens": [], "head": [], "deprel": []}
        for _ in range(n):
            m = rng.randint(2, 9)
            heads = random_tree(rng, m)
            rows["tokens"].append(_sentence(rng, m))
            rows["head"].append(heads)
            rows["deprel"].append(["root" if h == 0 else rng.choice(rels) for h in heads])
        return Dataset.from_dict(rows)

    train = make(n_train)
    return TaskData(train, {"dev": make(n_eval)}, {})
