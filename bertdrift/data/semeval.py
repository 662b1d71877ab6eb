"""SemEval-2010 Task 8 relation classification (directed labels, 19 classes).

Files: ``semeval2010-task8/TRAIN_FILE.TXT`` (8,000) and ``TEST_FILE_FULL.TXT`` (2,717); blocks of
``id<TAB>"sentence with <e1>…</e1> … <e2>…</e2>"`` / label / ``Comment:…`` / blank. The entity
markers are removed; the text is split into words with the Treebank tokenizer, each marked part
tokenised on its own, so ``e1``/``e2`` are exact [start, end) word spans. There is no official
dev split; ``split="dev"`` carves a fixed 800-sentence sample (numpy seed 0) off the train file
and ``split="train_rest"`` is the other 7,200, for those who want one.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, List, Value

from bertdrift.data._cache import cached_dataset
from bertdrift.data._jsonl import check_limit, empty_error, read_text
from bertdrift.data._tok import word_tokenize
from bertdrift.data.sources import resolve
from bertdrift.errors import DataError, MissingDataError

SEMEVAL_FILES = {"train": "TRAIN_FILE.TXT", "test": "TEST_FILE_FULL.TXT"}
SEMEVAL_SPLITS = ("train", "test", "dev", "train_rest")
DEV_SIZE, DEV_SEED = 800, 0
SEMEVAL_FEATURES = Features(
    {
        "id": Value("string"), "text": Value("string"), "tokens": List(Value("string")),
        "e1": List(Value("int32")), "e2": List(Value("int32")),
        "e1_text": Value("string"), "e2_text": Value("string"), "label": Value("string"),
    }
)
_FIRST = re.compile(r'^(\d+)\t"(.*)"$')
_TAG = re.compile(r"(</?e[12]>)")
_LABEL = re.compile(r"^(Other|[A-Za-z]+-[A-Za-z]+\(e[12],e[12]\))$")


def parse_marked(path: Path, lineno: int, sentence: str) -> dict:
    """Words, plain text and e1/e2 spans of a sentence with ``<e1>`` ``<e2>`` markers."""
    tokens: list[str] = []
    spans: dict[str, list[int]] = {}
    texts: dict[str, str] = {}
    open_tag: str | None = None
    start = 0
    for part in _TAG.split(sentence):
        if _TAG.fullmatch(part):
            name = part.strip("</>")
            if part.startswith("</"):
                if open_tag != name:
                    raise DataError(f"{path}:{lineno}: {part} does not close an open <{name}>")
                spans[name] = [start, len(tokens)]
                open_tag = None
            else:
                open_tag, start = name, len(tokens)
            continue
        words = word_tokenize(part)
        if open_tag:
            texts[open_tag] = part.strip()
        tokens.extend(words)
    if set(spans) != {"e1", "e2"} or any(s[0] >= s[1] for s in spans.values()):
        raise DataError(f"{path}:{lineno}: need one non-empty <e1>…</e1> and <e2>…</e2>; fix "
                        "the file")
    return {"tokens": tokens, "text": _TAG.sub("", sentence), "e1": spans["e1"],
            "e2": spans["e2"], "e1_text": texts["e1"], "e2_text": texts["e2"]}


def read_semeval(path: Path) -> Dataset:
    lines = read_text(path, encoding="utf-8-sig").splitlines()
    rows: dict[str, list] = {k: [] for k in SEMEVAL_FEATURES}
    i = 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        m = _FIRST.match(lines[i].strip())
        if not m:
            raise DataError(f'{path}:{i + 1}: expected id<TAB>"sentence", found '
                            f"{lines[i][:60]!r}; fix or re-download the file")
        label = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if not _LABEL.match(label):
            raise DataError(f"{path}:{i + 2}: expected a relation label such as "
                            f"Cause-Effect(e1,e2) or Other, found {label!r}; fix the file")
        rec = parse_marked(path, i + 1, m.group(2))
        rows["id"].append(m.group(1))
        rows["label"].append(label)
        for k, v in rec.items():
            rows[k].append(v)
        i += 2
        while i < len(lines) and lines[i].startswith("Comment"):
            i += 1
    if not rows["id"]:
        raise empty_error(path, "SemEval sentences")
    return Dataset.from_dict(rows, features=SEMEVAL_FEATURES)


def load_semeval(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """SemEval-2010 T8: ``id, text, tokens, e1, e2 ([start, end)), e1_text, e2_text, label``."""
    if split not in SEMEVAL_SPLITS:
        raise DataError(f"unknown SemEval split {split!r}; choose one of "
                        f"{', '.join(SEMEVAL_SPLITS)}")
    fname = SEMEVAL_FILES["test" if split == "test" else "train"]
    if limit is not None:
        check_limit(limit)
    try:
        path = resolve(f"semeval2010-task8/{fname}", data_dir=data_dir)
    except MissingDataError:  # no files here: the official Hub copy, when online
        hub = load_semeval_hub("test" if split == "test" else "train")
        if hub is None:
            raise
        ds = hub
    else:
        ds = cached_dataset(f"semeval-{fname}", [path], None, lambda: read_semeval(path))
    if split in ("dev", "train_rest"):
        dev = set(np.random.default_rng(DEV_SEED).choice(len(ds), DEV_SIZE, replace=False))
        keep = [i for i in range(len(ds)) if (i in dev) == (split == "dev")]
        ds = ds.select(keep)
    return ds.select(range(min(limit, len(ds)))) if limit is not None else ds


# -- the official Hugging Face Hub copy, for runs without the files -------------------------
# SemEvalWorkshop/sem_eval_2010_task_8 holds the same 8,000 training and 2,717 test sentences as
# TRAIN_FILE.TXT / TEST_FILE_FULL.TXT (``sentence`` with <e1>/<e2> markers, ``relation`` a class
# label); load_semeval falls back to it when the files cannot be had and downloads are allowed.
HUB_ID = "SemEvalWorkshop/sem_eval_2010_task_8"
FIRST_ID = {"train": 1, "test": 8001}
"""The files number sentences 1..8000 (train) and 8001..10717 (test)."""


def load_semeval_hub(split: str) -> Dataset | None:
    """``split`` ("train" or "test") in the schema of ``read_semeval``, or ``None`` when
    downloads are off or the Hub cannot be reached."""
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
