"""Definite Pronoun Resolution (Rahman & Ng 2012): ``dpr/{train,test}.c.txt``.

Blocks of four lines: sentence / pronoun / ``cand1,cand2`` / answer. Sentences are split into
words with the Treebank tokenizer and the candidates and pronoun are located as word sequences
(case-insensitive): each candidate at its first occurrence; the pronoun at its first occurrence
that starts after the first candidate's start and overlaps no candidate (else its first
non-overlapping occurrence). Blocks where a candidate or the pronoun cannot be found are
skipped; ``load_dpr`` reports how many in ``ds.info.description``.
"""

from __future__ import annotations

import os
from pathlib import Path

from datasets import Dataset, DatasetInfo, Features, List, Value

from bertdrift.data._jsonl import check_limit, empty_error, read_text
from bertdrift.data._tok import find_sequence, word_tokenize
from bertdrift.data.sources import resolve
from bertdrift.errors import DataError

DPR_SPLITS = ("train", "test")
DPR_FEATURES = Features(
    {
        "text": Value("string"), "tokens": List(Value("string")),
        "pronoun": List(Value("int32")), "pronoun_text": Value("string"),
        "candidates": List({"span": List(Value("int32")), "text": Value("string"),
                            "correct": Value("bool")}),
    }
)


def _blocks(path: Path) -> list[tuple[int, list[str]]]:
    out, block, start = [], [], 0
    lines = read_text(path).splitlines() + [""]
    for lineno, line in enumerate(lines, start=1):
        if line.strip():
            if not block:
                start = lineno
            block.append(line.strip())
        elif block:
            if len(block) != 4:
                raise DataError(f"{path}:{start}: a DPR block needs 4 lines (sentence, pronoun, "
                                f"cand1,cand2, answer), found {len(block)}; fix the file")
            out.append((start, block))
            block = []
    if not out:
        raise empty_error(path, "DPR blocks")
    return out


def _locate(tokens: list[str], pronoun: list[str], cands: list[list[str]]):
    starts = [find_sequence(tokens, c) for c in cands]
    if any(not s for s in starts) or not pronoun:
        return None
    cand_spans = [[s[0], s[0] + len(c)] for s, c in zip(starts, cands, strict=True)]
    first = min(s[0] for s in cand_spans)
    options = [i for i in find_sequence(tokens, pronoun)
               if all(i + len(pronoun) <= a or i >= b for a, b in cand_spans)]
    if not options:
        return None
    after = [i for i in options if i > first]
    p = (after or options)[0]
    return [p, p + len(pronoun)], cand_spans


def load_dpr(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """DPR: ``text, tokens, pronoun [s, e), pronoun_text, candidates{span, text, correct}``."""
    if split not in DPR_SPLITS:
        raise DataError(f"unknown DPR split {split!r}; choose one of {', '.join(DPR_SPLITS)}")
    if limit is not None:
        check_limit(limit)
    path = resolve(f"dpr/{split}.c.txt", data_dir=data_dir)
    rows: dict[str, list] = {k: [] for k in DPR_FEATURES}
    skipped = 0
    for lineno, (sentence, pronoun, cands, answer) in _blocks(path):
        names = [c.strip() for c in cands.split(",")]
        if len(names) != 2 or answer.strip() not in names:
            raise DataError(f"{path}:{lineno + 2}: expected two comma-separated candidates, one "
                            f"of them the answer {answer!r}; fix the file")
        tokens = word_tokenize(sentence)
        found = _locate(tokens, word_tokenize(pronoun), [word_tokenize(c) for c in names])
        if found is None:
            skipped += 1
            continue
        pspan, cspans = found
        rows["text"].append(sentence)
        rows["tokens"].append(tokens)
        rows["pronoun"].append(pspan)
        rows["pronoun_text"].append(pronoun)
        rows["candidates"].append([{"span": s, "text": n, "correct": n == answer.strip()}
                                   for s, n in zip(cspans, names, strict=True)])
        if limit is not None and len(rows["text"]) >= limit:
            break
    info = DatasetInfo(description=f"DPR {split}: {skipped} blocks skipped (span not found)",
                       features=DPR_FEATURES)
    return Dataset.from_dict(rows, features=DPR_FEATURES, info=info)
