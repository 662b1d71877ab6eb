"""MultiNLI: the offline mirror files, or GLUE MNLI from the Hugging Face Hub when online.

Offline (``mnli/`` in the data directory):

- ``dev_matched`` / ``dev_mismatched``: every labelled official dev pair; ``genre`` is known for
  about 40 % of pairs and ``""`` otherwise.
- ``train``: ``mnli/train_sample.jsonl``, a real subset of the MNLI train set (12,081 pairs).
  2,197 pairs (``source: taxinli``) have their original text and genre. The other 9,884
  (``source: llmsknow``) had the final period of premise and hypothesis stripped by their
  redistributor, and have no pairID and no genre. We leave that text **as is**: MNLI text does
  not always end in a period (telephone transcripts never do, and questions end in ``?``), and
  without the genre we cannot tell which rows lost one, so restoring periods would invent text.
  The stripped periods are a small, documented distribution shift between train and dev. Such
  rows get the ``pairID`` ``"llmsknow-<line>"`` (their line in the file).

Online (the file absent from data directory and cache, downloads allowed), the full GLUE
``nyu-mll/glue``/``mnli`` splits are used; GLUE has no genre, so ``genre`` is ``""``.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Value

from bertdrift.data._jsonl import check_limit, empty_error, iter_jsonl, require
from bertdrift.data.sample import subsample
from bertdrift.data.sources import local_path, offline, resolve
from bertdrift.errors import DataError

MNLI_LABELS = ("entailment", "neutral", "contradiction")
"""GLUE label order: 0 entailment, 1 neutral, 2 contradiction."""
MNLI_SPLITS = {
    "train": ("mnli/train_sample.jsonl", "train"),
    "dev_matched": ("mnli/dev_matched.jsonl", "validation_matched"),
    "dev_mismatched": ("mnli/dev_mismatched.jsonl", "validation_mismatched"),
}
MNLI_FEATURES = Features(
    {
        "pairID": Value("string"),
        "premise": Value("string"),
        "hypothesis": Value("string"),
        "label": ClassLabel(names=list(MNLI_LABELS)),
        "genre": Value("string"),
    }
)


def _read_file(path: Path) -> Dataset:
    cols: dict[str, list] = {k: [] for k in MNLI_FEATURES}
    for lineno, obj in iter_jsonl(path):
        require(path, lineno, obj, "premise", "hypothesis", "label")
        label = obj["label"]
        if label not in MNLI_LABELS:
            raise DataError(
                f"{path}:{lineno}: label {label!r} is not one of {', '.join(MNLI_LABELS)}; "
                "fix the file"
            )
        for name in ("premise", "hypothesis"):
            if not isinstance(obj[name], str):
                raise DataError(
                    f"{path}:{lineno}: {name} must be a string, found "
                    f"{type(obj[name]).__name__} {obj[name]!r:.60}; fix or re-download the file"
                )
        pair_id = obj.get("pairID")
        cols["pairID"].append(str(pair_id) if pair_id else f"{obj.get('source', 'row')}-{lineno}")
        cols["premise"].append(str(obj["premise"]))
        cols["hypothesis"].append(str(obj["hypothesis"]))
        cols["label"].append(MNLI_LABELS.index(label))
        cols["genre"].append(str(obj.get("genre") or ""))
    if not cols["label"]:
        raise empty_error(path, "MNLI pairs")
    return Dataset.from_dict(cols, features=MNLI_FEATURES)


def _load_hub(hub_split: str) -> Dataset:
    from datasets import load_dataset

    try:
        ds = load_dataset("nyu-mll/glue", "mnli", split=hub_split)
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear error
        raise DataError(
            f"MNLI split {hub_split!r} is not in the data directory and could not be loaded "
            f"from the Hub (nyu-mll/glue, mnli): {exc}. Set BERTDRIFT_DATA to the data mirror"
        ) from exc
    ds = ds.filter(lambda ex: ex["label"] >= 0)
    ds = ds.map(
        lambda ex: {"pairID": str(ex["idx"]), "genre": ""},
        remove_columns=[c for c in ds.column_names if c not in ("premise", "hypothesis", "label")],
    )
    return ds.cast(MNLI_FEATURES)


def load_mnli(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None, seed: int = 0,
) -> Dataset:
    """MNLI pairs: ``pairID, premise, hypothesis, label`` (0/1/2 GLUE order), ``genre``.

    ``limit`` takes a seeded random subset (``seed``), not the first rows.
    """
    if split not in MNLI_SPLITS:
        raise DataError(f"unknown MNLI split {split!r}; choose one of {', '.join(MNLI_SPLITS)}")
    relpath, hub_split = MNLI_SPLITS[split]
    if limit is not None:
        check_limit(limit)
    path = local_path(relpath, data_dir=data_dir)
    if path is not None:
        ds = _read_file(path)
    elif offline():
        resolve(relpath, data_dir=data_dir)  # raises the standard "missing file" DataError
        raise AssertionError("unreachable")
    else:
        ds = _load_hub(hub_split)
    return subsample(ds, limit, seed)
