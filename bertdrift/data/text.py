"""Plain-text corpora for out-of-domain sentences: WikiText-2 (test) and the Brown corpus.

WikiText-2 raw (``wikitext-2/wiki.test.raw``; online ``Salesforce/wikitext``,
``wikitext-2-raw-v1``, test split): headings (`` = Title = ``) are dropped; the text is already
tokenised (space-separated), its ``@-@``, ``@,@`` and ``@.@`` joiners become ``-``, ``,`` and
``.``; each paragraph is split into sentences after a ``.``, ``?`` or ``!`` word.

Brown (``nltk/brown.zip``, NLTK's package): the zip is read directly (NLTK's own reader refuses
paths outside its data folders); ``genre`` is the Brown category (news, fiction, …).

``limit`` takes a seeded random subset (``seed``), kept in corpus order.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

from datasets import Dataset, Features, List, Value

from bertdrift.data._cache import cached_dataset
from bertdrift.data._jsonl import read_text
from bertdrift.data.sample import subsample
from bertdrift.data.sources import local_path, offline, resolve
from bertdrift.errors import DataError

TEXT_FEATURES = Features(
    {
        "tokens": List(Value("string")), "text": Value("string"),
        "source": Value("string"), "genre": Value("string"),
    }
)
_JOINERS = {"@-@": "-", "@,@": ",", "@.@": "."}
_HEADING = re.compile(r"^\s*=+ .* =+\s*$")
_END = {".", "?", "!"}
_BROWN_QUOTES = {"``": '"', "''": '"'}


def wikitext_sentences(lines: Sequence[str]) -> list[list[str]]:
    """Sentences (lists of words) of WikiText raw lines, headings dropped."""
    out: list[list[str]] = []
    for line in lines:
        if not line.strip() or _HEADING.match(line):
            continue
        sent: list[str] = []
        for word in line.split():
            sent.append(_JOINERS.get(word, word))
            if word in _END:
                out.append(sent)
                sent = []
        if sent:
            out.append(sent)
    return out


def _rows(sents: list[list[str]], source: str, genres: list[str]) -> dict[str, list]:
    return {"tokens": sents, "text": [" ".join(s) for s in sents],
            "source": [source] * len(sents), "genre": genres}


def load_wikitext(
    *, data_dir: str | os.PathLike[str] | None = None, limit: int | None = None, seed: int = 0
) -> Dataset:
    """WikiText-2 test sentences: ``tokens, text, source ("wikitext"), genre ("wikipedia")``."""
    relpath = "wikitext-2/wiki.test.raw"
    path = local_path(relpath, data_dir=data_dir)
    if path is not None:
        p: Path = path
        ds = cached_dataset("wikitext", [p], None, lambda: _wikitext_ds(
            read_text(p).splitlines()))
    elif offline():
        resolve(relpath, data_dir=data_dir)  # raises the standard "missing file" DataError
        raise AssertionError("unreachable")
    else:
        from datasets import load_dataset

        try:
            hub = load_dataset("Salesforce/wikitext", "wikitext-2-raw-v1", split="test")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"WikiText-2 is not in the data directory and the Hub failed "
                            f"({exc}); set BERTDRIFT_DATA to the data mirror") from exc
        ds = _wikitext_ds(hub["text"])
    return subsample(ds, limit, seed)


def _wikitext_ds(lines: Sequence[str]) -> Dataset:
    sents = wikitext_sentences(lines)
    if not sents:
        raise DataError("WikiText-2 (wikitext-2/wiki.test.raw) holds no sentences: the file is "
                        "empty or truncated; re-download it or point BERTDRIFT_DATA at the mirror")
    return Dataset.from_dict(_rows(sents, "wikitext", ["wikipedia"] * len(sents)),
                             features=TEXT_FEATURES)


def read_brown_zip(zip_path: Path) -> tuple[list[list[str]], list[str]]:
    """(sentences, genre per sentence) from NLTK's ``brown.zip`` (``brown/cats.txt`` + files).

    Each non-blank line of a Brown file is one sentence of ``word/tag`` items; the tag is the
    part after the last ``/``. Brown's ````` and ``''`` quote words become ``"``.
    """
    try:
        zf = zipfile.ZipFile(zip_path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{zip_path}: not a readable zip ({exc}); re-download brown.zip from "
                        "nltk_data") from exc
    sents: list[list[str]] = []
    genres: list[str] = []
    with zf:
        try:
            cats = zf.read("brown/cats.txt").decode("ascii").splitlines()
        except UnicodeDecodeError as exc:
            raise DataError(f"{zip_path}!brown/cats.txt: not ASCII text ({exc}); re-download "
                            "brown.zip from nltk_data") from exc
        except KeyError as exc:
            raise DataError(f"{zip_path}: no brown/cats.txt inside; use NLTK's brown.zip") from exc
        for lineno, line in enumerate(cats, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{zip_path}!brown/cats.txt:{lineno}: expected 'fileid genre'")
            fileid, genre = parts
            try:
                text = zf.read(f"brown/{fileid}").decode("ascii")
            except (KeyError, UnicodeDecodeError) as exc:
                raise DataError(f"{zip_path}!brown/{fileid} (cats.txt line {lineno}): missing "
                                f"or not ASCII text ({exc}); re-download brown.zip from "
                                "nltk_data") from exc
            for raw in text.splitlines():
                items = raw.split()
                if items:
                    words = [it.rsplit("/", 1)[0] for it in items]
                    sents.append([_BROWN_QUOTES.get(w, w) for w in words])
                    genres.append(genre)
    if not sents:
        raise DataError(f"{zip_path}: no Brown sentences inside; re-download brown.zip from "
                        "nltk_data")
    return sents, genres


def brown_genres(data_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """The Brown categories (news, editorial, …, humor)."""
    return sorted(set(load_brown(data_dir=data_dir)["genre"]))


def load_brown(
    *, genres: Sequence[str] | None = None, data_dir: str | os.PathLike[str] | None = None,
    limit: int | None = None, seed: int = 0,
) -> Dataset:
    """Brown corpus sentences: ``tokens, text, source ("brown"), genre`` (Brown category)."""
    path = resolve("nltk/brown.zip", data_dir=data_dir)

    def build() -> Dataset:
        sents, cats = read_brown_zip(path)
        return Dataset.from_dict(_rows(sents, "brown", cats), features=TEXT_FEATURES)

    ds = cached_dataset("brown", [path], None, build)
    if genres is not None:
        known = set(ds.unique("genre"))
        unknown = sorted(set(genres) - known)
        if unknown:
            raise DataError(f"unknown Brown genre(s) {unknown}; valid: {', '.join(sorted(known))}")
        wanted = set(genres)
        ds = ds.select([i for i, g in enumerate(ds["genre"]) if g in wanted])
    return subsample(ds, limit, seed)
