"""SemEval-2010 Task 8 from its official Hugging Face Hub copy, for runs without the files.

``SemEvalWorkshop/sem_eval_2010_task_8`` holds the same 8,000 training and 2,717 test sentences
as ``TRAIN_FILE.TXT`` / ``TEST_FILE_FULL.TXT`` (``sentence`` with ``<e1>``/``<e2>`` markers,
``relation`` a class label). ``bertdrift.data.semeval.load_semeval`` falls back to it when the
files are neither in the data directory nor in the cache and downloads are allowed.
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

HUB_ID = "SemEvalWorkshop/sem_eval_2010_task_8"
FIRST_ID = {"train": 1, "test": 8001}
"""The files number sentences 1..8000 (train) and 8001..10717 (test)."""


def load_semeval_hub(split: str) -> Dataset | None:
    """``split`` ("train" or "test") in the schema of ``read_semeval``, or ``None`` when
    downloads are off or the Hub cannot be reached."""
    from bertdrift.data.semeval import SEMEVAL_FEATURES, parse_marked
    from bertdrift.data.sources import offline

    if offline():
        return None
    try:
        from datasets import load_dataset

        raw = load_dataset(HUB_ID, split=split)
    except Exception:  # noqa: BLE001 - unreachable or changed: the caller reports it missing
        return None
    names = raw.features["relation"].names
    rows: dict[str, list] = {k: [] for k in SEMEVAL_FEATURES}
    where = Path(f"hf://{HUB_ID}/{split}")
    for i, ex in enumerate(raw):
        rec = parse_marked(where, i + 1, str(ex["sentence"]).strip().strip('"'))
        rows["id"].append(str(FIRST_ID[split] + i))
        rows["label"].append(names[int(ex["relation"])])
        for k, v in rec.items():
            rows[k].append(v)
    return Dataset.from_dict(rows, features=SEMEVAL_FEATURES)
