"""SQuAD v1.1 in the Hugging Face ``squad`` schema, and splitting it by article.

Offline only the official ``dev-v1.1.json`` exists; fine-tuning and evaluation then share it,
split **by article** (:func:`split_squad_by_article`), never by question. Online, splits not in
the data directory come from ``rajpurkar/squad`` on the Hub (``dev`` is downloaded as the
official file with its pinned sha256).
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset, Features, List, Value

from bertdrift.data._jsonl import check_limit, read_json
from bertdrift.data.sources import local_path, offline, resolve
from bertdrift.errors import DataError

SQUAD_FEATURES = Features(
    {
        "id": Value("string"),
        "title": Value("string"),
        "context": Value("string"),
        "question": Value("string"),
        "answers": {"text": List(Value("string")), "answer_start": List(Value("int32"))},
    }
)
SQUAD_FILES = {"dev": "squad-v1.1/dev-v1.1.json", "train": "squad-v1.1/train-v1.1.json"}


def read_squad_json(path: Path) -> Dataset:
    """Flatten an official SQuAD v1.1 JSON file into one row per question (file order)."""
    doc = read_json(path)
    rows: dict[str, list] = {k: [] for k in SQUAD_FEATURES}
    try:
        for article in doc["data"]:
            for para in article["paragraphs"]:
                for qa in para["qas"]:
                    rows["id"].append(qa["id"])
                    rows["title"].append(article["title"])
                    rows["context"].append(para["context"])
                    rows["question"].append(qa["question"])
                    rows["answers"].append(
                        {
                            "text": [a["text"] for a in qa["answers"]],
                            "answer_start": [int(a["answer_start"]) for a in qa["answers"]],
                        }
                    )
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: not in the SQuAD v1.1 layout (data/paragraphs/qas/answers; missing "
            f"{exc}); use the official file"
        ) from exc
    return Dataset.from_dict(rows, features=SQUAD_FEATURES)


def load_squad(
    split: str = "dev", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """SQuAD v1.1 questions: ``id, title, context, question, answers{text, answer_start}``.

    ``limit`` keeps the first ``limit`` questions in file order.
    """
    if split not in SQUAD_FILES:
        raise DataError(f"unknown SQuAD split {split!r}; choose one of {', '.join(SQUAD_FILES)}")
    relpath = SQUAD_FILES[split]
    if limit is not None:
        check_limit(limit)
    path = local_path(relpath, data_dir=data_dir)
    if path is None and (split == "dev" or offline()):
        path = resolve(relpath, data_dir=data_dir)
    if path is not None:
        ds = read_squad_json(path)
    else:
        from datasets import load_dataset

        try:
            ds = load_dataset("rajpurkar/squad", split="train").cast(SQUAD_FEATURES)
        except Exception as exc:  # noqa: BLE001
            raise DataError(
                f"SQuAD train is not in the data directory and the Hub failed ({exc}); set "
                "BERTDRIFT_DATA or use split_squad_by_article on the dev set"
            ) from exc
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds


def split_squad_by_article(ds: Dataset, n_eval_articles: int) -> tuple[Dataset, Dataset]:
    """Split by article title: the last ``n_eval_articles`` articles (file order) evaluate.

    Returns ``(train, eval)``; no article appears in both.
    """
    titles = list(dict.fromkeys(ds["title"]))
    if not 0 < n_eval_articles < len(titles):
        raise DataError(
            f"n_eval_articles={n_eval_articles} must be between 1 and {len(titles) - 1} "
            f"(the dataset has {len(titles)} articles)"
        )
    eval_titles = set(titles[-n_eval_articles:])
    is_eval = [t in eval_titles for t in ds["title"]]
    train_idx = [i for i, e in enumerate(is_eval) if not e]
    eval_idx = [i for i, e in enumerate(is_eval) if e]
    return ds.select(train_idx), ds.select(eval_idx)
