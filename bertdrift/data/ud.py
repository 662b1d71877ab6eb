"""CoNLL-U reading (via the ``conllu`` library) and the UD English Web Treebank v2.16 loader.

Tokens are *syntactic words*: multiword-token ranges (``3-4``) and empty nodes (``8.1``) are
skipped, so ``head`` indexes ``tokens`` directly (0 = root, else the 1-based word index).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import conllu
from datasets import Dataset, Features, List, Value

from bertdrift.data._cache import cached_dataset
from bertdrift.data._jsonl import check_limit, empty_error, utf8_errors
from bertdrift.data.sources import resolve
from bertdrift.errors import DataError

UD_SPLITS = ("train", "dev", "test")
UD_FEATURES = Features(
    {
        "sent_id": Value("string"),
        "text": Value("string"),
        "tokens": List(Value("string")),
        "upos": List(Value("string")),
        "xpos": List(Value("string")),
        "head": List(Value("int32")),
        "deprel": List(Value("string")),
    }
)
# FEATS and DEPS are not used; keeping them as raw strings halves the parsing time.
_RAW_FIELDS = {"feats": lambda line, i: line[i], "deps": lambda line, i: line[i]}
_ID = re.compile(r"^(\d+|\d+-\d+|\d+\.\d+)$")


def _blocks(path: Path) -> Iterator[tuple[int, list[str]]]:
    """Yield (first line number, lines) per sentence block, checking each word line's shape."""
    block: list[str] = []
    start = 0
    with utf8_errors(path), open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                if block:
                    yield start, block
                block = []
                continue
            if not block:
                start = lineno
            if not line.startswith("#"):
                _check_word_line(path, lineno, line)
            block.append(line)
    if block:
        yield start, block


def _check_word_line(path: Path, lineno: int, line: str) -> None:
    cols = line.split("\t")
    where = f"{path}:{lineno}"
    if len(cols) != 10:
        raise DataError(
            f"{where}: a CoNLL-U word line needs 10 tab-separated columns, found {len(cols)} "
            f"({line[:60]!r}); fix or re-download the file"
        )
    if not _ID.match(cols[0]):
        raise DataError(f"{where}: invalid word ID {cols[0]!r}; fix or re-download the file")
    if "-" not in cols[0] and "." not in cols[0] and not cols[6].isdigit():
        raise DataError(f"{where}: HEAD must be an integer, found {cols[6]!r}; fix the file")


def read_conllu(path: str | os.PathLike[str], limit: int | None = None) -> list[dict[str, Any]]:
    """Parse a CoNLL-U file into one dict per sentence.

    Keys: ``sent_id``, ``text``, ``tokens``, ``upos``, ``xpos``, ``head``, ``deprel`` (as in
    :data:`UD_FEATURES`), plus ``misc`` (list of MISC dicts or ``None``), ``metadata`` (the
    comment lines) and ``line`` (first line number). A malformed line raises one ``DataError``
    naming the file and line.
    """
    path = Path(path)
    out: list[dict[str, Any]] = []
    seen = False
    for start, lines in _blocks(path):
        seen = True
        if limit is not None and len(out) >= limit:
            break
        try:
            (sent,) = conllu.parse("\n".join(lines) + "\n\n", field_parsers=_RAW_FIELDS)
        except Exception as exc:  # noqa: BLE001 - conllu raises several exception types
            raise DataError(
                f"{path}:{start}: cannot parse the CoNLL-U sentence starting here ({exc}); "
                "fix or re-download the file"
            ) from exc
        words = [t for t in sent if isinstance(t["id"], int)]
        if not words:
            raise DataError(f"{path}:{start}: sentence has no words; fix the file")
        for i, w in enumerate(words, start=1):
            if w["id"] != i or not 0 <= w["head"] <= len(words):
                raise DataError(
                    f"{path}:{start}: word IDs must run 1..n and heads 0..n (word {w['id']}, "
                    f"head {w['head']}); fix the file"
                )
        problem = tree_problem([int(w["head"]) for w in words])
        if problem:
            sid = sent.metadata.get("sent_id", "?")
            raise DataError(f"{path}:{start}: sentence {sid}: {problem}; fix the HEAD column")
        meta = dict(sent.metadata)
        out.append(
            {
                "sent_id": meta.get("sent_id", f"{path.stem}-{len(out) + 1}"),
                "text": meta.get("text", " ".join(w["form"] for w in words)),
                "tokens": [w["form"] for w in words],
                "upos": [w["upos"] or "_" for w in words],
                "xpos": [w["xpos"] or "_" for w in words],
                "head": [int(w["head"]) for w in words],
                "deprel": [w["deprel"] for w in words],
                "misc": [w["misc"] for w in words],
                "metadata": meta,
                "line": start,
            }
        )
    if not seen:
        raise empty_error(path, "CoNLL-U sentences")
    return out


def tree_problem(heads: list[int]) -> str | None:
    """Why 1-based ``heads`` (0 = root) are not one tree, or ``None`` when they are."""
    roots = [i for i, h in enumerate(heads, start=1) if h == 0]
    if len(roots) != 1:
        return (f"{len(roots)} words have HEAD 0 ({roots[:5]}); a dependency tree has exactly "
                "one root")
    reaches_root = {0}
    for i in range(1, len(heads) + 1):
        path: list[int] = []
        j = i
        while j not in reaches_root:
            if j in path:
                cycle = path[path.index(j):]
                return f"the heads of words {cycle} form a cycle (they never reach the root)"
            path.append(j)
            j = heads[j - 1]
        reaches_root.update(path)
    return None


def ud_path(split: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    if split not in UD_SPLITS:
        raise DataError(f"unknown UD split {split!r}; choose one of {', '.join(UD_SPLITS)}")
    return resolve(f"ud-ewt/en_ewt-ud-{split}.conllu", data_dir=data_dir)


def load_ud(
    split: str = "train", *, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None,
) -> Dataset:
    """UD English EWT v2.16: ``sent_id, text, tokens, upos, xpos, head, deprel``.

    ``deprel`` keeps the subtype (``nmod:poss``). ``limit`` keeps the first ``limit`` sentences
    (file order, so a treebank prefix).
    """
    if limit is not None:
        check_limit(limit)
    path = ud_path(split, data_dir)

    def build() -> Dataset:
        rows = read_conllu(path)
        cols = {k: [r[k] for r in rows] for k in UD_FEATURES}
        return Dataset.from_dict(cols, features=UD_FEATURES)

    ds = cached_dataset(f"ud-{split}", [path], None, build)
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds
